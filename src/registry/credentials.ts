import os from 'node:os';
import path from 'node:path';
import { EngineError } from '../common/errors.ts';
import { exec } from '../common/exec.ts';
import { mkdirp, readJsonIfExists, writeJsonAtomic } from '../common/fs.ts';

/**
 * Credentials for one registry, as docker passes them around: in the
 * X-Registry-Auth header (base64url JSON), in POST /auth, and in
 * ~/.docker/config.json. `identitytoken` is an OAuth2 refresh token a
 * registry handed out at login; `registrytoken` is a bearer token used as is.
 */
export interface AuthConfig {
  username?: string;
  password?: string;
  /** base64("user:pass"), the config.json form. */
  auth?: string;
  email?: string;
  serveraddress?: string;
  identitytoken?: string;
  registrytoken?: string;
}

/** The key docker uses for Docker Hub in config.json. */
export const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';

interface ConfigFile {
  auths?: Record<string, { auth?: string; identitytoken?: string; email?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [k: string]: unknown;
}

/** Directory of config.json: $DOCKER_CONFIG, else ~/.docker. */
export function defaultConfigDir(): string {
  return process.env.DOCKER_CONFIG || path.join(os.homedir(), '.docker');
}

/** The config.json key for a registry domain (`docker.io` → Docker Hub's URL). */
export function authKey(domain: string): string {
  const d = domain.replace(/^https?:\/\//, '').replace(/\/+$/, '');
  if (d === 'docker.io' || d === 'index.docker.io' || d === 'registry-1.docker.io' || d === 'index.docker.io/v1') return DOCKER_HUB_AUTH_KEY;
  return d;
}

/** Decodes an X-Registry-Auth header (base64url or base64 JSON); empty or `e30=` is no credentials. */
export function decodeAuthHeader(header: string | undefined): AuthConfig | undefined {
  if (!header) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(header.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8'));
  } catch {
    throw new EngineError('INVALID_ARGUMENT', 'X-Registry-Auth header is not base64-encoded JSON');
  }
  if (typeof json !== 'object' || json === null) return undefined;
  const a = normalizeAuth(json as AuthConfig);
  return a.username || a.identitytoken || a.registrytoken ? a : undefined;
}

export function encodeAuthHeader(a: AuthConfig): string {
  return Buffer.from(JSON.stringify(a)).toString('base64url');
}

/** Fills username/password from `auth` when only that was given. */
export function normalizeAuth(a: AuthConfig): AuthConfig {
  const out: AuthConfig = {};
  for (const k of ['username', 'password', 'auth', 'email', 'serveraddress', 'identitytoken', 'registrytoken'] as const) {
    if (typeof a[k] === 'string' && a[k]) out[k] = a[k];
  }
  if (!out.username && out.auth) {
    const s = Buffer.from(out.auth, 'base64').toString('utf8');
    const i = s.indexOf(':');
    if (i > 0) {
      out.username = s.slice(0, i);
      out.password = s.slice(i + 1);
    }
  }
  return out;
}

/**
 * Reads and writes docker's config.json and its credential helpers
 * (`docker-credential-<name> get|store|erase`, protocol: server URL or JSON on
 * stdin, JSON {ServerURL, Username, Secret} on stdout).
 */
export class CredentialStore {
  readonly file: string;

  constructor(configDir = defaultConfigDir()) {
    this.file = path.join(configDir, 'config.json');
  }

  private async load(): Promise<ConfigFile> {
    let cfg: ConfigFile | undefined;
    try {
      cfg = await readJsonIfExists<ConfigFile>(this.file);
    } catch (e) {
      throw new EngineError('INVALID_ARGUMENT', `cannot read ${this.file}: ${(e as Error).message}`);
    }
    return cfg && typeof cfg === 'object' ? cfg : {};
  }

  private helperFor(cfg: ConfigFile, key: string): string | undefined {
    return cfg.credHelpers?.[key] ?? cfg.credHelpers?.[key.replace(/^https?:\/\//, '')] ?? cfg.credsStore;
  }

  /** Credentials for a registry domain, or undefined when none are stored. */
  async get(domain: string): Promise<AuthConfig | undefined> {
    return this.getFrom(await this.load(), authKey(domain));
  }

  private async getFrom(cfg: ConfigFile, key: string): Promise<AuthConfig | undefined> {
    const helper = this.helperFor(cfg, key);
    if (helper) {
      const r = await exec([`docker-credential-${helper}`, 'get'], { input: key, allowFailure: true, timeoutMs: 30_000 });
      if (r.code !== 0) {
        if (/credentials not found/i.test(r.stdout + r.stderr)) return undefined;
        throw new EngineError('UNAVAILABLE', `credential helper docker-credential-${helper} failed: ${(r.stderr || r.stdout).trim()}`);
      }
      const o = JSON.parse(r.stdout) as { Username?: string; Secret?: string };
      if (!o.Secret) return undefined;
      return o.Username === '<token>' ? { identitytoken: o.Secret, serveraddress: key } : { username: o.Username, password: o.Secret, serveraddress: key };
    }
    const entry = cfg.auths?.[key] ?? cfg.auths?.[`https://${key}`] ?? cfg.auths?.[`http://${key}`];
    if (!entry) return undefined;
    const { auth: _raw, ...a } = normalizeAuth({ auth: entry.auth, identitytoken: entry.identitytoken });
    return a.username || a.identitytoken ? { ...a, serveraddress: key } : undefined;
  }

  /** Every stored credential by config key (docker's GetAllCredentials: config.json's auths and the helpers' registries). */
  async all(): Promise<Record<string, AuthConfig>> {
    const cfg = await this.load();
    const out: Record<string, AuthConfig> = {};
    for (const key of new Set([...Object.keys(cfg.auths ?? {}), ...Object.keys(cfg.credHelpers ?? {})])) {
      const a = await this.getFrom(cfg, authKey(key));
      if (a) out[key] = a;
    }
    return out;
  }

  /** Saves credentials (through the configured helper, else base64 in config.json). */
  async store(domain: string, a: AuthConfig): Promise<void> {
    const key = authKey(domain);
    const cfg = await this.load();
    const helper = this.helperFor(cfg, key);
    const username = a.identitytoken ? '<token>' : (a.username ?? '');
    const secret = a.identitytoken ?? a.password ?? '';
    if (helper) {
      await exec([`docker-credential-${helper}`, 'store'], {
        input: JSON.stringify({ ServerURL: key, Username: username, Secret: secret }),
        timeoutMs: 30_000,
      });
      cfg.auths = { ...cfg.auths, [key]: {} };
    } else {
      const entry: { auth?: string; identitytoken?: string } = {};
      if (a.identitytoken) {
        entry.auth = Buffer.from(`${a.username ?? ''}:`).toString('base64');
        entry.identitytoken = a.identitytoken;
      } else entry.auth = Buffer.from(`${a.username ?? ''}:${a.password ?? ''}`).toString('base64');
      cfg.auths = { ...cfg.auths, [key]: entry };
    }
    await mkdirp(path.dirname(this.file));
    await writeJsonAtomic(this.file, cfg, 0o600);
  }

  /** Removes stored credentials; false when there were none. */
  async erase(domain: string): Promise<boolean> {
    const key = authKey(domain);
    const cfg = await this.load();
    const helper = this.helperFor(cfg, key);
    let found = false;
    if (helper) {
      const r = await exec([`docker-credential-${helper}`, 'erase'], { input: key, allowFailure: true, timeoutMs: 30_000 });
      found = r.code === 0;
    }
    if (cfg.auths && key in cfg.auths) {
      delete cfg.auths[key];
      found = true;
      await writeJsonAtomic(this.file, cfg, 0o600);
    }
    return found;
  }
}
