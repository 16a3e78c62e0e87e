/**
 * Docker's JSON progress messages (pkg/jsonmessage), as sent by
 * POST /images/create and /images/{name}/push, one JSON object per line.
 */
export interface ProgressMessage {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  progress?: string;
  error?: string;
  errorDetail?: { message: string };
  aux?: unknown;
}

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];

/** go-units HumanSize: decimal units, 4 significant digits (`1.982MB`, `115B`). */
export function humanSize(n: number): string {
  let i = 0;
  let v = n;
  while (v >= 1000 && i < UNITS.length - 1) {
    v /= 1000;
    i++;
  }
  return `${Number(v.toPrecision(4))}${UNITS[i]}`;
}

/** The `progress` string the daemon sends: `[==>      ]  1.2MB/3.4MB` (bar 50 wide). */
export function progressBar(current: number, total: number): string {
  if (current <= 0 && total <= 0) return '';
  if (total <= 0) return humanSize(current).padStart(8);
  const pct = Math.min(50, Math.floor(Math.floor((current / total) * 100) / 2));
  const bar = `[${'='.repeat(pct)}>${' '.repeat(Math.max(0, 50 - pct))}] `;
  const nums = current > total ? humanSize(current).padStart(8) : `${humanSize(current).padStart(8)}/${humanSize(total)}`;
  return bar + nums;
}

/** A progress message with detail and bar. */
export function progressMessage(status: string, id: string, current: number, total: number): ProgressMessage {
  return { status, progressDetail: { current, total }, progress: progressBar(current, total), id };
}

/** A status line for one layer (`Pulling fs layer`, `Pushed`, ...). */
export function layerStatus(status: string, id: string): ProgressMessage {
  return { status, progressDetail: {}, id };
}

/** The 12-hex short ID docker shows for a digest. */
export function shortId(d: string): string {
  return d.replace(/^sha256:/, '').slice(0, 12);
}

/**
 * Limits how often a byte counter reports: at most every `ms` (and always at
 * the end), so a fast local pull does not emit a message per 16 KiB chunk.
 */
export function throttled(ms: number, fn: (current: number) => void): (current: number, force?: boolean) => void {
  let last = 0;
  return (current, force) => {
    const now = Date.now();
    if (force || now - last >= ms) {
      last = now;
      fn(current);
    }
  };
}
