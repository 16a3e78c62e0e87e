import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { globToRegExp, matchSource, planDigest, type PlanEntry, resolveInRoot, walkSource } from './sources.ts';

function tree(files: Record<string, string | { link: string }>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-src-'));
  for (const [p, c] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    if (typeof c === 'string') fs.writeFileSync(path.join(dir, p), c);
    else fs.symlinkSync(c.link, path.join(dir, p));
  }
  return dir;
}

test("globs follow Go's filepath.Match: * and ? stay in one component, classes, dotfiles match", () => {
  assert.ok(globToRegExp('*.txt').test('.hidden.txt'));
  assert.ok(!globToRegExp('*.txt').test('a/b.txt'));
  assert.ok(globToRegExp('file?.[ch]').test('file1.c'));
  assert.ok(!globToRegExp('file[^0-9]').test('file1'));
  assert.ok(globToRegExp('a\\*').test('a*'));
});

test('sources match in the context, never outside it', () => {
  const dir = tree({
    'a.txt': 'a',
    'b.txt': 'b',
    'sub/c.txt': 'c',
    'in-link': { link: 'sub' },
    'out-abs': { link: '/etc' },
    'out-rel': { link: '../..' },
    'etc/hosts': 'h',
  });
  try {
    const root = { dir, isContext: true };
    assert.deepEqual(matchSource(root, '*.txt'), ['a.txt', 'b.txt']);
    assert.deepEqual(matchSource(root, 'sub/*'), ['sub/c.txt']);
    assert.deepEqual(matchSource(root, 'in-link/c.txt'), ['in-link/c.txt']);
    assert.deepEqual(matchSource(root, 'nothere'), []);
    assert.throws(() => matchSource(root, '../x'), /outside the build context: \.\.\/x/);
    assert.throws(() => matchSource(root, 'out-abs/passwd'), /outside the build context/);
    assert.throws(() => matchSource(root, 'out-rel/x'), /outside the build context/);
    // In a stage's rootfs, absolute links resolve inside that rootfs.
    assert.equal(resolveInRoot({ dir, isContext: false }, 'out-abs', 'out-abs'), path.join(dir, 'etc'));
    const ign = { dir, isContext: true, excluded: (r: string) => r === 'b.txt' };
    assert.deepEqual(matchSource(ign, '*.txt'), ['a.txt']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the plan digest covers content, mode, owner and links, not mtimes', () => {
  const dir = tree({ 'd/x': 'x', 'd/y': 'y', 'd/l': { link: 'x' } });
  try {
    const plan = (): PlanEntry[] => {
      const out: PlanEntry[] = [];
      walkSource({ dir, isContext: true }, 'd', 'd', '', out);
      return out;
    };
    const d0 = planDigest(plan(), '', undefined);
    assert.deepEqual(
      plan().map((e) => `${e.type}:${e.dest}`),
      ['dir:', 'symlink:l', 'file:x', 'file:y'],
    );
    fs.utimesSync(path.join(dir, 'd/x'), new Date(2000, 1, 1), new Date(2000, 1, 1));
    assert.equal(planDigest(plan(), '', undefined), d0);
    assert.notEqual(planDigest(plan(), '1:1', undefined), d0);
    assert.notEqual(
      planDigest(plan(), '', () => 0o600),
      d0,
    );
    fs.writeFileSync(path.join(dir, 'd/y'), 'Y');
    assert.notEqual(planDigest(plan(), '', undefined), d0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
