/**
 * The service keys beyond the everyday ones (cgroup_parent, cpu_period,
 * volumes_from, blkio_config, gpus, hooks, label_file, ...): normalized the
 * way compose-go loads them, so that docker compose's config hash covers
 * them in keel too and a change to any of them recreates the container.
 * Also the dependencies compose-go implies from references to other
 * services (links, volumes_from, `service:X` namespaces).
 */
import { EngineError } from '../common/errors.ts';
import { parseDotenv } from './dotenv.ts';
import { readBounded } from './inputs.ts';
import { toMap } from './merge.ts';
import { shellSplit } from './shorthand.ts';
import type { DependsOn, ProviderConfig, Service } from './types.ts';
import { goDuration, parseBytes } from './units.ts';

type Tree = Record<string, unknown>;

const strMap = (v: unknown): Record<string, string> =>
  Object.fromEntries(Object.entries(toMap(v)).map(([k, x]) => [k, x === null || x === undefined ? '' : String(x)]));

function int(v: unknown, where: string): number {
  const n = typeof v === 'number' ? v : Number(String(v).trim());
  if (String(v).trim() === '' || !Number.isInteger(n)) throw new EngineError('INVALID_ARGUMENT', `${where}: invalid integer "${v}"`);
  return n;
}

/** cpu_rt_period/cpu_rt_runtime: microseconds, or a duration ("950ms"). */
function micros(v: unknown, where: string): number {
  if (typeof v === 'string' && !/^\s*-?\d+\s*$/.test(v)) {
    const ns = goDuration(v);
    if (ns === undefined) throw new EngineError('INVALID_ARGUMENT', `${where}: invalid duration "${v}"`);
    return Math.trunc(ns / 1000);
  }
  return int(v, where);
}

function bool(v: unknown, where: string): boolean {
  if (typeof v === 'boolean') return v;
  const t = String(v);
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(t)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(t)) return false;
  throw new EngineError('INVALID_ARGUMENT', `${where}: invalid boolean "${t}"`);
}

/** A device request (gpus, deploy devices): neither count nor device_ids means every device (compose-go's default). */
export function deviceRequest(d: Tree): Tree {
  return d.count === undefined && d.device_ids === undefined ? { ...d, count: 'all' } : d;
}

function blkio(v: Tree, where: string): Tree {
  const out: Tree = {};
  if (v.weight !== undefined) out.weight = int(v.weight, `${where}.weight`);
  if (Array.isArray(v.weight_device))
    out.weight_device = v.weight_device.map((d: Tree, i) => ({ path: String(d.path ?? ''), weight: int(d.weight ?? 0, `${where}.weight_device[${i}]`) }));
  for (const k of ['device_read_bps', 'device_read_iops', 'device_write_bps', 'device_write_iops']) {
    if (Array.isArray(v[k])) out[k] = v[k].map((d: Tree, i) => ({ path: String(d.path ?? ''), rate: parseBytes(d.rate ?? 0, `${where}.${k}[${i}].rate`) }));
  }
  return out;
}

/** A hook; pre_start hooks run the service's image unless they name their own. */
function hooks(v: unknown, where: string, image: string | undefined): Tree[] | undefined {
  if (!Array.isArray(v)) return undefined;
  return v.map((h: Tree, i) => {
    const out: Tree = { ...h };
    if (typeof h.command === 'string') out.command = shellSplit(h.command, `${where}[${i}].command`);
    if (h.environment !== undefined)
      out.environment = Object.fromEntries(Object.entries(toMap(h.environment)).map(([k, x]) => [k, x === null || x === undefined ? null : String(x)]));
    if (image !== undefined && h.image === undefined) out.image = image;
    return out;
  });
}

/** label_file: labels read from dotenv-format files, under the service's own labels (compose-go's WithServicesLabelsResolved). */
function labelFiles(files: unknown, where: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of Array.isArray(files) ? files : [files]) {
    let text: string;
    try {
      text = readBounded(String(f), 1 << 20);
    } catch (e) {
      const found = (e as EngineError).code !== 'NOT_FOUND';
      throw new EngineError('INVALID_ARGUMENT', `${where}.label_file: ${found ? '' : `label file ${String(f)} not found: `}${(e as Error).message}`);
    }
    Object.assign(
      out,
      parseDotenv(text, String(f), (n) => out[n]),
    );
  }
  return out;
}

