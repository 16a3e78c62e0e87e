import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { resolveDestination } from './setup.ts';
import { VolumeService } from './service.ts';

function tempRoot(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-vol-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('create, inspect, list with filters, idempotent create', async (t) => {
  const root = tempRoot(t);
  const vols = new VolumeService(root);
  const v = await vols.create('apires-vol', { labels: { team: 'a' } });
  assert.equal(v.name, 'apires-vol');
  assert.equal(v.driver, 'local');
  assert.match(v.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.deepEqual(v.labels, { team: 'a' });
  assert.equal(v.options, null);
  assert.ok(fs.statSync(vols.mountpoint('apires-vol')).isDirectory());
  assert.equal(vols.mountpoint('apires-vol'), path.join(root, 'volumes/apires-vol/_data'));
  assert.deepEqual(await vols.create('apires-vol'), v, 'create of an existing name returns it unchanged');
  const anon = await vols.create(undefined);
  assert.match(anon.name, /^[0-9a-f]{64}$/);
  assert.equal(anon.anonymous, true);
  await vols.create('other', { options: { type: 'tmpfs', device: 'tmpfs', o: 'size=1m' } });

  const names = async (f: Record<string, string[]>) => (await vols.list(f)).map((x) => x.name).sort();
  assert.deepEqual(await names({ label: ['team=a'] }), ['apires-vol']);
  assert.deepEqual(await names({ label: ['team'] }), ['apires-vol']);
  assert.deepEqual(await names({ name: ['apires'] }), ['apires-vol']);
  assert.deepEqual(await names({ name: ['^oth'] }), ['other']);
  assert.deepEqual(await names({ driver: ['local'] }), [anon.name, 'apires-vol', 'other'].sort());
  await vols.store.acquire('other', 'c1');
  assert.deepEqual(await names({ dangling: ['true'] }), [anon.name, 'apires-vol'].sort());
  assert.deepEqual(await names({ dangling: ['false'] }), ['other']);
  await assert.rejects(vols.list({ bogus: ['x'] }), /invalid filter 'bogus'/);
  await assert.rejects(vols.list({ dangling: ['maybe'] }), /invalid filter 'dangling=maybe'/);
});

test('create validates names, drivers and local driver options', async (t) => {
  const vols = new VolumeService(tempRoot(t));
  await assert.rejects(vols.create('a/b'), /includes invalid characters for a local volume name/);
  await assert.rejects(vols.create('..'), /includes invalid characters/);
  await assert.rejects(vols.create('x', {}), /too short/);
  await assert.rejects(
    vols.create('v1', { driver: 'nfs' }),
    (e: Error & { code?: string }) => e.code === 'NOT_FOUND' && /plugin "nfs" not found/.test(e.message),
  );
  await assert.rejects(vols.create('v1', { options: { size: '1m' } }), /create v1: invalid option key: "size"/);
  await assert.rejects(vols.create('v1', { options: { type: 'tmpfs' } }), /missing required option: "device"/);
  await assert.rejects(vols.create('v1', { options: { o: 'size=1m', device: 'tmpfs' } }), /missing required option: "type"/);
  assert.deepEqual(await vols.list(), []);
});

test("rm is refused while a container references the volume, with dockerd's message", async (t) => {
  const vols = new VolumeService(tempRoot(t));
  await vols.create('apires-v2');
  const cid = '5a87b23cb117ee52427a730337f9592c5537c5c36a936aad3a468c2ad0ad1cc2';
  await vols.store.acquire('apires-v2', cid);
  await assert.rejects(vols.remove('apires-v2'), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'CONFLICT');
    assert.equal(e.message, `remove apires-v2: volume is in use - [${cid}]`);
    return true;
  });
  await assert.rejects(vols.remove('apires-v2', { force: true }), /volume is in use/, 'force does not remove a volume in use (docker 20.10)');
  await vols.store.release('apires-v2', cid);
  await vols.remove('apires-v2');
  await assert.rejects(vols.inspect('apires-v2'), /get apires-v2: no such volume/);
  await assert.rejects(vols.remove('apires-v2'), (e: Error & { code?: string }) => e.code === 'NOT_FOUND');
  await vols.remove('apires-v2', { force: true });
});

test('prune removes every unreferenced volume (API 1.41) and honours label filters', async (t) => {
  const vols = new VolumeService(tempRoot(t));
  await vols.create('keep-used');
  await vols.store.acquire('keep-used', 'c1');
  await vols.create('keep-label', { labels: { keep: '1' } });
  await vols.create('named');
  const anon = await vols.create(undefined);
  fs.writeFileSync(path.join(vols.mountpoint('named'), 'f'), 'x'.repeat(100));
  assert.deepEqual((await vols.prune({ 'label!': ['keep'] })).deleted.sort(), [anon.name, 'named'].sort());
  assert.deepEqual((await vols.list()).map((v) => v.name).sort(), ['keep-label', 'keep-used']);
  const r = await vols.prune();
  assert.deepEqual(r.deleted, ['keep-label']);
  await assert.rejects(vols.prune({ dangling: ['true'] }), /invalid filter 'dangling'/);
});

