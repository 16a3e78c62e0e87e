import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { startSwapper } from '../archive/testrace.ts';
import { close, isDir, isFile } from '../common/openat2.ts';
import { openDestination } from './destination.ts';
import { resolveDestination } from './setup.ts';

function tempRoot(t: TestContext): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-dest-'));
  t.after(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

test('openDestination: an O_PATH fd of what it resolved, FIFOs and devices refused without being opened', (t) => {
  const rootfs = path.join(tempRoot(t), 'rootfs');
  fs.mkdirSync(path.join(rootfs, 'etc'), { recursive: true });
  fs.symlinkSync('/etc', path.join(rootfs, 'abs'));
  fs.writeFileSync(path.join(rootfs, 'etc/hosts'), '');
  const rootFd = fs.openSync(rootfs, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  t.after(() => fs.closeSync(rootFd));
  const d = openDestination(rootFd, '/abs/hosts', { create: true, asFile: true })!;
  assert.equal(d.rel, 'etc/hosts');
  assert.ok(isFile(d.stat));
  close(d.fd);
  const r = openDestination(rootFd, '/', { create: true })!;
  assert.equal(r.rel, '');
  assert.ok(isDir(r.stat));
  close(r.fd);
  // A FIFO would block an open for reading: O_PATH never opens it, and it is no mount destination.
  fs.mkdirSync(path.join(rootfs, 'dev'));
  assert.equal(spawnSync('mkfifo', [path.join(rootfs, 'dev/pipe')]).status, 0);
  assert.throws(() => openDestination(rootFd, '/dev/pipe', { create: true }), /cannot mount on "\/dev\/pipe" in the container: it is a FIFO or a device/);
  assert.throws(() => openDestination(rootFd, '/dev/pipe/x', { create: true }), /\/dev\/pipe is not a directory/);
  assert.throws(() => openDestination(rootFd, '/../x', { create: true }), /climbs above the root/);
});

test('resolveDestination against a directory swapped with a symlink out of the rootfs: nothing made or found outside', async (t) => {
  const base = tempRoot(t);
  const rootfs = path.join(base, 'rootfs');
  const outside = path.join(base, 'outside');
  fs.mkdirSync(path.join(rootfs, 'race/d'), { recursive: true });
  fs.mkdirSync(outside);
  // s is, at every instant, either the directory or a link to the host directory (as a path absolute on the host, and as '..'s).
  fs.symlinkSync(outside, path.join(rootfs, 'race/s'));
  fs.mkdirSync(path.join(rootfs, 'race2/d'), { recursive: true });
  fs.symlinkSync('../../../outside', path.join(rootfs, 'race2/s'));
  const swapper = await startSwapper(path.join(rootfs, 'race/d'), path.join(rootfs, 'race/s'), {
    more: [[path.join(rootfs, 'race2/d'), path.join(rootfs, 'race2/s')]],
  });
  let swaps: number;
  const made: string[] = [];
  try {
    for (let i = 0; i < 600; i++) {
      const dir = i % 2 ? 'race' : 'race2';
      made.push(resolveDestination(rootfs, `/${dir}/d/sub${i}/deeper`, { create: true, asFile: i % 3 === 0 })!);
    }
  } finally {
    swaps = await swapper.stop();
  }
  assert.ok(swaps > 100, `the race ran (${swaps} swaps)`);
  assert.deepEqual(fs.readdirSync(outside), []);
  // Put the directories back where they were, then look: wherever a link led, what was made is inside the rootfs.
  for (const dir of ['race', 'race2']) {
    if (fs.lstatSync(path.join(rootfs, dir, 'd')).isSymbolicLink()) {
      fs.renameSync(path.join(rootfs, dir, 'd'), path.join(rootfs, dir, 'tmp'));
      fs.renameSync(path.join(rootfs, dir, 's'), path.join(rootfs, dir, 'd'));
      fs.renameSync(path.join(rootfs, dir, 'tmp'), path.join(rootfs, dir, 's'));
    }
  }
  for (const [i, rel] of made.entries()) {
    assert.ok(rel.endsWith(`/sub${i}/deeper`), `round ${i}: ${rel}`);
    const st = fs.lstatSync(path.join(rootfs, rel), { throwIfNoEntry: false });
    assert.ok(st && (i % 3 === 0 ? st.isFile() : st.isDirectory()), `round ${i}: ${rel} was not made inside`);
  }
});
