import { EngineError } from '../common/errors.ts';
import { readLog, type LogEntry } from '../runtime/index.ts';
import type { ContainerService } from './service.ts';
import { isRunning } from './types.ts';

export interface LogOptions {
  stdout?: boolean;
  stderr?: boolean;
  follow?: boolean;
  /** Last N lines; undefined = all. */
  tail?: number;
  /** Seconds since the epoch (fractions allowed). */
  since?: number;
  until?: number;
  signal?: AbortSignal;
}

/** Docker's since/until: unix seconds with optional fraction, or an RFC 3339 time. */
export function parseTime(v: string | null | undefined, what: string): number | undefined {
  if (v === null || v === undefined || v === '' || v === '0') return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v);
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new EngineError('INVALID_ARGUMENT', `invalid value for ${what}: ${v}`);
  return t / 1000;
}

/**
 * The container's log records, stdout and stderr kept apart. With follow,
 * the stream ends when the container stops (as docker's does), after the
 * last records written before the exit.
 */
export async function* containerLogs(svc: ContainerService, ref: string, o: LogOptions): AsyncGenerator<LogEntry> {
  const rec = svc.find(ref);
  const want = (e: LogEntry) => (e.stream === 'stdout' ? o.stdout !== false : o.stderr !== false);
  const file = svc.logPath(rec.id);
  const follow = !!o.follow && isRunning(rec);
  if (!follow) {
    for await (const e of readLog(file, { tail: o.tail, since: o.since, until: o.until, signal: o.signal })) if (want(e)) yield e;
    return;
  }
  const ac = new AbortController();
  const stop = () => ac.abort();
  o.signal?.addEventListener('abort', stop, { once: true });
  const onExit = () => setTimeout(stop, 50);
  svc.bus.once(`exit:${rec.id}`, onExit);
  let lastNs = -1n;
  let sameAtLast = 0;
  try {
    for await (const e of readLog(file, { tail: o.tail, since: o.since, until: o.until, follow: true, signal: ac.signal, pollMs: 250 })) {
      if (e.timeNs === lastNs) sameAtLast++;
      else (lastNs = e.timeNs), (sameAtLast = 1);
      if (want(e)) yield e;
    }
    if (o.signal?.aborted) return;
    // The follower stopped at the exit: read what was written after its last look.
    let skip = sameAtLast;
    for await (const e of readLog(file, { since: lastNs < 0n ? o.since : Number(lastNs) / 1e9 - 1e-6, until: o.until })) {
      if (lastNs >= 0n && e.timeNs < lastNs) continue;
      if (e.timeNs === lastNs && skip > 0) {
        skip--;
        continue;
      }
      if (want(e)) yield e;
    }
  } finally {
    svc.bus.off(`exit:${rec.id}`, onExit);
    o.signal?.removeEventListener('abort', stop);
  }
}
