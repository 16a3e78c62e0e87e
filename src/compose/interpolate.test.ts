import assert from 'node:assert/strict';
import { test } from 'node:test';
import { interpolateString, interpolateTree } from './interpolate.ts';
import { Override } from './merge.ts';

const env: Record<string, string> = { A: 'a', EMPTY: '', N: '3' };
const look = (n: string) => env[n];
const i = (s: string) => interpolateString(s, look);

test('plain, braced and escaped', () => {
  assert.equal(i('x $A ${A} $$A $${A} $$'), 'x a a $A ${A} $');
  assert.equal(i('${A}b$A-c'), 'ab' + 'a-c');
  assert.equal(i('no vars'), 'no vars');
});

test('defaults: :- for unset or empty, - for unset only', () => {
  assert.equal(i('${UNSET:-d}'), 'd');
  assert.equal(i('${EMPTY:-d}'), 'd');
  assert.equal(i('${EMPTY-d}'), '');
  assert.equal(i('${UNSET-d}'), 'd');
  assert.equal(i('${A:-d}'), 'a');
  assert.equal(i('${UNSET:-${A}-${UNSET2:-z}}'), 'a-z');
  assert.equal(i('${UNSET:-}'), '');
});

test('alternatives: :+ when set and non-empty, + when set', () => {
  assert.equal(i('${A:+x}'), 'x');
  assert.equal(i('${EMPTY:+x}'), '');
  assert.equal(i('${EMPTY+x}'), 'x');
  assert.equal(i('${UNSET+x}'), '');
});

test('required: :? and ? fail with the message', () => {
  assert.throws(() => i('${UNSET:?need it}'), /required variable UNSET is missing a value: need it/);
  assert.throws(() => i('${EMPTY:?}'), /required variable EMPTY is missing a value$/);
  assert.equal(i('${EMPTY?err}'), '');
  assert.throws(() => i('${UNSET?err}'), /required variable UNSET is missing a value: err/);
});

test('unset variables warn once per use and become empty; bad templates fail', () => {
  const missing: string[] = [];
  assert.equal(interpolateString('${NOPE}$NOPE2', look, { onMissing: (n) => missing.push(n) }), '');
  assert.deepEqual(missing, ['NOPE', 'NOPE2']);
  assert.throws(() => i('${A'), /Invalid template/);
  assert.throws(() => i('${}'), /Invalid template/);
  assert.throws(() => i('${A:x}'), /Invalid template/);
  assert.throws(() => i('$-'), /Invalid template/);
});

test('trees: values only, errors name the key, override markers kept', () => {
  const out = interpolateTree({ services: { web: { image: 'busybox:${N}', '${A}': 1, ports: ['${N}:80'], o: new Override(['$A']) } } }, look) as any;
  assert.equal(out.services.web.image, 'busybox:3');
  assert.ok('${A}' in out.services.web);
  assert.deepEqual(out.services.web.ports, ['3:80']);
  assert.ok(out.services.web.o instanceof Override);
  assert.deepEqual(out.services.web.o.value, ['a']);
  assert.throws(
    () => interpolateTree({ services: { web: { image: '${X:?no image}' } } }, look),
    /^EngineError: services\.web\.image: required variable X is missing a value: no image$/,
  );
});
