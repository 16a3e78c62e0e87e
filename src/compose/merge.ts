/**
 * Merging of compose files (`-f a -f b`, `extends`, `include`) on the raw
 * YAML trees, by the compose specification's merge rules (as compose-go
 * applies them):
 *  - mappings merge key by key, scalars are overridden;
 *  - sequences are appended, then de-duplicated by what identifies an
 *    element (a port by its binding, a volume by its target, a secret by
 *    its target, plain strings by value, `K=V` lists by key);
 *  - environment, labels, sysctls, build args... may be lists or maps:
 *    both sides become maps and merge by key;
 *  - `command`, `entrypoint`, `healthcheck.test` are replaced whole;
 *  - depends_on and service networks merge as maps (a list is a map of
 *    defaults); logging merges only when the drivers agree;
 *  - `!reset` removes a value, `!override` replaces it without merging
 *    (yamlTags in files.ts turns the tags into the markers below).
 */
import { EngineError } from '../common/errors.ts';

export const RESET = Symbol('compose.reset');
export class Override {
  readonly value: unknown;
  constructor(value: unknown) {
    this.value = value;
  }
}

type Tree = Record<string, unknown>;
type Merger = (base: unknown, over: unknown, path: string[]) => unknown;

const isMap = (v: unknown): v is Tree => !!v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Override);

/** A list of `K=V` (or `K:V` for extra_hosts) as a map; a map as itself. */
export function toMap(v: unknown, sep = '='): Tree {
  if (isMap(v)) return { ...v };
  const out: Tree = {};
  if (Array.isArray(v)) {
    for (const e of v) {
      const s = String(e);
      const i = s.indexOf(sep);
      if (i < 0) out[s] = null;
      else out[s.slice(0, i)] = s.slice(i + 1);
    }
  }
  return out;
}

const toSequence: Merger = (b, o) => ({ ...toMap(b), ...toMap(o) });
const extraHosts: Merger = (b, o) => {
  const hosts = (v: unknown) => (Array.isArray(v) ? toMap(v.map((x) => String(x).replace(/^([^:=]+)[:=]/, '$1='))) : toMap(v));
  return { ...hosts(b), ...hosts(o) };
};
const replace: Merger = (_b, o) => o;
const dependsOn: Merger = (b, o) => {
  const m = (v: unknown) =>
    Array.isArray(v) ? Object.fromEntries(v.map((s) => [String(s), { condition: 'service_started', required: true }])) : { ...(v as Tree) };
  return mergeTrees(m(b), m(o), []);
};
const networks: Merger = (b, o) => {
  const m = (v: unknown) => (Array.isArray(v) ? Object.fromEntries(v.map((s) => [String(s), null])) : { ...(v as Tree) });
  const base = m(b);
  for (const [k, v] of Object.entries(m(o))) base[k] = isMap(base[k]) && isMap(v) ? mergeTrees(base[k], v, []) : (v ?? base[k] ?? null);
  return base;
};
const logging: Merger = (b, o) => {
  const base = b as Tree;
  const over = o as Tree;
  if (over.driver === undefined || base.driver === undefined || over.driver === base.driver) return mergeTrees(base, over, []);
  return over;
};
const build: Merger = (b, o, p) => {
  const m = (v: unknown) => (typeof v === 'string' ? { context: v } : v);
  return mergeAny(m(b), m(o), p, true);
};

const SPECIALS: [string, Merger][] = [
  ['networks.*.labels', toSequence],
  ['volumes.*.labels', toSequence],
  ['services.*.annotations', toSequence],
  ['services.*.build', build],
  ['services.*.build.args', toSequence],
  ['services.*.build.labels', toSequence],
  ['services.*.build.additional_contexts', toSequence],
  ['services.*.build.extra_hosts', extraHosts],
  ['services.*.command', replace],
  ['services.*.entrypoint', replace],
  ['services.*.depends_on', dependsOn],
  ['services.*.deploy.labels', toSequence],
  ['services.*.environment', toSequence],
  ['services.*.extra_hosts', extraHosts],
  ['services.*.healthcheck.test', replace],
  ['services.*.labels', toSequence],
  ['services.*.logging', logging],
  ['services.*.networks', networks],
  ['services.*.sysctls', toSequence],
  ['services.*.ulimits.*', replace],
];

