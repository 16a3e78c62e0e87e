import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { sha256 } from '../oci/digest.ts';
import { chainIds, Snapshotter } from './overlay.ts';

async function snapshotter() {
  const s = new Snapshotter(await fsp.mkdtemp(path.join(os.tmpdir(), 'keel-snap-')));
  await s.init();
  return s;
}

test('chain IDs follow the OCI image spec', () => {
  const [a, b] = [sha256('a'), sha256('b')];
  assert.deepEqual(chainIds([a, b]), [a, sha256(`${a} ${b}`)]);
});

test('a layer appears only when its fill succeeds and matches its diff_id', async () => {
  const s = await snapshotter();
  const diffId = sha256('layer');
  await assert.rejects(
    s.createLayer({ chainId: diffId, diffId, parent: null }, async (dir) => {
      await fsp.writeFile(path.join(dir, 'half'), 'x');
      throw new Error('interrupted');
    }),
    /interrupted/,
  );
  await assert.rejects(
    s.createLayer({ chainId: diffId, diffId, parent: null }, async () => ({ diffId: sha256('other'), size: 1 })),
    /does not match its diff_id/,
  );
  assert.deepEqual(await s.listLayers(), []);
  assert.deepEqual(await fsp.readdir(path.join(s.root, 'tmp')), []);
  const meta = await s.createLayer({ chainId: diffId, diffId, parent: null }, async (dir) => {
    await fsp.writeFile(path.join(dir, 'f'), 'x');
    return { diffId, size: 10 };
  });
  assert.equal(meta.size, 10);
  assert.deepEqual(await s.listLayers(), [diffId]);
  assert.equal(await fsp.readFile(path.join(s.layerDir(diffId), 'f'), 'utf8'), 'x');
  await s.removeLayer(diffId);
  assert.deepEqual(await s.listLayers(), []);
});

test('snapshots describe an overlay over their chain, top layer first', async () => {
  const s = await snapshotter();
  const [a, b] = chainIds([sha256('a'), sha256('b')]);
  const [m] = await s.prepare('c1', [a!, b!]);
  assert.equal(m!.type, 'overlay');
  assert.equal(m!.options[0], `lowerdir=${b!.slice(7)}/diff:${a!.slice(7)}/diff`);
  assert.deepEqual(await s.chainOf('c1'), [a, b]);
  assert.throws(() => s.upperDir('../escape'), /invalid snapshot key/);
  await s.remove('c1');
  assert.deepEqual(await s.listActive(), []);
});
