import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { after, afterEach, before, beforeEach, test } from 'node:test';
import type { ImageService } from '../../src/images/service.ts';
import { pullImage } from '../../src/images/pull.ts';
import { sha256 } from '../../src/oci/digest.ts';
import { MediaType } from '../../src/oci/mediatypes.ts';
import { RegistryHosts, type RegistryHostsOptions } from '../../src/registry/hosts.ts';
import { buildImage, busyboxLayer, newImageService, readFileIn, type BuiltImage } from './helpers.ts';
import { type HostileRegistry, serveImage, serveRange, startHostile } from './hostile.ts';

let img: BuiltImage;
let reg: HostileRegistry;
let svc: { images: ImageService; cleanup(): Promise<void> };
let hosts: RegistryHosts;
const ref = () => `${reg.host}/bad/img:1`;
const mkHosts = (o: RegistryHostsOptions = {}) => new RegistryHosts({ useCredentialStore: false, retryBaseMs: 5, retryMaxMs: 50, ...o });

before(async () => {
  img = await buildImage([await busyboxLayer('hostile'), [{ name: 'etc/top', body: 'top\n' }]]);
});

beforeEach(async () => {
  reg = await startHostile();
  serveImage(reg, '1', img);
  svc = await newImageService();
  hosts = mkHosts();
});

afterEach(async () => {
  hosts.close();
  await reg.stop();
  await svc.cleanup();
});

after(() => {});

/**
 * Nothing half-made is visible: no image, no unpack in progress, no ingest
 * (a resumable .partial at most). Other layers that downloaded and verified
 * completely may stay (as in docker: the next pull says "Already exists");
 * the faulty layer (layer 0) must not be there.
 */
async function assertNothingRegistered(images: ImageService, keepPartial = false): Promise<void> {
  assert.equal(images.store.list().length, 0);
  assert.ok(!(await images.snapshots.listLayers()).includes(img.layers[0]!.diffId));
  assert.ok(!(await images.content.has(img.layers[0]!.desc.digest)));
  const tmp = await fsp.readdir(path.join(images.snapshots.root, 'tmp'));
  assert.deepEqual(tmp, []);
  const ingests = await fsp.readdir(images.content.ingestDir);
  if (!keepPartial) assert.deepEqual(ingests, []);
  else assert.ok(ingests.every((n) => n.endsWith('.partial')));
}

const layer0 = () => img.layers[0]!;
const blobPath = () => `GET /v2/bad/img/blobs/${layer0().desc.digest}`;

function withManifest(m: object, type: string = MediaType.OciManifest, tag = '1'): Buffer {
  const b = Buffer.from(JSON.stringify(m));
  reg.manifests.set(tag, [b, type]);
  reg.manifests.set(sha256(b), [b, type]);
  return b;
}

test('a layer whose bytes do not match its digest is refused', async () => {
  const other = Buffer.from(layer0().blob);
  other[other.length - 20]! ^= 0xff;
  reg.blobs.set(layer0().desc.digest, other);
  await assert.rejects(pullImage(svc.images, hosts, ref()), { code: 'INVALID_ARGUMENT', message: /^digest mismatch: expected sha256:/ });
  await assertNothingRegistered(svc.images);
});

test('a layer larger than its declared size is refused', async () => {
  reg.blobs.set(layer0().desc.digest, Buffer.concat([layer0().blob, Buffer.alloc(1000)]));
  await assert.rejects(pullImage(svc.images, hosts, ref()), { code: 'INVALID_ARGUMENT', message: /larger than its declared size/ });
  await assertNothingRegistered(svc.images);
});

test('a blob that is always truncated fails after resumes, with a clear error', async () => {
  const cut = 100_000;
  reg.routes.set(blobPath(), (req, res) => {
    const start = Number(/bytes=(\d+)-/.exec(req.headers.range ?? '')?.[1] ?? 0);
    res.writeHead(start ? 206 : 200, {
      'content-length': layer0().blob.length - start,
      ...(start ? { 'content-range': `bytes ${start}-${layer0().blob.length - 1}/${layer0().blob.length}` } : {}),
    });
    if (start < cut) res.write(layer0().blob.subarray(start, cut));
    setTimeout(() => res.socket?.destroy(), 5);
  });
  await assert.rejects(pullImage(svc.images, hosts, ref()), { code: 'UNAVAILABLE', message: new RegExp(`${layer0().desc.digest}`) });
  await assertNothingRegistered(svc.images, true);
  assert.ok(reg.log.filter((l) => l.headers.range === `bytes=${cut}-`).length >= 2, 'resumed with Range');
});

