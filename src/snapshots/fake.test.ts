import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { makeLayers, snapshotterConformance } from './conformance.ts';
import { FakeMounter, FakeSnapshotter } from './fake.ts';

snapshotterConformance('fake', async () => new FakeSnapshotter(await fsp.mkdtemp(path.join(os.tmpdir(), 'keel-fsnap-'))));

test("the fake mounter puts a snapshot's layers into the target, top layer winning, and empties it at unmount", async () => {
  const s = new FakeSnapshotter(await fsp.mkdtemp(path.join(os.tmpdir(), 'keel-fsnap-')));
  await s.init();
  const chain = await makeLayers(s, 3);
  await fsp.writeFile(path.join(s.layerDir(chain[2]!), 'f0'), 'over');
  const ms = await s.prepare('c', chain);
  const target = await fsp.mkdtemp(path.join(os.tmpdir(), 'keel-fmnt-'));
  const m = new FakeMounter();
  await m.mount(ms, target, { volatile: true });
  assert.equal(await fsp.readFile(path.join(target, 'f0'), 'utf8'), 'over');
  assert.equal(await fsp.readFile(path.join(target, 'f1'), 'utf8'), '1');
  await m.unmount(target);
  assert.deepEqual(await fsp.readdir(target), []);
  assert.deepEqual(m.calls, [
    ['mount', target, true],
    ['unmount', target],
  ]);
});
