/**
 * Volumes through real containers (runc, conmon, overlayfs), driven on an
 * in-process Engine with its own temp roots: data shared between
 * containers, copy-up from an image VOLUME, read-only binds, escaping
 * symlinks in the destination, anonymous volumes removed by --rm / rm -v,
 * and rm refused while a container uses a volume.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { Engine } from '../../src/engine/engine.ts';
import type { ContainerSpec } from '../../src/containers/spec.ts';
import { mountsBelow, unmount } from '../../src/volumes/mount.ts';
import { requirePrerequisites } from '../helpers/prereqs.ts';

requirePrerequisites(['busybox']);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-volctr-'));
let engine: Engine;

function imageTar(): string {
  const rootfs = path.join(dir, 'rootfs');
  fs.mkdirSync(path.join(rootfs, 'bin'), { recursive: true });
  fs.mkdirSync(path.join(rootfs, 'etc'));
  fs.mkdirSync(path.join(rootfs, 'tmp'), { mode: 0o1777 });
  fs.copyFileSync('/bin/busybox', path.join(rootfs, 'bin/busybox'));
  fs.chmodSync(path.join(rootfs, 'bin/busybox'), 0o755);
  for (const a of ['sh', 'cat', 'ls', 'stat', 'echo', 'touch', 'true', 'grep', 'cut']) fs.symlinkSync('busybox', path.join(rootfs, 'bin', a));
  fs.writeFileSync(path.join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  fs.writeFileSync(path.join(rootfs, 'etc/group'), 'root:x:0:\n');
  // The image's VOLUME dir has content with its own owner and modes (copy-up source).
  fs.mkdirSync(path.join(rootfs, 'seed'), { mode: 0o750 });
  fs.writeFileSync(path.join(rootfs, 'seed/hello'), 'from-image\n', { mode: 0o640 });
  fs.chownSync(path.join(rootfs, 'seed/hello'), 1000, 1001);
  fs.chownSync(path.join(rootfs, 'seed'), 1000, 1001);
  // A destination that tries to escape the rootfs through a symlink.
  fs.symlinkSync('../../../../../../../../' + path.join(dir, 'victim'), path.join(rootfs, 'esc'));
  const tar = path.join(dir, 'img.tar');
  const r = spawnSync('tar', ['-C', rootfs, '--numeric-owner', '-cf', tar, '.']);
  assert.equal(r.status, 0, String(r.stderr));
  return tar;
}

before(async () => {
  engine = new Engine({ dataRoot: path.join(dir, 'data'), execRoot: path.join(dir, 'run') });
  await engine.open();
  await engine.importImage(fs.createReadStream(imageTar()), { ref: 'volbox:local', changes: ['VOLUME /seed'] });
});

after(async () => {
  for (const c of engine.containers.store.list()) await engine.containers.remove(c.id, { force: true, volumes: true }).catch(() => {});
  engine.containers.close();
  await engine.close();
  for (const m of await mountsBelow(dir)) await unmount(m);
  fs.rmSync(dir, { recursive: true, force: true });
});

/** `-v` specs as a spec's mounts. */
const binds = (...specs: string[]): Pick<ContainerSpec, 'mounts'> => ({ mounts: specs.map((spec) => ({ kind: 'volume-flag' as const, spec })) });

/** Runs a container to completion; returns its exit code and the record id. */
async function run(cmd: string, spec: Partial<ContainerSpec> = {}): Promise<{ id: string; code: number }> {
  const { id } = await engine.containers.create({ image: 'volbox:local', cmd: ['sh', '-c', cmd], networkMode: 'none', ...spec });
  const exited = engine.containers.wait(id, 'next-exit');
  await engine.containers.start(id);
  return { id, code: await exited };
}