/** Fills the less common keys of `svc` from the raw service `s`. */
export function normalizeExtraKeys(svc: Service, s: Tree, where: string): void {
  for (const k of ['cgroup', 'cgroup_parent', 'isolation', 'runtime', 'uts'] as const) if (s[k] !== undefined && s[k] !== null) svc[k] = String(s[k]);
  for (const k of ['cpu_count', 'cpu_percent', 'cpu_period', 'cpu_quota'] as const)
    if (s[k] !== undefined && s[k] !== null) svc[k] = int(s[k], `${where}.${k}`);
  for (const k of ['cpu_rt_period', 'cpu_rt_runtime'] as const) if (s[k] !== undefined && s[k] !== null) svc[k] = micros(s[k], `${where}.${k}`);
  for (const k of ['attach', 'oom_kill_disable', 'use_api_socket'] as const) if (s[k] !== undefined && s[k] !== null) svc[k] = bool(s[k], `${where}.${k}`);
  if (s.mem_swappiness !== undefined && s.mem_swappiness !== null) svc.mem_swappiness = parseBytes(s.mem_swappiness, `${where}.mem_swappiness`);
  if (s.annotations) svc.annotations = strMap(s.annotations);
  if (s.storage_opt) svc.storage_opt = strMap(s.storage_opt);
  if (Array.isArray(s.device_cgroup_rules)) svc.device_cgroup_rules = s.device_cgroup_rules.map(String);
  if (Array.isArray(s.volumes_from)) svc.volumes_from = s.volumes_from.map(String);
  if (s.blkio_config && typeof s.blkio_config === 'object') svc.blkio_config = blkio(s.blkio_config as Tree, `${where}.blkio_config`);
  if (s.credential_spec && typeof s.credential_spec === 'object') svc.credential_spec = { ...(s.credential_spec as Tree) };
  if (s.gpus !== undefined) svc.gpus = typeof s.gpus === 'string' ? [{ count: 'all' }] : (s.gpus as Tree[]).map(deviceRequest);
  for (const k of ['pre_start', 'post_start', 'pre_stop'] as const) {
    const h = hooks(s[k], `${where}.${k}`, k === 'pre_start' ? svc.image : undefined);
    if (h) svc[k] = h;
  }
  if (s.label_file !== undefined) svc.labels = { ...labelFiles(s.label_file, where), ...svc.labels };
  if (s.provider !== undefined && s.provider !== null) svc.provider = provider(s.provider as Tree);
  if (s.models !== undefined && s.models !== null)
    svc.models = Array.isArray(s.models) ? Object.fromEntries(s.models.map((m) => [String(m), null])) : { ...(s.models as Tree) };
}

/** provider: each option a list of strings (compose-go's MultiOptions: a scalar is a list of one, values as Go's fmt.Sprint writes them). */
function provider(v: Tree): ProviderConfig {
  const out: ProviderConfig = { type: String(v.type) };
  if (v.options && typeof v.options === 'object') {
    out.options = Object.fromEntries(
      Object.entries(v.options as Tree).map(([k, x]) => [k, (Array.isArray(x) ? x : [x]).map((e) => (e === null || e === undefined ? '' : String(e)))]),
    );
  }
  return out;
}

/** The resource keys only deploy.resources gives (compose-go keeps them there alone: neither hashed nor printed at the top level). */
export function fromDeployOnly(s: Tree, limits: Tree, reservations: Tree): NonNullable<Service['fromDeploy']> {
  return (
    [
      ['mem_limit', limits.memory],
      ['mem_reservation', reservations.memory],
      ['cpus', limits.cpus],
      ['pids_limit', limits.pids],
    ] as const
  ).flatMap(([k, d]) => (s[k] === undefined && d !== undefined ? [k] : []));
}

const REFERENCE = /^service:/;

/**
 * The dependencies compose-go adds for what a service references: links
 * (restart with it), `service:X` network/ipc/pid/uts/cgroup namespaces
 * (restart with it), volumes_from a service (no restart). An explicit
 * depends_on entry wins.
 */
export function impliedDependencies(svc: Service, s: Tree): void {
  const add = (name: string, restart: boolean) => {
    if (!svc.depends_on[name]) svc.depends_on[name] = { condition: 'service_started', restart, required: true } satisfies DependsOn;
  };
  for (const l of Array.isArray(s.links) ? s.links : []) {
    const parts = String(l).split(':');
    add(parts.length === 2 ? parts[0]! : String(l), true);
  }
  for (const k of ['network_mode', 'ipc', 'pid', 'uts', 'cgroup']) {
    const v = s[k];
    if (typeof v === 'string' && REFERENCE.test(v)) add(v.slice(8), true);
  }
  for (const v of svc.volumes_from ?? []) if (!v.startsWith('container:')) add(v.split(':')[0]!, false);
}
