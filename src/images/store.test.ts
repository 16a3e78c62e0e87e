import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { Digest } from '../oci/digest.ts';
import { ImageStore, type ImageRecord } from './store.ts';

const id = (c: string) => `sha256:${c.repeat(64)}` as Digest;
const rec = (i: Digest): ImageRecord => ({ id: i, manifest: { mediaType: 'x', digest: i, size: 1 }, layers: [], chainIds: [], size: 0, stored: '' });

test('resolves by name, full ID, short ID and digest name; survives reopening', async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'keel-imgstore-'));
  const s = new ImageStore(dir);
  await s.init();
  await s.put(rec(id('a')), ['docker.io/library/busybox:latest', `docker.io/library/busybox@${id('d')}`]);
  await s.put(rec(id('b')), ['127.0.0.1:5000/x/y:1']);
  assert.equal(s.resolve('busybox').id, id('a'));
  assert.equal(s.resolve('docker.io/library/busybox:latest').id, id('a'));
  assert.equal(s.resolve(`busybox@${id('d')}`).id, id('a'));
  assert.equal(s.resolve('aaaa').id, id('a'));
  assert.equal(s.resolve(id('b')).id, id('b'));
  assert.equal(s.resolve('127.0.0.1:5000/x/y:1').id, id('b'));
  assert.deepEqual(s.repoTags(id('a')), ['busybox:latest']);
  assert.deepEqual(s.repoDigests(id('a')), [`busybox@${id('d')}`]);
  assert.throws(() => s.resolve('nosuch'), /No such image: nosuch:latest/);
  // Retagging moves the name; the old image keeps its other names.
  assert.equal(await s.tag(id('b'), 'docker.io/library/busybox:latest'), id('a'));
  const again = new ImageStore(dir);
  await again.init();
  assert.equal(again.resolve('busybox').id, id('b'));
  await again.delete(id('b'));
  assert.equal(again.tryResolve('busybox'), undefined);
  assert.equal(again.tryResolve('127.0.0.1:5000/x/y:1'), undefined);
});

test('a name whose record is missing (crash between writes) is dropped on load', async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'keel-imgstore-'));
  await fsp.mkdir(path.join(dir, 'records'), { recursive: true });
  await fsp.writeFile(path.join(dir, 'names.json'), JSON.stringify({ 'docker.io/library/ghost:latest': id('c') }));
  const s = new ImageStore(dir);
  await s.init();
  assert.equal(s.tryResolve('ghost'), undefined);
});
