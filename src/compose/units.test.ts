import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatDuration, goDuration, parseBytes, parseDuration } from './units.ts';

test('Go durations both ways', () => {
  assert.equal(goDuration('1m30s'), 90e9);
  assert.equal(goDuration('1.5h'), 5400e9);
  assert.equal(goDuration('500ms'), 5e8);
  assert.equal(goDuration('0'), 0);
  assert.equal(goDuration('10'), undefined);
  assert.equal(goDuration('1x'), undefined);
  assert.equal(parseDuration(5, 'x'), 5e9);
  assert.throws(() => parseDuration('soon', 'services.a.healthcheck.interval'), /services\.a\.healthcheck\.interval: invalid duration "soon"/);
  assert.equal(formatDuration(90e9), '1m30s');
  assert.equal(formatDuration(5e8), '500ms');
  assert.equal(formatDuration(3600e9), '1h0m0s');
  assert.equal(formatDuration(30e9), '30s');
});

test('byte sizes', () => {
  assert.equal(parseBytes('512m', 'x'), 512 * 1024 ** 2);
  assert.equal(parseBytes('1g', 'x'), 1024 ** 3);
  assert.equal(parseBytes('1GB', 'x'), 1024 ** 3);
  assert.equal(parseBytes('100', 'x'), 100);
  assert.equal(parseBytes(4096, 'x'), 4096);
  assert.throws(() => parseBytes('lots', 'services.a.mem_limit'), /services\.a\.mem_limit: invalid size/);
});
