import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { planContainer } from './convert.ts';
import { inDependencyOrder } from './graph.ts';
import { loadProject } from './load.ts';
import { configHash } from './serialize.ts';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'compose-convert-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

function load(yaml: string, env: Record<string, string> = {}) {
  const d = fs.mkdtempSync(path.join(root, 'p-'));
  fs.writeFileSync(path.join(d, 'compose.yaml'), yaml);
  fs.writeFileSync(path.join(d, 'token.txt'), 'secret');
  return loadProject({ cwd: d, env, projectName: 'demo', onWarning: () => {} });
}

const YAML = `services:
  web:
    image: busybox
    command: ["httpd", "-f"]
    environment: {A: "1", UNSET: null}
    ports: ["127.0.0.1:8080:80", "9000/udp"]
    expose: ["3000"]
    volumes: ["data:/data:ro", "./src:/src", "/anon", {type: tmpfs, target: /t, tmpfs: {size: 1024}}]
    tmpfs: ["/run:size=64k"]
    networks:
      front: {aliases: [www], ipv4_address: 10.9.0.5}
      back: {}
    healthcheck: {test: ["CMD", "true"], interval: 2s, retries: 3}
    restart: on-failure:3
    mem_limit: 64m
    cpus: 0.5
    stop_grace_period: 3s
    secrets: [token]
    depends_on: [cache]
  cache:
    image: busybox
  db:
    image: busybox
    network_mode: "service:web"
networks:
  front: {}
  back: {}
volumes:
  data: {}
secrets:
  token: {file: ./token.txt}
`;

test('a service becomes a container spec: labels, env, ports, mounts, networks, health, resources', () => {
  const p = load(YAML);
  const { spec, extraNetworks } = planContainer(p, p.services.web!, 2, { imageId: 'sha256:abc', serviceContainer: () => 'x' });
  assert.equal(spec.name, 'demo-web-2');
  assert.equal(spec.labels['com.docker.compose.project'], 'demo');
  assert.equal(spec.labels['com.docker.compose.container-number'], '2');
  assert.equal(spec.labels['com.docker.compose.image'], 'sha256:abc');
  assert.equal(spec.labels['com.docker.compose.depends_on'], 'cache:service_started:false');
  assert.deepEqual(spec.env, ['A=1']);
  assert.deepEqual(spec.cmd, ['httpd', '-f']);
  assert.deepEqual(spec.exposedPorts.sort(), ['3000/tcp', '80/tcp', '9000/udp']);
  assert.deepEqual(spec.host.PortBindings, { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '8080' }], '9000/udp': [{ HostIp: '', HostPort: '' }] });
  assert.deepEqual(spec.host.Binds, [`${p.workingDir}/src:/src`]);
  // a secret's file is a Mount: the engine refuses a missing one instead of making a directory
  assert.deepEqual(spec.host.Mounts, [
    { Type: 'volume', Source: 'demo_data', Target: '/data', ReadOnly: true },
    { Type: 'volume', Target: '/anon' },
    { Type: 'tmpfs', Target: '/t', TmpfsOptions: { SizeBytes: 1024, Mode: undefined } },
    { Type: 'bind', Source: `${p.workingDir}/token.txt`, Target: '/run/secrets/token', ReadOnly: true },
  ]);
  assert.deepEqual(spec.host.Tmpfs, { '/run': 'size=64k' });
  assert.equal(spec.host.NetworkMode, 'demo_front');
  assert.deepEqual(spec.network, { name: 'demo_front', endpoint: { aliases: ['web', 'demo-web-2', 'www'], ipv4Address: '10.9.0.5' } });
  assert.deepEqual(extraNetworks, [{ name: 'demo_back', endpoint: { aliases: ['web', 'demo-web-2'] } }]);
  assert.deepEqual(spec.healthcheck, {
    Test: ['CMD', 'true'],
    Interval: 2e9,
    Timeout: undefined,
    Retries: 3,
    StartPeriod: undefined,
    StartInterval: undefined,
  });
  assert.deepEqual(spec.host.RestartPolicy, { Name: 'on-failure', MaximumRetryCount: 3 });
  assert.equal(spec.host.Memory, 64 * 1024 * 1024);
  assert.equal(spec.host.NanoCpus, 5e8);
  assert.equal(spec.stopTimeout, 3);
  const db = planContainer(p, p.services.db!, 1, { imageId: 'i', serviceContainer: (s) => `id-of-${s}` });
  assert.equal(db.spec.host.NetworkMode, 'container:id-of-web');
  assert.equal(db.spec.network, undefined);
});

test('the config hash changes with the configuration, not with scale, build or pull_policy', () => {
  const base = load(YAML).services.web!;
  assert.equal(configHash(base), configHash(structuredClone(base)));
  assert.equal(configHash(base), configHash({ ...base, scale: 5, pull_policy: 'always', build: { context: '/x' } }));
  assert.notEqual(configHash(base), configHash({ ...base, environment: { A: '2' } }));
  assert.notEqual(configHash(base), configHash({ ...base, command: ['other'] }));
});

test('dependency order: dependencies first, independent services in parallel, reverse for stop', async () => {
  const p = load(`services:
  a: {image: x, depends_on: [b, c]}
  b: {image: x, depends_on: [d]}
  c: {image: x}
  d: {image: x}
`);
  const log: string[] = [];
  let active = 0;
  let peak = 0;
  await inDependencyOrder(p, ['a', 'b', 'c', 'd'], async (n) => {
    active++;
    peak = Math.max(peak, active);
    log.push(n);
    await new Promise((r) => setTimeout(r, 10));
    active--;
  });
  assert.ok(log.indexOf('d') < log.indexOf('b') && log.indexOf('b') < log.indexOf('a') && log.indexOf('c') < log.indexOf('a'));
  assert.ok(peak >= 2);
  const rev: string[] = [];
  await inDependencyOrder(p, ['a', 'b', 'c', 'd'], async (n) => void rev.push(n), true);
  assert.equal(rev[0], 'a');
  assert.ok(rev.indexOf('b') < rev.indexOf('d'));
});

test('after a failure nothing new starts, and the first failure is reported once the rest settled', async () => {
  const p = load(`services:
  a: {image: x, depends_on: [b]}
  b: {image: x}
  c: {image: x}
`);
  const ran: string[] = [];
  let cFinished = false;
  await assert.rejects(
    inDependencyOrder(p, ['a', 'b', 'c'], async (n) => {
      ran.push(n);
      if (n === 'b') throw new Error('b failed');
      await new Promise((r) => setTimeout(r, 30));
      cFinished = true;
    }),
    /b failed/,
  );
  assert.ok(!ran.includes('a'));
  assert.ok(cFinished);
});
