import fsp from 'node:fs/promises';
import { errnoCode } from '../common/errors.ts';
import { LogSuccessors } from './logfollow.ts';

/**
 * conmon's k8s-file log format: one record per line,
 * `<RFC3339Nano timestamp with offset> <stdout|stderr> <F|P> <bytes>`.
 * F ends a line, P is a partial chunk of a longer (or unterminated) line:
 * the reader joins P records into the following F record's output as-is.
 */
export interface LogEntry {
  stream: 'stdout' | 'stderr';
  /** Nanoseconds since the epoch. */
  timeNs: bigint;
  /** The timestamp as conmon wrote it. */
  time: string;
  /** The bytes of the record; a full line (F) ends with "\n". */
  line: Buffer;
  partial: boolean;
}

export interface ReadLogOptions {
  /** Only records at or after this time (Date, or seconds since the epoch with fraction). */
  since?: Date | number;
  /** Only records before this time. */
  until?: Date | number;
  /** Only the last N complete lines (per the whole log, both streams). */
  tail?: number;
  /** Keep reading appended records until the signal aborts. */
  follow?: boolean;
  signal?: AbortSignal;
  /** How often to look for new data when following (ms); fs.watch wakes it sooner. */
  pollMs?: number;
  /** Following: once this aborts, stop at the end of what is written (the newest file read to its end). */
  drain?: AbortSignal;
  /** Following: rotated files that may wait for a slow reader (the log's max-file; see logfollow.ts). */
  maxFiles?: number;
}

const RE = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2}) (stdout|stderr) ([FP]) /;

/** Parses one record (without its trailing newline); undefined if malformed. */
export function parseLogLine(raw: Buffer): LogEntry | undefined {
  const head = raw.subarray(0, 64).toString('latin1');
  const m = RE.exec(head);
  if (!m) return undefined;
  const secs = Date.parse(m[1]! + m[3]!);
  if (Number.isNaN(secs)) return undefined;
  const frac = (m[2] ?? '.').slice(1).padEnd(9, '0');
  const timeNs = BigInt(secs) * 1_000_000n + BigInt(frac);
  const partial = m[5] === 'P';
  const body = raw.subarray(m[0].length);
  return {
    stream: m[4] as 'stdout' | 'stderr',
    timeNs,
    time: m[1]! + (m[2] ?? '') + m[3]!,
    line: partial ? Buffer.from(body) : Buffer.concat([body, Buffer.from('\n')]),
    partial,
  };
}

function toNs(t: Date | number): bigint {
  if (t instanceof Date) return BigInt(t.getTime()) * 1_000_000n;
  const whole = Math.floor(t);
  return BigInt(whole) * 1_000_000_000n + BigInt(Math.round((t - whole) * 1e9));
}

/** Splits a buffer into complete records; returns the unterminated rest. */
function splitRecords(buf: Buffer, out: LogEntry[]): Buffer {
  let start = 0;
  for (;;) {
    const nl = buf.indexOf(10, start);
    if (nl < 0) break;
    const e = parseLogLine(buf.subarray(start, nl));
    if (e) out.push(e);
    start = nl + 1;
  }
  return buf.subarray(start);
}

/** Keeps the records making up the last `n` lines (a line = P records up to an F). */
export function lastLines(entries: LogEntry[], n: number): LogEntry[] {
  if (n <= 0) return [];
  let lines = 0;
  let i = entries.length;
  while (i > 0) {
    const e = entries[i - 1]!;
    if (!e.partial) {
      if (lines === n) break;
      lines++;
    }
    i--;
  }
  return entries.slice(i);
}

const CHUNK = 1 << 20;
/**
 * A tail reads backwards at most this much: a log without newlines (one
 * endless partial line) would otherwise be read whole into memory to find
 * where its "last line" starts. Past it, the tail starts at the first
 * record boundary within the bound.
 */
export const TAIL_MAX_BYTES = 16 << 20;

/**
 * The records making up the last `n` lines, read backwards in 1 MiB chunks,
 * each chunk parsed once, in bounded memory (TAIL_MAX_BYTES).
 */
async function readTail(fh: fsp.FileHandle, size: number, n: number, keep: (e: LogEntry) => boolean): Promise<LogEntry[]> {
  if (n <= 0) return [];
  let pos = size;
  let carry: Buffer = Buffer.alloc(0); // the unterminated start of the region read so far
  const batches: LogEntry[][] = []; // newest first
  let lines = 0;
  while (pos > 0 && size - pos < TAIL_MAX_BYTES) {
    const from = Math.max(0, pos - CHUNK);
    const chunk = Buffer.alloc(pos - from);
    await fh.read(chunk, 0, chunk.length, from);
    pos = from;
    const data = carry.length ? Buffer.concat([chunk, carry]) : chunk;
    // Before the first newline is the tail end of a record that starts earlier (unless at offset 0).
    const cut = pos === 0 ? 0 : data.indexOf(10) + 1;
    if (pos > 0 && cut === 0) {
      carry = data;
      continue;
    }
    carry = data.subarray(0, cut);
    const parsed: LogEntry[] = [];
    splitRecords(data.subarray(cut), parsed);
    const kept = parsed.filter(keep);
    batches.push(kept);
    lines += kept.filter((e) => !e.partial).length;
    if (lines > n) break;
  }
  return lastLines(batches.reverse().flat(), n);
}

