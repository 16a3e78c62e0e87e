import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expand, expandWords, lex } from './lex.ts';

const env: Record<string, string> = { HOME: '/root', EMPTY: '', SP: 'a  b', LEAD: '  x y', PATHV: '/usr/local/bin/tool.tar.gz', K: '한국어' };
const vars = (n: string) => env[n];
const ok = (input: string, want: string, escape: '\\' | '`' = '\\') => assert.equal(expand(input, vars, escape), want, input);
const bad = (input: string, re: RegExp) =>
  assert.throws(
    () => expand(input, vars),
    (e: Error & { code?: string }) => e.code === 'INVALID_ARGUMENT' && re.test(e.message),
    input,
  );

test('plain variables, braces, unset ones and lone dollars', () => {
  ok('$HOME', '/root');
  ok('${HOME}', '/root');
  ok('x${HOME}y', 'x/rooty');
  ok('$HOMEx', '');
  ok('$NOPE', '');
  ok('a$', 'a$');
  ok('$.', '$.');
  ok('he$1x', 'hex'); // positional parameters are names too (unset)
  ok('$K', '한국어');
  ok('${K}!', '한국어!');
  bad('${}', /bad substitution/);
  bad('${HOME', /missing '}'/);
  bad('${:-x}', /bad substitution/);
  bad('${HOME x}', /unsupported modifier \( \)/);
});

test('default, alternative and required modifiers, with and without the colon', () => {
  ok('${NOPE:-dflt}', 'dflt');
  ok('${EMPTY:-dflt}', 'dflt');
  ok('${EMPTY-dflt}', '');
  ok('${NOPE-dflt}', 'dflt');
  ok('${HOME:-dflt}', '/root');
  ok('${HOME:+alt}', 'alt');
  ok('${EMPTY:+alt}', '');
  ok('${EMPTY+alt}', 'alt');
  ok('${NOPE+alt}', '');
  ok('${NOPE:-${HOME}/x}', '/root/x'); // nested
  ok('${NOPE:-a b}', 'a b');
  ok('${NOPE:-"q }"}', 'q }');
  ok('${HOME?}', '/root');
  ok('${EMPTY?}', '');
  bad('${NOPE?}', /NOPE: is not allowed to be unset/);
  bad('${EMPTY:?}', /EMPTY: is not allowed to be empty/);
  bad('${NOPE:?set it $HOME}', /NOPE: set it \/root/);
  bad('${HOME:#x}', /unsupported modifier \(:#\)/);
  bad('${HOME:x}', /unsupported modifier \(:x\)/);
});

test('pattern removal and replacement (BuildKit extensions)', () => {
  ok('${PATHV#*/}', 'usr/local/bin/tool.tar.gz');
  ok('${PATHV##*/}', 'tool.tar.gz');
  ok('${PATHV%.*}', '/usr/local/bin/tool.tar');
  ok('${PATHV%%.*}', '/usr/local/bin/tool');
  ok('${PATHV#nomatch}', '/usr/local/bin/tool.tar.gz');
  ok('${PATHV/local/opt}', '/usr/opt/bin/tool.tar.gz');
  ok('${PATHV//\\//_}', '_usr_local_bin_tool.tar.gz');
  ok('${PATHV/t?o/X}', '/usr/local/bin/Xl.tar.gz');
  ok('${NOPE/a/b}', '');
  bad('${PATHV/x}', /missing '\/'/);
});

test('quotes and escapes', () => {
  ok(`'$HOME'`, '$HOME');
  ok(`"$HOME"`, '/root');
  ok(`he'll'o`, 'hello');
  ok(`"a'b"`, `a'b`);
  ok(`\\$HOME`, '$HOME');
  ok(`"\\$HOME"`, '$HOME');
  ok(`"\\\\$HOME"`, '\\/root');
  ok(`"a\\tb"`, 'a\\tb'); // only $, " and the escape char are escaped inside double quotes
  ok(`a\\tb`, 'atb');
  ok(`'a\\tb'`, 'a\\tb');
  ok(`hello\\`, 'hello');
  ok(`\\\${}`, '${}');
  ok('`$HOME', '$HOME', '`'); // backtick escape
  ok('\\$HOME', '\\/root', '`');
  bad(`'open`, /matching single-quote/);
  bad(`"open`, /matching double-quote/);
  bad(`"open\\"`, /matching double-quote/);
});

test('words: variable values split, quoted text does not', () => {
  assert.deepEqual(expandWords('a b  c', vars), ['a', 'b', 'c']);
  assert.deepEqual(expandWords('x${SP}y', vars), ['xa', 'by']);
  assert.deepEqual(expandWords('x"${SP}"y', vars), ['xa  by']);
  assert.deepEqual(expandWords('$LEAD', vars), ['x', 'y']);
  assert.deepEqual(expandWords('a\\ b', vars), ['a b']);
  assert.deepEqual(expandWords('"" x', vars), ['x']);
  assert.deepEqual(expandWords('80 $NOPE 443', vars), ['80', '443']);
});

test('heredoc markers stay one word; raw modes keep quotes and escapes; unset variables can be kept', () => {
  assert.deepEqual(lex('cat << EOF', () => undefined, { escape: '\\' }).words, ['cat', '<< EOF']);
  assert.deepEqual(lex(`<<"EOF"`, () => undefined, { escape: '\\', rawQuotes: true }).words, [`<<"EOF"`]);
  assert.equal(lex('a\\b $X ${Y:-z}', () => undefined, { escape: '\\', rawEscapes: true, skipUnset: true }).word, 'a\\b $X ${Y:-z}');
  assert.equal(lex(`it's "$HOME"`, vars, { escape: '\\', skipQuotes: true }).word, `it's "/root"`);
});

test('bounded work: deep nesting is refused, long inputs are linear', () => {
  bad('${A:-'.repeat(10000) + '}'.repeat(10000), /nested too deeply/);
  const long = '$HOME '.repeat(200000);
  const t0 = performance.now();
  assert.equal(expandWords(long, vars).length, 200000);
  // Linear takes ~0.3 s here; quadratic would take minutes. The bound is loose so a loaded machine cannot fail it.
  assert.ok(performance.now() - t0 < 30000);
});
