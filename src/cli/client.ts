import fs from 'node:fs';
import type httpTypes from 'node:http';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { EngineError, ERROR_CODE_HEADER, ERROR_CODES, type ErrorCode } from '../common/errors.ts';
import { exchange, MalformedResponse } from './wire.ts';

/**
 * node:http, loaded by the first request that streams (most commands make
 * none: json() speaks HTTP itself, wire.ts), through getBuiltinModule: its
 * ESM facade evaluates every lazy export, undici included, which costs
 * ~25 ms of each CLI start run from src/.
 */
export const http = (): typeof httpTypes => (httpModule ??= process.getBuiltinModule('node:http'));
let httpModule: typeof httpTypes | undefined;
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
  /** Whether a daemon is started when none answers (the default socket: ensureDaemon). */
  private readonly autoStart: boolean;
  /** Set once a daemon answered, or was started: later requests go straight to it. */
  private ready?: Promise<void>;

  constructor(socketPath: string, o: { autoStart?: boolean } = {}) {
    this.socketPath = socketPath;
    this.autoStart = o.autoStart ?? false;
  }

  /**
   * Makes sure a daemon answers before a request that cannot be sent twice
   * (a streamed body, an upgrade): pings it, and starts one if none answers
   * and this client may. Other requests start a daemon only when their
   * connection is refused (request()), which saves every command a round trip.
   */
  async answering(): Promise<void> {
    if (this.autoStart) await (this.ready ??= ensureDaemon(this));
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

  /** Sends a request and returns the response (status checked), its body still to be read. */
  async request(method: string, urlPath: string, opts: RequestOptions = {}): Promise<httpTypes.IncomingMessage> {
    if (opts.stream) await this.answering();
    const res = await this.connected(() => this.httpExchange(method, urlPath, opts));
    if (res.statusCode! >= 400) throw daemonError(res.statusCode!, res.headers, await readAll(res));
    return res;
  }

  /** Sends a request and returns its JSON answer (status checked). */
  async json<T>(method: string, urlPath: string, opts: RequestOptions = {}): Promise<T> {
    let text: string;
    if (opts.stream) text = await readAll(await this.request(method, urlPath, opts));
    else {
      const { payload, headers } = bodyOf(opts);
      const r = await this.connected(() => exchange(this.socketPath, method, pathOf(urlPath, opts), headers, payload));
      text = r.body.toString('utf8');
      if (r.status >= 400) throw daemonError(r.status, r.headers, text);
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /**
   * Makes a connection's request: a client that may start a daemon does so
   * when the connection is refused, and sends the request again (nothing
   * was sent the first time).
   */
  private async connected<R>(send: () => Promise<R>): Promise<R> {
    let r: R;
    try {
      r = await send();
    } catch (e) {
      if (!this.autoStart || !refused(e)) throw connectError(e as Error, this.socketPath);
      await (this.ready ??= ensureDaemon(this));
      r = await send().catch((e2: Error) => Promise.reject(connectError(e2, this.socketPath)));
    }
    this.ready ??= Promise.resolve();
    return r;
  }

  /** One request through node:http on a new connection to the socket; its errors are the connection's. */
  private httpExchange(method: string, urlPath: string, opts: RequestOptions): Promise<httpTypes.IncomingMessage> {
    const { payload, headers } = bodyOf(opts);
    if (payload) headers['Content-Length'] = String(payload.length);
    return new Promise((resolve, reject) => {
      const req = http().request({ ...this.connection(), method, path: pathOf(urlPath, opts), headers }, resolve);
      req.on('error', reject);
      if (opts.stream) opts.stream.pipe(req);
      else req.end(payload);
    });
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

  /** Whether a daemon answers (never starts one). */
  async ping(): Promise<boolean> {
    try {
      return (await exchange(this.socketPath, 'GET', pathOf('/_ping', {}))).status < 400;
    } catch {
      return false;
    }
  }
}

/** The request's path: the API version, then the query. */
function pathOf(urlPath: string, opts: RequestOptions): string {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(opts.query ?? {})) {
    if (v === undefined) continue;
    if (Array.isArray(v)) v.forEach((x) => qs.append(k, x));
    else qs.set(k, String(v));
  }
  const q = qs.toString();
  return `/v1.41${urlPath}${q ? `?${q}` : ''}`;
}

/** The request's body (JSON) and headers. */
function bodyOf(opts: RequestOptions): { payload?: Buffer; headers: Record<string, string> } {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    return { payload: Buffer.from(JSON.stringify(opts.body)), headers };
  }
  if (opts.stream) headers['Content-Type'] ??= 'application/x-tar';
  return { headers };
}

/** The daemon's error answer as an error: its message, and the code its status (or keel's header) says. */
function daemonError(status: number, headers: Record<string, string | string[] | undefined>, text: string): DaemonError {
  let message = text.trim();
  try {
    message = JSON.parse(text).message ?? message;
  } catch {
    // plain-text error
  }
  return new DaemonError(errorCodeOf(status, headers), message || `daemon answered ${status}`);
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
function errorCodeOf(status: number, headers: Record<string, string | string[] | undefined>): ErrorCode {
  const h = headers[ERROR_CODE_HEADER.toLowerCase()];
  if (typeof h === 'string' && (ERROR_CODES as string[]).includes(h) && REFINED.includes(h as ErrorCode)) return h as ErrorCode;
  switch (status) {
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

/** A connection nothing listened on (no socket file, or no daemon behind it). */
function refused(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ECONNREFUSED';
}

function connectError(e: Error, socketPath: string): EngineError {
  if (e instanceof EngineError) return e;
  if (e instanceof MalformedResponse) return new EngineError('UNAVAILABLE', `the keel daemon at ${socketPath} answered wrongly: ${e.message}`);
  if (refused(e)) {
    return new EngineError(
      'UNAVAILABLE',
      `Cannot connect to the keel daemon at unix://${socketPath}. Is the keel daemon running? (start it with: keel daemon)`,
    );
  }
  if ((e as NodeJS.ErrnoException).code === 'EACCES') return new EngineError('FORBIDDEN', `permission denied on unix://${socketPath}: run keel as root`);
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
