import type { IncomingMessage, ServerResponse } from 'node:http';
import { EngineError, ERROR_CODE_HEADER } from '../common/errors.ts';
import type { Engine } from '../engine/engine.ts';

export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  engine: Engine;
  params: string[];
  query: URLSearchParams;
  /** API version the client asked for (e.g. 1.41). */
  version: number;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
}

export type Handler = (ctx: Ctx) => Promise<void> | void;

interface Route {
  method: string;
  re: RegExp;
  handler: Handler;
}

/**
 * Routes by method and path. Patterns are regexes over the path without the
 * `/v1.NN` prefix; `{name}` captures may contain slashes (image names do),
 * so specific routes are registered before catch-alls.
 */
export class Router {
  private readonly routes: Route[] = [];

  add(method: string, pattern: string, handler: Handler): void {
    const re = new RegExp('^' + pattern.replace(/\{name\}/g, '(.+)').replace(/\{id\}/g, '([^/]+)') + '$');
    this.routes.push({ method, re, handler });
  }

  match(method: string, path: string): { handler: Handler; params: string[] } | undefined {
    let pathMatched = false;
    for (const r of this.routes) {
      const m = r.re.exec(path);
      if (!m) continue;
      pathMatched = true;
      if (r.method === method || (method === 'HEAD' && r.method === 'GET')) {
        return { handler: r.handler, params: m.slice(1).map(decodeParam) };
      }
    }
    if (pathMatched)
      return {
        handler: () => {
          throw new EngineError('INVALID_ARGUMENT', `method ${method} not allowed on ${path}`);
        },
        params: [],
      };
    return undefined;
  }
}

/** A path segment as the client meant it; a malformed %-escape is the client's error (400), not ours. */
function decodeParam(p: string): string {
  try {
    return decodeURIComponent(p);
  } catch {
    throw new EngineError('INVALID_ARGUMENT', `invalid escape in the URL path: ${JSON.stringify(p)}`);
  }
}

// ---- response helpers -------------------------------------------------------

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body) + '\n';
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) });
  res.end(data);
}

export function sendNoContent(res: ServerResponse, status = 204): void {
  res.writeHead(status);
  res.end();
}

export function statusOf(e: unknown): number {
  if (!(e instanceof EngineError)) return 500;
  switch (e.code) {
    case 'NOT_FOUND':
      return 404;
    case 'CONFLICT':
      return 409;
    case 'INVALID_ARGUMENT':
    case 'CANNOT_EXECUTE':
    case 'COMMAND_NOT_FOUND':
      return 400;
    case 'NOT_MODIFIED':
      return 304;
    case 'UNAUTHORIZED':
      return 401;
    case 'FORBIDDEN':
      return 403;
    case 'UNAVAILABLE':
      return 503;
    // A deadline inside the daemon (a registry, runc, conmon that did not answer in time).
    case 'TIMEOUT':
      return 504;
    // Abandoned: the client went away (it never sees this) or the daemon is shutting down.
    case 'CANCELLED':
      return 503;
    default:
      return 500;
  }
}

export function sendError(res: ServerResponse, e: unknown): void {
  const status = statusOf(e);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (status === 304) return sendNoContent(res, 304);
  // keel's own code, for keel's CLI (docker clients ignore it): e.g. run's exit status 127 vs 126.
  if (e instanceof EngineError) res.setHeader(ERROR_CODE_HEADER, e.code);
  sendJson(res, status, { message: e instanceof Error ? e.message : String(e) });
}

/**
 * A JSON-lines progress stream (pull, push, load, build): headers go out at
 * once; each message is a line ending in \r\n. An error after the headers
 * becomes an `errorDetail` message, as docker does.
 */
export class JsonStream {
  private readonly res: ServerResponse;

  constructor(res: ServerResponse) {
    this.res = res;
  }

  start(): void {
    if (!this.res.headersSent) this.res.writeHead(200, { 'Content-Type': 'application/json' });
  }

  write(msg: object): void {
    // Progress keeps coming after the client hung up (or after an until-timer ended the body).
    if (this.res.writableEnded || this.res.destroyed) return;
    this.start();
    this.res.write(JSON.stringify(msg) + '\r\n');
  }

  fail(e: unknown): void {
    const message = e instanceof Error ? e.message : String(e);
    this.write({ errorDetail: { message }, error: message });
  }

  end(): void {
    if (this.res.writableEnded || this.res.destroyed) return;
    this.start();
    this.res.end();
  }
}

// ---- request helpers --------------------------------------------------------

export function qBool(q: URLSearchParams, key: string, dflt = false): boolean {
  const v = q.get(key);
  if (v === null || v === '') return dflt;
  return !['0', 'false', 'False', 'FALSE'].includes(v);
}

export function qInt(q: URLSearchParams, key: string): number | undefined {
  const v = q.get(key);
  if (v === null || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new EngineError('INVALID_ARGUMENT', `invalid value for ${key}: ${v}`);
  return n;
}

/** Reads a JSON request body, bounded in size. */
export async function readJsonBody<T>(req: IncomingMessage, max = 4 << 20): Promise<T | undefined> {
  const chunks: Buffer[] = [];
  let len = 0;
  for await (const c of req) {
    len += (c as Buffer).length;
    if (len > max) throw new EngineError('INVALID_ARGUMENT', `request body over ${max} bytes`);
    chunks.push(c as Buffer);
  }
  if (!len) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as T;
  } catch (e) {
    throw new EngineError('INVALID_ARGUMENT', `invalid JSON body: ${(e as Error).message}`);
  }
}
