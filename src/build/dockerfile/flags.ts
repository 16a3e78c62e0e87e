/**
 * Instruction flags with BuildKit's rules: each instruction declares the
 * flags it takes; an undeclared one is `unknown flag: --x`, a repeated
 * single-valued one an error, booleans take nothing, `true` or `false`.
 */
import type { RawFlag } from './types.ts';

export type FlagKind = 'bool' | 'string' | 'strings';

export interface ParsedFlags {
  bool(name: string): boolean | undefined;
  string(name: string): string | undefined;
  strings(name: string): string[];
}

export function parseFlags(flags: RawFlag[], spec: Record<string, FlagKind>): ParsedFlags {
  const values = new Map<string, string | boolean | string[]>();
  for (const f of flags) {
    const display = `--${f.name}`;
    const kind = Object.hasOwn(spec, f.name) ? spec[f.name] : undefined;
    if (kind === undefined) {
      const known = Object.keys(spec);
      const hint = suggest(f.name, known);
      throw new Error(`unknown flag: ${display}${hint ? ` (did you mean ${hint}?)` : ''}`);
    }
    if (values.has(f.name) && kind !== 'strings') throw new Error(`duplicate flag specified: ${display}`);
    if (kind === 'bool') {
      if (f.value === '') throw new Error(`missing a value on flag: ${display}`);
      const v = (f.value ?? 'true').toLowerCase();
      if (v !== 'true' && v !== 'false') throw new Error(`expecting boolean value for flag ${display}, not: ${f.value}`);
      values.set(f.name, v === 'true');
    } else {
      if (f.value === undefined) throw new Error(`missing a value on flag: ${display}`);
      if (kind === 'string') values.set(f.name, f.value);
      else values.set(f.name, [...((values.get(f.name) as string[] | undefined) ?? []), f.value]);
    }
  }
  return {
    bool: (n) => values.get(n) as boolean | undefined,
    string: (n) => values.get(n) as string | undefined,
    strings: (n) => (values.get(n) as string[] | undefined) ?? [],
  };
}

/** The closest known name within a small edit distance, for "did you mean" hints. */
export function suggest(word: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  const w = word.toLowerCase();
  if (w.length > 64) return undefined;
  for (const k of known) {
    const d = distance(w, k.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best !== undefined && bestD <= Math.max(1, Math.floor(best.length / 3)) ? best : undefined;
}

function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}
