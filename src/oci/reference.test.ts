import assert from 'node:assert/strict';
import { test } from 'node:test';
import { familiarName, normalizeReference, parseReference } from './reference.ts';

test('normalizes references the way docker does', () => {
  assert.equal(normalizeReference('busybox'), 'docker.io/library/busybox:latest');
  assert.equal(normalizeReference('foo/bar:1.0'), 'docker.io/foo/bar:1.0');
  assert.equal(normalizeReference('index.docker.io/library/alpine'), 'docker.io/library/alpine:latest');
  assert.equal(normalizeReference('localhost/x'), 'localhost/x:latest');
  assert.equal(normalizeReference('127.0.0.1:5000/a/b:t'), '127.0.0.1:5000/a/b:t');
  const d = 'sha256:' + 'a'.repeat(64);
  assert.equal(normalizeReference(`busybox@${d}`), `docker.io/library/busybox@${d}`);
  assert.equal(normalizeReference(`busybox:1@${d}`), `docker.io/library/busybox:1@${d}`);
});

test('familiar names drop the defaults', () => {
  assert.equal(familiarName(parseReference('busybox')), 'busybox:latest');
  assert.equal(familiarName(parseReference('docker.io/foo/bar:2')), 'foo/bar:2');
  assert.equal(familiarName(parseReference('127.0.0.1:5055/apires/bb:1')), '127.0.0.1:5055/apires/bb:1');
});

test('refuses malformed references with a clear error', () => {
  for (const bad of ['', 'UPPER', 'a//b', 'a:b:c', 'busybox@sha256:../..', 'busybox@sha256:ABC', 'x:' + 't'.repeat(200), '-a', 'a/-b']) {
    assert.throws(
      () => parseReference(bad),
      (e: Error & { code?: string }) => e.code === 'INVALID_ARGUMENT',
      bad,
    );
  }
});
