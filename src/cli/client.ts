import fs from 'node:fs';
import type httpTypes from 'node:http';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { EngineError, ERROR_CODE_HEADER, ERROR_CODES, type ErrorCode } from '../common/errors.ts';

/**
 * node:http through getBuiltinModule: its ESM facade evaluates every lazy
 * export, undici included, which costs ~25 ms of each CLI start run from
 * src/ (the bundle loads Node's modules lazily anyway: cli/bundle.ts).
 */
export const http = process.getBuiltinModule('node:http');
const net = process.getBuiltinModule('node:net');

export interface RequestOptions {
  query?: Record<string, string | number | boolean | string[] | undefined>;
  body?: unknown;
  /** A raw request body (tar archives). */
  stream?: Readable;
  headers?: Record<string, string>;
}

/**
 * The CLI's only way to the engine: the Docker API over the daemon's unix
 * socket. Errors come back as EngineErrors with the daemon's message.
 */
export class ApiClient {
  readonly socketPath: string;

  constructor(socketPath: string) {
    this.socketPath = socketPath;
  }

  /**
   * Request options that connect to the daemon's socket. The connection is
   * made here rather than by http's global agent: the agent works out a TLS
   * server name for every request with net.isIP, whose IPv6 regex costs a
   * CLI process ~7 ms to compile.
   */
  connection(): Pick<httpTypes.RequestOptions, 'createConnection'> {
    return { createConnection: () => net.createConnection(this.socketPath) };
  }

  /** Sends a request and returns the response (status checked). */
  async request(method: string, urlPath: string, opts: RequestOptions = {}): Promise<httpTypes.IncomingMessage> {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query ?? {})) {
      if (v === undefined) continue;
      if (Array.isArray(v)) v.forEach((x) => qs.append(k, x));
      else qs.set(k, String(v));
    }
    const q = qs.toString();
    const headers: Record<string, string> = { ...opts.headers };
    let payload: Buffer | undefined;
    if (opts.body !== undefined) {
      payload = Buffer.from(JSON.stringify(opts.body));
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = String(payload.length);
    } else if (opts.stream) headers['Content-Type'] ??= 'application/x-tar';
    const res = await new Promise<httpTypes.IncomingMessage>((resolve, reject) => {
      const req = http.request({ ...this.connection(), method, path: `/v1.41${urlPath}${q ? `?${q}` : ''}`, headers }, resolve);
      req.on('error', (e) => reject(connectError(e, this.socketPath)));
      if (opts.stream) opts.stream.pipe(req);
      else req.end(payload);
    });
    if (res.statusCode! >= 400) {
      const text = await readAll(res);
      let message = text.trim();
      try {
        message = JSON.parse(text).message ?? message;
      } catch {
        // plain-text error
      }
      throw new DaemonError(errorCodeOf(res), message || `daemon answered ${res.statusCode}`);
    }
    return res;
  }

  async json<T>(method: string, urlPath: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.request(method, urlPath, opts);
    const text = await readAll(res);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** Reads a JSON-lines stream (progress, events), yielding each message. */
  async *jsonLines(res: httpTypes.IncomingMessage): AsyncGenerator<Record<string, unknown>> {
    let buf = '';
    for await (const chunk of res) {
      buf += chunk.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        if (line) yield JSON.parse(line);
      }
    }
    if (buf.trim()) yield JSON.parse(buf);
  }

  async ping(): Promise<boolean> {
    try {
      const res = await this.request('GET', '/_ping');
      res.resume();
      return true;
    } catch {
      return false;
    }
  }
}

export async function readAll(res: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** An error the daemon answered (as opposed to one of the CLI's own, or not reaching the daemon). */
export class DaemonError extends EngineError {}

/** Codes the HTTP status cannot tell apart, taken from keel's error header (another daemon has none). */
const REFINED: readonly ErrorCode[] = ['COMMAND_NOT_FOUND', 'CANNOT_EXECUTE', 'TIMEOUT', 'CANCELLED'];

/** The status says what it can; keel's daemon refines it in a header (run's 127 vs 126, timeouts). */
function errorCodeOf(res: httpTypes.IncomingMessage): ErrorCode {
  const h = res.headers[ERROR_CODE_HEADER.toLowerCase()];
  if (typeof h === 'string' && (ERROR_CODES as string[]).includes(h) && REFINED.includes(h as ErrorCode)) return h as ErrorCode;
  switch (res.statusCode) {
    case 404:
      return 'NOT_FOUND';
    case 409:
      return 'CONFLICT';
    case 400:
      return 'INVALID_ARGUMENT';
    case 504:
      return 'TIMEOUT';
    default:
      return 'INTERNAL';
  }
}

function connectError(e: Error, socketPath: string): EngineError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ECONNREFUSED') {
    return new EngineError(
      'UNAVAILABLE',
      `Cannot connect to the keel daemon at unix://${socketPath}. Is the keel daemon running? (start it with: keel daemon)`,
    );
  }
  if (code === 'EACCES') return new EngineError('FORBIDDEN', `permission denied on unix://${socketPath}: run keel as root`);
  return new EngineError('UNAVAILABLE', `cannot reach the keel daemon at ${socketPath}: ${e.message}`);
}

/**
 * Starts a daemon in the background when nothing answers on the default
 * socket, logging to <data-root>/daemon.log, and waits until it answers.
 */
export async function ensureDaemon(client: ApiClient): Promise<void> {
  if (await client.ping()) return;
  if (process.getuid?.() !== 0) return;
  const keelBin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/keel');
  fs.mkdirSync('/var/lib/keel', { recursive: true, mode: 0o700 });
  const logFd = fs.openSync('/var/lib/keel/daemon.log', 'a', 0o600);
  // node:child_process only here, when no daemon answers: loading it costs every command ~5 ms
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [keelBin, 'daemon'], { detached: true, stdio: ['ignore', logFd, logFd] });
  child.unref();
  fs.closeSync(logFd);
  for (let i = 0; i < 200; i++) {
    if (await client.ping()) return;
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new EngineError('UNAVAILABLE', 'started a keel daemon but it did not answer; see /var/lib/keel/daemon.log');
}
