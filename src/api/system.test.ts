import assert from 'node:assert/strict';
import { test } from 'node:test';
import { registryConfig } from './system.ts';

test('RegistryConfig: with no settings, what dockerd 20.10 answered (shared/reference docker-api-1.41/inspect.log)', () => {
  assert.equal(
    JSON.stringify(registryConfig({ mirrors: {}, insecure: [] })),
    '{"AllowNondistributableArtifactsCIDRs":[],"AllowNondistributableArtifactsHostnames":[],"InsecureRegistryCIDRs":["127.0.0.0/8"],"IndexConfigs":{"docker.io":{"Name":"docker.io","Mirrors":[],"Secure":true,"Official":true}},"Mirrors":[]}',
  );
});

test('RegistryConfig: mirrors end in "/" and sit on docker.io; insecure hosts are non-secure indexes, sorted', () => {
  const c = registryConfig({
    mirrors: { 'docker.io': ['https://m1.example.com', 'http://m2.lan:5000/', 'https://m1.example.com'] },
    insecure: ['reg.lan:5000', 'a.lan'],
  }) as Record<string, unknown>;
  assert.deepEqual(c.Mirrors, ['https://m1.example.com/', 'http://m2.lan:5000/']);
  assert.deepEqual(Object.keys(c.IndexConfigs as object), ['a.lan', 'docker.io', 'reg.lan:5000']);
  assert.deepEqual((c.IndexConfigs as Record<string, unknown>)['reg.lan:5000'], { Name: 'reg.lan:5000', Mirrors: [], Secure: false, Official: false });
  assert.deepEqual((c.IndexConfigs as Record<string, unknown>)['docker.io'], {
    Name: 'docker.io',
    Mirrors: ['https://m1.example.com/', 'http://m2.lan:5000/'],
    Secure: true,
    Official: true,
  });
});