test('a connection reset mid-blob is resumed with Range and the pull succeeds', async () => {
  reg.routes.set(blobPath(), (req, res, n) => {
    if (n > 1) return false;
    res.writeHead(200, { 'content-length': layer0().blob.length });
    res.write(layer0().blob.subarray(0, 300_000), () => setTimeout(() => res.socket?.destroy(), 20));
  });
  const rec = await pullImage(svc.images, hosts, ref());
  assert.equal(readFileIn(svc.images, rec.chainIds[0]!, 'etc/marker'), 'hostile\n');
  assert.ok(reg.log.some((l) => l.path.includes(layer0().desc.digest) && /^bytes=\d+-$/.test(l.headers.range ?? '') && l.headers.range !== 'bytes=0-'));
});

test('a partial blob left by an earlier failed pull is resumed, then unpacked from the store', async () => {
  // First pull: 300 kB of the layer arrive, then the registry stalls until the idle timeout.
  const h0 = mkHosts({ idleTimeoutMs: 300 });
  reg.routes.set(blobPath(), (_q, res, n) => {
    if (n > 1) return false;
    res.writeHead(200, { 'content-length': layer0().blob.length });
    res.write(layer0().blob.subarray(0, 300_000));
  });
  await assert.rejects(pullImage(svc.images, h0, ref()), { code: 'TIMEOUT' });
  h0.close();
  await assertNothingRegistered(svc.images, true);
  const partials = await fsp.readdir(svc.images.content.ingestDir);
  assert.deepEqual(partials, [`${layer0().desc.digest.slice(7)}.partial`]);
  reg.log.length = 0;
  const rec = await pullImage(svc.images, hosts, ref());
  assert.equal(readFileIn(svc.images, rec.chainIds[0]!, 'etc/marker'), 'hostile\n');
  const ranges = reg.log.filter((l) => l.path.includes(layer0().desc.digest)).map((l) => l.headers.range);
  assert.deepEqual(ranges, ['bytes=300000-']);
  assert.deepEqual(await fsp.readdir(svc.images.content.ingestDir), []);
});

test('429 and 500 answers are retried', async () => {
  reg.routes.set('GET /v2/bad/img/manifests/1', (_q, res, n) => {
    if (n === 1) return void res.writeHead(429, { 'retry-after': '0' }).end();
    if (n === 2) return void res.writeHead(500).end();
    return false;
  });
  reg.routes.set(blobPath(), (_q, res, n) => (n === 1 ? void res.writeHead(503).end() : false));
  await pullImage(svc.images, hosts, ref());
  assert.equal(svc.images.store.list().length, 1);
});

