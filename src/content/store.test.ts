import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { sha256 } from '../oci/digest.ts';
import { ContentStore } from './store.ts';
import { contentStoreConformance } from './conformance.ts';

contentStoreConformance('ContentStore', async () => {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'keel-content-'));
  const store = new ContentStore(root);
  return { store, reopen: () => new ContentStore(root), ingestEntries: () => fsp.readdir(store.ingestDir) };
});

async function store() {
  const s = new ContentStore(await fsp.mkdtemp(path.join(os.tmpdir(), 'keel-content-')));
  await s.init();
  return s;
}

test('stores and verifies blobs', async () => {
  const s = await store();
  const data = Buffer.from('hello');
  const d = await s.put(data, { digest: sha256(data), size: 5 });
  assert.equal(d, sha256(data));
  assert.deepEqual(await s.read(d), data);
  assert.deepEqual(await s.list(), [d]);
});

test('refuses a digest or size mismatch and leaves nothing behind', async () => {
  const s = await store();
  await assert.rejects(s.put(Buffer.from('x'), { digest: sha256('y') }), /digest mismatch/);
  await assert.rejects(s.put(Buffer.from('xx'), { size: 1 }), /larger than its declared size/);
  await assert.rejects(s.putStream(Readable.from([Buffer.from('x')]), { size: 3 }), /size mismatch/);
  assert.deepEqual(await s.list(), []);
  assert.deepEqual(await fsp.readdir(s.ingestDir), []);
});

test('resumes an interrupted ingest', async () => {
  const s = await store();
  const data = Buffer.from('0123456789');
  const expected = { digest: sha256(data), size: data.length };
  const w1 = await s.writer(expected, { resume: true });
  await w1.write(data.subarray(0, 4));
  await w1.abort();
  const w2 = await s.writer(expected, { resume: true });
  assert.equal(w2.offset, 4);
  await w2.write(data.subarray(4));
  assert.equal(await w2.commit(), expected.digest);
  assert.deepEqual(await s.read(expected.digest), data);
});

test('refuses reading a blob over the limit', async () => {
  const s = await store();
  const d = await s.put(Buffer.alloc(100));
  await assert.rejects(s.read(d, 10), /over the 10-byte limit/);
});

test('refuses a stream over maxSize when the size is not known', async () => {
  const s = await store();
  await assert.rejects(s.putStream(Readable.from([Buffer.alloc(8), Buffer.alloc(8)]), { maxSize: 10 }), /over|larger than the 10-byte limit/);
  assert.deepEqual(await s.list(), []);
  assert.deepEqual(await fsp.readdir(s.ingestDir), []);
});
