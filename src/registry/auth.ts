import { EngineError } from '../common/errors.ts';
import type { AuthConfig } from './credentials.ts';
import { httpRequest, readBody, type HttpOptions } from './http.ts';

export interface Challenge {
  scheme: 'basic' | 'bearer';
  params: Record<string, string>;
}

/** Parses a WWW-Authenticate header; only Basic and Bearer are understood. */
export function parseChallenge(header: string | undefined): Challenge | undefined {
  if (!header) return undefined;
  const m = /^\s*(\w+)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const scheme = m[1]!.toLowerCase();
  if (scheme !== 'basic' && scheme !== 'bearer') return undefined;
  const params: Record<string, string> = {};
  const re = /([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?\s*/g;
  let p: RegExpExecArray | null;
  while ((p = re.exec(m[2]!))) params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!;
  return { scheme, params };
}

/** `repository:<path>:pull,push` */
export function repoScope(path: string, actions: string[]): string {
  return `repository:${path}:${actions.join(',')}`;
}

interface CachedToken {
  token: string;
  expires: number;
}

/**
 * Bearer tokens per (host, scope set), shared by every client of a
 * RegistryHosts so parallel layer downloads reuse one token. Tokens are kept
 * until 30 s before they expire (60 s when the server does not say, as in
 * the distribution token spec).
 */
export class TokenCache {
  private tokens = new Map<string, CachedToken>();
  private inflight = new Map<string, Promise<string>>();

  async get(key: string, fetchToken: () => Promise<{ token: string; expiresIn: number }>): Promise<string> {
    const t = this.tokens.get(key);
    if (t && t.expires > Date.now()) return t.token;
    let p = this.inflight.get(key);
    if (!p) {
      p = fetchToken().then(({ token, expiresIn }) => {
        this.tokens.set(key, { token, expires: Date.now() + Math.max(0, expiresIn - 30) * 1000 });
        return token;
      });
      this.inflight.set(key, p);
      // the token fetch's rejection goes to its awaiters (p); this chain only forgets it
      p.finally(() => this.inflight.delete(key)).catch(() => {});
    }
    return p;
  }

  invalidate(key: string): void {
    this.tokens.delete(key);
  }
}

export function basicHeader(a: AuthConfig): string {
  return `Basic ${Buffer.from(`${a.username ?? ''}:${a.password ?? ''}`).toString('base64')}`;
}

/**
 * Fetches a bearer token from the challenge's realm (distribution token
 * spec). With an identity token it uses the OAuth2 refresh-token grant (POST);
 * otherwise a GET, with Basic credentials when there are some, anonymous
 * when not.
 */
export async function fetchToken(
  challenge: Challenge,
  scopes: string[],
  auth: AuthConfig | undefined,
  http: Omit<HttpOptions, 'method' | 'headers' | 'body'>,
  registryHost: string,
): Promise<{ token: string; expiresIn: number; refreshToken?: string }> {
  const realm = challenge.params.realm;
  if (!realm) throw new EngineError('UNAVAILABLE', `registry ${registryHost} asked for a bearer token but named no realm`);
  let url: URL;
  try {
    url = new URL(realm);
  } catch {
    throw new EngineError('UNAVAILABLE', `registry ${registryHost} named an invalid token realm ${JSON.stringify(realm.slice(0, 200))}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new EngineError('UNAVAILABLE', `token realm ${url.href} is not http(s)`);
  const service = challenge.params.service;
  let res;
  if (auth?.identitytoken) {
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: auth.identitytoken, client_id: 'keel' });
    if (service) form.set('service', service);
    if (scopes.length) form.set('scope', scopes.join(' '));
    const body = Buffer.from(form.toString());
    res = await httpRequest(url, {
      ...http,
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': body.length },
      body,
    });
  } else {
    if (service) url.searchParams.set('service', service);
    for (const s of scopes) url.searchParams.append('scope', s);
    if (auth?.username) url.searchParams.set('account', auth.username);
    const headers: Record<string, string> = {};
    if (auth?.username) headers.authorization = basicHeader(auth);
    res = await httpRequest(url, { ...http, method: 'GET', headers });
  }
  const body = await readBody(res, 1 << 20, 'token response');
  if (res.statusCode === 401 || res.statusCode === 403) {
    throw new EngineError(
      'UNAUTHORIZED',
      `${registryHost}: unauthorized: ${auth?.username || auth?.identitytoken ? 'incorrect username or password' : 'authentication required'}`,
    );
  }
  if (res.statusCode !== 200) throw new EngineError('UNAVAILABLE', `token server ${url.host} answered ${res.statusCode} for ${registryHost}`);
  let o: { token?: unknown; access_token?: unknown; expires_in?: unknown; refresh_token?: unknown };
  try {
    o = JSON.parse(body.toString('utf8'));
  } catch {
    throw new EngineError('UNAVAILABLE', `token server ${url.host} sent a response that is not JSON`);
  }
  const token = typeof o.token === 'string' && o.token ? o.token : typeof o.access_token === 'string' ? o.access_token : '';
  if (!token) throw new EngineError('UNAVAILABLE', `token server ${url.host} sent no token`);
  const expiresIn = typeof o.expires_in === 'number' && o.expires_in > 0 ? o.expires_in : 60;
  return { token, expiresIn, refreshToken: typeof o.refresh_token === 'string' ? o.refresh_token : undefined };
}
