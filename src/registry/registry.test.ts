import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseChallenge, repoScope } from './auth.ts';
import { describeErrors } from './client.ts';
import { authKey, normalizeAuth } from './credentials.ts';
import { RegistryHosts } from './hosts.ts';
import { isLoopbackHost } from './http.ts';
import { domainOfServerAddress } from './login.ts';
import { humanSize, progressBar } from './progress.ts';

test('progress bar and sizes match docker', () => {
  assert.equal(humanSize(115), '115B');
  assert.equal(humanSize(39936), '39.94kB');
  assert.equal(humanSize(1982354), '1.982MB');
  assert.equal(progressBar(39936, 1982354), `[=>${' '.repeat(49)}]  39.94kB/1.982MB`);
  assert.equal(progressBar(115, 115), `[${'='.repeat(50)}>]     115B/115B`);
  assert.equal(progressBar(1996800, 1982354), `[${'='.repeat(50)}>]  1.997MB`);
});

test('WWW-Authenticate challenges', () => {
  assert.deepEqual(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"'), {
    scheme: 'bearer',
    params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' },
  });
  assert.deepEqual(parseChallenge('Basic realm="Registry Realm"'), { scheme: 'basic', params: { realm: 'Registry Realm' } });
  assert.equal(parseChallenge('Negotiate abc'), undefined);
  assert.equal(repoScope('a/b', ['pull', 'push']), 'repository:a/b:pull,push');
});

test('endpoints: docker.io, loopback over HTTP, others HTTPS unless insecure, mirrors first', () => {
  const h = new RegistryHosts({ insecure: ['reg.lan:5000'], mirrors: { 'docker.io': ['http://127.0.0.1:5001'] } });
  assert.equal(h.endpoint('docker.io').base.href, 'https://registry-1.docker.io/');
  assert.equal(h.endpoint('127.0.0.1:5000').base.protocol, 'http:');
  assert.equal(h.endpoint('localhost:5000').base.protocol, 'http:');
  assert.equal(h.endpoint('[::1]:5000').base.protocol, 'http:');
  assert.equal(h.endpoint('reg.lan:5000').base.protocol, 'http:');
  assert.equal(h.endpoint('quay.io').base.protocol, 'https:');
  assert.deepEqual(
    h.pullEndpoints('docker.io').map((e) => [e.base.host, e.mirror]),
    [
      ['127.0.0.1:5001', true],
      ['registry-1.docker.io', false],
    ],
  );
  assert.ok(isLoopbackHost('127.5.6.7:80') && !isLoopbackHost('128.0.0.1') && !isLoopbackHost('localhost.evil.com'));
  h.close();
});

test('auth keys, server addresses and registry error bodies', () => {
  assert.equal(authKey('docker.io'), 'https://index.docker.io/v1/');
  assert.equal(authKey('127.0.0.1:5000'), '127.0.0.1:5000');
  assert.equal(domainOfServerAddress('https://index.docker.io/v1/'), 'docker.io');
  assert.equal(domainOfServerAddress('http://127.0.0.1:5000/'), '127.0.0.1:5000');
  assert.equal(domainOfServerAddress(undefined), 'docker.io');
  assert.throws(() => domainOfServerAddress('a b'), { code: 'INVALID_ARGUMENT' });
  assert.deepEqual(normalizeAuth({ auth: Buffer.from('u:p:q').toString('base64') }), { auth: 'dTpwOnE=', username: 'u', password: 'p:q' });
  assert.equal(describeErrors(Buffer.from('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')), 'manifest unknown: manifest unknown');
});
