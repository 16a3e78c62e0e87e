import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { pullImage } from '../../src/images/pull.ts';
import { pushImage } from '../../src/images/push.ts';
import { RegistryHosts } from '../../src/registry/hosts.ts';
import type { ProgressMessage } from '../../src/registry/progress.ts';
import { chainIds } from '../../src/snapshots/overlay.ts';
import {
  buildImage,
  busyboxLayer,
  newImageService,
  readFileIn,
  skopeo,
  skopeoPush,
  startRegistry,
  tempDir,
  writeLayout,
  type BuiltImage,
  type Registry,
} from './helpers.ts';

let regA: Registry;
let regB: Registry;
let work: string;
let single: BuiltImage;
let amd: BuiltImage;
let arm: BuiltImage;
let indexDigest: string;
const hosts = () => new RegistryHosts({ useCredentialStore: false, retryBaseMs: 10 });

before(async () => {
  [regA, regB] = await Promise.all([startRegistry(), startRegistry()]);
  work = await tempDir('layouts');
  single = await buildImage([await busyboxLayer('single'), [{ name: 'etc/second', body: 'two\n' }]]);
  await writeLayout(path.join(work, 'single'), '1', [single]);
  await skopeoPush(path.join(work, 'single'), '1', `${regA.host}/test/bb:1`);
  await skopeoPush(path.join(work, 'single'), '1', `${regA.host}/test/bb:2`);
  amd = await buildImage([await busyboxLayer('amd64')], { os: 'linux', architecture: 'amd64' });
  arm = await buildImage([await busyboxLayer('arm64')], { os: 'linux', architecture: 'arm64' });
  indexDigest = await writeLayout(
    path.join(work, 'multi'),
    'm',
    [amd, arm],
    [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64' },
    ],
  );
  await skopeoPush(path.join(work, 'multi'), 'm', `${regA.host}/test/multi:m`, true);
});

after(async () => {
  await Promise.all([regA?.stop(), regB?.stop()]);
  await fsp.rm(work, { recursive: true, force: true });
});

test('pull a skopeo-pushed image: layers unpacked, names, docker progress messages', async () => {
  const { images, cleanup } = await newImageService();
  const reg = hosts();
  try {
    const msgs: ProgressMessage[] = [];
    const rec = await pullImage(images, reg, `${regA.host}/test/bb:1`, { onProgress: (m) => msgs.push(m) });
    const chain = chainIds(single.layers.map((l) => l.diffId));
    assert.deepEqual(rec.chainIds, chain);
    assert.equal(readFileIn(images, chain[0]!, 'etc/marker'), 'single\n');
    assert.equal(readFileIn(images, chain[1]!, 'etc/second'), 'two\n');
    assert.equal(fs.readlinkSync(path.join(images.snapshots.layerDir(chain[0]!), 'bin/ls')), 'busybox');
    assert.equal(fs.statSync(path.join(images.snapshots.layerDir(chain[0]!), 'bin/busybox')).size, fs.statSync('/bin/busybox').size);
    assert.deepEqual(images.store.repoTags(rec.id), [`${regA.host}/test/bb:1`]);
    assert.deepEqual(images.store.repoDigests(rec.id), [`${regA.host}/test/bb@${single.manifestDigest}`]);
    assert.equal(rec.manifest.digest, single.manifestDigest);
    const statuses = msgs.map((m) => (m.id ? `${m.id}: ${m.status}` : m.status));
    const l0 = single.layers[0]!.desc.digest.slice(7, 19);
    assert.equal(statuses[0], '1: Pulling from test/bb');
    for (const s of ['Pulling fs layer', 'Verifying Checksum', 'Download complete', 'Pull complete']) assert.ok(statuses.includes(`${l0}: ${s}`), s);
    assert.ok(msgs.some((m) => m.status === 'Downloading' && m.progressDetail?.total === single.layers[0]!.desc.size && /^\[=+>\s*\] /.test(m.progress!)));
    assert.equal(statuses.at(-2), `Digest: ${single.manifestDigest}`);
    assert.equal(statuses.at(-1), `Status: Downloaded newer image for ${regA.host}/test/bb:1`);

    const again: ProgressMessage[] = [];
    await pullImage(images, reg, `${regA.host}/test/bb:1`, { onProgress: (m) => again.push(m) });
    assert.deepEqual(
      again.map((m) => m.status),
      ['Pulling from test/bb', `Digest: ${single.manifestDigest}`, `Status: Image is up to date for ${regA.host}/test/bb:1`],
    );

    // Same layers under another tag: nothing downloaded.
    const third: ProgressMessage[] = [];
    await pullImage(images, reg, `${regA.host}/test/bb:2`, { onProgress: (m) => third.push(m) });
    assert.equal(third.filter((m) => m.status === 'Already exists').length, 2);
    assert.ok(!third.some((m) => m.status === 'Downloading'));
    assert.equal(third.at(-1)!.status, `Status: Downloaded newer image for ${regA.host}/test/bb:2`);
  } finally {
    reg.close();
    await cleanup();
  }
});

