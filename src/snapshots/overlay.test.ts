import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { sha256 } from '../oci/digest.ts';
import { chainIds, Snapshotter } from './overlay.ts';
import { makeLayers, overlayDirs, snapshotterConformance } from './conformance.ts';

async function snapshotter() {
  const s = new Snapshotter(await fsp.mkdtemp(path.join(os.tmpdir(), 'keel-snap-')));
  await s.init();
  return s;
}

test('chain IDs follow the OCI image spec', () => {
  const [a, b] = [sha256('a'), sha256('b')];
  assert.deepEqual(chainIds([a, b]), [a, sha256(`${a} ${b}`)]);
});

snapshotterConformance('overlay', async () => new Snapshotter(await fsp.mkdtemp(path.join(os.tmpdir(), 'keel-snap-'))));

test('layer dirs are named in full while they fit one page, through short links beyond', async () => {
  const s = await snapshotter();
  const shallow = await makeLayers(s, 3);
  const [m] = await s.prepare('c1', shallow);
  assert.deepEqual(
    overlayDirs(m!).lower,
    [...shallow].reverse().map((c) => s.layerDir(c)),
  );
  const deep = await makeLayers(s, 60, 'deep');
  const [d] = await s.prepare('c2', deep);
  const lower = overlayDirs(d!).lower;
  assert.ok(lower.every((l) => path.dirname(l) === s.linksDir));
  assert.equal(await fsp.realpath(lower[0]!), s.layerDir(deep[59]!));
  await s.removeLayer(deep[59]!);
  await assert.rejects(fsp.lstat(lower[0]!), { code: 'ENOENT' });
});

test("a layer's files are synced to disk before its layer.json, which is before the layer is renamed into place", async () => {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'keel-snap-'));
  try {
    const mod = fileURLToPath(new URL('./overlay.ts', import.meta.url));
    const digest = sha256('synced');
    const script = `import { Snapshotter } from ${JSON.stringify(mod)}; import fsp from 'node:fs/promises';
      const s = new Snapshotter(${JSON.stringify(root)}); await s.init();
      await s.createLayer({ chainId: '${digest}', diffId: '${digest}', parent: null }, async (dir) => { await fsp.writeFile(dir + '/f', 'x'); return { diffId: '${digest}', size: 1 }; });`;
    const trace = path.join(root, 'trace');
    const r = spawnSync('strace', [
      '-f',
      '-y',
      '-e',
      'trace=syncfs,fsync,rename,renameat,renameat2',
      '-o',
      trace,
      process.execPath,
      '--input-type=module',
      '-e',
      script,
    ]);
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
