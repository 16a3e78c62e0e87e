import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { pullImage } from '../../src/images/pull.ts';
import { pushImage } from '../../src/images/push.ts';
import { CredentialStore, decodeAuthHeader, encodeAuthHeader } from '../../src/registry/credentials.ts';
import { RegistryHosts } from '../../src/registry/hosts.ts';
import { login } from '../../src/registry/login.ts';
import { buildImage, busyboxLayer, newImageService, skopeo, startRegistry, tempDir, writeLayout, type Registry } from './helpers.ts';
import { startTokenServer, type TokenServer } from './tokenserver.ts';

let basicReg: Registry;
let tokenReg: Registry;
let tokens: TokenServer;
let work: string;

before(async () => {
  work = await tempDir('auth');
  tokens = await startTokenServer(work);
  basicReg = await startRegistry({ htpasswd: { user: 'user', pass: 'pass' } });
  tokenReg = await startRegistry({ tokenAuth: tokens });
  const img = await buildImage([await busyboxLayer('auth'), [{ name: 'etc/x', body: 'x' }]]);
  await writeLayout(path.join(work, 'layout'), '1', [img]);
  const src = `oci:${path.join(work, 'layout')}:1`;
  await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', 'user:pass', src, `docker://${basicReg.host}/priv/bb:1`]);
  await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', 'user:pass', src, `docker://${tokenReg.host}/public/bb:1`]);
  await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', 'user:pass', src, `docker://${tokenReg.host}/private/bb:1`]);
});

after(async () => {
  await Promise.all([basicReg?.stop(), tokenReg?.stop(), tokens?.stop()]);
  await fsp.rm(work, { recursive: true, force: true });
});

const hosts = (o: { configDir?: string } = {}) => new RegistryHosts({ useCredentialStore: !!o.configDir, configDir: o.configDir, retryBaseMs: 10 });

test('basic auth: anonymous refused, credentials accepted, login checks them', async () => {
  const { images, cleanup } = await newImageService();
  const reg = hosts();
  try {
    await assert.rejects(pullImage(images, reg, `${basicReg.host}/priv/bb:1`), { code: 'UNAUTHORIZED' });
    await assert.rejects(pullImage(images, reg, `${basicReg.host}/priv/bb:1`, { auth: { username: 'user', password: 'nope' } }), { code: 'UNAUTHORIZED' });
    const rec = await pullImage(images, reg, `${basicReg.host}/priv/bb:1`, { auth: { username: 'user', password: 'pass' } });
    assert.equal(rec.layers.length, 2);
    await images.tag(`${basicReg.host}/priv/bb:1`, `${basicReg.host}/priv/copy:1`);
    await pushImage(images, reg, `${basicReg.host}/priv/copy:1`, { auth: { username: 'user', password: 'pass' } });
    await assert.rejects(login(reg, { serveraddress: basicReg.host, username: 'user', password: 'bad' }), {
      code: 'UNAUTHORIZED',
      message: /incorrect username or password/,
    });
    assert.deepEqual(await login(reg, { serveraddress: `http://${basicReg.host}/`, username: 'user', password: 'pass' }), { status: 'Login Succeeded' });
  } finally {
    reg.close();
    await cleanup();
  }
});

