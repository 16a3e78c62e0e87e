/**
 * A minimal distribution token server for tests: issues RS256 JWTs signed
 * with a throw-away self-signed certificate (carried in the `x5c` header, and
 * given to docker-registry as its rootcertbundle). Anonymous callers get pull
 * on `public/*`; `user:pass` gets pull and push everywhere.
 */
import { createPrivateKey, createSign, randomBytes, X509Certificate } from 'node:crypto';
import fsp from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { exec } from '../../src/common/exec.ts';

export interface TokenServer {
  realm: string;
  issuer: string;
  service: string;
  certFile: string;
  requests: { scope: string[]; account?: string; authorized: boolean }[];
  stop(): Promise<void>;
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

export async function startTokenServer(dir: string, user = 'user', pass = 'pass'): Promise<TokenServer> {
  const keyFile = path.join(dir, 'token.key');
  const certFile = path.join(dir, 'token.crt');
  await exec(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=keel-test-token']);
  const key = createPrivateKey(await fsp.readFile(keyFile));
  const der = new X509Certificate(await fsp.readFile(certFile)).raw;
  const issuer = 'keel-test-issuer';
  const service = 'keel-test-registry';
  const requests: TokenServer['requests'] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    const scopes = url.searchParams.getAll('scope');
    let account: string | undefined;
    let authorized = false;
    const h = req.headers.authorization;
    if (h?.startsWith('Basic ')) {
      const [u, p] = Buffer.from(h.slice(6), 'base64').toString().split(':');
      if (u !== user || p !== pass) {
        requests.push({ scope: scopes, account: u, authorized: false });
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"incorrect username or password"}');
        return;
      }
      account = u;
      authorized = true;
    }
    requests.push({ scope: scopes, account, authorized });
    const access = scopes.flatMap((s) => {
      const [type, name, actions] = s.split(':');
      if (type !== 'repository' || !name || !actions) return [];
      const granted = authorized ? actions.split(',') : name.startsWith('public/') ? actions.split(',').filter((a) => a === 'pull') : [];
      return [{ type, name, actions: granted }];
    });
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [der.toString('base64')] };
    const claims = { iss: issuer, sub: account ?? '', aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access };
    const signing = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = createSign('RSA-SHA256').update(signing).sign(key);
    const token = `${signing}.${b64url(sig)}`;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, access_token: token, expires_in: 300 }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    issuer,
    service,
    certFile,
    requests,
    stop: () => new Promise((r) => server.close(() => r())),
  };
}
