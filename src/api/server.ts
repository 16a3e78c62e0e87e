import fs from 'node:fs';
import http from 'node:http';
import type { Socket } from 'node:net';
import { EngineError } from '../common/errors.ts';
import { log } from '../common/log.ts';
import { type Engine, VERSION } from '../engine/engine.ts';
import { buildRoutes } from './build.ts';
import { compatRoutes } from './compat.ts';
import { containerRoutes } from './containers.ts';
import { imageRoutes } from './images.ts';
import { keelRoutes } from './keel.ts';
import { networkRoutes } from './networks.ts';
import { Router, sendError } from './router.ts';
import { systemRoutes } from './system.ts';
import { volumeRoutes } from './volumes.ts';

export const API_VERSION = '1.41';
export const MIN_API_VERSION = '1.24';

/** Every route module adds its routes here; order matters for catch-alls. */
export type RouteModule = (r: Router) => void;

export function buildRouter(modules: RouteModule[] = []): Router {
  const r = new Router();
  systemRoutes(r);
  compatRoutes(r);
  for (const m of modules) m(r);
  keelRoutes(r);
  containerRoutes(r);
  networkRoutes(r);
  volumeRoutes(r);
  buildRoutes(r);
  imageRoutes(r);
  return r;
}

/**
 * Serves the Docker Engine API on a unix socket. Requests may carry a
 * `/v1.NN` prefix (up to 1.41) or none; every answer carries the headers
 * the docker CLI negotiates with.
 */
export function createApiServer(engine: Engine, router: Router): http.Server {
  const server = http.createServer({ keepAliveTimeout: 5000, requestTimeout: 0 }, (req, res) => {
    void handle(engine, router, req, res);
  });
  // attach and exec start hijack the connection (101 UPGRADED): route them like any request,
  // with a response bound to the raw socket for errors sent before the upgrade.
  server.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', (e) => log.debug('upgraded socket error', { path: req.url, error: e.message }));
    if (head.length) socket.unshift(head);
    const res = new http.ServerResponse(req);
    res.assignSocket(socket);
    res.shouldKeepAlive = false;
    res.on('finish', () => socket.end());
    void handle(engine, router, req, res);
  });
  server.on('clientError', (_e, socket: Socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
  });
  return server;
}

async function handle(engine: Engine, router: Router, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  // No stream may be left without an 'error' listener: one unheard error would end the daemon.
  // What a client's hang-up causes is the request's own business (its signal aborts below).
  req.on('error', (e) => log.debug('request stream error', { path: req.url, error: e.message }));
  res.on('error', (e) => log.debug('response stream error', { path: req.url, error: e.message }));
  const ac = new AbortController();
  res.on('close', () => ac.abort());
  const t0 = performance.now();
  let pathname = req.url ?? '/';
  try {
    res.setHeader('Api-Version', API_VERSION);
    res.setHeader('Docker-Experimental', 'false');
    res.setHeader('Ostype', 'linux');
    res.setHeader('Server', `Keel/${VERSION} (linux)`);
    // Go's url parsing refuses a malformed %-escape anywhere in the path or query: so do we, with a 400.
    if (/%(?![0-9a-fA-F]{2})/.test(req.url ?? '')) throw new EngineError('INVALID_ARGUMENT', `invalid URL escape in ${JSON.stringify(req.url)}`);
    const url = new URL(req.url ?? '/', 'http://keel');
    pathname = url.pathname;
    let version = Number(API_VERSION);
    const m = /^\/v(\d+\.\d+)(\/.*)$/.exec(pathname);
    if (m) {
      version = Number(m[1]);
      pathname = m[2]!;
      if (version > Number(API_VERSION)) {
        throw new EngineError('INVALID_ARGUMENT', `client version ${m[1]} is too new. Maximum supported API version is ${API_VERSION}`);
      }
      if (version < Number(MIN_API_VERSION)) {
        throw new EngineError(
          'INVALID_ARGUMENT',
          `client version ${m[1]} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`,
        );
      }
    }
    const route = router.match(req.method ?? 'GET', pathname);
    if (!route) throw new EngineError('NOT_FOUND', `page not found`);
    await route.handler({ req, res, engine, params: route.params, query: url.searchParams, version, signal: ac.signal });
  } catch (e) {
    // One request's failure is that request's 500 (logged here, once); the daemon goes on.
    if (!(e instanceof EngineError)) log.error('request failed', { method: req.method, path: pathname, error: (e as Error)?.stack ?? String(e) });
    try {
      sendError(res, e);
    } catch {
      res.destroy();
    }
  } finally {
    log.debug('request', { method: req.method, path: req.url, status: res.statusCode, ms: Math.round(performance.now() - t0) });
  }
}

/** Listens on a unix socket path, replacing a stale socket file; mode 0660. */
export async function listenUnix(server: http.Server, socketPath: string): Promise<void> {
  try {
    fs.unlinkSync(socketPath);
  } catch {
    // no stale socket
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  fs.chmodSync(socketPath, 0o660);
}
