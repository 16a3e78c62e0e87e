import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { readContextFile } from './context.ts';
import { ContextCache } from './ctxcache.ts';

function contextTar(dir: string, files: Record<string, string>): Buffer {
  for (const [p, c] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    fs.writeFileSync(path.join(dir, p), c);
  }
  return spawnSync('tar', ['-C', dir, '--mtime=@0', '-cf', '-', '.'], { maxBuffer: 1 << 30 }).stdout;
}

async function* chunks(b: Buffer, size = 1000): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

test('the same upload gets the kept context (with its hashes); the least recent of three goes once released; the temp root stays empty', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-ctxcache-'));
  const data = path.join(root, 'data');
  try {
    const cache = new ContextCache(data);
    const tars = ['a', 'b', 'c'].map((n) => contextTar(path.join(root, n), { Dockerfile: `FROM ${n}\n` }));
    const a1 = await cache.receive(chunks(tars[0]!));
    a1.hashes!.set('x', 'y');
    await a1.release();
    const a2 = await cache.receive(chunks(tars[0]!, 333));
    assert.equal(a2.dir, a1.dir);
    assert.equal(a2.hashes!.get('x'), 'y');
    assert.equal(await readContextFile(a2.dir, 'Dockerfile'), 'FROM a\n');
    const b = await cache.receive(chunks(tars[1]!));
    const c = await cache.receive(chunks(tars[2]!));
    // a is the least recently used, but a build still holds it.
    assert.equal(fs.existsSync(a2.dir), true);
    assert.equal(await readContextFile(c.dir, 'Dockerfile'), 'FROM c\n');
    await a2.release();
    assert.equal(fs.existsSync(a2.dir), false);
    assert.deepEqual(fs.readdirSync(path.join(data, 'build', 'tmp')), []);
    const a3 = await cache.receive(chunks(tars[0]!));
    assert.notEqual(a3.dir, a1.dir);
    for (const x of [b, c, a3]) await x.release();
    await cache.clear();
    assert.deepEqual(fs.readdirSync(path.join(data, 'build', 'contexts')), []);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('a context over the size kept streams in and is removed on release', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-ctxcache-'));
  try {
    const big = contextTar(path.join(root, 'big'), { Dockerfile: 'FROM big\n', 'blob.bin': 'z'.repeat(70 << 20) });
    const cache = new ContextCache(path.join(root, 'data'));
    const ctx = await cache.receive(chunks(big, 1 << 20));
    assert.equal(fs.statSync(path.join(ctx.dir, 'blob.bin')).size, 70 << 20);
    assert.equal(ctx.hashes, undefined);
    await ctx.release();
    assert.equal(fs.existsSync(ctx.dir), false);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
