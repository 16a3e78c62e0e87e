import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { after, before, test } from 'node:test';
import { packTar } from '../../src/archive/testtar.ts';
import { ImageService } from '../../src/images/service.ts';
import { Snapshotter } from '../../src/snapshots/overlay.ts';
import { TestDaemon } from '../helpers/daemon.ts';

/** A daemon whose layers may unpack to 1 MiB and images to 1.5 MiB, fed archives over those limits by `docker load`. */
const d = new TestDaemon('keel-limits');
before(() => d.start(['--max-layer-size', '1m', '--max-image-size', '1536k']));
after(() => d.cleanup());

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A docker-save archive: each layer a gzip'd tar of one file of `sizes[i]` zero bytes (tiny compressed), plus an unused member. */
async function archive(sizes: number[], extra?: { name: string; body: Buffer }): Promise<Buffer> {
  const layers: { name: string; gz: Buffer; diffId: string }[] = [];
  for (const [i, n] of sizes.entries()) {
    const tar = await packTar([{ name: `f${i}`, body: Buffer.alloc(n) }]);
    layers.push({ name: `l${i}/layer.tar`, gz: zlib.gzipSync(tar, { level: 9 }), diffId: sha(tar) });
  }
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) } }),
  );
  const manifest = Buffer.from(JSON.stringify([{ Config: 'config.json', RepoTags: ['bomb:1'], Layers: layers.map((l) => l.name) }]));
  return packTar([
    ...layers.map((l) => ({ name: l.name, body: l.gz })),
    ...(extra ? [extra] : []),
    { name: 'config.json', body: config },
    { name: 'manifest.json', body: manifest },
  ]);
}

/** Nothing registered and nothing left: no image, no layer, no blob, no temp or ingest file. */
function assertNothingLeft(): void {
  const images = new ImageService(d.dataRoot, new Snapshotter(path.join(d.dataRoot, 'overlay')));
  const list = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir) : []);
  assert.deepEqual(list(images.snapshots.layersDir), [], 'layers');
  assert.deepEqual(list(path.join(images.snapshots.root, 'tmp')), [], 'snapshot temp dirs');
  assert.deepEqual(list(images.content.blobDir), [], 'blobs');
  assert.deepEqual(list(images.content.ingestDir), [], 'ingests');
}

test('a gzip bomb over --max-layer-size is refused by load, with nothing registered and nothing left', async () => {
  const bomb = await archive([64 << 20]);
  assert.ok(bomb.length < 1 << 20, `the bomb is small compressed (${bomb.length} bytes)`);
  const r = await d.docker(['load'], { input: bomb });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /declares 67108864 bytes, over the layer size limit|layer is larger than 1048576 bytes uncompressed/);
  assert.equal((await d.docker(['images', '-q'])).stdout, '');
  assertNothingLeft();
  assert.ok(await d.ping(), 'the daemon still answers');
});

test('layers each under the layer limit but over --max-image-size together are refused', async () => {
  const r = await d.docker(['load'], { input: await archive([800 << 10, 800 << 10]) });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /image is larger than the 1572864-byte limit uncompressed/);
  assert.equal((await d.docker(['images', '-q'])).stdout, '');
  assertNothingLeft();
});

test('an archive member no image uses is never unpacked, and is not kept', async () => {
  // A bomb beside a good image: were it unpacked it would fail the layer limit.
  const unused = zlib.gzipSync(await packTar([{ name: 'big', body: Buffer.alloc(64 << 20) }]), { level: 9 });
  const r = await d.docker(['load'], { input: await archive([1000], { name: 'unused/layer.tar', body: unused }) });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Loaded image: bomb:1/);
  const images = new ImageService(d.dataRoot, new Snapshotter(path.join(d.dataRoot, 'overlay')));
  assert.ok(!fs.readdirSync(images.content.blobDir).includes(sha(unused).slice(7)), 'the unused member is not kept');
  assert.deepEqual(fs.readdirSync(path.join(images.snapshots.root, 'tmp')), []);
  await d.docker(['rmi', 'bomb:1']);
});
