import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import zlib from 'node:zlib';
import { isEngineError } from '../common/errors.ts';
import { applyLayer } from './apply.ts';
import { applyLayerOffThread } from './offthread.ts';
import { packTar, type TestEntry } from './testtar.ts';

const base = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-offthread-unit-'));
after(() => fs.rmSync(base, { recursive: true, force: true }));
let n = 0;
function freshDir(): string {
  const d = path.join(base, String(n++));
  fs.mkdirSync(d, { recursive: true });
  return d;
}

/** Every path below dir with its type, mode, size, mtime, link target and content hash. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const p = path.join(dir, r);
      const st = fs.lstatSync(p);
      // Parent directories a layer implies get the time of the apply; all others carry the layer's.
      const mtime = st.mtimeMs < 1_700_000_000_000 ? st.mtimeMs : 'now';
      let what = `${st.mode.toString(8)} ${st.uid}:${st.gid} ${mtime}`;
      if (st.isSymbolicLink()) what += ` -> ${fs.readlinkSync(p)}`;
      else if (st.isFile()) what += ` ${st.size} ${createHash('sha256').update(fs.readFileSync(p)).digest('hex')} nlink=${st.nlink}`;
      out[r] = what;
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

/** Yields `data` in pieces of `size` bytes, as a download would. */
async function* pieces(data: Buffer, size = 65536): AsyncGenerator<Buffer> {
  for (let o = 0; o < data.length; o += size) yield data.subarray(o, o + size);
}

const rich: TestEntry[] = [
  { name: 'etc/', type: 'directory', mode: 0o750, mtime: new Date(1_500_000_000_000) },
  { name: 'etc/passwd', body: 'root:x:0:0\n', mode: 0o644 },
  { name: 'usr/bin/su', body: 'su', mode: 0o4755 },
  { name: 'bin', type: 'symlink', linkname: 'usr/bin' },
  { name: 'etc/passwd-', type: 'link', linkname: 'etc/passwd' },
  { name: 'var/big', body: randomBytes(3 << 20) },
  { name: 'run/fifo', type: 'fifo' },
  { name: 'old/.wh.gone', body: '' },
];

test('gives the same tree and result as applyLayer, plain and gzip, in small and large pieces', async () => {
  const t = await packTar(rich);
  const inline = freshDir();
  const want = await applyLayer(inline, Readable.from([t]));
  for (const [data, size] of [
    [t, 4096],
    [zlib.gzipSync(t), 65536],
    [t, 5 << 20],
  ] as const) {
    const dest = freshDir();
    const got = await applyLayerOffThread(dest, pieces(data, size));
    assert.deepEqual(got, want);
    assert.deepEqual(snapshot(dest), snapshot(inline));
  }
});

test('more data than the in-flight bound streams through (backpressure), and several layers apply at once', async () => {
  const big = await packTar([
    { name: 'a', body: randomBytes(20 << 20) },
    { name: 'b', body: randomBytes(5 << 20) },
  ]);
  const dests = Array.from({ length: 6 }, freshDir);
  const results = await Promise.all(dests.map((d) => applyLayerOffThread(d, pieces(big))));
  const diffId = 'sha256:' + createHash('sha256').update(big).digest('hex');
  for (const [i, r] of results.entries()) {
    assert.equal(r.diffId, diffId);
    assert.equal(fs.statSync(path.join(dests[i]!, 'a')).size, 20 << 20);
  }
});

test('a hostile layer fails with the same EngineError as applyLayer, and writes nothing outside', async () => {
  const dir = freshDir();
  fs.mkdirSync(path.join(dir, 'dest'));
  fs.mkdirSync(path.join(dir, 'outside'));
  const t = await packTar([
    { name: 'ok', body: 'x' },
    { name: '../outside/evil', body: 'pwned' },
  ]);
  const inline = await applyLayer(freshDir(), Readable.from([t])).then(
    () => null,
    (e: unknown) => e,
  );
  assert.ok(isEngineError(inline, 'INVALID_ARGUMENT'));
  await assert.rejects(applyLayerOffThread(path.join(dir, 'dest'), pieces(t)), (e: unknown) => {
    assert.ok(isEngineError(e, 'INVALID_ARGUMENT'), String(e));
    assert.equal((e as Error).message, (inline as Error).message);
    return true;
  });
  assert.deepEqual(fs.readdirSync(path.join(dir, 'outside')), []);
  await assert.rejects(applyLayerOffThread(freshDir(), pieces(Buffer.from('not a tar archive at all, just text'.repeat(40)))), (e: unknown) =>
    isEngineError(e, 'INVALID_ARGUMENT'),
  );
});

test('a layer refused early while much more data is queued fails promptly instead of waiting for acks', async () => {
  const t = await packTar([
    { name: '../escape', body: 'x' },
    { name: 'big', body: randomBytes(24 << 20) },
  ]);
  let yielded = 0;
  async function* all() {
    for await (const p of pieces(t, 1 << 20)) {
      yielded += p.length;
      yield p;
    }
  }
  await assert.rejects(applyLayerOffThread(freshDir(), all()), (e: unknown) => isEngineError(e, 'INVALID_ARGUMENT'));
  assert.ok(yielded < t.length, 'the rest of the source is not read once the worker has failed');
});

test('a failing source rejects with its own error, once the worker has stopped; the worker is reused after', async () => {
  const t = await packTar([{ name: 'a', body: randomBytes(4 << 20) }]);
  const boom = new Error('connection reset');
  async function* failing() {
    yield t.subarray(0, 3 << 20);
    throw boom;
  }
  const dest = freshDir();
  await assert.rejects(applyLayerOffThread(dest, failing()), (e: unknown) => e === boom);
  // Settled means the worker stopped: the tree can be removed and nothing reappears.
  fs.rmSync(dest, { recursive: true, force: true });
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(fs.existsSync(dest), false);
  const ok = await applyLayerOffThread(freshDir(), pieces(t));
  assert.equal(ok.size, t.length);
});

test('an abort signal cancels the apply, before or during it', async () => {
  const t = await packTar([{ name: 'a', body: randomBytes(4 << 20) }]);
  const pre = AbortSignal.abort();
  await assert.rejects(applyLayerOffThread(freshDir(), pieces(t), { signal: pre }), (e: unknown) => isEngineError(e, 'CANCELLED'));
  const ac = new AbortController();
  async function* slow() {
    yield t.subarray(0, 1 << 20);
    ac.abort();
    await new Promise((r) => setTimeout(r, 50));
    yield t.subarray(1 << 20);
  }
  await assert.rejects(applyLayerOffThread(freshDir(), slow(), { signal: ac.signal }), (e: unknown) => isEngineError(e, 'CANCELLED'));
});

test('limits are enforced in the worker: decompression bombs are refused', async () => {
  const bomb = zlib.gzipSync(await packTar([{ name: 'z', body: Buffer.alloc(8 << 20) }]));
  await assert.rejects(applyLayerOffThread(freshDir(), pieces(bomb), { maxUncompressedBytes: 1 << 20 }), (e: unknown) => {
    assert.ok(isEngineError(e, 'INVALID_ARGUMENT'));
    assert.match((e as Error).message, /larger than|limit/);
    return true;
  });
});
