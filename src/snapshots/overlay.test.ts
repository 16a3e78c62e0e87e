import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
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
  assert.deepEqual(overlayDirs(m!).lower, [...shallow].reverse().map((c) => s.layerDir(c)));
  const deep = await makeLayers(s, 60, 'deep');
  const [d] = await s.prepare('c2', deep);
  const lower = overlayDirs(d!).lower;
  assert.ok(lower.every((l) => path.dirname(l) === s.linksDir));
  assert.equal(await fsp.realpath(lower[0]!), s.layerDir(deep[59]!));
  await s.removeLayer(deep[59]!);
  await assert.rejects(fsp.lstat(lower[0]!), { code: 'ENOENT' });
});
