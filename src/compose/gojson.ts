/**
 * Go's encoding/json, by hand, for the config hash (hash.ts): the values
 * compose-go's types marshal to, with omitempty's "leave out the zero
 * value" as an undefined result.
 */
import { formatDuration, goDuration, parseBytes } from './units.ts';

export type Tree = Record<string, unknown>;
/** A field: its json name and its encoded value, or undefined when Go leaves it out. */
export type Field = [string, string | undefined];

/** A JSON string as Go writes it: HTML-safe, and U+2028/U+2029 escaped. */
export function goString(s: string): string {
  return JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A float32 as Go writes it: the shortest decimal that reads back as the same float32. */
export function goFloat32(x: number): string {
  const f = Math.fround(x);
  if (f === 0) return '0';
  for (let p = 1; p <= 9; p++) {
    const s = Number(f.toPrecision(p));
    if (Math.fround(s) === f) return String(s);
  }
  return String(f);
}

export const obj = (fields: Field[]): string =>
  `{${fields
    .filter((f) => f[1] !== undefined)
    .map(([k, v]) => `${goString(k)}:${v}`)
    .join(',')}}`;
export const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** A Go map: keys sorted by their bytes; omitempty leaves out an empty one. */
export function map<T>(m: Record<string, T> | undefined, enc: (v: T) => string): string | undefined {
  if (!m) return undefined;
  const keys = Object.keys(m).sort(byBytes);
  return keys.length ? `{${keys.map((k) => `${goString(k)}:${enc(m[k]!)}`).join(',')}}` : undefined;
}

export function list<T>(l: T[] | undefined, enc: (v: T) => string): string | undefined {
  return l?.length ? `[${l.map(enc).join(',')}]` : undefined;
}

export const str = (s: unknown): string | undefined => (s === undefined || s === null || s === '' ? undefined : goString(String(s)));
export const strs = (l: unknown[] | undefined) => list(l?.map(String), goString);
export const int = (n: unknown): string | undefined => (n === undefined || n === null || Number(n) === 0 ? undefined : String(Math.trunc(Number(n))));
export const bool = (b: unknown): string | undefined => (b ? 'true' : undefined);
export const optBool = (b: boolean | undefined): string | undefined => (b === undefined ? undefined : String(b));
/** UnitBytes: a quoted decimal. */
export const bytes = (n: unknown, where: string): string | undefined =>
  n === undefined || n === null ? undefined : ((b) => (b ? `"${b}"` : undefined))(parseBytes(n, where));
export const float32 = (n: unknown): string | undefined => (n === undefined || n === null || Number(n) === 0 ? undefined : goFloat32(Number(n)));
export const command = (c: string[] | null | undefined): string => (c ? `[${c.map(goString).join(',')}]` : 'null');
/** A Duration field (value or pointer), from nanoseconds or a compose duration. */
export function duration(v: unknown, omitZero: boolean): string | undefined {
  if (v === undefined || v === null) return undefined;
  const ns = typeof v === 'number' ? v : (goDuration(String(v)) ?? 0);
  return omitZero && ns === 0 ? undefined : goString(formatDuration(ns));
}
/** Go's path.Clean, as compose-go applies it to volume targets. */
export function cleanPath(p: string): string {
  if (p === '') return '.';
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..' && out.length && out[out.length - 1] !== '..') out.pop();
    else if (part !== '..' || !rooted) out.push(part);
  }
  const s = (rooted ? '/' : '') + out.join('/');
  return s || (rooted ? '/' : '.');
}

export const mapping = (m: Record<string, unknown> | undefined) =>
  map(m as Record<string, string> | undefined, (v) => goString(v === null || v === undefined ? '' : String(v)));
export const toMapping = (v: unknown): Record<string, unknown> | undefined => {
  if (Array.isArray(v)) return Object.fromEntries(v.map((e) => String(e).split(/=(.*)/s)).map(([k, x]) => [k!, x ?? '']));
  return v && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
};
