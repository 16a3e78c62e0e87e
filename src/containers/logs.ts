import { EngineError } from '../common/errors.ts';
import fs from 'node:fs';
import zlib from 'node:zlib';
import { lastLines, parseLogStream, readLog, type LogEntry } from '../runtime/logs.ts';
import { logsReadable } from './logconfig.ts';
import { logFiles } from './logrotate.ts';
import type { ContainerParts } from './parts.ts';
import { type ContainerRecord, isRunning } from './types.ts';

type Logs = Pick<ContainerParts, 'store' | 'exits'>;

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
export function containerLogs(svc: Logs, ref: string, o: LogOptions): AsyncGenerator<LogEntry> {
  // Checked now, not at the first record: the API answers with an error before its headers.
  const rec = svc.store.find(ref);
  if (!logsReadable(rec.hostConfig)) {
    throw new EngineError('INVALID_ARGUMENT', 'configured logging driver does not support reading');
  }
  return records(svc, rec, o);
}

async function* records(svc: Logs, rec: ContainerRecord, o: LogOptions): AsyncGenerator<LogEntry> {
  const want = (e: LogEntry) => (e.stream === 'stdout' ? o.stdout !== false : o.stderr !== false);
  const file = svc.store.logPath(rec.id);
  const follow = !!o.follow && isRunning(rec);
  // Older rotated files first (max-file), then the live one.
  const older = logFiles(file).slice(0, -1);
  if (older.length) yield* olderRecords(older, file, o, want);
  if (!follow) {
    for await (const e of readLog(file, { tail: o.tail, since: o.since, until: o.until, signal: o.signal })) if (want(e)) yield e;
    return;
  }
  const ac = new AbortController();
  const stop = () => ac.abort();
  o.signal?.addEventListener('abort', stop, { once: true });
  const onExit = () => setTimeout(stop, 50);
  const unsubscribe = svc.exits.onceExited(rec.id, onExit);
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
    unsubscribe();
    o.signal?.removeEventListener('abort', stop);
  }
}

/**
 * Records of the rotated files (oldest first). With a tail, only what the
 * live file lacks is taken from them: the live file's lines are counted
 * first, the rest come from the newest older files (each at most max-size).
 */
async function* olderRecords(files: { path: string; gzip: boolean }[], live: string, o: LogOptions, want: (e: LogEntry) => boolean): AsyncGenerator<LogEntry> {
  const read = (f: { path: string; gzip: boolean }) => {
    const src = fs.createReadStream(f.path);
    return parseLogStream(f.gzip ? src.pipe(zlib.createGunzip()).on('error', (e) => src.destroy(e)) : src, { since: o.since, until: o.until });
  };
  if (o.tail === undefined) {
    for (const f of files) {
      try {
        for await (const e of read(f)) if (want(e)) yield e;
      } catch {
        // rotated away meanwhile
      }
    }
    return;
  }
  // How many lines the live file already gives.
  let have = 0;
  for await (const e of readLog(live, { tail: o.tail, since: o.since, until: o.until })) if (!e.partial) have++;
  let need = o.tail - have;
  const picked: LogEntry[][] = [];
  for (let i = files.length - 1; i >= 0 && need > 0; i--) {
    const all: LogEntry[] = [];
    try {
      for await (const e of read(files[i]!)) all.push(e);
    } catch {
      continue;
    }
    const last = lastLines(all, need);
    need -= last.filter((e) => !e.partial).length;
    picked.unshift(last);
  }
  for (const batch of picked) for (const e of batch) if (want(e)) yield e;
}