test('500 forever is an UNAVAILABLE error after the retries', async () => {
  reg.routes.set(
    'GET /v2/bad/img/manifests/1',
    (_q, res) => void res.writeHead(500, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNKNOWN","message":"boom"}]}'),
  );
  await assert.rejects(pullImage(svc.images, hosts, ref()), { code: 'UNAVAILABLE', message: /unknown: boom/ });
});

test('a registry that stalls times out with a clear error', async () => {
  const h = mkHosts({ idleTimeoutMs: 300 });
  reg.routes.set(blobPath(), (_q, res) => {
    res.writeHead(200, { 'content-length': layer0().blob.length });
    res.write(layer0().blob.subarray(0, 1000));
  });
  const t0 = Date.now();
  await assert.rejects(pullImage(svc.images, h, ref()), { code: 'TIMEOUT', message: /sent nothing for 300 ms/ });
  assert.ok(Date.now() - t0 < 5000);
  h.close();
  await assertNothingRegistered(svc.images, true);
});

test('404 for an unknown tag; 401 with bad credentials', async () => {
  await assert.rejects(pullImage(svc.images, hosts, `${reg.host}/bad/img:nope`), {
    code: 'NOT_FOUND',
    message: `manifest for ${reg.host}/bad/img:nope not found: manifest unknown: manifest unknown`,
  });
  reg.basicAuth = 'u:p';
  await assert.rejects(pullImage(svc.images, hosts, ref(), { auth: { username: 'u', password: 'wrong' } }), { code: 'UNAUTHORIZED' });
  await assertNothingRegistered(svc.images);
});

test('manifest or config over 4 MiB is refused', async () => {
  const big = Buffer.alloc(5 << 20, 0x20);
  reg.manifests.set('big', [big, MediaType.OciManifest]);
  await assert.rejects(pullImage(svc.images, hosts, `${reg.host}/bad/img:big`), { code: 'INVALID_ARGUMENT', message: /limit/ });
  const m = JSON.parse(img.manifest.toString());
  m.config.size = 5 << 20;
  withManifest(m);
  await assert.rejects(pullImage(svc.images, hosts, ref()), { code: 'INVALID_ARGUMENT', message: /over the 4194304-byte limit/ });
  await assertNothingRegistered(svc.images);
});

test('mediaType disagreeing with Content-Type, and a manifest that is also an index, are refused', async () => {
  reg.manifests.set('1', [img.manifest, MediaType.DockerManifest]);
  await assert.rejects(pullImage(svc.images, hosts, ref()), { code: 'INVALID_ARGUMENT', message: /disagrees/ });
  const m = JSON.parse(img.manifest.toString());
  withManifest({ ...m, manifests: [] });
  await assert.rejects(pullImage(svc.images, hosts, ref()), { code: 'INVALID_ARGUMENT', message: /both/ });
  await assertNothingRegistered(svc.images);
});

test('malformed digests are refused', async () => {
  const m = JSON.parse(img.manifest.toString());
  for (const bad of [
    'sha256:../../../../etc/passwd',
    layer0().desc.digest.toUpperCase().replace('SHA256', 'sha256'),
    'sha256:abc',
    `sha512:${'a'.repeat(128)}`,
  ]) {
    withManifest({ ...m, layers: [{ ...m.layers[0], digest: bad }, m.layers[1]] });
    await assert.rejects(pullImage(svc.images, hosts, ref()), { code: 'INVALID_ARGUMENT', message: /digest/ }, bad);
  }
  await assert.rejects(pullImage(svc.images, hosts, `${reg.host}/bad/img@sha256:../..`), { code: 'INVALID_ARGUMENT' });
  await assertNothingRegistered(svc.images);
});

test('index entry platform disagreeing with the config, and indexes nested too deep', async () => {
  const index = (target: Buffer, type: string, platform = { os: 'linux', architecture: 'amd64' }) => ({
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: [{ mediaType: type, digest: sha256(target), size: target.length, platform }],
  });
  // The config says amd64; an index claiming arm64 for it is lying.
  withManifest(index(img.manifest, MediaType.OciManifest, { os: 'linux', architecture: 'arm64' }), MediaType.OciIndex);
  await assert.rejects(pullImage(svc.images, hosts, ref(), { platform: { os: 'linux', architecture: 'arm64' } }), {
    code: 'INVALID_ARGUMENT',
    message: /linux\/amd64 but its index entry says linux\/arm64/,
  });
  let inner = withManifest(index(img.manifest, MediaType.OciManifest), MediaType.OciIndex, 'l1');
  inner = withManifest(index(inner, MediaType.OciIndex), MediaType.OciIndex, 'l2');
  withManifest(index(inner, MediaType.OciIndex), MediaType.OciIndex, '1');
  await assert.rejects(pullImage(svc.images, hosts, ref()), { code: 'INVALID_ARGUMENT', message: /deeper than 2/ });
  // Two levels are fine.
  withManifest(index(inner, MediaType.OciIndex), MediaType.OciIndex, 'ok');
  await assertNothingRegistered(svc.images);
  const rec = await pullImage(svc.images, hosts, `${reg.host}/bad/img:l2`);
  assert.equal(rec.manifest.digest, img.manifestDigest);
});

test('a blob redirect to another host gets no Authorization header', async () => {
  const seen: http.IncomingHttpHeaders[] = [];
  const cdn = http.createServer((req, res) => {
    seen.push(req.headers);
    serveRange(req, res, layer0().blob);
  });
  await new Promise<void>((r) => cdn.listen(0, '127.0.0.1', r));
  const cdnHost = `127.0.0.1:${(cdn.address() as { port: number }).port}`;
  try {
    reg.basicAuth = 'u:p';
    reg.routes.set(blobPath(), (_q, res) => void res.writeHead(307, { location: `http://${cdnHost}/blob/x?sig=1` }).end());
    const rec = await pullImage(svc.images, hosts, ref(), { auth: { username: 'u', password: 'p' } });
    assert.equal(rec.layers.length, 2);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.authorization, undefined);
    assert.ok(reg.log.some((l) => l.path.includes('/blobs/') && l.headers.authorization?.startsWith('Basic ')));
  } finally {
    await new Promise<void>((r) => cdn.close(() => r()));
  }
});

