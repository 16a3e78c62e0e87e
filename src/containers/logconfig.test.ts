import assert from 'node:assert/strict';
import { test } from 'node:test';
import { normalizeLogConfig, parseHumanSize, policyOf } from './logconfig.ts';

test('LogConfig: json-file by default, docker driver names, options checked', () => {
  assert.deepEqual(normalizeLogConfig(undefined), { Type: 'json-file', Config: {} });
  assert.deepEqual(normalizeLogConfig({ Type: '', Config: {} }), { Type: 'json-file', Config: {} });
  assert.deepEqual(normalizeLogConfig({ Type: 'k8s-file', Config: { 'max-size': '1m' } }), { Type: 'json-file', Config: { 'max-size': '1m' } });
  assert.deepEqual(normalizeLogConfig({ Type: 'local', Config: { 'max-size': '1m' } }), { Type: 'local', Config: { 'max-size': '1m' } });
  assert.throws(() => normalizeLogConfig({ Type: 'syslog', Config: {} }), /not supported by keel/);
  assert.throws(() => normalizeLogConfig({ Type: 'nope', Config: {} }), /no log driver named 'nope'/);
  assert.throws(() => normalizeLogConfig({ Type: 'json-file', Config: { 'max-sise': '1m' } }), /unknown log opt 'max-sise'/);
  assert.throws(() => normalizeLogConfig({ Type: 'json-file', Config: { 'max-size': 'lots' } }), /invalid size/);
  assert.throws(() => normalizeLogConfig({ Type: 'json-file', Config: { 'max-file': '0', 'max-size': '1m' } }), /max-file/);
  assert.throws(() => normalizeLogConfig({ Type: 'json-file', Config: { 'max-file': '3' } }), /without max-size/);
  assert.throws(() => normalizeLogConfig({ Type: 'none', Config: { 'max-size': '1m' } }), /no options|unknown log opt/);
});

test('LogPolicy: docker units and defaults', () => {
  assert.equal(parseHumanSize('1m'), 1_000_000);
  assert.equal(parseHumanSize('10k'), 10_000);
  assert.equal(parseHumanSize('1.5g'), 1_500_000_000);
  assert.deepEqual(policyOf({ Type: 'json-file', Config: {} }), { driver: 'json-file', maxSize: 0, maxFile: 1, compress: false });
  assert.deepEqual(policyOf({ Type: 'json-file', Config: { 'max-size': '1m', 'max-file': '2', compress: 'true' } }), {
    driver: 'json-file',
    maxSize: 1e6,
    maxFile: 2,
    compress: true,
  });
  assert.deepEqual(policyOf({ Type: 'local', Config: {} }), { driver: 'local', maxSize: 20e6, maxFile: 5, compress: true });
  assert.deepEqual(policyOf({ Type: 'none', Config: {} }).driver, 'none');
  // Records from before drivers were honoured.
  assert.equal(policyOf({ Type: 'k8s-file', Config: {} }).driver, 'json-file');
});

test('LogConfig: a daemon default driver and its options, under the container own', () => {
  const dflt = { Type: 'local', Config: { 'max-size': '5m' } };
  assert.deepEqual(normalizeLogConfig(undefined, dflt), { Type: 'local', Config: { 'max-size': '5m' } });
  assert.deepEqual(normalizeLogConfig({ Type: 'local', Config: { 'max-file': '2' } }, dflt), { Type: 'local', Config: { 'max-size': '5m', 'max-file': '2' } });
  assert.deepEqual(normalizeLogConfig({ Type: 'json-file', Config: {} }, dflt), { Type: 'json-file', Config: {} });
});
