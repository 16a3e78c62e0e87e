import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import { isEngineError } from '../common/errors.ts';
import { applyLayer } from './apply.ts';
import { tarDirectory } from './diff.ts';
import { packTar } from './testtar.ts';

const base = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-archive-diff-'));
after(() => fs.rmSync(base, { recursive: true, force: true }));
let n = 0;
const dir = () => {
  const d = path.join(base, String(n++));
  fs.mkdirSync(d);
  return d;
};
const collect = async (r: Readable) => {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
};

test('tarDirectory round trips a tree (long names, hardlinks, symlinks, modes, mtimes)', async () => {
  const src = dir();
  const long = 'x'.repeat(90) + '/' + 'y'.repeat(120);
  await applyLayer(
    src,
    Readable.from([
      await packTar([
        { name: 'a/b/file', body: 'hello', mode: 0o640, mtime: new Date(1_234_567_000) },
        { name: 'a/hard', type: 'link', linkname: 'a/b/file' },
        { name: 'a/sym', type: 'symlink', linkname: '../outside/elsewhere' },
        { name: long, body: 'long' },
        { name: 'big', body: Buffer.alloc(3 * 1024 * 1024 + 7, 7) },
      ]),
    ]),
  );
  const t = await collect(tarDirectory(src));
  const dst = dir();
  await applyLayer(dst, Readable.from([t]));
  assert.equal(fs.readFileSync(path.join(dst, 'a/b/file'), 'utf8'), 'hello');
  assert.equal(fs.statSync(path.join(dst, 'a/b/file')).mode & 0o777, 0o640);
  assert.equal(fs.statSync(path.join(dst, 'a/b/file')).mtimeMs, 1_234_567_000);
  assert.equal(fs.statSync(path.join(dst, 'a/hard')).ino, fs.statSync(path.join(dst, 'a/b/file')).ino);
  assert.equal(fs.readlinkSync(path.join(dst, 'a/sym')), '../outside/elsewhere');
  assert.equal(fs.readFileSync(path.join(dst, long), 'utf8'), 'long');
  assert.deepEqual(fs.readFileSync(path.join(dst, 'big')), Buffer.alloc(3 * 1024 * 1024 + 7, 7));
});

test('tarDirectory include/rename resolve inside the root and never follow the last symlink', async () => {
  const src = dir();
  const outside = dir();
  fs.writeFileSync(path.join(outside, 'secret'), 'host');
  await applyLayer(
    src,
    Readable.from([
      await packTar([
        { name: 'etc/conf', body: 'c' },
        { name: 'esc', type: 'symlink', linkname: outside },
      ]),
    ]),
  );
  const t = await collect(tarDirectory(src, { include: ['/etc/conf', 'esc'], rename: (p) => 'out/' + path.basename(p) }));
  const dst = dir();
  await applyLayer(dst, Readable.from([t]));
  assert.equal(fs.readFileSync(path.join(dst, 'out/conf'), 'utf8'), 'c');
  assert.ok(fs.lstatSync(path.join(dst, 'out/esc')).isSymbolicLink());
  await assert.rejects(collect(tarDirectory(src, { include: ['esc/secret'] })), (e: unknown) => isEngineError(e, 'INVALID_ARGUMENT'));
});