test('a named volume carries data from one container to the next and survives rm', async () => {
  const out = path.join(dir, 'out1');
  fs.mkdirSync(out);
  const a = await run('echo x > /data/f', binds('shared1:/data'));
  assert.equal(a.code, 0);
  await engine.containers.remove(a.id, { volumes: true });
  const b = await run('cat /data/f > /out/r', binds('shared1:/data', `${out}:/out`));
  assert.equal(b.code, 0);
  assert.equal(fs.readFileSync(path.join(out, 'r'), 'utf8'), 'x\n');
  // Volume data bypasses the container's upper layer.
  assert.equal(fs.readFileSync(path.join(dir, 'data/volumes/shared1/_data/f'), 'utf8'), 'x\n');
  const vols = (await import('../../src/volumes/index.ts')).volumeService(engine.dataRoot);
  await assert.rejects(vols.remove('shared1'), new RegExp(`remove shared1: volume is in use - \\[${b.id}\\]`));
  await engine.containers.remove(b.id);
  await vols.remove('shared1');
});

test('copy-up fills a new volume from the image VOLUME dir with ownership and modes; binds are not filled', async () => {
  const out = path.join(dir, 'out2');
  const bindSrc = path.join(dir, 'bindsrc');
  fs.mkdirSync(out);
  fs.mkdirSync(bindSrc);
  const r = await run('stat -c "%u:%g %a" /seed /seed/hello > /out/st; cat /seed/hello >> /out/st', binds('seeded:/seed', `${out}:/out`));
  assert.equal(r.code, 0);
  assert.equal(fs.readFileSync(path.join(out, 'st'), 'utf8'), '1000:1001 750\n1000:1001 640\nfrom-image\n');
  const b = await run('ls -A /seed > /out/ls', binds(`${bindSrc}:/seed`, `${out}:/out`));
  assert.equal(b.code, 0);
  assert.equal(fs.readFileSync(path.join(out, 'ls'), 'utf8'), '');
  const n = await run('ls -A /seed > /out/nocopy', binds('nocopy1:/seed:nocopy', `${out}:/out`));
  assert.equal(n.code, 0);
  assert.equal(fs.readFileSync(path.join(out, 'nocopy'), 'utf8'), '');
  for (const c of [r, b, n]) await engine.containers.remove(c.id);
});

test('copy-up happens once, at create: the volume is filled before start, and a volume emptied later stays empty', async () => {
  const out = path.join(dir, 'out-once');
  fs.mkdirSync(out);
  const { id } = await engine.containers.create({
    image: 'volbox:local',
    cmd: ['sh', '-c', 'ls -A /seed >> /out/ls; rm -f /seed/hello'],
    networkMode: 'none',
    ...binds('once1:/seed', `${out}:/out`),
  });
  // Filled when created, like docker (before any start).
  assert.equal(fs.readFileSync(path.join(dir, 'data/volumes/once1/_data/hello'), 'utf8'), 'from-image\n');
  assert.deepEqual(fs.readdirSync(path.join(dir, 'run/containers', id, 'rootfs')), [], 'the rootfs is not left mounted by create');
  for (let i = 0; i < 2; i++) {
    const exited = engine.containers.wait(id, 'next-exit');
    await engine.containers.start(id);
    assert.equal(await exited, 0);
  }
  // Before the fix a second start refilled the emptied volume: 'hello\nhello\n'.
  assert.equal(fs.readFileSync(path.join(out, 'ls'), 'utf8'), 'hello\n', 'the second start found the volume as the first run left it (empty)');
  await engine.containers.remove(id);
  const vols = (await import('../../src/volumes/index.ts')).volumeService(engine.dataRoot);
  await vols.remove('once1');
});

