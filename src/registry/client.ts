import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { EngineError, type ErrorCode } from '../common/errors.ts';
import { type Digest, isDigest, parseDigest, sha256 } from '../oci/digest.ts';
import { MediaType } from '../oci/mediatypes.ts';
import { type Descriptor, MAX_DOCUMENT_SIZE } from '../oci/types.ts';
import { basicHeader, fetchToken, parseChallenge, repoScope } from './auth.ts';
import type { AuthConfig } from './credentials.ts';
import type { Endpoint, RegistryHosts } from './hosts.ts';
import { drain, httpRequest, isTransientNetworkError, readBody } from './http.ts';

export const MANIFEST_ACCEPT = [MediaType.OciIndex, MediaType.OciManifest, MediaType.DockerManifestList, MediaType.DockerManifest].join(', ');

export interface RequestSpec {
  method: string;
  /** Path under `/v2/<repo>/`, or an absolute URL (upload locations). */
  path: string;
  headers?: Record<string, string | number>;
  /** Makes the body; called again for each retry. */
  body?: () => Buffer | Readable;
  /** Safe to resend after a dropped connection or a 5xx/429. */
  retry?: boolean;
  /** Statuses handed back instead of thrown (2xx always are). */
  accept?: number[];
  /** Follow redirects (blobs): Authorization is dropped when the host changes. */
  redirects?: boolean;
  signal?: AbortSignal;
  /** For error messages: "manifest for x:1", "blob sha256:…". */
  what: string;
}

const RETRY_STATUS = new Set([429, 500, 502, 503, 504]);

/**
 * A client for one repository on one endpoint, with one set of credentials
 * and the actions it needs (`pull`, or `pull,push`, plus pull on mount
 * sources). Every request goes through `send`, which adds auth, retries
 * transient failures with backoff, follows redirects safely and turns
 * registry errors into EngineErrors with the registry's own words.
 */
export class RepositoryClient {
  readonly hosts: RegistryHosts;
  readonly endpoint: Endpoint;
  readonly path: string;
  private readonly auth: AuthConfig | undefined;
  private scopes: string[];

  constructor(hosts: RegistryHosts, endpoint: Endpoint, path: string, auth: AuthConfig | undefined, actions: string[]) {
    this.hosts = hosts;
    this.endpoint = endpoint;
    this.path = path;
    this.auth = auth;
    this.scopes = [repoScope(path, actions)];
  }

  /** Adds pull access to another repository (a cross-repository mount source). */
  addPullScope(repoPath: string): void {
    const s = repoScope(repoPath, ['pull']);
    if (!this.scopes.includes(s)) this.scopes = [...this.scopes, s].sort();
  }

  private get host(): string {
    return this.endpoint.base.host;
  }

  private http(signal?: AbortSignal) {
    const o = this.hosts.opts;
    return { connectTimeoutMs: o.connectTimeoutMs, idleTimeoutMs: o.idleTimeoutMs, agents: this.hosts.agents, signal };
  }

  private tokenKey(): string {
    return `${this.host}|${this.auth?.username ?? this.auth?.identitytoken?.slice(0, 16) ?? ''}|${this.scopes.join(' ')}`;
  }

  /** The Authorization header for this host, learning its challenge with a /v2/ ping first. */
  private async authorization(signal?: AbortSignal): Promise<string | undefined> {
    if (this.auth?.registrytoken) return `Bearer ${this.auth.registrytoken}`;
    if (!this.hosts.challenges.has(this.host)) await this.ping(signal);
    const ch = this.hosts.challenges.get(this.host);
    if (!ch) return undefined;
    if (ch.scheme === 'basic') return this.auth?.username ? basicHeader(this.auth) : undefined;
    const token = await this.hosts.tokens.get(this.tokenKey(), () => fetchToken(ch, this.scopes, this.auth, this.http(signal), this.host));
    return `Bearer ${token}`;
  }

  /** GET /v2/: records whether and how the registry wants authentication. */
  async ping(signal?: AbortSignal): Promise<void> {
    const url = new URL('/v2/', this.endpoint.base);
    const res = await this.withRetries('GET /v2/', true, signal, () => httpRequest(url, { ...this.http(signal), method: 'GET' }));
    await drain(res);
    if (res.statusCode === 401) {
      const ch = parseChallenge(header(res, 'www-authenticate'));
      if (!ch) throw new EngineError('UNAVAILABLE', `registry ${this.host} requires an authentication scheme keel does not support`);
      this.hosts.challenges.set(this.host, ch);
    } else if (res.statusCode! >= 200 && res.statusCode! < 300) this.hosts.challenges.set(this.host, null);
    else if (res.statusCode === 404) throw new EngineError('UNAVAILABLE', `${this.host} does not speak the registry API v2 (GET /v2/ answered 404)`);
    else throw new EngineError('UNAVAILABLE', `registry ${this.host} answered ${res.statusCode} to GET /v2/`);
  }