/** What identifies an element of a sequence, for de-duplication after appending. */
const UNIQUE: [string, (e: unknown) => string][] = [
  ['services.*.ports', (e) => (isMap(e) ? `${e.host_ip ?? ''}:${e.published ?? ''}:${e.target}/${e.protocol ?? 'tcp'}` : String(e))],
  ['services.*.volumes', (e) => (isMap(e) ? String(e.target) : volumeTarget(String(e)))],
  ['services.*.secrets', (e) => (isMap(e) ? String(e.target ?? e.source) : String(e))],
  ['services.*.configs', (e) => (isMap(e) ? String(e.target ?? e.source) : String(e))],
  ['services.*.env_file', (e) => (isMap(e) ? String(e.path) : String(e))],
];
const PLAIN_UNIQUE = ['cap_add', 'cap_drop', 'dns', 'dns_opt', 'dns_search', 'expose', 'profiles', 'tmpfs', 'links', 'devices', 'security_opt', 'group_add'];

function volumeTarget(s: string): string {
  const parts = s.split(':');
  return parts.length === 1 ? parts[0]! : parts[1]!;
}

function matches(path: string[], pattern: string): boolean {
  const p = pattern.split('.');
  return p.length === path.length && p.every((x, i) => x === '*' || x === path[i]);
}

function dedupe(list: unknown[], path: string[]): unknown[] {
  let key: ((e: unknown) => string) | undefined = UNIQUE.find(([p]) => matches(path, p))?.[1];
  if (!key && path.length === 3 && path[0] === 'services' && PLAIN_UNIQUE.includes(path[2]!)) key = (e) => JSON.stringify(e);
  if (!key) return list;
  // a later element with the same identity replaces the earlier one, in the earlier one's place
  const index = new Map<string, number>();
  const out: unknown[] = [];
  for (const e of list) {
    const k = key(e);
    const at = index.get(k);
    if (at === undefined) {
      index.set(k, out.length);
      out.push(e);
    } else out[at] = e;
  }
  return out;
}

function mergeAny(base: unknown, over: unknown, path: string[], skipSpecial = false): unknown {
  if (over === RESET) return undefined;
  if (over instanceof Override) return over.value;
  if (base === undefined) return over;
  if (over === undefined) return base;
  if (!skipSpecial) {
    const special = SPECIALS.find(([p]) => matches(path, p));
    if (special) return special[1](base, over, path);
  }
  if (isMap(base)) {
    if (!isMap(over)) {
      if (over === null) return base;
      throw new EngineError(
        'INVALID_ARGUMENT',
        `cannot override ${path.join('.')}: a mapping cannot be merged with a ${Array.isArray(over) ? 'sequence' : 'scalar'}`,
      );
    }
    return mergeTrees(base, over, path);
  }
  if (Array.isArray(base)) {
    if (!Array.isArray(over)) {
      if (over === null) return base;
      throw new EngineError('INVALID_ARGUMENT', `cannot override ${path.join('.')}: a sequence cannot be merged with a ${isMap(over) ? 'mapping' : 'scalar'}`);
    }
    return dedupe([...base, ...over], path);
  }
  return over;
}

/** Merges `over` onto `base` (neither is modified). */
export function mergeTrees(base: Tree, over: Tree, path: string[] = []): Tree {
  const out: Tree = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const merged = mergeAny(base[k], v, [...path, k]);
    if (merged === undefined) delete out[k];
    else out[k] = merged;
  }
  return out;
}

/** Removes the merge markers left where nothing was merged (a lone file with `!reset`/`!override`). */
export function stripMarkers(v: unknown): unknown {
  if (v instanceof Override) return stripMarkers(v.value);
  if (Array.isArray(v)) return v.filter((x) => x !== RESET).map(stripMarkers);
  if (isMap(v)) {
    const out: Tree = {};
    for (const [k, x] of Object.entries(v)) if (x !== RESET) out[k] = stripMarkers(x);
    return out;
  }
  return v;
}
