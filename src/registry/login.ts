import { EngineError } from '../common/errors.ts';
import { basicHeader, fetchToken, parseChallenge } from './auth.ts';
import { authKey, type AuthConfig } from './credentials.ts';
import type { RegistryHosts } from './hosts.ts';
import { drain, httpRequest } from './http.ts';

/** `https://index.docker.io/v1/`, `http://127.0.0.1:5000/`, `host:5000` → the image-name domain. */
export function domainOfServerAddress(addr: string | undefined): string {
  if (!addr) return 'docker.io';
  const key = authKey(addr);
  if (key === 'https://index.docker.io/v1/') return 'docker.io';
  const d = key.replace(/\/.*$/, '');
  if (!/^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9a-fA-F:]+\](:\d{1,5})?$/.test(d)) {
    throw new EngineError('INVALID_ARGUMENT', `invalid registry address ${JSON.stringify(addr.slice(0, 200))}`);
  }
  return d;
}

/**
 * Checks credentials against a registry (POST /auth, `docker login`): Basic
 * registries are asked GET /v2/ with them; Bearer registries' token servers
 * must issue a token for them. Nothing is stored here: the CLI stores on
 * success (CredentialStore.store), as docker's CLI does.
 */
export async function login(
  registries: RegistryHosts,
  a: AuthConfig & { serveraddress?: string },
): Promise<{ status: 'Login Succeeded'; identityToken?: string }> {
  const domain = domainOfServerAddress(a.serveraddress);
  const ep = registries.endpoint(domain);
  const o = registries.opts;
  const http = { connectTimeoutMs: o.connectTimeoutMs, idleTimeoutMs: o.idleTimeoutMs, agents: registries.agents };
  const url = new URL('/v2/', ep.base);
  const res = await httpRequest(url, { ...http, method: 'GET' });
  await drain(res);
  if (res.statusCode !== 401) {
    if (res.statusCode! >= 200 && res.statusCode! < 300) return { status: 'Login Succeeded' };
    throw new EngineError('UNAVAILABLE', `login to ${ep.base.host} failed: GET /v2/ answered ${res.statusCode}`);
  }
  const ch = parseChallenge(typeof res.headers['www-authenticate'] === 'string' ? res.headers['www-authenticate'] : undefined);
  if (!ch) throw new EngineError('UNAVAILABLE', `registry ${ep.base.host} requires an authentication scheme keel does not support`);
  registries.challenges.set(ep.base.host, ch);
  if (ch.scheme === 'basic') {
    if (!a.username) throw new EngineError('UNAUTHORIZED', `${ep.base.host}: unauthorized: username required`);
    const r2 = await httpRequest(url, { ...http, method: 'GET', headers: { authorization: basicHeader(a) } });
    await drain(r2);
    if (r2.statusCode === 401 || r2.statusCode === 403)
      throw new EngineError('UNAUTHORIZED', `login to ${ep.base.host} failed: unauthorized: incorrect username or password`);
    if (r2.statusCode! >= 300) throw new EngineError('UNAVAILABLE', `login to ${ep.base.host} failed: GET /v2/ answered ${r2.statusCode}`);
    return { status: 'Login Succeeded' };
  }
  const t = await fetchToken(ch, [], a, http, ep.base.host).catch((e: unknown) => {
    if (e instanceof EngineError && e.code === 'UNAUTHORIZED')
      throw new EngineError('UNAUTHORIZED', `login to ${ep.base.host} failed: unauthorized: incorrect username or password`);
    throw e;
  });
  return t.refreshToken ? { status: 'Login Succeeded', identityToken: t.refreshToken } : { status: 'Login Succeeded' };
}