/**
 * Reads a k8s-file log as an async stream of records, stdout and stderr kept
 * apart. With `tail`, only the end of the file is read (backwards in 1 MiB
 * chunks), so a large log costs little. With `follow`, it waits for more
 * records until `signal` aborts (rotation by truncation is followed too).
 */
export async function* readLog(logPath: string, opts: ReadLogOptions = {}): AsyncGenerator<LogEntry> {
  const since = opts.since !== undefined ? toNs(opts.since) : undefined;
  const until = opts.until !== undefined ? toNs(opts.until) : undefined;
  const keep = (e: LogEntry) => (since === undefined || e.timeNs >= since) && (until === undefined || e.timeNs < until);
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(logPath, 'r');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT' && !opts.follow) return;
    if (errnoCode(e) !== 'ENOENT') throw e;
    const waited = await waitForFile(logPath, opts);
    if (!waited) return;
    fh = waited;
  }
  // Following: from now on every file that replaces this one at the path is opened and queued (logfollow.ts).
  const successors = opts.follow ? new LogSuccessors(logPath, (await fh.stat()).ino, Math.max(2, opts.maxFiles ?? 2), opts.pollMs ?? 1000) : undefined;
  try {
    let size = (await fh.stat()).size;
    let entries: LogEntry[] = [];
    if (opts.tail !== undefined && opts.tail >= 0) {
      entries = await readTail(fh, size, opts.tail, keep);
    } else {
      let pos = 0;
      let rest: Buffer = Buffer.alloc(0);
      while (pos < size) {
        const chunk = Buffer.alloc(Math.min(CHUNK, size - pos));
        const { bytesRead } = await fh.read(chunk, 0, chunk.length, pos);
        if (bytesRead === 0) break;
        pos += bytesRead;
        const batch: LogEntry[] = [];
        rest = splitRecords(Buffer.concat([rest, chunk.subarray(0, bytesRead)]), batch);
        for (const e of batch) if (keep(e)) yield e;
      }
      size = pos - rest.length;
    }
    for (const e of entries) yield e;
    if (!successors) return;
    yield* follow(fh, successors, size, keep, opts);
  } finally {
    await successors?.close();
    await fh.close();
  }
}

async function waitForFile(logPath: string, opts: ReadLogOptions): Promise<fsp.FileHandle | undefined> {
  while (!opts.signal?.aborted) {
    try {
      return await fsp.open(logPath, 'r');
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') throw e;
    }
    await sleep(opts.pollMs ?? 250, opts.signal);
  }
  return undefined;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Reads the log as it grows, and across rotations the files that replaced
 * it, in order, each to its end (logfollow.ts), until the signal aborts.
 */
async function* follow(
  fh: fsp.FileHandle,
  successors: LogSuccessors,
  start: number,
  keep: (e: LogEntry) => boolean,
  opts: ReadLogOptions,
): AsyncGenerator<LogEntry> {
  let pos = start;
  let rest: Buffer = Buffer.alloc(0);
  const chunk = Buffer.alloc(1 << 16);
  let cur = { fh, ino: 0 };
  const wake = AbortSignal.any([opts.signal, opts.drain].filter((s): s is AbortSignal => !!s));
  try {
    while (!opts.signal?.aborted) {
      const st = await cur.fh.stat();
      if (st.size < pos) {
        pos = 0; // truncated (a copytruncate rotation): start over
        rest = Buffer.alloc(0);
      }
      if (st.size > pos) {
        const { bytesRead } = await cur.fh.read(chunk, 0, chunk.length, pos);
        pos += bytesRead;
        const batch: LogEntry[] = [];
        rest = splitRecords(Buffer.concat([rest, chunk.subarray(0, bytesRead)]), batch);
        for (const e of batch) if (keep(e)) yield e;
        continue;
      }
      let next = successors.shift();
      if (!next && opts.drain?.aborted) {
        await successors.settle(); // a rotation the watcher has not handled yet
        next = successors.shift();
        if (!next) {
          if ((await cur.fh.stat()).size > pos) continue;
          return;
        }
      }
      if (!next) {
        await successors.changed(opts.pollMs ?? 1000, wake);
        continue;
      }
      // A newer file exists, so conmon has closed this one: whatever it wrote after the stat above is there now.
      if ((await cur.fh.stat()).size > pos) {
        successors.unshift(next);
        continue;
      }
      if (cur.fh !== fh) await cur.fh.close();
      cur = next;
      pos = 0;
      rest = Buffer.alloc(0);
    }
  } finally {
    if (cur.fh !== fh) await cur.fh.close();
  }
}

/** Parses k8s-file records from a stream (a gzipped rotated file, say), filtered by since/until. */
export async function* parseLogStream(
  source: AsyncIterable<Buffer | Uint8Array>,
  opts: Pick<ReadLogOptions, 'since' | 'until'> = {},
): AsyncGenerator<LogEntry> {
  const since = opts.since !== undefined ? toNs(opts.since) : undefined;
  const until = opts.until !== undefined ? toNs(opts.until) : undefined;
  let rest: Buffer = Buffer.alloc(0);
  for await (const c of source) {
    const batch: LogEntry[] = [];
    rest = splitRecords(Buffer.concat([rest, Buffer.from(c)]), batch);
    if (rest.length > TAIL_MAX_BYTES) rest = Buffer.alloc(0); // a record that long is not a record
    for (const e of batch) if ((since === undefined || e.timeNs >= since) && (until === undefined || e.timeNs < until)) yield e;
  }
}