test("a login challenge from a redirect target is not the registry's: the realm it names never sees credentials", async () => {
  const listen = async (handler: http.RequestListener) => {
    const server = http.createServer(handler);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { server, host: `127.0.0.1:${(server.address() as { port: number }).port}` };
  };
  const realmSeen: http.IncomingHttpHeaders[] = [];
  const realm = await listen((req, res) => {
    realmSeen.push(req.headers);
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"stolen"}');
  });
  const cdnSeen: http.IncomingHttpHeaders[] = [];
  const cdn = await listen((req, res) => {
    cdnSeen.push(req.headers);
    if (req.headers.authorization) return serveRange(req, res, layer0().blob);
    res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${realm.host}/token",service="cdn"`, 'content-type': 'application/json' });
    res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
  });
  try {
    reg.basicAuth = 'u:p';
    reg.routes.set(blobPath(), (_q, res) => void res.writeHead(307, { location: `http://${cdn.host}/blob/x` }).end());
    const err = await pullImage(svc.images, hosts, ref(), { auth: { username: 'u', password: 'p' } }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.deepEqual(realmSeen.map((h) => h.authorization).filter(Boolean), []);
    assert.equal(realmSeen.length, 0);
    assert.match(String(err), /redirected to 127\.0\.0\.1:\d+, which asked for credentials/);
    assert.equal((err as { code?: string }).code, 'UNAUTHORIZED');
    assert.ok(cdnSeen.length >= 1 && cdnSeen.every((h) => h.authorization === undefined));
    // The registry's own challenge is unchanged: Basic, as its /v2/ said.
    assert.equal(hosts.challenges.get(reg.host)?.scheme, 'basic');
    await assertNothingRegistered(svc.images, true);
  } finally {
    for (const s of [realm.server, cdn.server]) await new Promise<void>((r) => s.close(() => r()));
  }
});

test('garbage collection during a pull waits for it: the pulled image is whole', async () => {
  const l1 = img.layers[1]!;
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let asked!: () => void;
  const l1Asked = new Promise<void>((r) => (asked = r));
  reg.routes.set(`GET /v2/bad/img/blobs/${l1.desc.digest}`, (req, res) => {
    asked();
    void held.then(() => serveRange(req, res, l1.blob));
  });
  const pull = pullImage(svc.images, hosts, ref());
  await l1Asked;
  // Layer 0 and the config are in the stores by now, referenced by nothing yet.
  for (let i = 0; i < 200 && !(await svc.images.snapshots.hasLayer(img.layers[0]!.diffId)); i++) await new Promise((r) => setTimeout(r, 10));
  let gcDone = false;
  const gc = svc.images.gc().then((r) => ((gcDone = true), r));
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(gcDone, false, 'gc waits for the pull');
  release();
  const rec = await pull;
  await gc;
  assert.deepEqual(
    svc.images.store.list().map((r) => r.id),
    [rec.id],
  );
  for (const c of rec.chainIds) assert.ok(await svc.images.snapshots.hasLayer(c), `layer ${c}`);
  for (const d of [rec.id, rec.manifest.digest, ...rec.layers.map((l) => l.digest)]) assert.ok(await svc.images.content.has(d), `blob ${d}`);
  // A container's snapshot keeps its layers when its image record goes (a prune racing a create).
  await svc.images.snapshots.prepare('c'.repeat(64), rec.chainIds);
  await svc.images.store.delete(rec.id);
  await svc.images.gc();
  for (const c of rec.chainIds) assert.ok(await svc.images.snapshots.hasLayer(c), `layer ${c} of a container`);
  await svc.images.snapshots.remove('c'.repeat(64));
  await svc.images.gc();
  assert.deepEqual(await svc.images.snapshots.listLayers(), []);
});

test('foreign layer URLs are not fetched: the registry serves the blob', async () => {
  const seen: string[] = [];
  const foreign = http.createServer((req, res) => {
    seen.push(req.url!);
    res.writeHead(500).end();
  });
  await new Promise<void>((r) => foreign.listen(0, '127.0.0.1', r));
  try {
    const m = JSON.parse(img.manifest.toString());
    m.layers[1] = {
      ...m.layers[1],
      mediaType: MediaType.OciLayerNondistGzip,
      urls: [`http://127.0.0.1:${(foreign.address() as { port: number }).port}/layer`],
    };
    withManifest(m);
    const rec = await pullImage(svc.images, hosts, ref());
    assert.equal(readFileIn(svc.images, rec.chainIds[1]!, 'etc/top'), 'top\n');
    assert.deepEqual(seen, []);
  } finally {
    await new Promise<void>((r) => foreign.close(() => r()));
  }
});
