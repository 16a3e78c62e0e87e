/**
 * The upgraded ("hijacked") stream of attach and exec start, and the relay
 * between it and the local terminal, as the docker CLI does it
 * (cli/command/container/hijack.go):
 *  - the request carries `Connection: Upgrade`, `Upgrade: tcp`; the daemon
 *    answers `101 UPGRADED` and the socket becomes the container's stdio;
 *  - without a TTY the daemon frames output: an 8-byte header
 *    [stream, 0, 0, 0, uint32 BE size] then the payload; 1 stdout, 2 stderr;
 *  - with a TTY the bytes are raw; the local terminal goes to raw mode and
 *    the detach keys (ctrl-p,ctrl-q) end the session without stopping the
 *    container; the terminal is restored on every path;
 *  - at stdin EOF the write side is half-closed so the container sees EOF.
 */
import { http } from './client.ts';
import type net from 'node:net';
import { EngineError } from '../common/errors.ts';
import type { ApiClient } from './client.ts';

/** Opens an upgraded stream; error statuses become EngineErrors like ApiClient.request. */
export async function hijack(
  client: ApiClient,
  urlPath: string,
  opts: { query?: Record<string, string | number | undefined>; body?: unknown } = {},
): Promise<net.Socket> {
  await client.answering();
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) qs.set(k, String(v));
  const payload = opts.body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(opts.body));
  const headers: Record<string, string> = {
    Connection: 'Upgrade',
    Upgrade: 'tcp',
    'Content-Length': String(payload.length),
    'Content-Type': opts.body === undefined ? 'text/plain' : 'application/json',
  };
  const q = qs.toString();
  return new Promise((resolve, reject) => {
    const req = http().request({ ...client.connection(), method: 'POST', path: `/v1.41${urlPath}${q ? `?${q}` : ''}`, headers });
    req.on('upgrade', (_res, socket, head) => {
      if (head.length) socket.unshift(head);
      resolve(socket);
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let message = text.trim();
        try {
          message = JSON.parse(text).message ?? message;
        } catch {
          // plain text
        }
        const s = res.statusCode ?? 500;
        const code = s === 404 ? 'NOT_FOUND' : s === 409 ? 'CONFLICT' : s === 400 ? 'INVALID_ARGUMENT' : 'INTERNAL';
        reject(new EngineError(code, s < 400 ? `the daemon did not upgrade the connection (status ${s})` : message || `daemon answered ${s}`));
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** Splits the framed (non-TTY) stream into stdout and stderr writes. */
export class Demuxer {
  private buf: Buffer = Buffer.alloc(0);
  private readonly out: (stream: number, data: Buffer) => void;

  constructor(out: (stream: number, data: Buffer) => void) {
    this.out = out;
  }

  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    while (this.buf.length >= 8) {
      const size = this.buf.readUInt32BE(4);
      if (this.buf.length < 8 + size) break;
      this.out(this.buf[0]!, this.buf.subarray(8, 8 + size));
      this.buf = this.buf.subarray(8 + size);
    }
  }
}

/**
 * docker's term.EscapeProxy: holds back input that could be the start of
 * the detach sequence; returns what to forward and whether it completed.
 */
export class EscapeDetector {
  private readonly keys: Buffer;
  private held = 0;

  constructor(keys: Buffer) {
    this.keys = keys;
  }

  feed(chunk: Buffer): { forward: Buffer; detach: boolean } {
    if (!this.keys.length) return { forward: chunk, detach: false };
    const out: number[] = [];
    for (const b of chunk) {
      if (b === this.keys[this.held]) {
        this.held++;
        if (this.held === this.keys.length) return { forward: Buffer.from(out), detach: true };
        continue;
      }
      out.push(...this.keys.subarray(0, this.held));
      this.held = 0;
      if (b === this.keys[0]) this.held = 1;
      else out.push(b);
    }
    return { forward: Buffer.from(out), detach: false };
  }
}

export interface RelayOptions {
  tty: boolean;
  /** Forward our stdin to the stream. */
  stdin: boolean;
  detachKeys: Buffer;
  /** Called once the relay runs (the terminal is raw): send the first resize and watch SIGWINCH. */
  onResize?: (h: number, w: number) => void;
}

/**
 * Relays stdio until the daemon closes the stream (the process ended) or
 * the user types the detach keys. Resolves with how it ended.
 */
export function relay(socket: net.Socket, o: RelayOptions): { done: Promise<{ detached: boolean }>; stop: () => void } {
  const stdin = process.stdin;
  const raw = o.tty && o.stdin && stdin.isTTY === true;
  let finished = false;
  let resolveDone!: (v: { detached: boolean }) => void;
  const done = new Promise<{ detached: boolean }>((r) => (resolveDone = r));
  const demux = new Demuxer((s, data) => (s === 2 ? process.stderr : process.stdout).write(data));
  const escape = new EscapeDetector(o.tty ? o.detachKeys : Buffer.alloc(0));

  const onData = (c: Buffer) => (o.tty ? process.stdout.write(c) : demux.push(c));
  const onInput = (c: Buffer) => {
    const r = escape.feed(c);
    if (r.forward.length) socket.write(r.forward);
    if (r.detach) finish(true);
  };
  const onInputEnd = () => {
    if (!finished) socket.end();
  };
  const onWinch = () => {
    if (process.stdout.rows && process.stdout.columns) o.onResize?.(process.stdout.rows, process.stdout.columns);
  };
  const finish = (detached: boolean) => {
    if (finished) return;
    finished = true;
    socket.off('data', onData);
    if (o.stdin) {
      stdin.off('data', onInput);
      stdin.off('end', onInputEnd);
      if (raw) stdin.setRawMode(false);
      stdin.pause();
      // a paused stdin still holds the event loop on a pipe or terminal
      (stdin as unknown as { unref?: () => void }).unref?.();
    }
    process.stdout.off('resize', onWinch);
    socket.destroy();
    resolveDone({ detached });
  };

  socket.on('data', onData);
  socket.on('end', () => finish(false));
  socket.on('close', () => finish(false));
  socket.on('error', () => finish(false));
  if (o.stdin) {
    if (raw) {
      stdin.setRawMode(true);
      // libuv's raw mode keeps OPOST (\n → \r\n) on; docker's term.MakeRaw clears it, or every
      // line the container's terminal already ended with \r\n would arrive as \r\r\n.
      // setRawMode(false) restores the saved termios, OPOST included.
      // node:child_process only here: an import would cost every attached session its ESM facade
      process.getBuiltinModule('node:child_process').spawnSync('stty', ['-opost'], { stdio: ['inherit', 'ignore', 'ignore'] });
    }
    stdin.on('data', onInput);
    stdin.on('end', onInputEnd);
    stdin.resume();
  }
  if (o.tty) {
    process.stdout.on('resize', onWinch);
  }
  return { done, stop: () => finish(false) };
}

/** Sends the terminal size now (when stdout is a terminal). */
export function currentSize(): [number, number] | undefined {
  return process.stdout.isTTY && process.stdout.rows ? [process.stdout.rows, process.stdout.columns] : undefined;
}
