/**
 * A small registry written for fault tests: it serves one repository
 * (`bad/img`) from in-memory manifests and blobs, and lets each test replace
 * the answer to any request to misbehave (wrong bytes, resets, stalls,
 * redirects, throttling).
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import { sha256 } from '../../src/oci/digest.ts';
import { MediaType } from '../../src/oci/mediatypes.ts';

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, hits: number) => boolean | void;

export interface HostileRegistry {
  host: string;
  blobs: Map<string, Buffer>;
  /** name (tag or digest) → [bytes, content type] */
  manifests: Map<string, [Buffer, string]>;
  /** `GET /v2/bad/img/blobs/sha256:…` → handler; returning false falls through to the default answer. */
  routes: Map<string, Handler>;
  log: { method: string; path: string; headers: http.IncomingHttpHeaders }[];
  /** Require Basic user:pass (challenge on /v2/). */
  basicAuth?: string;
  stop(): Promise<void>;
}

export async function startHostile(): Promise<HostileRegistry> {
  const sockets = new Set<Socket>();
  const hits = new Map<string, number>();
  const reg: HostileRegistry = {
    host: '',
    blobs: new Map(),
    manifests: new Map(),
    routes: new Map(),
    log: [],
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server = http.createServer((req, res) => {
    const path = req.url!.split('?')[0]!;
    const key = `${req.method} ${path}`;
    reg.log.push({ method: req.method!, path: req.url!, headers: req.headers });
    const n = (hits.get(key) ?? 0) + 1;
    hits.set(key, n);
    if (reg.basicAuth && req.headers.authorization !== `Basic ${Buffer.from(reg.basicAuth).toString('base64')}`) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="hostile"', 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return;
    }
    const custom = reg.routes.get(key);
    if (custom && custom(req, res, n) !== false) return;
    if (path === '/v2/') return void res.writeHead(200).end('{}');
    let m = /^\/v2\/bad\/img\/manifests\/(.+)$/.exec(path);
    if (m) {
      const found = reg.manifests.get(decodeURIComponent(m[1]!));
      if (!found)
        return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
      res.writeHead(200, { 'content-type': found[1], 'content-length': found[0].length, 'docker-content-digest': sha256(found[0]) });
      return void res.end(req.method === 'HEAD' ? undefined : found[0]);
    }
    m = /^\/v2\/bad\/img\/blobs\/(.+)$/.exec(path);
    if (m) {
      const blob = reg.blobs.get(decodeURIComponent(m[1]!));
      if (!blob)
        return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}');
      return void serveRange(req, res, blob);
    }
    res.writeHead(404).end();
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  reg.host = `127.0.0.1:${(server.address() as { port: number }).port}`;
  return reg;
}

/** Serves a blob honouring `Range: bytes=N-`. */
export function serveRange(req: http.IncomingMessage, res: http.ServerResponse, blob: Buffer): void {
  const r = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  if (r) {
    const start = Number(r[1]);
    res.writeHead(206, { 'content-length': blob.length - start, 'content-range': `bytes ${start}-${blob.length - 1}/${blob.length}` });
    res.end(req.method === 'HEAD' ? undefined : blob.subarray(start));
    return;
  }
  res.writeHead(200, { 'content-length': blob.length, 'content-type': 'application/octet-stream' });
  res.end(req.method === 'HEAD' ? undefined : blob);
}

/** Puts an image (manifest bytes, config, layer blobs) into the hostile registry under `tag`. */
export function serveImage(
  reg: HostileRegistry,
  tag: string,
  img: { manifest: Buffer; config: Buffer; layers: { blob: Buffer }[] },
  type: string = MediaType.OciManifest,
): void {
  reg.manifests.set(tag, [img.manifest, type]);
  reg.manifests.set(sha256(img.manifest), [img.manifest, type]);
  reg.blobs.set(sha256(img.config), img.config);
  for (const l of img.layers) reg.blobs.set(sha256(l.blob), l.blob);
}
