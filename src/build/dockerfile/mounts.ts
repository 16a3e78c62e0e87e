/**
 * `RUN --mount=type=...,key=value,...` as BuildKit reads it: the value is a
 * CSV record; keys are case-insensitive; values (not keys) are expanded with
 * the instruction's variables; `from` may not use variables.
 */
import type { RunMount } from './types.ts';

/** A CSV record as Go's encoding/csv reads one line (quoted fields with "" for a quote). */
export function csvFields(s: string): string[] {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (s[i] === '"') {
      i++;
      for (;;) {
        if (i >= s.length) throw new Error(`failed to parse csv mounts: extraneous or missing " in quoted-field`);
        if (s[i] === '"') {
          if (s[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += s[i++];
      }
      if (i < s.length && s[i] !== ',') throw new Error(`failed to parse csv mounts: extraneous or missing " in quoted-field`);
    } else {
      const end = s.indexOf(',', i);
      field = end < 0 ? s.slice(i) : s.slice(i, end);
      if (field.includes('"')) throw new Error(`failed to parse csv mounts: bare " in non-quoted-field`);
      i = end < 0 ? s.length : end;
    }
    out.push(field);
    if (i >= s.length) return out;
    i++; // ','
  }
}

/** Go's strconv.ParseBool. */
function parseBool(key: string, v: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  throw new Error(`invalid value for ${key}: ${v}`);
}

function parseUint(v: string, base: 8 | 10, what: string): number {
  const re = base === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
  const n = re.test(v) ? parseInt(v, base) : NaN;
  if (!Number.isSafeInteger(n) || n > 0xffffffff) throw new Error(`invalid value ${v} for ${what}`);
  return n;
}

/** go-units RAMInBytes: `64m`, `1g`, `1.5GiB`, `1024` (binary multiples). */
export function ramInBytes(v: string): number {
  const m = /^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(v);
  if (!m) throw new Error(`invalid size: '${v}'`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 }[(m[2] ?? '').toLowerCase()]!;
  return Math.trunc(parseFloat(m[1]!) * mult);
}

const KEYS = [
  'type',
  'from',
  'source',
  'target',
  'readonly',
  'id',
  'sharing',
  'required',
  'size',
  'mode',
  'uid',
  'gid',
  'src',
  'dst',
  'destination',
  'ro',
  'rw',
  'readwrite',
  'env',
];

/**
 * One `--mount` value. `expand` is the instruction's word expander; without
 * it (checking the file before any variable is known) only what does not
 * depend on variables is checked, as BuildKit does at parse time.
 */
export function parseMount(value: string, expand: ((s: string) => string) | undefined): RunMount | undefined {
  const fields = csvFields(value);
  if (!expand) {
    for (const f of fields) {
      const [k, v] = splitKV(f);
      if (k.toLowerCase() === 'from' && v !== undefined) {
        const idx = v.indexOf('$');
        if (idx >= 0 && idx !== v.length - 1) throw new Error(`'from' doesn't support variable expansion, define alias stage instead`);
      }
    }
    // Nothing else can be judged before expansion unless no value uses a variable.
    if (value.includes('$')) return undefined;
    expand = (s) => s;
  }
  let type = 'bind';
  let from: string | undefined;
  let source: string | undefined;
  let target: string | undefined;
  let readOnly = false;
  let roAuto = true;
  let required = false;
  let size: number | undefined;
  let id: string | undefined;
  let sharing: string | undefined;
  let mode: number | undefined;
  let uid: number | undefined;
  let gid: number | undefined;
  let env: string | undefined;
  for (const field of fields) {
    const [rawKey, rawValue] = splitKV(field);
    const key = rawKey.toLowerCase();
    if (rawValue === undefined) {
      if (key === 'readonly' || key === 'ro') ((readOnly = true), (roAuto = false));
      else if (key === 'readwrite' || key === 'rw') ((readOnly = false), (roAuto = false));
      else if (key === 'required') {
        if (type !== 'secret' && type !== 'ssh') throw new Error(`unexpected key '${key}' for mount type '${type}'`);
        required = true;
      } else throw new Error(`invalid field '${field}' must be a key=value pair`);
      continue;
    }
    const v = expand(rawValue);
    switch (key) {
      case 'type':
        if (!['bind', 'cache', 'tmpfs', 'secret', 'ssh'].includes(v.toLowerCase())) throw new Error(`unsupported mount type "${v}"`);
        type = v.toLowerCase();
        break;
      case 'from':
        from = v;
        break;
      case 'source':
      case 'src':
        source = v;
        break;
      case 'target':
      case 'dst':
      case 'destination':
        target = v;
        break;
      case 'readonly':
      case 'ro':
        readOnly = parseBool(key, v);
        roAuto = false;
        break;
      case 'readwrite':
      case 'rw':
        readOnly = !parseBool(key, v);
        roAuto = false;
        break;
      case 'required':
        if (type !== 'secret' && type !== 'ssh') throw new Error(`unexpected key '${key}' for mount type '${type}'`);
        required = parseBool(key, v);
        break;
      case 'size':
        if (type !== 'tmpfs') throw new Error(`unexpected key '${key}' for mount type '${type}'`);
        try {
          size = ramInBytes(v);
        } catch {
          throw new Error(`invalid value for ${key}: ${v}`);
        }
        break;
      case 'id':
        id = v;
        break;
      case 'sharing':
        if (!['shared', 'private', 'locked'].includes(v.toLowerCase())) throw new Error(`unsupported sharing value "${v}"`);
        sharing = v.toLowerCase();
        break;
      case 'mode':
        mode = parseUint(v, 8, 'mode');
        break;
      case 'uid':
        uid = parseUint(v, 10, 'uid');
        break;
      case 'gid':
        gid = parseUint(v, 10, 'gid');
        break;
      case 'env':
        env = v;
        break;
      default:
        throw new Error(`unexpected key '${key}' in '${field}' (known keys: ${KEYS.join(', ')})`);
    }
  }
  if (type !== 'secret' && type !== 'ssh' && type !== 'cache') {
    if (mode !== undefined) throw new Error(`mode not allowed for "${type}" type mounts`);
    if (uid !== undefined) throw new Error(`uid not allowed for "${type}" type mounts`);
    if (gid !== undefined) throw new Error(`gid not allowed for "${type}" type mounts`);
  }
  if (roAuto) readOnly = !(type === 'cache' || type === 'tmpfs');
  if (type === 'secret') {
    if (from !== undefined && from !== '') throw new Error('secret mount should not have a from');
    if (sharing) throw new Error('secret mount should not define sharing');
    if (!source && !target && !id) throw new Error('invalid secret mount. one of source, target required');
    if (source && id) throw new Error("both source and id can't be set");
  }
  if (sharing && type !== 'cache') throw new Error(`invalid cache sharing set for ${type} mount`);
  const opt = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, x]) => x !== undefined && x !== '')) as T;
  switch (type) {
    case 'bind':
      return { type, target: target ?? '', ...opt({ source, from }), readwrite: !readOnly };
    case 'cache':
      return {
        type,
        target: target ?? '',
        ...opt({ id, from, source, mode, uid, gid }),
        sharing: (sharing ?? 'shared') as 'shared' | 'private' | 'locked',
        readonly: readOnly,
      };
    case 'tmpfs':
      return { type, target: target ?? '', ...opt({ size }) };
    case 'secret': {
      // BuildKit: the secret's id is id=, else source=, else the target's base name.
      const secretId = id || source || (target ? target.replace(/\/+$/, '').split('/').pop() : undefined);
      return { type, ...opt({ id: secretId, target, env, mode, uid, gid }), required };
    }
    default:
      return { type: 'ssh', ...opt({ id, target, mode, uid, gid }), required };
  }
}

function splitKV(field: string): [string, string | undefined] {
  const eq = field.indexOf('=');
  return eq < 0 ? [field, undefined] : [field.slice(0, eq), field.slice(eq + 1)];
}