test('-v /hostdir:/x:ro is read-only inside; --tmpfs and --mount work', async () => {
  const host = path.join(dir, 'ro');
  const out = path.join(dir, 'out3');
  fs.mkdirSync(host);
  fs.mkdirSync(out);
  const r = await run('touch /x/f 2>/out/err; echo $? > /out/rc; echo t > /t/f && cat /t/f > /out/t', {
    mounts: [
      { kind: 'volume-flag', spec: `${host}:/x:ro` },
      { kind: 'tmpfs-flag', target: '/t', options: 'size=1m' },
      { kind: 'mount', mount: { type: 'bind', source: out, target: '/out' } },
    ],
  });
  assert.equal(r.code, 0);
  assert.notEqual(fs.readFileSync(path.join(out, 'rc'), 'utf8').trim(), '0');
  assert.match(fs.readFileSync(path.join(out, 'err'), 'utf8'), /Read-only file system/);
  assert.equal(fs.readFileSync(path.join(out, 't'), 'utf8'), 't\n');
  assert.deepEqual(fs.readdirSync(host), []);
  await engine.containers.remove(r.id);
  await assert.rejects(
    engine.containers.create({ image: 'volbox:local', cmd: ['true'], mounts: [{ kind: 'mount', mount: { type: 'bind', source: '/nope', target: '/x' } }] }),
    /invalid mount config for type "bind": bind source path does not exist: \/nope/,
  );
});

test('an escaping symlink in the destination does not make a mount land outside the rootfs', async () => {
  const victim = path.join(dir, 'victim');
  fs.mkdirSync(victim);
  const host = path.join(dir, 'payload');
  fs.mkdirSync(host);
  fs.writeFileSync(path.join(host, 'p'), 'payload');
  const r = await run('cat /esc/inner/p > /dev/null', binds(`${host}:/esc/inner`));
  assert.equal(r.code, 0, 'the mount exists inside the container');
  assert.deepEqual(fs.readdirSync(victim), [], 'nothing was created or mounted in the host path the link names');
  await engine.containers.remove(r.id);
});

test('--rm and rm -v remove anonymous volumes, never named ones', async () => {
  const vols = (await import('../../src/volumes/index.ts')).volumeService(engine.dataRoot);
  const before = new Set((await vols.list()).map((v) => v.name));
  const a = await run('true', { volumes: ['/anon'] });
  const fresh = (await vols.list()).filter((v) => !before.has(v.name));
  assert.equal(fresh.length, 2, 'image VOLUME /seed and -v /anon each got an anonymous volume');
  assert.ok(fresh.every((v) => /^[0-9a-f]{64}$/.test(v.name) && v.anonymous));
  await engine.containers.remove(a.id, { volumes: true });
  assert.deepEqual(
    (await vols.list()).filter((v) => !before.has(v.name)),
    [],
  );

  const { id } = await engine.containers.create({ image: 'volbox:local', cmd: ['true'], networkMode: 'none', autoRemove: true, ...binds('keepme:/k') });
  const removed = engine.containers.wait(id, 'removed');
  await engine.containers.start(id);
  await removed;
  for (let i = 0; i < 50 && (await vols.list()).some((v) => !before.has(v.name) && v.anonymous); i++) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(
    (await vols.list()).filter((v) => !before.has(v.name)).map((v) => v.name),
    ['keepme'],
  );
  await vols.remove('keepme');
});

test('a type=tmpfs volume is mounted for the run and unmounted after the exit', async () => {
  const vols = (await import('../../src/volumes/index.ts')).volumeService(engine.dataRoot);
  const { isMountpoint } = await import('../../src/volumes/mount.ts');
  await vols.create('tmpvol', { options: { type: 'tmpfs', device: 'tmpfs', o: 'size=2m' } });
  const out = path.join(dir, 'out5');
  fs.mkdirSync(out);
  const r = await run('echo y > /d/f && grep " /d " /proc/mounts | cut -d" " -f3 > /out/fs', binds('tmpvol:/d', `${out}:/out`));
  assert.equal(r.code, 0);
  assert.equal(fs.readFileSync(path.join(out, 'fs'), 'utf8'), 'tmpfs\n');
  assert.equal(await isMountpoint(vols.mountpoint('tmpvol')), false, 'unmounted once no container runs with it');
  await engine.containers.remove(r.id);
  await vols.remove('tmpvol');
});
