/**
 * Docker's hijacked streams (attach, exec start). Two ways in:
 * - `Connection: Upgrade` (docker CLI, dockerode with hijack): answer
 *   `101 UPGRADED`, then the raw socket carries stdin one way and output the
 *   other; the request arrived through the server's 'upgrade' event, so a
 *   JSON body (exec start) is still unread on the socket;
 * - a plain POST (dockerode without hijack): answer 200 and stream the
 *   output as the response body; the request body is stdin.
 * Without a TTY the output is multiplexed: 8-byte header
 * [stream, 0, 0, 0, uint32 BE size], stream 1 = stdout, 2 = stderr.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { EngineError } from '../common/errors.ts';
import type { PumpClient } from './pump.ts';

export interface Hijacked extends PumpClient {
  /** Client → container bytes (stdin); paused until the caller adds its listeners. */
  input: Readable;
  /** Writes one chunk of a stream; false when the client's buffer is full (see drained()). */
  write(stream: 1 | 2, data: Buffer): boolean;
  /** Ends the output (half-close on an upgraded socket). */
  end(): void;
  /** Resolves when the client has gone away. */
  closed: Promise<void>;
  readonly isClosed: boolean;
}

/** Resolves on the writable's next 'drain', or when it closes. */
function drainOf(w: Writable): Promise<void> {
  if (!w.writableNeedDrain || w.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      w.off('drain', done);
      w.off('close', done);
      resolve();
    };
    w.on('drain', done);
    w.on('close', done);
  });
}

export function isUpgrade(req: IncomingMessage): boolean {
  return (req as IncomingMessage & { upgrade?: boolean }).upgrade === true;
}

export function frame(stream: 1 | 2, data: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h[0] = stream;
  h.writeUInt32BE(data.length, 4);
  return Buffer.concat([h, data]);
}

/**
 * Reads a JSON body of an upgraded request from the socket (Content-Length
 * bytes; anything after it is stdin and is put back).
 */
export async function readUpgradeBody<T>(req: IncomingMessage, max = 1 << 20): Promise<T | undefined> {
  const len = Number(req.headers['content-length'] ?? 0);
  if (!len) return undefined;
  if (!Number.isInteger(len) || len < 0 || len > max) throw new EngineError('INVALID_ARGUMENT', `request body over ${max} bytes`);
  const socket = req.socket;
  const chunks: Buffer[] = [];
  let got = 0;
  await new Promise<void>((resolve, reject) => {
    const onData = (b: Buffer) => {
      const need = len - got;
      if (b.length > need) {
        socket.pause();
        socket.unshift(b.subarray(need));
        b = b.subarray(0, need);
      }
      chunks.push(b);
      got += b.length;
      if (got >= len) done();
    };
    const onEnd = () => {
      cleanup();
      reject(new EngineError('INVALID_ARGUMENT', 'connection closed before the request body arrived'));
    };
    const done = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
    };
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.resume();
  });
  socket.pause();
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as T;
  } catch (e) {
    throw new EngineError('INVALID_ARGUMENT', `invalid JSON body: ${(e as Error).message}`);
  }
}

/** Takes the connection over and answers 101 (or 200); `tty` decides raw or multiplexed output. */
export function hijack(req: IncomingMessage, res: ServerResponse, tty: boolean): Hijacked {
  const multiplex = !tty;
  let closedFlag = false;
  if (isUpgrade(req)) {
    const socket = req.socket as Socket;
    const headers = res.getHeaders();
    res.detachSocket(socket);
    let head = 'HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n';
    for (const [k, v] of Object.entries(headers))
      if (v !== undefined) head += `${k.replace(/(^|-)([a-z])/g, (_m, a: string, b: string) => a + b.toUpperCase())}: ${String(v)}\r\n`;
    socket.write(head + '\r\n');
    socket.setNoDelay(true);
    const closed = new Promise<void>((resolve) => {
      socket.once('close', () => {
        closedFlag = true;
        resolve();
      });
    });
    socket.on('error', () => {});
    // Let the peer half-close (stdin EOF) while we keep writing output.
    (socket as Socket & { allowHalfOpen: boolean }).allowHalfOpen = true;
    // Stays paused until the caller listens: stdin sent before the container starts must not be lost.
    socket.pause();
    return {
      input: socket,
      write: (stream, data) => (!closedFlag && socket.writable ? socket.write(multiplex ? frame(stream, data) : data) : true),
      drained: () => drainOf(socket),
      end: () => {
        if (socket.writable) socket.end();
        // A client that never closes its side would keep the socket forever.
        setTimeout(() => socket.destroy(), 2000).unref();
      },
      closed,
      get isClosed() {
        return closedFlag;
      },
    };
  }
  res.writeHead(200, { 'Content-Type': 'application/vnd.docker.raw-stream' });
  res.flushHeaders();
  const closed = new Promise<void>((resolve) => {
    res.once('close', () => {
      closedFlag = true;
      resolve();
    });
  });
  return {
    input: req,
    write: (stream, data) => (!closedFlag && !res.writableEnded ? res.write(multiplex ? frame(stream, data) : data) : true),
    drained: () => drainOf(res),
    end: () => res.end(),
    closed,
    get isClosed() {
      return closedFlag;
    },
  };
}
