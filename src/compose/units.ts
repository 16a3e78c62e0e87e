/** Durations and byte sizes as compose files write them. */
import { EngineError } from '../common/errors.ts';

/** Go's duration units, in nanoseconds. */
export const GO_DURATION_UNITS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, μs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/**
 * Go's time.ParseDuration ("1m30s", "1.5h", "0"), in nanoseconds; undefined
 * when invalid. `units`: the suffixes allowed (Go's; compose-go's pull
 * policy windows add d and w).
 */
export function goDuration(s: string, units = GO_DURATION_UNITS): number | undefined {
  if (s === '0' || s === '+0' || s === '-0') return 0;
  // longer suffixes first: "ms" before "m"
  const unit = Object.keys(units)
    .sort((a, b) => b.length - a.length)
    .join('|');
  const m = new RegExp(`^([-+]?)((?:(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:${unit}))+)$`).exec(s);
  if (!m) return undefined;
  let total = 0;
  for (const part of m[2]!.matchAll(new RegExp(`(\\d+(?:\\.\\d*)?|\\.\\d+)(${unit})`, 'g'))) total += Number(part[1]) * units[part[2]!]!;
  return Math.round(m[1] === '-' ? -total : total);
}

/** A compose duration: a Go duration string, or a number of seconds. In nanoseconds. */
export function parseDuration(v: unknown, where: string): number {
  if (typeof v === 'number') return Math.round(v * 1e9);
  const d = goDuration(String(v));
  if (d === undefined) throw new EngineError('INVALID_ARGUMENT', `${where}: invalid duration "${v}" (use a Go duration such as 30s, 1m30s, 500ms)`);
  return d;
}

/** A duration in Go's String() form ("1m30s", "500ms"), as docker compose config prints it. */
export function formatDuration(ns: number): string {
  if (ns === 0) return '0s';
  const neg = ns < 0;
  let n = Math.abs(ns);
  let out: string;
  if (n < 1e3) out = `${n}ns`;
  else if (n < 1e6) out = `${trim(n / 1e3)}µs`;
  else if (n < 1e9) out = `${trim(n / 1e6)}ms`;
  else {
    const h = Math.floor(n / 3600e9);
    n -= h * 3600e9;
    const m = Math.floor(n / 60e9);
    n -= m * 60e9;
    out = `${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${trim(n / 1e9)}s`;
  }
  return neg ? `-${out}` : out;
}

function trim(x: number): string {
  return String(Number(x.toFixed(9)));
}

const BYTE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
};

/** docker's units.RAMInBytes: "512m", "1g", "100kb", a plain number of bytes. */
export function parseBytes(v: unknown, where: string): number {
  if (typeof v === 'number') return v;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(String(v));
  const unit = m?.[2]!.toLowerCase().replace(/ib$/, 'b');
  if (!m || !(unit! in BYTE_UNITS))
    throw new EngineError('INVALID_ARGUMENT', `${where}: invalid size "${v}" (use a number of bytes or a size such as 512m, 1g)`);
  return Math.round(Number(m[1]) * BYTE_UNITS[unit!]!);
}
