/**
 * Integration tests (root): ownership, devices, whiteouts in overlay form
 * checked through a real overlayfs mount, and the diffLayer round trip.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import { getAttributeSync, setAttributeSync } from '@napi-rs/xattr';
import { exec } from '../../src/common/exec.ts';
import { applyLayer } from '../../src/archive/apply.ts';
import { diffLayer } from '../../src/archive/diff.ts';
import { packTar } from '../../src/archive/testtar.ts';
import { requirePrerequisites } from '../helpers/prereqs.ts';

requirePrerequisites(['busybox']);

const base = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-archive-it-'));
const mounts: string[] = [];
after(async () => {
  for (const m of mounts.reverse()) await exec(['umount', m], { allowFailure: true });
  fs.rmSync(base, { recursive: true, force: true });
});
let n = 0;
const dir = (name: string) => {
  const d = path.join(base, `${n++}-${name}`);
  fs.mkdirSync(d, { recursive: true });
  return d;
};

async function mountOverlay(lowers: string[], upper?: string): Promise<string> {
  const merged = dir('merged');
  let opts = `lowerdir=${lowers.join(':')}`;
  if (upper) opts += `,upperdir=${upper},workdir=${dir('work')}`;
  await exec(['mount', '-t', 'overlay', 'overlay', '-o', opts, merged]);
  mounts.push(merged);
  return merged;
}

async function umount(m: string) {
  await exec(['umount', m]);
  mounts.splice(mounts.indexOf(m), 1);
}

/** A comparable picture of a tree: type, mode, owner, size, content hash, link target; no times. */
function snapshot(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const p = path.join(root, r);
      const st = fs.lstatSync(p);
      let extra = '';
      if (st.isFile()) extra = createHash('sha256').update(fs.readFileSync(p)).digest('hex').slice(0, 12);
      if (st.isSymbolicLink()) extra = '-> ' + fs.readlinkSync(p);
      out.push(`${r} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.isDirectory() ? '' : st.size} ${extra}`);
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

const lowerTar = () =>
  packTar([
    { name: 'etc/', type: 'directory' },
    { name: 'etc/gone', body: 'delete me' },
    { name: 'etc/kept', body: 'keep me' },
    { name: 'opq/', type: 'directory' },
    { name: 'opq/old1', body: '1' },
    { name: 'opq/sub/old2', body: '2' },
    { name: 'home/user/', type: 'directory', uid: 1000, gid: 1000, mode: 0o700 },
    { name: 'home/user/file', body: 'mine', uid: 1000, gid: 1000 },
    { name: 'bin/ping', body: 'ELF', mode: 0o4755, uid: 0, gid: 0 },
  ]);

test('ownership, setuid and symlink owners are applied; devices are not created', async () => {
  const d = dir('own');
  await applyLayer(
    d,
    Readable.from([
      await packTar([
        { name: 'f', body: 'x', uid: 1234, gid: 5678, mode: 0o6755 },
        { name: 'l', type: 'symlink', linkname: 'f', uid: 42, gid: 43 },
        { name: 'dd/', type: 'directory', uid: 7, gid: 8, mode: 0o1777 },
        { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3 },
        { name: 'dev/sda', type: 'block-device', devmajor: 8, devminor: 0 },
      ]),
    ]),
  );
  const f = fs.lstatSync(path.join(d, 'f'));
  assert.deepEqual([f.uid, f.gid, f.mode & 0o7777], [1234, 5678, 0o6755]);
  const l = fs.lstatSync(path.join(d, 'l'));
  assert.deepEqual([l.uid, l.gid], [42, 43]);
  const dd = fs.lstatSync(path.join(d, 'dd'));
  assert.deepEqual([dd.uid, dd.gid, dd.mode & 0o7777], [7, 8, 0o1777]);
  assert.deepEqual(fs.readdirSync(path.join(d, 'dev')), []);
});

test('whiteouts in overlay form hide lower files when mounted with overlayfs', async () => {
  const l1 = dir('l1');
  const l2 = dir('l2');
  await applyLayer(l1, Readable.from([await lowerTar()]));
  await applyLayer(
    l2,
    Readable.from([await packTar([{ name: 'etc/.wh.gone' }, { name: 'opq/.wh..wh..opq' }, { name: 'opq/new', body: 'n' }, { name: 'nodir/.wh.x' }])]),
  );
  const wh = fs.lstatSync(path.join(l2, 'etc/gone'));
  assert.ok(wh.isCharacterDevice());
  assert.equal(wh.rdev, 0);
  assert.equal(getAttributeSync(path.join(l2, 'opq'), 'trusted.overlay.opaque')?.toString(), 'y');
  const m = await mountOverlay([l2, l1]);
  assert.deepEqual(fs.readdirSync(path.join(m, 'etc')), ['kept']);
  assert.deepEqual(fs.readdirSync(path.join(m, 'opq')), ['new']);
  assert.equal(fs.readFileSync(path.join(m, 'home/user/file'), 'utf8'), 'mine');
  await umount(m);
});

test('diffLayer round trip: changes made through overlayfs apply onto a fresh tree', async () => {
  const l1 = dir('rt-l1');
  await applyLayer(l1, Readable.from([await lowerTar()]));
  const upper = dir('rt-upper');
  const m = await mountOverlay([l1], upper);
  fs.writeFileSync(path.join(m, 'etc/kept'), 'changed');
  fs.rmSync(path.join(m, 'etc/gone'));
  fs.rmSync(path.join(m, 'opq'), { recursive: true }); // removing and recreating a lower dir makes it opaque
  fs.mkdirSync(path.join(m, 'opq'));
  fs.writeFileSync(path.join(m, 'opq/fresh'), 'f');
  fs.mkdirSync(path.join(m, 'new/deep'), { recursive: true });
  fs.writeFileSync(path.join(m, 'new/deep/file'), 'deep');
  fs.linkSync(path.join(m, 'new/deep/file'), path.join(m, 'new/hard'));
  fs.symlinkSync('/etc/kept', path.join(m, 'new/sym'));
  fs.chownSync(path.join(m, 'home/user/file'), 2000, 2000);
  const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex'); // cap_net_raw+ep, v2
  setAttributeSync(path.join(m, 'bin/ping'), 'security.capability', cap);
  const want = snapshot(m);
  await umount(m);
  assert.ok(getAttributeSync(path.join(upper, 'opq'), 'trusted.overlay.opaque'));

  const tarChunks: Buffer[] = [];
  for await (const c of diffLayer(upper)) tarChunks.push(c as Buffer);
  const layer = Buffer.concat(tarChunks);
  const listing = (await exec(['tar', '-tf', '-'], { input: layer })).stdout.split('\n');
  for (const e of ['etc/.wh.gone', 'opq/.wh..wh..opq', 'new/hard', 'bin/ping']) assert.ok(listing.includes(e), `${e} in ${listing.join(',')}`);

  // Flat form: lower then diff onto one fresh directory.
  const flat = dir('rt-flat');
  await applyLayer(flat, Readable.from([await lowerTar()]));
  const r = await applyLayer(flat, Readable.from([layer]), { overlayWhiteouts: false });
  assert.equal(r.diffId, 'sha256:' + createHash('sha256').update(layer).digest('hex'));
  assert.deepEqual(snapshot(flat), want);
  assert.deepEqual(getAttributeSync(path.join(flat, 'bin/ping'), 'security.capability'), cap);
  assert.equal(fs.statSync(path.join(flat, 'new/hard')).ino, fs.statSync(path.join(flat, 'new/deep/file')).ino);

  // Overlay form: the diff as its own lowerdir over the lower layer.
  const l2 = dir('rt-l2');
  await applyLayer(l2, Readable.from([layer]));
  const m2 = await mountOverlay([l2, l1]);
  assert.deepEqual(snapshot(m2), want);
  await umount(m2);
});

test('applying a directory-replaced-by-symlink layer as root never chowns or chmods outside', async () => {
  const d = dir('sym');
  const outside = dir('outside');
  fs.chmodSync(outside, 0o755);
  await applyLayer(
    d,
    Readable.from([
      await packTar([
        { name: 'x', type: 'symlink', linkname: outside },
        { name: 'x/', type: 'directory', uid: 99, gid: 99, mode: 0o777 },
        { name: 'y', type: 'symlink', linkname: '../../..' + outside },
        { name: 'y/f', body: 'f', uid: 99 },
      ]),
    ]),
  );
  const st = fs.statSync(outside);
  assert.deepEqual([st.uid, st.mode & 0o777], [0, 0o755]);
  assert.deepEqual(fs.readdirSync(outside), []);
  assert.ok(fs.lstatSync(path.join(d, 'x')).isDirectory()); // the dir entry replaced the symlink itself
});
