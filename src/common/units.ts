/**
 * Human-readable durations exactly as docker prints them (go-units
 * HumanDuration): seconds and minutes truncated, hours rounded, then whole
 * days, weeks, months and years.
 */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.trunc(seconds / 60);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(ms / 3_600_000);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.trunc(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.trunc(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24 / 30)} months`;
  return `${Math.trunc(ms / 3_600_000 / 24 / 365)} years`;
}

/** Go's time.ParseDuration (h, m, s, ms, us, ns, optional sign) → nanoseconds, with its error messages. */
export function parseGoDuration(s: string): number {
  const unit: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, μs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  const sign = s.startsWith('-') ? -1 : 1;
  const body = /^[-+]/.test(s) ? s.slice(1) : s;
  if (body === '0') return 0;
  if (body === '') throw new Error(`time: invalid duration "${s}"`);
  const re = /(\d+(?:\.\d*)?|\.\d+)([^\d.]*)/y;
  let total = 0;
  while (re.lastIndex < body.length) {
    const m = re.exec(body);
    if (!m) throw new Error(`time: invalid duration "${s}"`);
    if (!m[2]) throw new Error(`time: missing unit in duration "${s}"`);
    const u = unit[m[2]];
    if (u === undefined) throw new Error(`time: unknown unit "${m[2]}" in duration "${s}"`);
    total += Number(m[1]) * u;
  }
  return sign * Math.round(total);
}
