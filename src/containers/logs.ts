import { EngineError } from '../common/errors.ts';
import fs from 'node:fs';
import zlib from 'node:zlib';
import { lastLines, parseLogStream, readLog, type LogEntry } from '../runtime/logs.ts';
import { logPolicy, logsReadable } from './logconfig.ts';
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
  // At the exit the follower is not cut off but drained: it reads on to the end of the newest file (a slow
  // reader may still be files behind), then stops. conmon has written every record before its exit file,
  // which is how the exit is seen, so nothing comes after.
  const drain = new AbortController();
  const onExit = () => setTimeout(() => drain.abort(), 50);
  const unsubscribe = svc.exits.onceExited(rec.id, onExit);
  if (!isRunning(svc.store.get(rec.id) ?? rec)) onExit(); // it exited before the listener was there
  try {
    const maxFiles = logPolicy(rec.hostConfig).maxFile;
    for await (const e of readLog(file, {
      tail: o.tail,
      since: o.since,
      until: o.until,
      follow: true,
      signal: o.signal,
      drain: drain.signal,
      pollMs: 250,
      maxFiles,
    })) {
      if (want(e)) yield e;
    }
  } finally {
    unsubscribe();
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
