/**
 * Root-only parts of volumes/ without containers: local-driver option
 * volumes really mounted (tmpfs, bind), start-time setup on a real rootfs
 * directory (copy-up with ownership and modes, scoped destinations).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { VolumeService } from '../../src/volumes/index.ts';
import { isMountpoint, mountsBelow, unmount } from '../../src/volumes/mount.ts';
import { requirePrerequisites } from '../helpers/prereqs.ts';

requirePrerequisites(['busybox']);

function tempDir(t: { after: (fn: () => Promise<void> | void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-voltest-'));
  t.after(async () => {
    for (const m of await mountsBelow(dir)) await unmount(m);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

function fstypeOf(p: string): string | undefined {
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f[4] === p) return f[f.indexOf('-') + 1];
  }
  return undefined;
}

test('a type=tmpfs volume is mounted while containers run with it and unmounted after the last', async (t) => {
  const vols = new VolumeService(tempDir(t));
  await vols.create('tv', { options: { type: 'tmpfs', device: 'tmpfs', o: 'size=4m' } });
  const data = vols.mountpoint('tv');
  await vols.store.acquire('tv', 'c1');
  await vols.store.acquire('tv', 'c2');
  await vols.store.activate('tv', 'c1');
  assert.equal(fstypeOf(data), 'tmpfs');
  await vols.store.activate('tv', 'c2');
  assert.equal((await mountsBelow(data)).length, 1, 'mounted once');
  fs.writeFileSync(path.join(data, 'f'), 'x');
  await vols.store.deactivate('tv', 'c1');
  assert.ok(await isMountpoint(data), 'still used by c2');
  await vols.store.deactivate('tv', 'c2');
  assert.equal(await isMountpoint(data), false);
  assert.equal(fs.existsSync(path.join(data, 'f')), false, 'tmpfs content went with the mount');
});

test('a type=none o=bind volume shows the device dir; rm never deletes through the mount', async (t) => {
  const dir = tempDir(t);
  const host = path.join(dir, 'hostdir');
  fs.mkdirSync(host);
  fs.writeFileSync(path.join(host, 'keep'), 'precious');
  const vols = new VolumeService(path.join(dir, 'root'));
  await vols.create('bv', { options: { type: 'none', o: 'bind', device: host } });
  await vols.store.acquire('bv', 'c1');
  await vols.store.activate('bv', 'c1');
  assert.equal(fs.readFileSync(path.join(vols.mountpoint('bv'), 'keep'), 'utf8'), 'precious');
  await assert.rejects(vols.remove('bv'), /volume is in use - \[c1\]/);
  // The container vanished without a teardown (daemon crash): reconcile forgets it and unmounts.
  await vols.reconcile([], []);
  assert.equal(await isMountpoint(vols.mountpoint('bv')), false);
  await vols.store.acquire('bv', 'c2');
  await vols.store.activate('bv', 'c2');
  await vols.store.release('bv', 'c2');
  // Still mounted (no teardown happened), no refs: removal unmounts first.
  assert.ok(await isMountpoint(vols.mountpoint('bv')));
  await vols.remove('bv');
  assert.equal(fs.readFileSync(path.join(host, 'keep'), 'utf8'), 'precious');
});

test('a mount failure names the volume and leaves it unmounted', async (t) => {
  const dir = tempDir(t);
  const vols = new VolumeService(dir);
  await vols.create('broken', { options: { type: 'none', o: 'bind', device: path.join(dir, 'nope') } });
  await assert.rejects(vols.store.activate('broken', 'c1'), /error while mounting volume '.*broken\/_data'/);
  assert.equal(await isMountpoint(vols.mountpoint('broken')), false);
  assert.deepEqual((await vols.inspect('broken')).active, []);
});

test('setup: copy-up keeps ownership and modes, binds are never filled, escaping symlinks stay inside', async (t) => {
  const dir = tempDir(t);
  const rootfs = path.join(dir, 'rootfs');
  const host = path.join(dir, 'host');
  fs.mkdirSync(host);
  fs.mkdirSync(path.join(rootfs, 'data/sub'), { recursive: true });
  fs.writeFileSync(path.join(rootfs, 'data/sub/f'), 'image-content');
  fs.chownSync(path.join(rootfs, 'data/sub/f'), 1234, 5678);
  fs.chmodSync(path.join(rootfs, 'data/sub/f'), 0o640);
  fs.chownSync(path.join(rootfs, 'data'), 42, 43);
  fs.chmodSync(path.join(rootfs, 'data'), 0o750);
  fs.symlinkSync('f', path.join(rootfs, 'data/sub/link'));
  fs.mkdirSync(path.join(rootfs, 'bound'));
  fs.writeFileSync(path.join(rootfs, 'bound/img'), 'x');
  fs.symlinkSync('../../../../..' + host, path.join(rootfs, 'escape'));
  const vols = new VolumeService(path.join(dir, 'root'));
  const mounts = await vols.prepareContainerMounts('c1', {
    binds: [`${host}:/bound`, 'named:/data', `${path.join(dir, 'made')}:/made:ro`],
    imageVolumes: ['/data', '/escape/inner'],
    tmpfs: { '/run': 'size=1m' },
  });
  const oci = await vols.setupContainerMounts('c1', rootfs, mounts);
  const vol = vols.mountpoint('named');
  assert.equal(fs.readFileSync(path.join(vol, 'sub/f'), 'utf8'), 'image-content');
  const st = fs.statSync(path.join(vol, 'sub/f'));
  assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [1234, 5678, 0o640]);
  assert.equal(fs.readlinkSync(path.join(vol, 'sub/link')), 'f');
  const root = fs.statSync(vol);
  assert.deepEqual([root.uid, root.gid, root.mode & 0o7777], [42, 43, 0o750]);
  assert.deepEqual(fs.readdirSync(host), [], 'a bind source is never filled');
  assert.ok(fs.statSync(path.join(dir, 'made')).isDirectory(), '-v creates a missing host dir');
  // The image VOLUME under an escaping symlink landed inside the rootfs.
  const esc = oci.find((m) => m.destination.endsWith('/inner'))!;
  assert.equal(esc.destination, host + '/inner');
  assert.ok(fs.statSync(path.join(rootfs, host, 'inner')).isDirectory());
  assert.deepEqual(fs.readdirSync(host), []);
  const byDest = new Map(oci.map((m) => [m.destination, m]));
  assert.deepEqual(byDest.get('/made'), { destination: '/made', type: 'bind', source: path.join(dir, 'made'), options: ['rbind', 'rprivate', 'ro'] });
  assert.equal(byDest.get('/data')!.source, vol);
  assert.equal(byDest.get('/run')!.type, 'tmpfs');
  assert.ok(byDest.get('/run')!.options!.includes('size=1m'));
  // A volume that has data is not filled again.
  fs.writeFileSync(path.join(rootfs, 'data/new'), 'later');
  await vols.setupContainerMounts('c1', rootfs, mounts);
  assert.equal(fs.existsSync(path.join(vol, 'new')), false);
  await vols.teardownContainerMounts('c1', mounts);
  await vols.releaseContainerMounts('c1', mounts, { removeAnonymous: true });
  assert.deepEqual(
    (await vols.list()).map((v) => v.name),
    ['named'],
  );
});
