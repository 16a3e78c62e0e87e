// The conformance suite a content store passes, run by store.test.ts against
// ContentStore (no root needed): commit verifies digest and size, one digest
// ingested concurrently ends as one whole blob, abort and a crash mid-write
// leave no visible object.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { sha256 } from '../oci/digest.ts';
import type { ContentStore } from './store.ts';

/** What the suite uses of a store; `reopen` stands for a restart after a crash (same root, fresh instance). */
export type ConformingStore = Pick<ContentStore, 'init' | 'has' | 'size' | 'read' | 'put' | 'putStream' | 'writer' | 'delete' | 'list' | 'cleanIngests'>;

export function contentStoreConformance(
  name: string,
  factory: () => Promise<{ store: ConformingStore; reopen: () => ConformingStore; ingestEntries: () => Promise<string[]> }>,
): void {
  const fresh = async () => {
    const f = await factory();
    await f.store.init();
    return f;
  };
  const data = Buffer.from('0123456789abcdef'.repeat(64));
  const digest = sha256(data);

  test(`${name}: commit verifies digest and size, and a refused blob leaves nothing`, async () => {
    const { store, ingestEntries } = await fresh();
    await assert.rejects(store.put(data, { digest: sha256('other') }), /digest mismatch/);
    await assert.rejects(store.put(data, { size: data.length - 1 }), /larger than its declared size/);
    await assert.rejects(store.putStream(Readable.from([data]), { digest, size: data.length + 1 }), /size mismatch/);
    const w = await store.writer({ digest, size: data.length }, { resume: true });
    await w.write(Buffer.from('not the content'));
    await assert.rejects(w.commit(), /size mismatch|digest mismatch/);
    await w.abort(true);
    assert.deepEqual(await store.list(), []);
    assert.equal(await store.has(digest), false);
    assert.deepEqual(await ingestEntries(), []);
    assert.equal(await store.put(data, { digest, size: data.length }), digest);
    assert.equal(await store.size(digest), data.length);
    assert.deepEqual(await store.read(digest), data);
  });

  test(`${name}: concurrent ingests of one digest end as one whole blob`, async () => {
    const { store, ingestEntries } = await fresh();
    const chunks = (n: number) => Readable.from(Array.from({ length: n }, (_, i) => data.subarray((i * data.length) / n, ((i + 1) * data.length) / n)));
    const got = await Promise.all([
      store.putStream(chunks(4), { digest, size: data.length }),
      store.putStream(chunks(8), { digest, size: data.length }),
      store.put(data, { digest }),
    ]);
    assert.deepEqual(got, [digest, digest, digest]);
    assert.deepEqual(await store.list(), [digest]);
    assert.deepEqual(await store.read(digest), data);
    assert.deepEqual(await ingestEntries(), []);
  });

  test(`${name}: concurrent resumable writers of one digest: a wrong one cannot touch the committed blob`, async () => {
    const { store, ingestEntries } = await fresh();
    const good = await store.writer({ digest, size: data.length }, { resume: true });
    const bad = await store.writer({ digest, size: data.length }, { resume: true });
    await good.write(data.subarray(0, 100));
    await bad.write(Buffer.alloc(100, 0x78));
    await good.write(data.subarray(100));
    assert.equal(await good.commit(), digest);
    await bad.write(Buffer.alloc(data.length - 100, 0x78));
    await assert.rejects(bad.commit(), /digest mismatch/);
    await bad.abort(true);
    assert.deepEqual(await store.read(digest), data);
    assert.deepEqual(await ingestEntries(), []);
  });

  test(`${name}: abort leaves nothing; a resumable partial stays only until discarded`, async () => {
    const { store, ingestEntries } = await fresh();
    const w = await store.writer({ digest });
    await w.write(data.subarray(0, 10));
    await w.abort();
    assert.deepEqual(await ingestEntries(), []);
    const r = await store.writer({ digest, size: data.length }, { resume: true });
    await r.write(data.subarray(0, 10));
    await r.abort();
    assert.equal(await store.has(digest), false);
    const r2 = await store.writer({ digest, size: data.length }, { resume: true });
    assert.equal(r2.offset, 10);
    await r2.abort(true);
    assert.deepEqual(await ingestEntries(), []);
    assert.deepEqual(await store.list(), []);
  });

  test(`${name}: a crash mid-write leaves no visible object, and the restart clears the ingest`, async () => {
    const { store, reopen, ingestEntries } = await fresh();
    const w = await store.writer({ digest, size: data.length }, { resume: true });
    await w.write(data.subarray(0, 500));
    const t = await store.writer({ digest: sha256('t') });
    await t.write(Buffer.from('t'));
    // The process dies here: neither writer commits nor aborts.
    const after = reopen();
    await after.init();
    assert.equal(await after.has(digest), false);
    assert.deepEqual(await after.list(), []);
    await after.cleanIngests(0);
    assert.deepEqual(await ingestEntries(), []);
    // The digest can be ingested again (no lock left behind).
    const again = await after.writer({ digest, size: data.length }, { resume: true });
    assert.equal(again.offset, 0);
    await again.write(data);
    assert.equal(await again.commit(), digest);
  });

  test(`${name}: a blob is not visible while it is written`, async () => {
    const { store } = await fresh();
    const w = await store.writer({ digest, size: data.length });
    await w.write(data.subarray(0, data.length - 1));
    assert.equal(await store.has(digest), false);
    await assert.rejects(store.size(digest), /not found/);
    await w.write(data.subarray(data.length - 1));
    await w.commit();
    assert.equal(await store.has(digest), true);
    await store.delete(digest);
    assert.equal(await store.has(digest), false);
  });
}
