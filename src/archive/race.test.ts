/**
 * Archive work on a tree that someone else changes meanwhile: a process
 * swaps a directory with a symlink to outside (renameat2 RENAME_EXCHANGE in a
 * loop) while applyLayer writes into it or tarDirectory reads it. Nothing
 * may be written outside, and nothing from outside may be read. (The
 * path-string code this replaced put most entries of such a layer outside.)
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import { applyLayer } from './apply.ts';
import { tarDirectory } from './diff.ts';
import { TarParser } from './parser.ts';
import type { TarHeader } from './tarformat.ts';
import { startSwapper } from './testrace.ts';
import { packTar, type TestEntry } from './testtar.ts';

const base = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-archive-race-'));
after(() => fs.rmSync(base, { recursive: true, force: true }));
let n = 0;

function sandbox() {
  const dir = path.join(base, String(n++));
  const dest = path.join(dir, 'dest');
  const outside = path.join(dir, 'outside');
  fs.mkdirSync(path.join(dest, 'd'), { recursive: true });
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'secret'), 'HOST-SECRET');
  fs.symlinkSync(outside, path.join(dest, 's'));
  return { dest, outside };
}

/** Every name under dir, symlinks not followed. */
function walk(dir: string, out: string[] = []): string[] {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    out.push(e.name);
    if (e.isDirectory()) walk(path.join(dir, e.name), out);
  }
  return out;
}

async function readTar(r: Readable): Promise<{ names: string[]; data: string }> {
  const names: string[] = [];
  const bodies: Buffer[] = [];
  const parser = new TarParser(
    { entry: (h: TarHeader) => void names.push(h.name), data: (c: Buffer) => void bodies.push(Buffer.from(c)), end: () => {} },
    { maxMetaBytes: 1 << 20, maxBytes: 1 << 30 },
  );
  for await (const c of r) parser.write(c as Buffer);
  parser.finish();
  return { names, data: Buffer.concat(bodies).toString('latin1') };
}

test('applyLayer into a directory raced with a symlink to outside writes nothing outside', async () => {
  const { dest, outside } = sandbox();
  const N = 3000;
  const entries: TestEntry[] = [];
  // Entries in 16 other directories between the raced ones keep the raced parent out of the fd cache, so
  // it is resolved again (under the race) again and again.
  for (let i = 0; i < 16; i++) entries.push({ name: `z${i}/`, type: 'directory' });
  for (let i = 0; i < N; i++) {
    entries.push({ name: `d/f${i}`, body: 'x' });
    entries.push({ name: `z${i % 16}/g${i}`, body: 'y' });
    if (i % 100 === 0) entries.push({ name: `d/sub${i}/`, type: 'directory' }, { name: `d/sub${i}/h`, body: 'h' });
  }
  const tar = await packTar(entries);
  const swapper = await startSwapper(path.join(dest, 'd'), path.join(dest, 's'));
  let swaps: number;
  try {
    await applyLayer(dest, Readable.from([tar]));
  } finally {
    swaps = await swapper.stop();
  }
  assert.ok(swaps > 100, `the race ran (${swaps} swaps)`);
  assert.deepEqual(fs.readdirSync(outside), ['secret']);
  assert.equal(fs.readFileSync(path.join(outside, 'secret'), 'utf8'), 'HOST-SECRET');
  const inside = walk(dest);
  assert.equal(inside.filter((x) => /^f\d+$/.test(x)).length, N, 'every raced entry landed inside dest');
  assert.equal(inside.filter((x) => /^g\d+$/.test(x)).length, N);
});

test('tarDirectory of a tree raced with a symlink to outside never reads from outside', async () => {
  const { dest } = sandbox();
  for (let i = 0; i < 50; i++) fs.writeFileSync(path.join(dest, 'd', `f${i}`), 'inside');
  fs.mkdirSync(path.join(dest, 'd', 'deeper'));
  fs.writeFileSync(path.join(dest, 'd', 'deeper', 'secret'), 'inside');
  const swapper = await startSwapper(path.join(dest, 'd'), path.join(dest, 's'));
  let swaps: number;
  const seen = new Set<string>();
  try {
    for (let i = 0; i < 150; i++) {
      const whole = await readTar(tarDirectory(dest));
      const one = await readTar(tarDirectory(dest, { include: ['d'] }));
      for (const t of [whole, one]) {
        assert.ok(!t.data.includes('HOST-SECRET'), 'a host file was read into the tar');
        for (const nm of t.names) seen.add(nm);
      }
    }
  } finally {
    swaps = await swapper.stop();
  }
  assert.ok(swaps > 100, `the race ran (${swaps} swaps)`);
  assert.ok(seen.has('d/f0') || seen.has('s/f0'), 'the directory was archived');
  assert.ok(![...seen].some((x) => /(^|\/)secret$/.test(x) && !x.includes('deeper')), 'the outside dir was never listed');
});

test('a FIFO swapped in for a file is archived as a FIFO, never opened for reading', async () => {
  const dir = path.join(base, String(n++));
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'file'), 'data');
  const { execFileSync } = await import('node:child_process');
  execFileSync('mkfifo', [path.join(dir, 'fifo')]);
  const swapper = await startSwapper(path.join(dir, 'file'), path.join(dir, 'fifo'));
  try {
    const t0 = Date.now();
    for (let i = 0; i < 200; i++) {
      const t = await readTar(tarDirectory(dir));
      assert.equal(t.names.length, 2);
    }
    assert.ok(Date.now() - t0 < 60_000);
  } finally {
    await swapper.stop();
  }
});
