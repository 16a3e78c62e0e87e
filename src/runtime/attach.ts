import fs from 'node:fs';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import type net from 'node:net';
import { EngineError, errnoCode } from '../common/errors.ts';
import { connectSeqpacket } from './seqpacket.ts';

/**
 * A connection to conmon's attach socket (AF_UNIX SOCK_SEQPACKET, opened by
 * seqpacket.ts). Each packet from conmon is [pipe byte][data]: 2 = stdout,
 * 3 = stderr (with a TTY everything arrives as stdout). Packets we send are
 * written to the container's stdin; half-closing (shutdown SHUT_WR) makes
 * conmon close the container's stdin.
 *
 * Backpressure: stdout and stderr are PassThroughs of bounded size; when
 * either is full (its reader paused, e.g. the API's pump waiting on a client
 * that stopped reading) the socket is paused, so the daemon stops reading
 * conmon. conmon writes to its attach clients with a blocking write_all()
 * in its one event loop (conmon 2.1.6, src/conn_sock.c
 * write_back_to_remote_consoles; the accepted socket is blocking), so it
 * stops reading the container's stdout/stderr pipes, which fill, and the
 * container's writes block: the container is slowed, nothing is dropped,
 * and the daemon holds a few socket buffers, as with dockerd (whose attach
 * copier blocks the container's stdio broadcaster the same way). While it
 * waits, conmon writes no log either; a reader that goes away ends the wait
 * (the pump drains what is left into nothing and the session is closed).
 */
export interface AttachSession {
  stdin: Writable;
  stdout: PassThrough;
  stderr: PassThrough;
  /** Resolves when conmon ends the connection (the process exited) or close() is called. */
  done: Promise<void>;
  close(): void;
}

const STDOUT_PIPE = 2;
const STDERR_PIPE = 3;
/** conmon reads at most 32 KiB - 1 per packet from a client. */
const MAX_PACKET = 32767;

export async function connectAttach(socketDir: string, opts: { timeoutMs?: number } = {}): Promise<AttachSession> {
  const sockPath = path.join(socketDir, 'attach');
  // sun_path holds 107 bytes; a short alias through /proc/self/fd avoids the limit, as conmon does itself.
  let dirFd: number | undefined;
  let target = sockPath;
  if (Buffer.byteLength(sockPath) > 100) {
    try {
      dirFd = fs.openSync(socketDir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    } catch (e) {
      throw new EngineError(errnoCode(e) === 'ENOENT' ? 'NOT_FOUND' : 'INTERNAL', `cannot open attach directory ${socketDir}: ${(e as Error).message}`);
    }
    target = `/proc/self/fd/${dirFd}/attach`;
  }
  let sock: net.Socket;
  try {
    sock = await connectSeqpacket(target, opts.timeoutMs ?? 10_000);
  } catch (e) {
    const code = errnoCode(e);
    throw new EngineError(code === 'EAGAIN' ? 'TIMEOUT' : 'UNAVAILABLE', `cannot attach (${sockPath}): ${(e as Error).message}`);
  } finally {
    if (dirFd !== undefined) fs.closeSync(dirFd);
  }
  return session(sock);
}

function session(sock: net.Socket): AttachSession {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let closed = false;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  const finish = () => {
    if (closed) return;
    closed = true;
    stdout.end();
    stderr.end();
    sock.destroy();
    resolveDone();
  };
  // The streams whose reader is behind: the socket reads again when none is.
  const full = new Set<PassThrough>();
  sock.on('data', (buf: Buffer) => {
    if (buf.length < 1) return;
    const kind = buf[0];
    const out = kind === STDERR_PIPE ? stderr : kind === STDOUT_PIPE ? stdout : undefined;
    if (!out || out.writableEnded) return;
    if (out.write(buf.subarray(1)) || full.has(out)) return;
    full.add(out);
    sock.pause();
    out.once('drain', () => {
      full.delete(out);
      if (!full.size && !closed) sock.resume();
    });
  });
  sock.on('end', finish);
  sock.on('close', finish);
  sock.on('error', finish);
  const stdin = new Writable({
    // One packet per write, each after the previous one went out (see seqpacket.ts).
    write(chunk: Buffer, _enc, cb) {
      let off = 0;
      const next = (err?: Error | null) => {
        if (err || off >= chunk.length || closed) return cb();
        const n = Math.min(MAX_PACKET, chunk.length - off);
        const part = chunk.subarray(off, off + n);
        off += n; // before write(): its callback may run synchronously
        sock.write(part, next);
      };
      next();
    },
    final(cb) {
      if (!closed) sock.end();
      cb();
    },
  });
  return { stdin, stdout, stderr, done, close: finish };
}