test('prepareContainerMounts creates and acquires; release with removeAnonymous drops anonymous volumes only', async (t) => {
  const vols = new VolumeService(tempRoot(t));
  const mounts = await vols.prepareContainerMounts('c1', { binds: ['named1:/n'], imageVolumes: ['/anon'], tmpfs: { '/run': '' } });
  const anon = mounts.find((m) => m.destination === '/anon')!;
  assert.deepEqual((await vols.inspect('named1')).refs, ['c1']);
  assert.deepEqual((await vols.inspect(anon.name!)).refs, ['c1']);
  assert.equal(anon.source, vols.mountpoint(anon.name!));
  await assert.rejects(vols.remove('named1'), /in use/);
  await vols.releaseContainerMounts('c1', mounts, { removeAnonymous: true });
  assert.deepEqual(
    (await vols.list()).map((v) => v.name),
    ['named1'],
  );
  assert.deepEqual((await vols.inspect('named1')).refs, []);
  // A failing request leaves nothing acquired.
  await assert.rejects(vols.prepareContainerMounts('c2', { binds: ['named1:/a', 'bad/name:/b'] }), /invalid characters/);
  assert.deepEqual((await vols.inspect('named1')).refs, []);
});

test('reconcile drops references of containers that are gone', async (t) => {
  const vols = new VolumeService(tempRoot(t));
  await vols.prepareContainerMounts('gone', { binds: ['v1:/a'] });
  await vols.prepareContainerMounts('alive', { binds: ['v1:/b'] });
  await vols.reconcile(['alive'], []);
  assert.deepEqual((await vols.inspect('v1')).refs, ['alive']);
});

test('resolveDestination keeps symlinks inside the rootfs and creates what is missing', (t) => {
  const rootfs = path.join(tempRoot(t), 'rootfs');
  const outside = path.join(path.dirname(rootfs), 'outside');
  fs.mkdirSync(path.join(rootfs, 'etc'), { recursive: true });
  fs.mkdirSync(outside);
  fs.symlinkSync('../../../../../../', path.join(rootfs, 'up'));
  fs.symlinkSync('/etc', path.join(rootfs, 'abs'));
  fs.symlinkSync(outside, path.join(rootfs, 'out'));
  fs.symlinkSync('up/target', path.join(rootfs, 'leaf'));
  fs.writeFileSync(path.join(rootfs, 'file'), '');
  assert.equal(resolveDestination(rootfs, '/up/x'), 'x');
  assert.ok(fs.statSync(path.join(rootfs, 'x')).isDirectory());
  assert.equal(resolveDestination(rootfs, '/abs/sub'), 'etc/sub');
  // An absolute link to a host path is read inside the rootfs: nothing is made outside.
  assert.equal(resolveDestination(rootfs, '/out/y'), outside.slice(1) + '/y');
  assert.ok(fs.existsSync(path.join(rootfs, outside, 'y')));
  assert.deepEqual(fs.readdirSync(outside), []);
  assert.equal(resolveDestination(rootfs, '/leaf'), 'target');
  assert.equal(resolveDestination(rootfs, '/newfile', { create: true, asFile: true }), 'newfile');
  assert.ok(fs.statSync(path.join(rootfs, 'newfile')).isFile());
  assert.equal(resolveDestination(rootfs, '/nope/deeper', { create: false }), null);
  assert.throws(() => resolveDestination(rootfs, '/file/sub'), /cannot mount on "\/file\/sub" in the container: .*not a directory/);
});

test("--volumes-from shares the donor's volumes and never recreates a missing one", async (t) => {
  const vols = new VolumeService(tempRoot(t));
  const donor = await vols.prepareContainerMounts('donor', { binds: ['shared:/s'], imageVolumes: ['/anon'] });
  const taker = await vols.prepareContainerMounts('taker', { volumesFrom: [{ mounts: donor, mode: 'ro' }] });
  assert.deepEqual(taker.map((m) => [m.destination, m.readonly, m.copyData]).sort(), [
    ['/anon', true, false],
    ['/s', true, false],
  ]);
  assert.deepEqual((await vols.inspect('shared')).refs, ['donor', 'taker']);
  // rm -v of the donor keeps the anonymous volume the taker still uses.
  await vols.releaseContainerMounts('donor', donor, { removeAnonymous: true });
  assert.ok(await vols.store.get(donor.find((m) => m.destination === '/anon')!.name!));
  await vols.releaseContainerMounts('taker', taker, { removeAnonymous: true });
  await vols.remove('shared');
  await assert.rejects(vols.prepareContainerMounts('late', { volumesFrom: [{ mounts: donor }] }), /no such volume/);
  assert.deepEqual(await vols.list(), []);
});
