import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { readContextFile, receiveContext } from './context.ts';

function contextTar(dir: string, files: Record<string, string>): Buffer {
  for (const [p, c] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    fs.writeFileSync(path.join(dir, p), c);
  }
  return spawnSync('tar', ['-C', dir, '-cf', '-', '.']).stdout;
}

async function* chunks(b: Buffer, size = 1000): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

test('contexts arrive plain, gzip, bzip2 and xz; .wh. names are plain files; release removes them', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-ctx-'));
  try {
    const tar = contextTar(path.join(root, 'src'), { Dockerfile: 'FROM scratch\n', 'sub/.wh.kept': 'x', 'a.txt': 'A' });
    for (const prog of [undefined, 'gzip', 'bzip2', 'xz']) {
      const body = prog ? spawnSync(prog, ['-c'], { input: tar }).stdout : tar;
      const ctx = await receiveContext(path.join(root, 'data'), chunks(body));
      assert.equal(await readContextFile(ctx.dir, 'Dockerfile'), 'FROM scratch\n', String(prog));
      assert.equal(fs.readFileSync(path.join(ctx.dir, 'sub/.wh.kept'), 'utf8'), 'x');
      assert.match(ctx.digest, /^sha256:[a-f0-9]{64}$/);
      await ctx.release();
      assert.equal(fs.existsSync(ctx.dir), false);
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('a context over the limit, or not a tar, is refused and leaves nothing', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-ctx-'));
  try {
    const tar = contextTar(path.join(root, 'src'), { Dockerfile: 'FROM scratch\n', big: 'x'.repeat(100_000) });
    await assert.rejects(receiveContext(path.join(root, 'data'), chunks(tar), { maxBytes: 50_000 }), /build context is larger than the limit of 50000 bytes/);
    await assert.rejects(
      receiveContext(path.join(root, 'data'), chunks(spawnSync('bzip2', ['-c'], { input: Buffer.from('BZh91AY&SYnot really') }).stdout.subarray(0, 20))),
      /not valid bzip2|invalid build context/,
    );
    assert.deepEqual(fs.readdirSync(path.join(root, 'data', 'build', 'tmp')), []);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('the Dockerfile path may not leave the context', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-ctx-'));
  try {
    fs.writeFileSync(path.join(root, 'outside'), 'x');
    fs.mkdirSync(path.join(root, 'ctx'));
    fs.symlinkSync('../outside', path.join(root, 'ctx', 'Dockerfile'));
    await assert.rejects(readContextFile(path.join(root, 'ctx'), 'Dockerfile'), /leaves the build context/);
    await assert.rejects(readContextFile(path.join(root, 'ctx'), '../outside'), /climbs above the root/);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
