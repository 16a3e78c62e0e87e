import { EngineError, invalid } from '../common/errors.ts';
import { HEALTH_FILTER_VALUES, healthSuffix } from './health.ts';
import { networkName } from './network.ts';
import type { ContainerRecord, ContainerStatus } from './types.ts';
import { humanDuration } from '../common/units.ts';

export { humanDuration };

export type Filters = Record<string, string[]>;

const KNOWN = new Set([
  'id',
  'name',
  'label',
  'status',
  'exited',
  'ancestor',
  'before',
  'since',
  'network',
  'health',
  'volume',
  'publish',
  'expose',
  'is-task',
  'isolation',
]);
const STATUSES = new Set(['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead']);

function labelsMatch(labels: Record<string, string>, wanted: string[] | undefined): boolean {
  if (!wanted?.length) return true;
  return wanted.every((w) => {
    const i = w.indexOf('=');
    const k = i < 0 ? w : w.slice(0, i);
    if (!(k in labels)) return false;
    return i < 0 || labels[k] === w.slice(i + 1);
  });
}

export interface ListOptions {
  all?: boolean;
  limit?: number;
  filters?: Filters;
  /** Resolves an image reference to its ID (ancestor=); undefined if unknown. */
  resolveImage?: (ref: string) => string | undefined;
  /** Resolves a container reference (before=/since=). */
  find?: (ref: string) => ContainerRecord;
  /** The status docker shows (view.ts: "restarting" while a restart by policy is pending); the record's by default. */
  statusOf?: (r: ContainerRecord) => ContainerStatus;
}

/** docker ps: newest first, running only unless all, then filters, then limit. */
export function listContainers(recs: ContainerRecord[], o: ListOptions): ContainerRecord[] {
  const f = o.filters ?? {};
  for (const k of Object.keys(f)) if (!KNOWN.has(k)) throw invalid(`invalid filter '${k}'`);
  for (const s of f.status ?? []) if (!STATUSES.has(s)) throw invalid(`invalid filter 'status=${s}'`);
  for (const h of f.health ?? []) if (!HEALTH_FILTER_VALUES.includes(h)) throw invalid(`Unrecognised filter value for health: ${h}`);
  const exited = (f.exited ?? []).map((e) => {
    const n = Number(e);
    if (!Number.isInteger(n)) throw invalid(`invalid filter 'exited=${e}'`);
    return n;
  });
  const sorted = [...recs].sort((a, b) => b.created.localeCompare(a.created) || b.id.localeCompare(a.id));
  const before = f.before?.length ? o.find?.(f.before[0]!) : undefined;
  const since = f.since?.length ? o.find?.(f.since[0]!) : undefined;
  const ancestors = (f.ancestor ?? []).map((a) => ({ ref: a, id: o.resolveImage?.(a) }));
  // An explicit status or exited filter, or a limit, implies all (docker's rule).
  const all = o.all || (f.status?.length ?? 0) > 0 || exited.length > 0 || (o.limit !== undefined && o.limit > 0) || !!before || !!since;
  const out: ContainerRecord[] = [];
  for (const r of sorted) {
    const status = o.statusOf?.(r) ?? r.state.Status;
    if (!all && status !== 'running' && status !== 'paused' && status !== 'restarting') continue;
    if (f.id?.length && !f.id.some((x) => r.id.startsWith(x))) continue;
    if (f.name?.length && !f.name.some((x) => matchName(r.name, x))) continue;
    if (!labelsMatch(r.config.Labels, f.label)) continue;
    if (f.status?.length && !f.status.includes(status)) continue;
    if (exited.length && (status !== 'exited' || !exited.includes(r.state.ExitCode))) continue;
    if (ancestors.length && !ancestors.some((a) => a.id === r.imageId || a.ref === r.config.Image)) continue;
    if (f.network?.length && !f.network.includes(networkName(r))) continue;
    if (before && r.created >= before.created) continue;
    if (since && r.created <= since.created) continue;
    if (f.health?.length && !f.health.includes(r.state.Health?.Status ?? 'none')) continue;
    if (f.volume?.length || f.publish?.length) continue;
    out.push(r);
  }
  return o.limit !== undefined && o.limit > 0 ? out.slice(0, o.limit) : out;
}

/** docker's name filter is a regular expression over "/name" or "name" (either matches); bounded. */
function matchName(name: string, pattern: string): boolean {
  if (pattern.length > 256) throw invalid('name filter is too long');
  try {
    const re = new RegExp(pattern);
    return re.test(`/${name}`) || re.test(name);
  } catch {
    return `/${name}`.includes(pattern);
  }
}

/** "Up 3 minutes", "Exited (0) 2 seconds ago": docker's human status. */
export function humanStatus(r: ContainerRecord, now = Date.now(), status = r.state.Status): string {
  const s = r.state;
  switch (status) {
    case 'running':
      return `Up ${humanDuration(now - Date.parse(s.StartedAt))}${healthSuffix(s.Health)}`;
    case 'paused':
      return `Up ${humanDuration(now - Date.parse(s.StartedAt))} (Paused)`;
    case 'restarting':
      return `Restarting (${s.ExitCode}) ${humanDuration(now - Date.parse(s.FinishedAt))} ago`;
    case 'exited':
      if (!r.hasBeenStarted && s.FinishedAt.startsWith('0001')) return 'Created';
      return `Exited (${s.ExitCode}) ${humanDuration(now - Date.parse(s.FinishedAt))} ago`;
    case 'removing':
      return 'Removal In Progress';
    case 'dead':
      return 'Dead';
    default:
      return 'Created';
  }
}

/** prune filters: label, label!, until. */
export function pruneMatch(r: ContainerRecord, f: Filters): boolean {
  for (const k of Object.keys(f)) if (!['label', 'label!', 'until'].includes(k)) throw invalid(`invalid filter '${k}'`);
  if (!labelsMatch(r.config.Labels, f.label)) return false;
  if (f['label!']?.length && f['label!'].some((w) => labelsMatch(r.config.Labels, [w]))) return false;
  if (f.until?.length) {
    const v = f.until[0]!;
    const t = /^\d+(\.\d+)?$/.test(v)
      ? Number(v) * 1000
      : /^\d+[smh]$/.test(v)
        ? Date.now() - Number(v.slice(0, -1)) * { s: 1e3, m: 6e4, h: 3.6e6 }[v.slice(-1) as 's' | 'm' | 'h']
        : Date.parse(v);
    if (!Number.isFinite(t)) throw new EngineError('INVALID_ARGUMENT', `invalid filter 'until=${v}'`);
    if (Date.parse(r.created) >= t) return false;
  }
  return true;
}
