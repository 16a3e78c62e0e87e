import fs from 'node:fs';
import net from 'node:net';
import { EngineError, errnoCode } from '../common/errors.ts';

/**
 * Starts a container that `runc create` left waiting, the way `runc start`
 * does, without a second runc process (~8 ms of a container start here).
 *
 * The protocol is runc's own (stable since 1.0): after its setup, runc's init
 * opens `<runc root>/<id>/exec.fifo` for writing, which blocks until someone
 * opens it for reading, writes one byte, and execs the container's process
 * (the fd is close-on-exec, so the reader sees EOF at the exec). The starter
 * reads that byte and removes the fifo, which is how runc tells a "created"
 * container from a "running" one. If init dies before it writes, nothing ever
 * arrives: initAlive is asked every 100 ms, as runc checks init's pid.
 *
 * Returns false when there is no fifo (already started, stopped, or not a
 * container of this runc root): the caller asks `runc start` for its verdict.
 */
export async function startCreated(fifoPath: string, initAlive: () => boolean, timeoutMs = 60_000): Promise<boolean> {
  let fd: number;
  try {
    // Non-blocking (Node adds O_CLOEXEC), so opening never waits for init; reads are event-driven below.
    fd = fs.openSync(fifoPath, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return false;
    throw e;
  }
  if (!fs.fstatSync(fd).isFIFO()) {
    fs.closeSync(fd);
    throw new EngineError('INTERNAL', `${fifoPath} is not runc's exec fifo`);
  }
  const pipe = new net.Socket({ fd, readable: true, writable: false });
  let bytes = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      const started = Date.now();
      const check = setInterval(() => {
        if (bytes === 0 && !initAlive()) reject(new EngineError('INTERNAL', 'container process is already dead'));
        else if (Date.now() - started > timeoutMs) reject(new EngineError('TIMEOUT', `the container's init did not start within ${timeoutMs} ms`));
      }, 100);
      pipe.on('data', (b: Buffer) => (bytes += b.length));
      pipe.on('end', () => resolve());
      pipe.on('error', reject);
      pipe.on('close', () => clearInterval(check));
    });
  } finally {
    pipe.destroy();
  }
  if (bytes === 0) throw new EngineError('CONFLICT', 'cannot start an already running container');
  fs.rmSync(fifoPath, { force: true });
  return true;
}
