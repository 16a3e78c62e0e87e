/**
 * POST /build (the legacy builder protocol the docker CLI 28 falls back to
 * without buildx, docker-compose v1, dockerode, docker-py), /build/cancel
 * and /build/prune. The query is decoded as moby's build router does; the
 * answer is dockerd's JSON stream, with Go's escaping of <, > and &.
 * Errors before the first message are plain HTTP errors (dockerd never
 * answers 200 for a build that did not start); later ones are errorDetail
 * messages, with a failing RUN's exit code in `code`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RunFailedError } from '../build/builder.ts';
import type { BuildOutput, BuildRequest } from '../build/types.ts';
import { EngineError, invalid } from '../common/errors.ts';
import type { ResourcesSpec } from '../containers/spec.ts';
import { parseReference } from '../oci/reference.ts';
import type { AuthConfig } from '../registry/index.ts';
import { decodeUlimit } from './decode-container.ts';
import { qBool, qInt, type Router, sendJson } from './router.ts';

/** Go's encoding/json escapes these in strings; clients do not care, byte-for-byte comparisons do. */
export function goJson(v: unknown): string {
  return JSON.stringify(v).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function jsonParam<T>(q: URLSearchParams, key: string): T | undefined {
  const v = q.get(key);
  if (v === null || v === '') return undefined;
  try {
    return JSON.parse(v) as T;
  } catch (e) {
    throw invalid(`invalid ${key} parameter: ${(e as Error).message}`);
  }
}

function decodeRegistryConfig(h: string | string[] | undefined): Record<string, AuthConfig> | undefined {
  const v = Array.isArray(h) ? h[0] : h;
  if (!v) return undefined;
  try {
    const json = Buffer.from(v.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8');
    const o = JSON.parse(json) as unknown;
    return o && typeof o === 'object' && !Array.isArray(o) ? (o as Record<string, AuthConfig>) : undefined;
  } catch {
    return undefined;
  }
}

/** `keel build --secret`: {id: base64 content} in a header, bounded (the daemon never stores it). */
function decodeSecrets(h: string | string[] | undefined): Record<string, Buffer> | undefined {
  const v = Array.isArray(h) ? h[0] : h;
  if (!v) return undefined;
  if (v.length > 1 << 20) throw invalid('build secrets are larger than 1 MiB');
  let o: unknown;
  try {
    o = JSON.parse(Buffer.from(v, 'base64').toString('utf8'));
  } catch {
    throw invalid('invalid X-Keel-Build-Secrets header');
  }
  if (!o || typeof o !== 'object' || Array.isArray(o)) throw invalid('invalid X-Keel-Build-Secrets header');
  return Object.fromEntries(Object.entries(o as Record<string, unknown>).map(([k, x]) => [k, Buffer.from(String(x), 'base64')]));
}

/** Decodes POST /build's query (moby api/server/router/build newImageBuildOptions). */
export function buildRequestFrom(req: IncomingMessage, q: URLSearchParams): Omit<BuildRequest, 'context'> & { buildId?: string } {
  if (q.get('version') === '2') throw invalid('BuildKit (version=2) is not supported by keel: build with DOCKER_BUILDKIT=0 (the legacy builder protocol)');
  if (q.get('remote')) throw invalid(`remote build contexts (${q.get('remote')}) are not supported by keel: send the context as a tar`);
  if (qBool(q, 'squash')) throw invalid('squash is only supported with experimental mode');
  const outputs = q.get('outputs');
  if (outputs && outputs !== '[]') throw invalid('outputs are a BuildKit feature; keel stores the image');
  const buildArgs = jsonParam<Record<string, string | null>>(q, 'buildargs');
  if (
    buildArgs !== undefined &&
    (typeof buildArgs !== 'object' || Array.isArray(buildArgs) || Object.values(buildArgs).some((v) => v !== null && typeof v !== 'string'))
  ) {
    throw invalid('buildargs must be a JSON object of strings (or null)');
  }
  const labels = jsonParam<Record<string, string>>(q, 'labels');
  if (labels !== undefined && (typeof labels !== 'object' || Array.isArray(labels))) throw invalid('labels must be a JSON object');
  const cacheFrom = jsonParam<string[]>(q, 'cachefrom');
  // cgroupparent is accepted and ignored: the builder's RUN containers go under the daemon's parent cgroup.
  const resources: ResourcesSpec = {};
  for (const [k, f] of [
    ['memory', 'memory'],
    ['memswap', 'memorySwap'],
    ['cpushares', 'cpuShares'],
    ['cpuperiod', 'cpuPeriod'],
    ['cpuquota', 'cpuQuota'],
    ['shmsize', 'shmSize'],
  ] as const) {
    const n = qInt(q, k);
    if (n) resources[f] = n;
  }
  for (const [k, f] of [
    ['cpusetcpus', 'cpusetCpus'],
    ['cpusetmems', 'cpusetMems'],
  ] as const) {
    const v = q.get(k);
    if (v) resources[f] = v;
  }
  const ulimits = jsonParam<unknown[]>(q, 'ulimits');
  if (Array.isArray(ulimits) && ulimits.length) resources.ulimits = ulimits.map(decodeUlimit);
  for (const t of q.getAll('t').filter(Boolean)) {
    try {
      if (parseReference(t).digest) throw new Error('a digest');
    } catch {
      throw invalid(`invalid reference format: ${t} is not a valid repository:tag for -t`);
    }
  }
  const platform = q.get('platform') || undefined;
  const extraHosts = q
    .getAll('extrahosts')
    .flatMap((h) => h.split(/[,\s]+/))
    .filter(Boolean);
  const network = q.get('networkmode') || undefined;
  return {
    dockerfile: q.get('dockerfile') || undefined,
    tags: q.getAll('t').filter(Boolean),
    quiet: qBool(q, 'q'),
    noCache: qBool(q, 'nocache'),
    pull: qBool(q, 'pull'),
    rm: qBool(q, 'rm', true),
    forceRm: qBool(q, 'forcerm'),
    buildArgs: buildArgs ?? undefined,
    labels: labels ?? undefined,
    target: q.get('target') || undefined,
    networkMode: network === 'default' ? undefined : network,
    extraHosts,
    resources,
    cacheFrom: Array.isArray(cacheFrom) ? cacheFrom.map(String) : undefined,
    auth: decodeRegistryConfig(req.headers['x-registry-config']),
    secrets: decodeSecrets(req.headers['x-keel-build-secrets']),
    buildId: q.get('buildid') || undefined,
    ...(platform ? { platform } : {}),
  } as Omit<BuildRequest, 'context'> & { buildId?: string; platform?: string };
}

/** The JSON stream: headers go out with the first message. */
class BuildStream implements BuildOutput {
  private readonly res: ServerResponse;
  started = false;
  /** q=1: dockerd keeps the build's text and sends it only if the build fails. */
  private readonly quiet: boolean;
  private held: object[] = [];
  private heldBytes = 0;

  constructor(res: ServerResponse, quiet: boolean) {
    this.res = res;
    this.quiet = quiet;
  }

  private hold(o: object, size: number): void {
    this.held.push(o);
    this.heldBytes += size;
    while (this.heldBytes > 1 << 20 && this.held.length > 1) this.heldBytes -= JSON.stringify(this.held.shift()).length;
  }

  /** The held text, before an error (quiet builds). */
  flushHeld(): void {
    const h = this.held;
    this.held = [];
    for (const o of h) this.send(o);
  }

  get holding(): boolean {
    return this.held.length > 0;
  }

  private send(o: unknown): void {
    if (this.res.destroyed || this.res.writableEnded) return;
    if (!this.started) {
      this.started = true;
      this.res.writeHead(200, { 'Content-Type': 'application/json' });
    }
    this.res.write(goJson(o) + '\r\n');
  }

  stream(text: string): void {
    if (this.quiet) this.hold({ stream: text }, text.length);
    else this.send({ stream: text });
  }

  /** The image ID line a quiet build ends with. */
  result(id: string): void {
    this.send({ stream: `${id}\n` });
  }

  aux(value: unknown): void {
    this.send({ aux: value });
  }

  progress(msg: object): void {
    if (this.quiet) this.hold(msg, 100);
    else this.send(msg);
  }

  error(e: unknown): void {
    const message = e instanceof Error ? e.message : String(e);
    this.send({ errorDetail: e instanceof RunFailedError ? { code: e.exitCode, message } : { message }, error: message });
  }
}

export function buildRoutes(r: Router): void {
  r.add('POST', '/build', async ({ req, res, engine, query, signal }) => {
    let opts;
    try {
      opts = buildRequestFrom(req, query);
      const p = (opts as { platform?: string }).platform;
      if (p) checkNativePlatform(p);
    } catch (e) {
      req.resume();
      throw e;
    }
    const out = new BuildStream(res, !!opts.quiet);
    try {
      const r = await engine.build({ ...opts, quiet: false, context: req, signal }, out);
      if (opts.quiet) out.result(r.id);
    } catch (e) {
      req.resume();
      if (out.holding) out.flushHeld();
      if (!out.started) throw e;
      out.error(e);
    }
    if (!res.writableEnded) {
      if (!out.started) res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end();
    }
  });

  r.add('POST', '/build/cancel', async ({ res, engine, query }) => {
    const id = query.get('id');
    if (!id) throw invalid('build ID not provided');
    engine.builder.cancel(id);
    res.writeHead(200);
    res.end();
  });

  r.add('POST', '/build/prune', async ({ res, engine, query }) => {
    const out = await engine.builder.prune({ all: qBool(query, 'all', true) });
    sendJson(res, 200, { CachesDeleted: out.removed.length ? out.removed : null, SpaceReclaimed: out.reclaimed });
  });
}

function checkNativePlatform(p: string): void {
  const arch = ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386' } as Record<string, string>)[process.arch] ?? process.arch;
  const [os, a] = p.toLowerCase().split('/');
  if (os !== 'linux' || (a !== undefined && a !== arch)) {
    throw new EngineError('INVALID_ARGUMENT', `platform ${p} is not supported: keel builds for the native platform only (linux/${arch})`);
  }
}
