import { invalid } from '../common/errors.ts';
import type { NetworkRecord } from './types.ts';

/** docker's network filters: name, id, label, driver, type, dangling, scope, until (prune). Values OR, keys AND. */
export type NetworkFilters = Record<string, string[]>;

const KNOWN = new Set(['name', 'id', 'label', 'driver', 'type', 'dangling', 'scope', 'until']);

export function filterNetworks(nets: NetworkRecord[], f: NetworkFilters, inUse: (id: string) => boolean): NetworkRecord[] {
  for (const k of Object.keys(f)) if (!KNOWN.has(k)) throw invalid(`invalid filter '${k}'`);
  const any = (k: string, pred: (v: string) => boolean) => !f[k]?.length || f[k]!.some(pred);
  for (const t of f.type ?? []) if (t !== 'custom' && t !== 'builtin') throw invalid(`invalid filter: 'type'='${t}'`);
  return nets.filter(
    (n) =>
      any('name', (v) => n.Name.includes(v)) &&
      any('id', (v) => n.Id.startsWith(v)) &&
      any('driver', (v) => n.Driver === v) &&
      any('scope', (v) => v === 'local') &&
      any('type', (v) => (v === 'custom') !== n.Predefined) &&
      any('dangling', (v) => {
        const want = v === 'true' || v === '1';
        if (!['true', 'false', '1', '0'].includes(v)) throw invalid(`invalid filter 'dangling=${v}'`);
        return want === (!n.Predefined && !inUse(n.Id));
      }) &&
      any('until', (v) => new Date(n.Created).getTime() < untilMs(v)) &&
      (f.label ?? []).every((v) => {
        const i = v.indexOf('=');
        return i < 0 ? v in n.Labels : n.Labels[v.slice(0, i)] === v.slice(i + 1);
      }),
  );
}

function untilMs(v: string): number {
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  const d = /^(\d+)(s|m|h)$/.exec(v);
  if (d) return Date.now() - Number(d[1]) * { s: 1e3, m: 6e4, h: 3.6e6 }[d[2] as 's' | 'm' | 'h'];
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw invalid(`invalid filter 'until=${v}'`);
  return t;
}
