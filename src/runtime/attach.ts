import fs from 'node:fs';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import unixSocket from 'node-unix-socket';
import { EngineError, errnoCode } from '../common/errors.ts';
import { log } from '../common/log.ts';

/**
 * conmon's attach socket is AF_UNIX SOCK_SEQPACKET, which node:net cannot
 * open; node-unix-socket (a small napi addon, prebuilt for linux-x64) can.
 * Each packet from conmon is [pipe byte][data]: 2 = stdout, 3 = stderr (with
 * a TTY everything arrives as stdout). Packets we send are written to the
 * container's stdin; half-closing (shutdown SHUT_WR) makes conmon close the
 * container's stdin.
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
/**
 * Output waiting for a reader that paused (a client whose socket is full).
 * node-unix-socket reads conmon's packets as they come and cannot stop
 * (it has no pause), so the pause ends here: past this many bytes per
 * stream, output is dropped instead of growing the daemon without bound.
 * A reader that keeps up never comes near it.
 */
const MAX_PENDING = 16 << 20;
/** conmon reads at most 32 KiB - 1 per packet from a client. */
const MAX_PACKET = 32767;

export function connectAttach(socketDir: string, opts: { timeoutMs?: number } = {}): Promise<AttachSession> {
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
  const sock = new unixSocket.SeqpacketSocket();
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
    try {
      sock.destroy();
    } catch {
      // already gone
    }
    resolveDone();
  };
  let dropped = 0;
  sock.on('data', (buf: Buffer) => {
    if (buf.length < 1) return;
    const kind = buf[0];
    const target = kind === STDERR_PIPE ? stderr : kind === STDOUT_PIPE ? stdout : undefined;
    if (!target || target.writableEnded) return;
    if (target.readableLength + target.writableLength > MAX_PENDING) {
      if (!dropped) log.warn('attach client is not reading: dropping container output beyond the buffer', { socket: sockPath, bufferBytes: MAX_PENDING });
      dropped += buf.length - 1;
      return;
    }
    target.write(buf.subarray(1));
  });
  sock.on('end', finish);
  sock.on('close', finish);
  const stdin = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (closed) return cb();
      let off = 0;
      const next = () => {
        if (off >= chunk.length || closed) return cb();
        const n = Math.min(MAX_PACKET, chunk.length - off);
        const at = off;
        off += n; // before write(): its callback may run synchronously
        sock.write(chunk, at, n, next);
      };
      next();
    },
    final(cb) {
      if (!closed) {
        try {
          sock.end();
        } catch {
          // socket already closed
        }
      }
      cb();
    },
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      finish();
      reject(new EngineError('TIMEOUT', `attach socket ${sockPath} did not accept the connection`));
    }, opts.timeoutMs ?? 10_000);
    const fail = (e: Error) => {
      clearTimeout(timer);
      if (dirFd !== undefined) fs.closeSync(dirFd);
      dirFd = undefined;
      finish();
      reject(new EngineError('UNAVAILABLE', `cannot attach (${sockPath}): ${e.message}`));
    };
    sock.once('error', fail);
    try {
      sock.connect(target, () => {
        clearTimeout(timer);
        if (dirFd !== undefined) fs.closeSync(dirFd);
        dirFd = undefined;
        sock.removeListener('error', fail);
        sock.on('error', finish);
        resolve({ stdin, stdout, stderr, done, close: finish });
      });
    } catch (e) {
      fail(e as Error);
    }
  });
}
