/**
 * Variable interpolation in compose files, as the compose specification
 * defines it (compose-go's template package): `$VAR`, `${VAR}`,
 * `${VAR:-default}` / `${VAR-default}` (default when unset-or-empty / unset),
 * `${VAR:?err}` / `${VAR?err}` (an error when unset-or-empty / unset),
 * `${VAR:+alt}` / `${VAR+alt}` (alt when set-and-nonempty / set), `$$` a
 * literal `$`. Defaults and alternatives may themselves hold interpolations
 * (`${A:-${B}}`). Only string values are interpolated, never keys.
 */
import { EngineError } from '../common/errors.ts';
import { Override } from './merge.ts';

export type Lookup = (name: string) => string | undefined;

export interface InterpolateOptions {
  /** Called once per variable that is unset and has no default (docker compose warns). */
  onMissing?: (name: string) => void;
}

const NAME = /^[_a-zA-Z][_a-zA-Z0-9]*/;

/** Interpolates one string. Throws INVALID_ARGUMENT for a bad template or a missing required variable. */
export function interpolateString(s: string, lookup: Lookup, opts: InterpolateOptions = {}): string {
  if (!s.includes('$')) return s;
  let out = '';
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c !== '$') {
      out += c;
      i++;
      continue;
    }
    const next = s[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
      continue;
    }
    if (next === '{') {
      const end = closingBrace(s, i + 2);
      if (end < 0) throw new EngineError('INVALID_ARGUMENT', `Invalid template: "${s}"`);
      out += braced(s.slice(i + 2, end), s, lookup, opts);
      i = end + 1;
      continue;
    }
    const m = NAME.exec(s.slice(i + 1));
    if (!m) throw new EngineError('INVALID_ARGUMENT', `Invalid template: "${s}"`);
    out += valueOf(m[0], lookup, opts);
    i += 1 + m[0].length;
  }
  return out;
}

/** The index of the `}` closing a `${` whose body starts at `from` (nested `${...}` skipped), or -1. */
function closingBrace(s: string, from: number): number {
  let depth = 0;
  for (let i = from; i < s.length; i++) {
    if (s[i] === '$' && s[i + 1] === '$') i++;
    else if (s[i] === '$' && s[i + 1] === '{') {
      depth++;
      i++;
    } else if (s[i] === '}') {
      if (depth === 0) return i;
      depth--;
    }
  }
  return -1;
}

function valueOf(name: string, lookup: Lookup, opts: InterpolateOptions): string {
  const v = lookup(name);
  if (v === undefined) {
    opts.onMissing?.(name);
    return '';
  }
  return v;
}

function braced(body: string, whole: string, lookup: Lookup, opts: InterpolateOptions): string {
  const m = NAME.exec(body);
  if (!m) throw new EngineError('INVALID_ARGUMENT', `Invalid template: "${whole}"`);
  const name = m[0];
  const rest = body.slice(name.length);
  if (rest === '') return valueOf(name, lookup, opts);
  const op = /^(:?)([-?+])/.exec(rest);
  if (!op) throw new EngineError('INVALID_ARGUMENT', `Invalid template: "${whole}"`);
  const colon = op[1] === ':';
  const arg = rest.slice(op[0].length);
  const v = lookup(name);
  // with a colon an empty value counts as unset
  const set = colon ? v !== undefined && v !== '' : v !== undefined;
  switch (op[2]) {
    case '-':
      return set ? v! : interpolateString(arg, lookup, opts);
    case '+':
      return set ? interpolateString(arg, lookup, opts) : '';
    default: {
      if (set) return v!;
      const reason = interpolateString(arg, lookup, opts);
      throw new EngineError('INVALID_ARGUMENT', `required variable ${name} is missing a value${reason ? `: ${reason}` : ''}`);
    }
  }
}

/**
 * Interpolates every string value of a parsed YAML tree, in place order,
 * returning a new tree. `path` names the location in errors
 * (`services.web.image: required variable ...`).
 */
export function interpolateTree(v: unknown, lookup: Lookup, opts: InterpolateOptions = {}, path: string[] = []): unknown {
  if (typeof v === 'string') {
    try {
      return interpolateString(v, lookup, opts);
    } catch (e) {
      if (e instanceof EngineError && path.length) throw new EngineError(e.code, `${path.join('.')}: ${e.message}`);
      throw e;
    }
  }
  if (v instanceof Override) return new Override(interpolateTree(v.value, lookup, opts, path));
  if (Array.isArray(v)) return v.map((x, i) => interpolateTree(x, lookup, opts, [...path, `[${i}]`]));
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = interpolateTree(x, lookup, opts, [...path, k]);
    return out;
  }
  return v;
}