test('credentials from config.json (auths) and from a docker-credential helper', async () => {
  const dir = await tempDir('dockercfg');
  const bin = await tempDir('bin');
  const oldPath = process.env.PATH;
  try {
    const store = new CredentialStore(dir);
    await store.store(basicReg.host, { username: 'user', password: 'pass' });
    const cfg = JSON.parse(await fsp.readFile(path.join(dir, 'config.json'), 'utf8'));
    assert.equal(cfg.auths[basicReg.host].auth, Buffer.from('user:pass').toString('base64'));
    assert.deepEqual(await store.get(basicReg.host), { username: 'user', password: 'pass', serveraddress: basicReg.host });
    const a = await newImageService();
    const reg = hosts({ configDir: dir });
    await pullImage(a.images, reg, `${basicReg.host}/priv/bb:1`);
    reg.close();
    await a.cleanup();
    assert.equal(await store.erase(basicReg.host), true);
    assert.equal(await store.get(basicReg.host), undefined);

    // A credential helper (docker-credential-keeltest) answering `get`.
    await fsp.writeFile(
      path.join(bin, 'docker-credential-keeltest'),
      '#!/bin/sh\nread server\necho "{\\"ServerURL\\":\\"$server\\",\\"Username\\":\\"user\\",\\"Secret\\":\\"pass\\"}"\n',
      { mode: 0o755 },
    );
    process.env.PATH = `${bin}:${oldPath}`;
    await fsp.writeFile(path.join(dir, 'config.json'), JSON.stringify({ credsStore: 'keeltest' }));
    assert.deepEqual(await store.get(basicReg.host), { username: 'user', password: 'pass', serveraddress: basicReg.host });
    const b = await newImageService();
    const reg2 = hosts({ configDir: dir });
    await pullImage(b.images, reg2, `${basicReg.host}/priv/bb:1`);
    reg2.close();
    await b.cleanup();
  } finally {
    process.env.PATH = oldPath;
    await fsp.rm(dir, { recursive: true, force: true });
    await fsp.rm(bin, { recursive: true, force: true });
  }
});

test('X-Registry-Auth header round trip', () => {
  const h = encodeAuthHeader({ username: 'u', password: 'p', serveraddress: 'r:5000' });
  assert.deepEqual(decodeAuthHeader(h), { username: 'u', password: 'p', serveraddress: 'r:5000' });
  assert.equal(decodeAuthHeader('e30='), undefined);
  assert.equal(decodeAuthHeader(''), undefined);
  assert.throws(() => decodeAuthHeader('!!!'), { code: 'INVALID_ARGUMENT' });
});

test('bearer token flow against docker-registry: anonymous, with credentials, cached per scope', async () => {
  const { images, cleanup } = await newImageService();
  const reg = hosts();
  try {
    tokens.requests.length = 0;
    const rec = await pullImage(images, reg, `${tokenReg.host}/public/bb:1`);
    assert.equal(rec.layers.length, 2);
    // One anonymous token for the scope, reused for the manifest, config and both layers.
    assert.equal(tokens.requests.length, 1);
    assert.deepEqual(tokens.requests[0], { scope: ['repository:public/bb:pull'], account: undefined, authorized: false });

    await assert.rejects(pullImage(images, reg, `${tokenReg.host}/private/bb:1`), { code: 'UNAUTHORIZED' });
    await assert.rejects(pullImage(images, reg, `${tokenReg.host}/private/bb:1`, { auth: { username: 'user', password: 'wrong' } }), {
      code: 'UNAUTHORIZED',
      message: /incorrect username or password/,
    });
    await pullImage(images, reg, `${tokenReg.host}/private/bb:1`, { auth: { username: 'user', password: 'pass' } });

    // Push asks for pull,push (and pull on the mount source).
    await images.tag(`${tokenReg.host}/public/bb:1`, `${tokenReg.host}/private/pushed:1`);
    tokens.requests.length = 0;
    await pushImage(images, reg, `${tokenReg.host}/private/pushed:1`, { auth: { username: 'user', password: 'pass' } });
    assert.ok(tokens.requests.some((r) => r.authorized && r.scope.includes('repository:private/pushed:pull,push')));
    const inspect = JSON.parse(await skopeo(['inspect', '--tls-verify=false', '--creds', 'user:pass', `docker://${tokenReg.host}/private/pushed:1`]));
    assert.equal(inspect.Digest, rec.manifest.digest);
    await assert.rejects(pushImage(images, reg, `${tokenReg.host}/private/pushed:1`), { code: 'UNAUTHORIZED' });

    assert.deepEqual(await login(reg, { serveraddress: tokenReg.host, username: 'user', password: 'pass' }), { status: 'Login Succeeded' });
    await assert.rejects(login(reg, { serveraddress: tokenReg.host, username: 'user', password: 'bad' }), { code: 'UNAUTHORIZED' });
  } finally {
    reg.close();
    await cleanup();
  }
});