test('pull of an unknown tag or repository is a NOT_FOUND before any progress', async () => {
  const { images, cleanup } = await newImageService();
  const reg = hosts();
  try {
    const msgs: ProgressMessage[] = [];
    await assert.rejects(pullImage(images, reg, `${regA.host}/test/nope:1`, { onProgress: (m) => msgs.push(m) }), {
      code: 'NOT_FOUND',
      message: `manifest for ${regA.host}/test/nope:1 not found: manifest unknown: manifest unknown`,
    });
    await assert.rejects(pullImage(images, reg, `${regA.host}/test/bb:nosuch`), { code: 'NOT_FOUND' });
    assert.equal(msgs.length, 0);
    assert.equal(images.store.list().length, 0);
  } finally {
    reg.close();
    await cleanup();
  }
});

test('multi-arch index: platform chosen, index digest recorded, --platform honoured', async () => {
  const a = await newImageService();
  const b = await newImageService();
  const reg = hosts();
  try {
    const recA = await pullImage(a.images, reg, `${regA.host}/test/multi:m`);
    assert.equal(recA.manifest.digest, amd.manifestDigest);
    assert.equal(readFileIn(a.images, recA.chainIds[0]!, 'etc/marker'), 'amd64\n');
    assert.deepEqual(
      a.images.store.repoDigests(recA.id).sort(),
      [`${regA.host}/test/multi@${amd.manifestDigest}`, `${regA.host}/test/multi@${indexDigest}`].sort(),
    );
    const recB = await pullImage(b.images, reg, `${regA.host}/test/multi:m`, { platform: { os: 'linux', architecture: 'arm64' } });
    assert.equal(recB.manifest.digest, arm.manifestDigest);
    assert.equal(readFileIn(b.images, recB.chainIds[0]!, 'etc/marker'), 'arm64\n');
    await assert.rejects(pullImage(b.images, reg, `${regA.host}/test/multi:m`, { platform: { os: 'linux', architecture: 's390x' } }), {
      code: 'NOT_FOUND',
      message: /no matching manifest for linux\/s390x/,
    });
    // By digest: the index digest names the image, no tag.
    const c = await newImageService();
    const recC = await pullImage(c.images, reg, `${regA.host}/test/multi@${indexDigest}`);
    assert.equal(recC.id, recA.id);
    assert.deepEqual(c.images.store.repoTags(recC.id), []);
    await c.cleanup();
  } finally {
    reg.close();
    await a.cleanup();
    await b.cleanup();
  }
});

test('a docker.io pull goes through the configured mirror', async () => {
  const { images, cleanup } = await newImageService();
  const reg = new RegistryHosts({ useCredentialStore: false, mirrors: { 'docker.io': [`http://${regA.host}`] } });
  try {
    const msgs: ProgressMessage[] = [];
    const rec = await pullImage(images, reg, 'test/bb:1', { onProgress: (m) => msgs.push(m) });
    assert.deepEqual(images.store.repoTags(rec.id), ['test/bb:1']);
    assert.equal(msgs.at(-1)!.status, 'Status: Downloaded newer image for test/bb:1');
  } finally {
    reg.close();
    await cleanup();
  }
});

test('pull --all-tags pulls every tag', async () => {
  const { images, cleanup } = await newImageService();
  const reg = hosts();
  try {
    const msgs: ProgressMessage[] = [];
    await pullImage(images, reg, `${regA.host}/test/bb`, { allTags: true, onProgress: (m) => msgs.push(m) });
    const rec = images.store.resolve(`${regA.host}/test/bb:1`);
    assert.deepEqual(images.store.repoTags(rec.id).sort(), [`${regA.host}/test/bb:1`, `${regA.host}/test/bb:2`]);
    assert.equal(msgs.at(-1)!.status, `Status: Downloaded newer image for ${regA.host}/test/bb`);
    await assert.rejects(pullImage(images, reg, `${regA.host}/test/bb:1`, { allTags: true }), { code: 'INVALID_ARGUMENT' });
  } finally {
    reg.close();
    await cleanup();
  }
});

