import type http from 'node:http';
import type https from 'node:https';
import { EngineError } from '../common/errors.ts';
import { type Challenge, TokenCache } from './auth.ts';
import { type AuthConfig, CredentialStore, defaultConfigDir } from './credentials.ts';
import { isLoopbackHost, makeAgents } from './http.ts';

export interface RegistryHostsOptions {
  /**
   * Pull-through mirrors per registry domain, tried in order before the
   * registry itself, e.g. `{ 'docker.io': ['http://127.0.0.1:5000'] }`.
   */
  mirrors?: Record<string, string[]>;
  /** Registries (host[:port]) spoken to over plain HTTP; loopback always is. */
  insecure?: string[];
  /** Directory holding config.json (default $DOCKER_CONFIG or ~/.docker). */
  configDir?: string;
  /** Look credentials up in config.json when a caller passes none (default true). */
  useCredentialStore?: boolean;
  /** Until a socket is connected (default 30 s). */
  connectTimeoutMs?: number;
  /** No byte received for this long fails the request (default 60 s). */
  idleTimeoutMs?: number;
  /** Retries after a 429, a 5xx or a dropped connection (default 4). */
  retries?: number;
  /** First backoff delay; doubles each retry (default 500 ms). */
  retryBaseMs?: number;
  /** Cap on one backoff wait, Retry-After included (default 10 s). */
  retryMaxMs?: number;
  /** Layers downloaded at once (default 3, like docker). */
  maxConcurrentDownloads?: number;
  /** Layers uploaded at once (default 5, like docker). */
  maxConcurrentUploads?: number;
  /** Blobs larger than this are uploaded in PATCH chunks of this size (default 0: one streamed PUT). */
  uploadChunkSize?: number;
  /** How deep nested indexes may go (default 2: index → index → manifest). */
  maxIndexDepth?: number;
}

export interface Endpoint {
  /** e.g. `https://registry-1.docker.io` */
  base: URL;
  /** The domain in image names (`docker.io`). */
  domain: string;
  mirror: boolean;
}

type Resolved = Required<Omit<RegistryHostsOptions, 'configDir' | 'mirrors' | 'insecure'>>;

/**
 * Everything keel knows about reaching registries: endpoints (docker.io →
 * registry-1.docker.io, mirrors, HTTP vs HTTPS), timeouts and retry policy,
 * connection pools, the auth challenges each host answered with and the
 * bearer tokens it issued, and the credentials file.
 */
export class RegistryHosts {
  readonly opts: Resolved;
  readonly credentials: CredentialStore;
  readonly tokens = new TokenCache();
  readonly agents: { http: http.Agent; https: https.Agent };
  private readonly mirrors: Record<string, string[]>;
  private readonly insecure: Set<string>;
  private readonly insecureHosts: string[];
  /** host → the challenge it answered /v2/ with (null: no auth needed). */
  readonly challenges = new Map<string, Challenge | null>();

  constructor(o: RegistryHostsOptions = {}) {
    this.opts = {
      useCredentialStore: o.useCredentialStore ?? true,
      connectTimeoutMs: o.connectTimeoutMs ?? 30_000,
      idleTimeoutMs: o.idleTimeoutMs ?? 60_000,
      retries: o.retries ?? 4,
      retryBaseMs: o.retryBaseMs ?? 500,
      retryMaxMs: o.retryMaxMs ?? 10_000,
      maxConcurrentDownloads: o.maxConcurrentDownloads ?? 3,
      maxConcurrentUploads: o.maxConcurrentUploads ?? 5,
      uploadChunkSize: o.uploadChunkSize ?? 0,
      maxIndexDepth: o.maxIndexDepth ?? 2,
    };
    this.credentials = new CredentialStore(o.configDir ?? defaultConfigDir());
    this.mirrors = o.mirrors ?? {};
    this.insecure = new Set((o.insecure ?? []).map((h) => h.toLowerCase()));
    this.insecureHosts = [...(o.insecure ?? [])];
    this.agents = makeAgents();
  }

  /** The mirrors and plain-HTTP registries as configured (what `docker info` shows). */
  settings(): { mirrors: Record<string, string[]>; insecure: string[] } {
    return { mirrors: structuredClone(this.mirrors), insecure: [...this.insecureHosts] };
  }

  /** The URL scheme and host for a registry domain. */
  endpoint(domain: string): Endpoint {
    const host = domain === 'docker.io' || domain === 'index.docker.io' ? 'registry-1.docker.io' : domain;
    const plain = isLoopbackHost(host) || this.insecure.has(host.toLowerCase());
    return { base: new URL(`${plain ? 'http' : 'https'}://${host}`), domain, mirror: false };
  }

  /** Endpoints to pull from, mirrors first. */
  pullEndpoints(domain: string): Endpoint[] {
    const mirrors = (this.mirrors[domain] ?? []).map((m) => {
      let base: URL;
      try {
        base = new URL(m.includes('://') ? m : `https://${m}`);
      } catch {
        throw new EngineError('INVALID_ARGUMENT', `invalid registry mirror ${JSON.stringify(m)}`);
      }
      return { base, domain, mirror: true };
    });
    return [...mirrors, this.endpoint(domain)];
  }

  /** Credentials for a domain: the caller's, else the credentials file's (if enabled). */
  async authFor(domain: string, given?: AuthConfig): Promise<AuthConfig | undefined> {
    if (given && (given.username || given.identitytoken || given.registrytoken)) return given;
    if (!this.opts.useCredentialStore) return undefined;
    return this.credentials.get(domain);
  }

  /** Closes pooled connections (tests and daemon shutdown). */
  close(): void {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }
}
