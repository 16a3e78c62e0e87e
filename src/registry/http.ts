import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { EngineError, errnoCode } from '../common/errors.ts';

/**
 * One HTTP exchange with a registry, on node:http rather than the built-in
 * fetch: fetch cannot set a connect timeout without the undici package, its
 * body is a web stream (one more copy per chunk into node streams), and we
 * need exact control of redirects (Authorization must never follow a blob
 * redirect to another host). Timeouts:
 *  - connect: from the request until its socket is connected (TLS included);
 *  - idle: no byte in either direction for this long, while waiting for the
 *    headers or while the body streams. A registry that stalls mid-blob fails
 *    with a TIMEOUT error naming the host instead of hanging the pull.
 */
export interface HttpOptions {
  method?: string;
  headers?: OutgoingHttpHeaders;
  body?: Buffer | Readable;
  signal?: AbortSignal;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  agents: { http: http.Agent; https: https.Agent };
}

export function makeAgents(): { http: http.Agent; https: https.Agent } {
  return {
    http: new http.Agent({ keepAlive: true, maxSockets: 16 }),
    https: new https.Agent({ keepAlive: true, maxSockets: 16 }),
  };
}

/** Network errors worth retrying (the registry or the path to it hiccuped). */
export function isTransientNetworkError(e: unknown): boolean {
  if (e instanceof EngineError) return e.code === 'UNAVAILABLE' && (e.cause as { transient?: boolean } | undefined)?.transient === true;
  const c = errnoCode(e);
  return c === 'ECONNRESET' || c === 'EPIPE' || c === 'ECONNABORTED' || c === 'ETIMEDOUT' || c === 'EAI_AGAIN' || c === 'UND_ERR_SOCKET';
}

export function httpRequest(url: URL, opts: HttpOptions): Promise<IncomingMessage> {
  const mod = url.protocol === 'https:' ? https : http;
  const agent = url.protocol === 'https:' ? opts.agents.https : opts.agents.http;
  return new Promise((resolve, reject) => {
    let settled = false;
    let res: IncomingMessage | undefined;
    let connectTimer: NodeJS.Timeout | undefined;
    const fail = (err: Error) => {
      clearTimeout(connectTimer);
      if (res) res.destroy(err);
      else req.destroy(err);
      if (!settled) {
        settled = true;
        reject(err);
      }
    };
    const req = mod.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent, signal: opts.signal });
    req.on('socket', (sock) => {
      if ((sock as { connecting?: boolean }).connecting) {
        connectTimer = setTimeout(
          () => fail(new EngineError('TIMEOUT', `timed out connecting to ${url.host} after ${opts.connectTimeoutMs} ms`)),
          opts.connectTimeoutMs,
        );
        sock.once(url.protocol === 'https:' ? 'secureConnect' : 'connect', () => clearTimeout(connectTimer));
      }
    });
    req.setTimeout(opts.idleTimeoutMs, () => {
      fail(
        new EngineError(
          'TIMEOUT',
          `${url.host} sent nothing for ${opts.idleTimeoutMs} ms (${opts.method ?? 'GET'} ${url.pathname}); the registry is too slow or unreachable`,
        ),
      );
    });
    req.on('error', (e) => {
      clearTimeout(connectTimer);
      if (settled) return;
      settled = true;
      reject(mapNetworkError(e, url, opts.signal));
    });
    req.on('response', (r) => {
      clearTimeout(connectTimer);
      res = r;
      settled = true;
      // A socket error after the headers surfaces on the body stream.
      r.on('aborted', () => r.destroy(Object.assign(new Error(`connection to ${url.host} closed mid-response`), { code: 'ECONNRESET' })));
      resolve(r);
    });
    const body = opts.body;
    if (body === undefined) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else {
      body.on('error', (e) => fail(e));
      body.pipe(req);
    }
  });
}

function mapNetworkError(e: Error, url: URL, signal?: AbortSignal): Error {
  if (e instanceof EngineError) return e;
  if (signal?.aborted || e.name === 'AbortError') return new EngineError('CANCELLED', `request to ${url.host} was cancelled`, { cause: e });
  const c = errnoCode(e);
  if (c === 'ECONNREFUSED') return new EngineError('UNAVAILABLE', `cannot connect to registry ${url.host}: connection refused`, { cause: e });
  if (c === 'ENOTFOUND' || c === 'EAI_AGAIN') return new EngineError('UNAVAILABLE', `cannot resolve registry host ${url.hostname}`, { cause: e });
  if (c && /^ERR_TLS|CERT|SSL/.test(c)) {
    return new EngineError('UNAVAILABLE', `TLS error talking to ${url.host}: ${e.message} (add it to the insecure registries to use plain HTTP)`, { cause: e });
  }
  return e;
}

/** Reads a whole response body, refusing more than `max` bytes. */
export async function readBody(res: IncomingMessage, max: number, what: string): Promise<Buffer> {
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) {
    res.destroy();
    throw new EngineError('INVALID_ARGUMENT', `${what} is ${declared} bytes, over the ${max}-byte limit`);
  }
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res) {
    n += (c as Buffer).length;
    if (n > max) {
      res.destroy();
      throw new EngineError('INVALID_ARGUMENT', `${what} is over the ${max}-byte limit`);
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Discards a body so the keep-alive socket can be reused. */
export async function drain(res: IncomingMessage): Promise<void> {
  try {
    let n = 0;
    for await (const c of res) {
      n += (c as Buffer).length;
      if (n > 1 << 20) {
        res.destroy();
        return;
      }
    }
  } catch {
    /* the body is not needed */
  }
}

/** Whether a host is a loopback address (registries there default to plain HTTP, as in docker). */
export function isLoopbackHost(hostPort: string): boolean {
  let host = hostPort;
  if (host.startsWith('[')) host = host.slice(1, host.indexOf(']'));
  else if (host.includes(':')) host = host.slice(0, host.lastIndexOf(':'));
  host = host.toLowerCase();
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