test('push: monolithic, chunked and cross-repo mount; skopeo reads the result back', async () => {
  const { images, cleanup } = await newImageService();
  const reg = hosts();
  const chunkedReg = new RegistryHosts({ useCredentialStore: false, uploadChunkSize: 256 << 10 });
  const out = await tempDir('skopeo-out');
  try {
    const rec = await pullImage(images, reg, `${regA.host}/test/bb:1`);
    // Cross-repository mount inside registry A.
    await images.tag(`${regA.host}/test/bb:1`, `${regA.host}/test/copy:1`);
    const mounted: ProgressMessage[] = [];
    await pushImage(images, reg, `${regA.host}/test/copy:1`, { onProgress: (m) => mounted.push(m) });
    assert.equal(mounted[0]!.status, `The push refers to repository [${regA.host}/test/copy]`);
    assert.equal(mounted.filter((m) => m.status === 'Mounted from test/bb').length, 2);
    // Registry B has nothing: real uploads, chunked (busybox is ~1 MB gzip'd).
    await images.tag(`${regA.host}/test/bb:1`, `${regB.host}/test/chunked:1`);
    const pushed: ProgressMessage[] = [];
    await pushImage(images, chunkedReg, `${regB.host}/test/chunked:1`, { onProgress: (m) => pushed.push(m) });
    const diff0 = (await images.config(rec)).rootfs.diff_ids[0]!.slice(7, 19);
    assert.ok(pushed.some((m) => m.id === diff0 && m.status === 'Preparing'));
    assert.ok(pushed.some((m) => m.id === diff0 && m.status === 'Pushing'));
    assert.ok(pushed.some((m) => m.id === diff0 && m.status === 'Pushed'));
    assert.ok(pushed.some((m) => m.status === `1: digest: ${single.manifestDigest} size: ${single.manifest.length}`));
    assert.deepEqual(pushed.at(-1)!.aux, { Tag: '1', Digest: single.manifestDigest, Size: single.manifest.length });
    // Monolithic upload to a fresh repo on B from a service that never saw B (no mount candidates).
    const other = await newImageService();
    await pullImage(other.images, reg, `${regA.host}/test/bb:1`);
    await other.images.tag(`${regA.host}/test/bb:1`, `${regB.host}/test/mono:1`);
    const mono: ProgressMessage[] = [];
    await pushImage(other.images, reg, `${regB.host}/test/mono:1`, { onProgress: (m) => mono.push(m) });
    // Blob existence is per repository in the distribution API: both layers are uploaded.
    assert.equal(mono.filter((m) => m.status === 'Pushed').length, 2);
    const monoInspect = JSON.parse(await skopeo(['inspect', '--tls-verify=false', `docker://${regB.host}/test/mono:1`])) as { Digest: string };
    assert.equal(monoInspect.Digest, single.manifestDigest);
    await other.cleanup();
    // Pushing again: everything exists.
    const again: ProgressMessage[] = [];
    await pushImage(images, reg, `${regB.host}/test/chunked:1`, { onProgress: (m) => again.push(m) });
    assert.equal(again.filter((m) => m.status === 'Layer already exists').length, 2);

    const inspect = JSON.parse(await skopeo(['inspect', '--tls-verify=false', `docker://${regB.host}/test/chunked:1`])) as { Digest: string; Layers: string[] };
    assert.equal(inspect.Digest, single.manifestDigest);
    assert.deepEqual(
      inspect.Layers,
      single.layers.map((l) => l.desc.digest),
    );
    await skopeo(['copy', '--src-tls-verify=false', `docker://${regB.host}/test/chunked:1`, `dir:${out}`]);
    assert.ok(fs.existsSync(path.join(out, single.layers[0]!.desc.digest.slice(7))));
    assert.deepEqual(images.store.repoDigests(rec.id).includes(`${regB.host}/test/chunked@${single.manifestDigest}`), true);
    await assert.rejects(pushImage(images, reg, `${regB.host}/test/none:1`), {
      code: 'NOT_FOUND',
      message: `An image does not exist locally with the tag: ${regB.host}/test/none:1`,
    });
  } finally {
    reg.close();
    chunkedReg.close();
    await cleanup();
    await fsp.rm(out, { recursive: true, force: true });
  }
});
