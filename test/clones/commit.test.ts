import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { run, TestDaemon } from '../helpers/daemon.ts';
import { keelOk, ok } from './helpers.ts';

/**
 * docker commit, diff and export of a clone (and of a container that was
 * cloned): their changes span frozen layers and the container's own upper
 * dir, and each must show every change relative to the image, as for a
 * container that was never cloned.
 */
const d = new TestDaemon('keel-clone-commit');
before(async () => {
  await d.start();
  await d.importBusybox();
});
after(async () => {
  await d.cleanup();
});

// What a container sees of its filesystem: every path with its type, mode and owner, and each regular file's checksum
// (the files the runtime mounts over the rootfs left out: their content is per container).
const VIEW = `find / -xdev | grep -v -e '^/proc' -e '^/sys' -e '^/dev' -e '^/etc/hosts$' -e '^/etc/hostname$' -e '^/etc/resolv.conf$' | sort | while read -r f; do
  if [ -f "$f" ] && [ ! -L "$f" ]; then echo "$(stat -c '%n %F %a %u:%g' "$f") $(md5sum < "$f" | cut -d' ' -f1)"; else stat -c '%n %F %a %u:%g' "$f"; fi
done`;

const view = async (c: string) => ok(d, ['exec', c, 'sh', '-c', VIEW]);
const imageView = async (img: string) => ok(d, ['run', '--rm', img, 'sh', '-c', VIEW]);

test('commit, diff and export of a clone hold every change since the image: deletions on both sides of the freeze, a directory replaced, content changed in both', async () => {
  await ok(d, ['run', '-d', '--name', 'src', 'busybox:local', 'sleep', '3600']);
  // Before the freeze, in SRC: files added, an image file deleted, an image directory replaced by a file, xattr-free perms.
  await ok(d, [
    'exec',
    'src',
    'sh',
    '-c',
    [
      'mkdir -p /data /replaced/deep && echo src > /data/a.txt && echo keep > /data/keep.txt && echo v1 > /data/changed',
      'echo soon-gone > /data/gone-later.txt && echo x > /replaced/x && echo y > /replaced/deep/y',
      'rm /etc/group && rm -rf /tmp && echo was-a-dir > /tmp && chmod 0640 /data/keep.txt',
    ].join(' && '),
  ]);
  await ok(d, ['stop', '-t', '0', 'src']);
  const clone = (await keelOk(d, ['clone', 'src', '--name', 'c1'])).trim();
  assert.equal(clone, 'c1');
  await ok(d, ['start', 'c1']);
  // After the freeze, in the clone: a file SRC added deleted, an image file deleted, content changed again,
  // a directory SRC added replaced by a new one, SRC's file where the image had a directory made a directory again.
  await ok(d, [
    'exec',
    'c1',
    'sh',
    '-c',
    [
      'rm /data/gone-later.txt /etc/passwd && echo v2 > /data/changed && echo more >> /data/a.txt',
      'rm -rf /replaced && mkdir /replaced && echo z > /replaced/z',
      'rm /tmp && mkdir /tmp && echo r > /tmp/r && mkdir -p /clone-dir/sub && echo f > /clone-dir/sub/f',
    ].join(' && '),
  ]);
  const cloneView = await view('c1');
  for (const p of ['/data/gone-later.txt', '/etc/passwd', '/etc/group', '/replaced/x', '/replaced/deep'])
    assert.doesNotMatch(cloneView, new RegExp(`^${p} `, 'm'), p);
  assert.match(cloneView, /^\/tmp directory /m);

  // commit: running the image shows exactly the clone's filesystem.
  await ok(d, ['commit', 'c1', 'committed:clone']);
  assert.equal(await imageView('committed:clone'), cloneView);

  // diff: changes against the image, across the freeze; a file added then deleted is no change.
  const diff = (await ok(d, ['diff', 'c1'])).trim().split('\n').sort();
  for (const line of [
    'A /data',
    'A /data/a.txt',
    'A /data/keep.txt',
    'A /data/changed',
    'D /etc/group',
    'D /etc/passwd',
    'A /replaced',
    'A /replaced/z',
    'C /tmp',
    'A /tmp/r',
    'A /clone-dir/sub/f',
  ]) {
    assert.ok(diff.includes(line), `${line} in\n${diff.join('\n')}`);
  }
  for (const p of ['/data/gone-later.txt', '/replaced/x', '/replaced/deep', '/replaced/deep/y'])
    assert.ok(!diff.some((l) => l.endsWith(` ${p}`)), `${p} not in\n${diff.join('\n')}`);

  // export: the clone's whole filesystem.
  const exported = await run(['sh', '-c', `docker -H unix://${d.socket} export c1 | tar -t`]);
  assert.equal(exported.code, 0, exported.stderr);
  const names = new Set(exported.stdout.split('\n').map((n) => n.replace(/^\.?\/?/, '').replace(/\/$/, '')));
  for (const p of ['data/a.txt', 'replaced/z', 'tmp/r', 'clone-dir/sub/f', 'bin/busybox']) assert.ok(names.has(p), p);
  for (const p of ['data/gone-later.txt', 'etc/passwd', 'etc/group', 'replaced/x', 'replaced/deep']) assert.ok(!names.has(p), p);

  // The source was cloned: its changes are in the frozen layer now, plus what it writes after.
  await ok(d, ['start', 'src']);
  await ok(d, ['exec', 'src', 'sh', '-c', 'echo v3 > /data/changed && rm /data/keep.txt && echo after > /after']);
  const srcView = await view('src');
  await ok(d, ['stop', '-t', '0', 'src']);
  await ok(d, ['commit', 'src', 'committed:src']);
  assert.equal(await imageView('committed:src'), srcView);
  assert.match(srcView, /^\/data\/gone-later.txt /m, 'SRC keeps its own files');

  // A clone of the committed image's container chain still works after its source and clone are gone.
  await ok(d, ['rm', '-f', 'src', 'c1']);
  assert.equal(await imageView('committed:clone'), cloneView);
});
