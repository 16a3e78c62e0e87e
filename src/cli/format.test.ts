import assert from 'node:assert/strict';
import { test } from 'node:test';
import { humanDuration, humanSize, renderTemplate, table } from './format.ts';

test('sizes and durations read like the docker CLI', () => {
  assert.equal(humanSize(1982354), '1.98MB');
  assert.equal(humanSize(0), '0B');
  assert.equal(humanSize(999), '999B');
  assert.equal(humanSize(1_500_000_000), '1.5GB');
  assert.equal(humanDuration(0.2), 'Less than a second');
  assert.equal(humanDuration(45), '45 seconds');
  assert.equal(humanDuration(3600), 'About an hour');
  assert.equal(humanDuration(5 * 3600), '5 hours');
  assert.equal(humanDuration(3 * 86400), '3 days');
});

test('tables pad columns like tabwriter: three spaces, at least ten wide', () => {
  assert.equal(table(['A', 'BB'], [['xxx', 'y']]), 'A         BB\nxxx       y\n');
  assert.equal(table(['REPOSITORY', 'TAG'], [['busybox', 'local']]), 'REPOSITORY   TAG\nbusybox      local\n');
});

test('Go-template subset: fields, json, table', () => {
  const rows = [{ ID: 'abc', Repository: 'busybox', Labels: { a: '1' } }];
  assert.equal(renderTemplate('{{.ID}} {{.Repository}}', rows), 'abc busybox\n');
  assert.equal(renderTemplate('{{json .Labels}}', rows), '{"a":"1"}\n');
  assert.equal(renderTemplate('{{.Labels.a}}', rows), '1\n');
  assert.equal(renderTemplate('table {{.Repository}}\\t{{.ID}}', rows), 'REPOSITORY   IMAGE ID\nbusybox      abc\n');
});
