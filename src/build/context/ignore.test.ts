import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cleanPath, ignoreMatcher, parseDockerignore } from './ignore.ts';

test('parseDockerignore: comments only at line start, blanks, cleaning, leading slash, ! with spaces, BOM, CRLF', () => {
  const text = '\ufeff# comment\n  # not a comment\n\n/abs/path/\n./a/../b//c/\n! keep/me \r\n**/*.log\r\nnode_modules\n!\n/\n';
  assert.deepEqual(parseDockerignore(text), ['# not a comment', 'abs/path', 'b/c', '!keep/me', '**/*.log', 'node_modules', '!', '/']);
});

test('cleanPath is Go path.Clean', () => {
  for (const [i, o] of [
    ['', '.'],
    ['a/b/../c', 'a/c'],
    ['/../x', '/x'],
    ['../../a', '../../a'],
    ['a//b/./', 'a/b'],
    ['/', '/'],
    ['./', '.'],
  ])
    assert.equal(cleanPath(i!), o, i);
});

/** One pattern against one path, without parent-directory matching (patternmatcher's own table). */
const single: [string, string, boolean][] = [
  ['**', 'file', true],
  ['**', 'dir/file', true],
  ['**/', 'file', true],
  ['**/**', 'dir/file', true],
  ['dir/**', 'dir/file', true],
  ['dir/**', 'dir/dir2/file', true],
  ['**/dir', 'dir', true],
  ['**/dir2/*', 'dir/dir2/file', true],
  ['**/dir2/**', 'dir/dir2/dir3/file', true],
  ['**file', 'file', true],
  ['**file', 'dir/dir/file', true],
  ['**/file*.txt', 'dir/dir/file.txt', true],
  ['**/**/*.txt2', 'dir/dir/file.txt', false],
  ['**/*.txt', 'file.txt', true],
  ['a**/*.txt', 'a/dir/dir/file.txt', true],
  ['a/*.txt', 'a/file.txt', true],
  ['a[b-d]e', 'ace', true],
  ['a[b-d]e', 'aae', false],
  ['a[^b-d]e', 'aze', true],
  ['.*', '.foo', true],
  ['.*', 'foo', false],
  ['abc.def', 'abcdef', false],
  ['abc?def', 'abcZdef', true],
  ['abc?def', 'abcdef', false],
  ['a\\\\', 'a\\', true],
  ['**/foo/bar', 'foo/bar', true],
  ['**/foo/bar', 'dir/dir2/foo/bar', true],
  ['abc/**', 'abc/def', true],
  ['**/.foo', '.foo', true],
  ['**/.foo', 'bar.foo', false],
  ['a(b)c/def', 'a(b)c/def', true],
  ['a.|)$(}+{bc', 'a.|)$(}+{bc', true],
  ['dist/*.whl', 'dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl', true],
  ['*', 'Dockerfile', true],
  ['Docker*', 'dockerfile', false],
];

test('pattern syntax: *, ?, **, classes, escapes, regexp metacharacters literal, case-sensitive', () => {
  for (const [pattern, path, want] of single) {
    // a/*.txt must not match a/dir/file.txt itself, but the parent rule makes dir contents follow their directory.
    assert.equal(ignoreMatcher([pattern])(path, false), want, `${pattern} ~ ${path}`);
  }
  assert.equal(ignoreMatcher(['a/*.txt'])('a/dir/file.txt', false), false);
  assert.equal(ignoreMatcher(['abc/**'])('abc', true), false);
});

test('directories exclude their contents; ! exceptions are ordered; the last match wins', () => {
  const m = ignoreMatcher(parseDockerignore('docs\n!docs/README.md\n*.go\n!keep.go\nbuild/\n/tmp\n**/node_modules\n'));
  assert.equal(m('docs', true), true);
  assert.equal(m('docs/a/b.txt', false), true);
  assert.equal(m('docs/README.md', false), false);
  assert.equal(m('main.go', false), true);
  assert.equal(m('keep.go', false), false);
  assert.equal(m('sub/main.go', false), false); // * does not cross /
  assert.equal(m('build/x/y', false), true);
  assert.equal(m('tmp/a', false), true);
  assert.equal(m('x/tmp', false), false);
  assert.equal(m('a/b/node_modules/c/d.js', false), true);
  assert.equal(m('Dockerfile', false), false);
  assert.equal(m('.', true), false);
  // A later exclusion re-excludes.
  const n = ignoreMatcher(['**', '!util/docker/web', 'util/docker/web/foo']);
  assert.equal(n('util/docker/web/foo', false), true);
  assert.equal(n('util/docker/web/bar', false), false);
  assert.equal(n('other', false), true);
});

test('mayContainIncluded tells when an excluded directory can be skipped whole', () => {
  const none = ignoreMatcher(['node_modules']);
  assert.equal(none.hasExclusions, false);
  assert.equal(none.mayContainIncluded('node_modules'), false);
  const m = ignoreMatcher(['*', '!src/**/*.ts', '!docs/api', '!**/keep']);
  assert.equal(m.hasExclusions, true);
  assert.equal(m.mayContainIncluded('src'), true);
  assert.equal(m.mayContainIncluded('docs'), true);
  assert.equal(m.mayContainIncluded('vendor'), true); // **/keep may be anywhere
  const k = ignoreMatcher(['*', '!src/**/*.ts', '!docs/api']);
  assert.equal(k.mayContainIncluded('vendor'), false);
  assert.equal(k.mayContainIncluded('docs/other'), false);
  assert.equal(k.mayContainIncluded('src/a/b'), true);
});

