import assert from 'node:assert/strict';
import { test } from 'node:test';
import { filtersFromFlags, globMatch, labelsMatch, parseFilters } from './filters.ts';

test('filters arrive as a map (docker CLI) or a list (docker-compose, True/False)', () => {
  assert.deepEqual(parseFilters('{"label":{"a=b":true},"dangling":{"true":true}}'), { label: ['a=b'], dangling: ['true'] });
  assert.deepEqual(parseFilters('{"label": ["com.docker.compose.project=x", "com.docker.compose.oneoff=False"]}'), {
    label: ['com.docker.compose.project=x', 'com.docker.compose.oneoff=False'],
  });
  assert.deepEqual(parseFilters('{"name":{"web":"True"}}'), { name: ['web'] });
  assert.deepEqual(parseFilters(''), {});
  assert.throws(() => parseFilters('{nope'), /is not JSON/);
  assert.throws(() => parseFilters('[1]'), /expected a JSON object/);
});

test('--filter flags', () => {
  assert.deepEqual(filtersFromFlags(['label=a=b', 'dangling=true', 'label=c']), { label: ['a=b', 'c'], dangling: ['true'] });
  assert.throws(() => filtersFromFlags(['nonsense']), /expected name=value/);
});

test('labels and globs', () => {
  assert.ok(labelsMatch({ a: 'b', c: '' }, ['a=b', 'c']));
  assert.ok(!labelsMatch({ a: 'b' }, ['a=c']));
  assert.ok(!labelsMatch(null, ['a']));
  assert.ok(globMatch('busy*', 'busybox:latest'));
  assert.ok(!globMatch('*', 'a/b:1'));
  assert.ok(globMatch('a/*', 'a/b'));
});
