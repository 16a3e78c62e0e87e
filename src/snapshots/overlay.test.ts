import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
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

test('a layer\'s files are synced to disk before its layer.json, which is before the layer is renamed into place', async () => {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'keel-snap-'));
  try {
    const mod = fileURLToPath(new URL('./overlay.ts', import.meta.url));
    const digest = sha256('synced');
    const script = `import { Snapshotter } from ${JSON.stringify(mod)}; import fsp from 'node:fs/promises';
      const s = new Snapshotter(${JSON.stringify(root)}); await s.init();
      await s.createLayer({ chainId: '${digest}', diffId: '${digest}', parent: null }, async (dir) => { await fsp.writeFile(dir + '/f', 'x'); return { diffId: '${digest}', size: 1 }; });`;
    const trace = path.join(root, 'trace');
    const r = spawnSync('strace', ['-f', '-y', '-e', 'trace=syncfs,fsync,rename,renameat,renameat2', '-o', trace, process.execPath, '--input-type=module', '-e', script]);
    assert.equal(r.status, 0, String(r.stderr));
    const lines = (await fsp.readFile(trace, 'utf8')).split('\n');
    const syncfs = lines.findIndex((l) => /syncfs\(\d+<.*\/tmp\/[0-9a-f]+\/diff>\)\s+= 0/.test(l));
    const meta = lines.findIndex((l) => /rename.*layer\.json.*= 0/.test(l));
    const commit = lines.findIndex((l) => new RegExp(`rename.*/tmp/[0-9a-f]+", ".*/layers/${digest.slice(7)}".*= 0`).test(l));
    const dirSync = lines.findIndex((l, i) => i > commit && /fsync\(\d+<.*\/layers>\)\s+= 0/.test(l));
    assert.ok(syncfs >= 0 && meta > syncfs && commit > meta && dirSync > commit, lines.filter((l) => /syncfs|rename|fsync/.test(l)).join('\n'));
  } finally {
    await fsp.rm(root, { recursive: true, force: true });
  }
});