test('bad patterns are errors', () => {
  assert.throws(() => ignoreMatcher(['!']), /illegal exclusion pattern/);
  assert.throws(() => ignoreMatcher(['a[b']), /syntax error in \.dockerignore pattern/);
});

test('random patterns give a matcher or an EngineError, nothing else', async () => {
  const { EngineError } = await import('../../common/errors.ts');
  const toks = ['a', 'b', '/', '*', '**', '?', '[', ']', '^', '-', '\\', '!', '.', '..', '(', ')', '{', '}', '|', '$', '+', ' ', '\n', '#'];
  let seed = 7;
  const rnd = (n: number) => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) % n;
  };
  for (let i = 0; i < 3000; i++) {
    let s = '';
    for (let j = 1 + rnd(20); j > 0; j--) s += toks[rnd(toks.length)];
    try {
      const m = ignoreMatcher(parseDockerignore(s));
      for (const p of ['a', 'a/b', 'b/a/b', '.a', 'a(b', '[a]']) {
        assert.equal(typeof m(p, false), 'boolean');
        assert.equal(typeof m.mayContainIncluded(p), 'boolean');
      }
    } catch (e) {
      if (!(e instanceof EngineError)) throw e;
    }
  }
});

/** Walks a virtual tree as a context tarrer does: excluded directories are entered only when mayContainIncluded says so. */
function sent(tree: string[], dockerignore: string): string[] {
  const m = ignoreMatcher(parseDockerignore(dockerignore));
  const out: string[] = [];
  const walk = (dir: string) => {
    const prefix = dir ? `${dir}/` : '';
    const names = new Set<string>();
    for (const p of tree) if (p.startsWith(prefix) && p.length > prefix.length) names.add(p.slice(prefix.length).split('/')[0]!);
    for (const name of [...names].sort()) {
      const rel = prefix + name;
      const isDir = tree.some((p) => p.startsWith(`${rel}/`));
      const excluded = m(rel, isDir);
      if (!excluded) out.push(isDir ? `${rel}/` : rel);
      if (isDir && (!excluded || m.mayContainIncluded(rel))) walk(rel);
    }
  };
  walk('');
  return out.sort();
}

const TREE = [
  '.dockerignore',
  '.env',
  '.git/objects/o',
  'Dockerfile',
  'README.md',
  '[x]',
  'a.log',
  'build/out.bin',
  'docs/README.md',
  'docs/api/x.md',
  'docs/guide/y.md',
  'keep.go',
  'main.go',
  'node_modules/x/i.js',
  'q?',
  'src/a/b/c.go',
  'src/a/b/c_test.go',
  'src/main.go',
  'star*file',
  'sub/b.log',
  'sub/tmp/t',
  'tmp/t',
  'vendor/keep/k.txt',
  'vendor/v.txt',
  'we ird/f g.txt',
  'x.tmp',
];

test('a context walk sends what the docker CLI 28 sent for the same tree and .dockerignore', () => {
  const ignore =
    '# comment\n # not a comment\n**/*.log\n!sub/b.log\ndocs\n!docs/api\n!docs/guide/*.md\n*.go\n!keep.go\nsrc/**/*_test.go\nnode_modules/\n/tmp\nvendor/*\n!vendor/keep\n.git\n.env\nwe?ird\nstar\\*file\n[x]\n*.tmp\n';
  // Recorded from `docker build` (legacy builder) against a server that captured the context tar.
  assert.deepEqual(sent(TREE, ignore), [
    '.dockerignore',
    'Dockerfile',
    'README.md',
    '[x]',
    'build/',
    'build/out.bin',
    'docs/api/',
    'docs/api/x.md',
    'docs/guide/y.md',
    'keep.go',
    'q?',
    'src/',
    'src/a/',
    'src/a/b/',
    'src/a/b/c.go',
    'src/main.go',
    'sub/',
    'sub/b.log',
    'sub/tmp/',
    'sub/tmp/t',
    'vendor/',
    'vendor/keep/',
    'vendor/keep/k.txt',
  ]);
});

test('an exception with wildcards re-includes files in excluded directories (BuildKit; the docker CLI skips those directories)', () => {
  const ignore = '**\n!/src\nsrc/**/*_test.go\n!**/keep*\n!docs/**/*.md\ndocs/api\n!docs/api/x.md\n*/tmp\n!we?ird/f\\ g.txt\n! vendor/v.txt   \n';
  const got = sent([...TREE, 'docs/deep/er/z.md', 'src/a/keepme'], ignore);
  // The docker CLI sent the same minus docs/deep/er/z.md, docs/guide/y.md and we ird/f g.txt (and plus
  // Dockerfile and .dockerignore, which it always sends): its walk enters an excluded directory only when
  // an exception starts with the directory's path, so wildcard exceptions never reach inside.
  assert.deepEqual(got, [
    'docs/README.md',
    'docs/api/x.md',
    'docs/deep/er/z.md',
    'docs/guide/y.md',
    'keep.go',
    'src/',
    'src/a/',
    'src/a/b/',
    'src/a/b/c.go',
    'src/a/keepme',
    'src/main.go',
    'vendor/keep/',
    'vendor/keep/k.txt',
    'vendor/v.txt',
    'we ird/f g.txt',
  ]);
});
