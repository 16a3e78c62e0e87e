import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDotenv, parseRawEnv } from './dotenv.ts';

test('.env lines: comments, export, quotes, inline comments, interpolation, bare keys', () => {
  const text = [
    '# a comment',
    '',
    'A=1',
    'export B = two words ',
    "C='literal $A \\n'",
    'D="line\\nnext $A"',
    'E=x # comment',
    'F=x#not-a-comment',
    'G=${A}-${UNSET:-dflt}',
    'H',
    'I',
    'J="multi',
    'line"',
    'K=',
  ].join('\n');
  const out = parseDotenv(text, '.env', (n) => ({ H: 'from-os' })[n]);
  assert.deepEqual(out, {
    A: '1',
    B: 'two words',
    C: 'literal $A \\n',
    D: 'line\nnext 1',
    E: 'x',
    F: 'x#not-a-comment',
    G: '1-dflt',
    H: 'from-os',
    J: 'multi\nline',
    K: '',
  });
});

test('bad lines and unterminated quotes name the file', () => {
  assert.throws(() => parseDotenv('A B=1', '/p/.env'), /\/p\/\.env:1: invalid line/);
  assert.throws(() => parseDotenv('A="open', '/p/.env'), /\/p\/\.env: unterminated quoted value for A/);
});

test('env_file format raw: literal values as docker run --env-file reads them', () => {
  const text = '# comment\nA="quoted" # kept\nB=$HOME/${X}\n  C=spaced value \nD\nE\n';
  assert.deepEqual(
    parseRawEnv(text, 'f.env', (n) => (n === 'D' ? 'from-env' : undefined)),
    { A: '"quoted" # kept', B: '$HOME/${X}', C: 'spaced value ', D: 'from-env' },
  );
  assert.throws(() => parseRawEnv('BAD KEY=1\n', 'f.env'), /f\.env:1: variable 'BAD KEY' contains whitespaces/);
});