  private async withRetries<T>(what: string, retry: boolean, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (!retry || attempt >= this.hosts.opts.retries || !isTransientNetworkError(e)) throw wrapNetwork(e, this.host, what);
        await this.backoff(attempt, undefined, signal);
      }
    }
  }

  async backoff(attempt: number, retryAfter: string | undefined, signal?: AbortSignal): Promise<void> {
    const o = this.hosts.opts;
    let ms = o.retryBaseMs * 2 ** attempt * (0.75 + Math.random() * 0.5);
    const ra = retryAfter !== undefined ? Number(retryAfter) : NaN;
    if (Number.isFinite(ra) && ra >= 0) ms = ra * 1000;
    await sleep(Math.min(ms, o.retryMaxMs), undefined, { signal });
  }

  /** One logical request: auth, retries, redirects, error mapping. */
  async send(spec: RequestSpec): Promise<IncomingMessage> {
    let authFailures = 0;
    for (let attempt = 0; ; attempt++) {
      const authz = await this.authorization(spec.signal);
      let res: IncomingMessage;
      let from: URL;
      try {
        ({ res, url: from } = await this.once(spec, authz));
      } catch (e) {
        if (spec.retry && attempt < this.hosts.opts.retries && isTransientNetworkError(e)) {
          await this.backoff(attempt, undefined, spec.signal);
          continue;
        }
        throw wrapNetwork(e, this.host, `${spec.method} ${spec.what}`);
      }
      const status = res.statusCode ?? 0;
      if (status === 401 && from.origin !== this.endpoint.base.origin) {
        // A server the registry redirected to wants credentials. Its challenge is not the
        // registry's: taking it would send the user's password to a realm that server chose.
        await drain(res);
        throw new EngineError(
          'UNAUTHORIZED',
          `${spec.method} ${spec.what}: ${this.host} redirected to ${from.host}, which asked for credentials; keel sends credentials only to ${this.host} and the token server it names`,
        );
      }
      if (status === 401 && authFailures === 0 && !this.auth?.registrytoken) {
        // A token for fewer scopes, an expired one, or a challenge that changed: learn and retry once.
        authFailures++;
        await drain(res);
        const ch = parseChallenge(header(res, 'www-authenticate'));
        if (ch) this.hosts.challenges.set(this.host, ch);
        this.hosts.tokens.invalidate(this.tokenKey());
        if (ch || authz) {
          attempt--;
          continue;
        }
        return this.fail(res, spec);
      }
      if (RETRY_STATUS.has(status) && spec.retry && attempt < this.hosts.opts.retries) {
        await drain(res);
        await this.backoff(attempt, header(res, 'retry-after'), spec.signal);
        continue;
      }
      if ((status >= 200 && status < 300) || spec.accept?.includes(status)) return res;
      return this.fail(res, spec);
    }
  }

  /** One request and its redirects; `url` is where the final answer came from. */
  private async once(spec: RequestSpec, authz: string | undefined): Promise<{ res: IncomingMessage; url: URL }> {
    let url = spec.path.includes('://') ? new URL(spec.path) : new URL(`/v2/${this.path}/${spec.path}`, this.endpoint.base);
    if (url.origin !== this.endpoint.base.origin && !spec.path.includes('://')) throw new EngineError('INTERNAL', 'bad registry path');
    let method = spec.method;
    for (let hop = 0; ; hop++) {
      const sameHost = url.origin === this.endpoint.base.origin;
      const headers: Record<string, string | number> = { 'user-agent': 'keel/0.1', ...spec.headers };
      if (authz && sameHost) headers.authorization = authz;
      const res = await httpRequest(url, { ...this.http(spec.signal), method, headers, body: hop === 0 ? spec.body?.() : undefined });
      const status = res.statusCode ?? 0;
      if (!spec.redirects || ![301, 302, 303, 307, 308].includes(status)) return { res, url };
      await drain(res);
      const loc = header(res, 'location');
      if (!loc || hop >= 5) throw new EngineError('UNAVAILABLE', `${this.host}: too many or empty redirects for ${spec.what}`);
      url = new URL(loc, url);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new EngineError('UNAVAILABLE', `${this.host} redirected ${spec.what} to a non-HTTP URL`);
      if (status === 303) method = 'GET';
    }
  }

  private async fail(res: IncomingMessage, spec: RequestSpec): Promise<never> {
    const status = res.statusCode ?? 0;
    let detail = '';
    try {
      const body = await readBody(res, 64 << 10, 'error body');
      detail = describeErrors(body);
    } catch {
      /* keep the status alone */
    }
    const code: ErrorCode =
      status === 401
        ? 'UNAUTHORIZED'
        : status === 403
          ? 'FORBIDDEN'
          : status === 404
            ? 'NOT_FOUND'
            : status === 400
              ? 'INVALID_ARGUMENT'
              : status >= 500 || status === 429
                ? 'UNAVAILABLE'
                : 'INTERNAL';
    const why = detail || (status === 401 ? 'unauthorized: authentication required' : `${status} ${res.statusMessage ?? ''}`.trim());
    if (status === 404) throw new EngineError(code, `${spec.what} not found: ${why}`);
    throw new EngineError(code, `${spec.method} ${spec.what} on ${this.host}: ${why}`);
  }

  /** Fetches a manifest or index by tag or digest, verifying what the registry says about it. */
  async getManifest(reference: string, what: string, signal?: AbortSignal): Promise<{ bytes: Buffer; contentType: string; digest: Digest }> {
    const res = await this.send({
      method: 'GET',
      path: `manifests/${reference}`,
      headers: { accept: MANIFEST_ACCEPT },
      retry: true,
      signal,
      what: `manifest for ${what}`,
    });
    const bytes = await readBody(res, MAX_DOCUMENT_SIZE, `manifest for ${what}`);
    const digest = sha256(bytes);
    if (reference.startsWith('sha256:') && reference !== digest) {
      throw new EngineError('INVALID_ARGUMENT', `manifest digest mismatch for ${what}: asked for ${reference}, got content with digest ${digest}`);
    }
    const claimed = header(res, 'docker-content-digest');
    if (claimed && claimed.startsWith('sha256:') && claimed !== digest) {
      throw new EngineError('INVALID_ARGUMENT', `manifest digest mismatch for ${what}: registry says ${claimed.slice(0, 80)}, content is ${digest}`);
    }
    return { bytes, contentType: (header(res, 'content-type') ?? '').split(';')[0]!.trim(), digest };
  }

  /** A small blob (config) read into memory and verified. */
  async getBlobBytes(d: Descriptor, max: number, what: string, signal?: AbortSignal): Promise<Buffer> {
    if (d.size > max) throw new EngineError('INVALID_ARGUMENT', `${what} is ${d.size} bytes, over the ${max}-byte limit`);
    const res = await this.send({ method: 'GET', path: `blobs/${d.digest}`, retry: true, redirects: true, signal, what });
    const bytes = await readBody(res, Math.min(max, d.size), what);
    if (bytes.length !== d.size) throw new EngineError('INVALID_ARGUMENT', `size mismatch for ${what}: expected ${d.size} bytes, got ${bytes.length}`);
    const got = sha256(bytes);
    if (got !== d.digest) throw new EngineError('INVALID_ARGUMENT', `digest mismatch for ${what}: expected ${d.digest}, got ${got}`);
    return bytes;
  }

  /** Starts a blob download at `start` (a Range request when > 0). Status 206 means the range was honoured. */
  async getBlob(digest: Digest, start: number, signal?: AbortSignal): Promise<IncomingMessage> {
    return this.send({
      method: 'GET',
      path: `blobs/${digest}`,
      headers: start > 0 ? { range: `bytes=${start}-` } : {},
      retry: true,
      redirects: true,
      signal,
      what: `blob ${digest}`,
    });
  }

  async blobExists(d: Descriptor, signal?: AbortSignal): Promise<boolean> {
    const res = await this.send({ method: 'HEAD', path: `blobs/${d.digest}`, retry: true, redirects: true, accept: [404], signal, what: `blob ${d.digest}` });
    await drain(res);
    return res.statusCode === 200 || res.statusCode === 307;
  }

  /**
   * Starts an upload; with `mountFrom`, asks for a cross-repository mount
   * first. Returns `mounted` when the registry linked the blob (201), else the
   * upload session URL.
   */
  async startUpload(digest: Digest, mountFrom: string | undefined, signal?: AbortSignal): Promise<{ mounted: true } | { mounted: false; location: URL }> {
    const q = mountFrom ? `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(mountFrom)}` : '';
    const res = await this.send({
      method: 'POST',
      path: `blobs/uploads/${q}`,
      headers: { 'content-length': 0 },
      retry: true,
      signal,
      what: `upload of ${digest}`,
    });
    await drain(res);
    if (res.statusCode === 201 && mountFrom) return { mounted: true };
    return { mounted: false, location: this.location(res, digest) };
  }

  private location(res: IncomingMessage, digest: Digest): URL {
    const loc = header(res, 'location');
    if (!loc) throw new EngineError('UNAVAILABLE', `${this.host} started an upload of ${digest} without a Location`);
    const url = new URL(loc, this.endpoint.base);
    if (url.origin !== this.endpoint.base.origin) throw new EngineError('UNAVAILABLE', `${this.host} sent an upload location on another host (${url.host})`);
    return url;
  }

  /** PATCH one chunk at `offset`; returns the next upload URL. */
  async uploadChunk(location: URL, chunk: Buffer, offset: number, digest: Digest, signal?: AbortSignal): Promise<URL> {
    const res = await this.send({
      method: 'PATCH',
      path: location.href,
      headers: { 'content-type': 'application/octet-stream', 'content-length': chunk.length, 'content-range': `${offset}-${offset + chunk.length - 1}` },
      body: () => chunk,
      signal,
      what: `chunk of ${digest}`,
    });
    await drain(res);
    return this.location(res, digest);
  }

  /** Finishes an upload with a PUT ?digest=, carrying the (rest of the) body if any. */
  async finishUpload(location: URL, digest: Digest, body: (() => Buffer | Readable) | undefined, size: number, signal?: AbortSignal): Promise<void> {
    const url = new URL(location);
    url.searchParams.set('digest', digest);
    const res = await this.send({
      method: 'PUT',
      path: url.href,
      headers: { 'content-type': 'application/octet-stream', 'content-length': body ? size : 0 },
      body,
      signal,
      what: `upload of ${digest}`,
    });
    await drain(res);
  }

  async putManifest(reference: string, bytes: Buffer, mediaType: string, signal?: AbortSignal): Promise<Digest> {
    const res = await this.send({
      method: 'PUT',
      path: `manifests/${reference}`,
      headers: { 'content-type': mediaType, 'content-length': bytes.length },
      body: () => bytes,
      retry: true,
      signal,
      what: `manifest ${this.path}:${reference}`,
    });
    await drain(res);
    const d = header(res, 'docker-content-digest');
    return d && isDigest(d) ? d : sha256(bytes);
  }

  /** All tags of the repository (following Link pagination, bounded). */
  async listTags(signal?: AbortSignal): Promise<string[]> {
    const tags: string[] = [];
    let next: string | undefined = 'tags/list?n=1000';
    for (let page = 0; next && page < 100; page++) {
      const res = await this.send({ method: 'GET', path: next, retry: true, signal, what: `tags of ${this.path}` });
      const o = JSON.parse((await readBody(res, 4 << 20, 'tag list')).toString('utf8')) as { tags?: unknown };
      if (Array.isArray(o.tags)) tags.push(...o.tags.filter((t): t is string => typeof t === 'string' && /^[\w][\w.-]{0,127}$/.test(t)));
      const link = /<([^>]+)>\s*;\s*rel="?next"?/.exec(header(res, 'link') ?? '');
      next = link ? new URL(link[1]!, this.endpoint.base).href : undefined;
      if (next && new URL(next).origin !== this.endpoint.base.origin) next = undefined;
    }
    return tags;
  }
}

export function header(res: IncomingMessage, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Docker's rendering of a registry error body: `manifest unknown: manifest unknown`. */
export function describeErrors(body: Buffer): string {
  try {
    const o = JSON.parse(body.toString('utf8')) as { errors?: { code?: unknown; message?: unknown }[] };
    if (Array.isArray(o.errors) && o.errors.length) {
      return o.errors
        .slice(0, 5)
        .map((e) => {
          const code = typeof e.code === 'string' ? e.code.toLowerCase().replace(/_/g, ' ') : 'error';
          const msg = typeof e.message === 'string' ? e.message.slice(0, 300) : '';
          return msg ? `${code}: ${msg}` : code;
        })
        .join(', ');
    }
  } catch {
    /* not JSON */
  }
  return body
    .toString('utf8')
    .slice(0, 200)
    .replace(/[^\x20-\x7e]+/g, ' ')
    .trim();
}

function wrapNetwork(e: unknown, host: string, what: string): unknown {
  if (e instanceof EngineError) return e;
  const err = e as Error;
  return new EngineError('UNAVAILABLE', `${what} on ${host}: ${err.message}`, { cause: e });
}

/** Re-export for callers that validate registry-given digests. */
export { parseDigest };
