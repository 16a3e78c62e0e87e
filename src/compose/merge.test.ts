import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mergeTrees, Override, RESET, stripMarkers } from './merge.ts';

const svc = (base: object, over: object) => (mergeTrees({ services: { s: base } }, { services: { s: over } }) as any).services.s;

test('scalars are overridden, mappings merged', () => {
  assert.deepEqual(
    svc({ image: 'a', deploy: { replicas: 1, resources: { limits: { cpus: '1' } } } }, { image: 'b', deploy: { resources: { limits: { memory: '1g' } } } }),
    { image: 'b', deploy: { replicas: 1, resources: { limits: { cpus: '1', memory: '1g' } } } },
  );
});

test('command, entrypoint and healthcheck.test are replaced whole', () => {
  assert.deepEqual(
    svc(
      { command: ['a', 'b'], entrypoint: ['x'], healthcheck: { test: ['CMD', 'a'], interval: '1s' } },
      { command: ['c'], entrypoint: 'y', healthcheck: { test: ['CMD', 'b'] } },
    ),
    { command: ['c'], entrypoint: 'y', healthcheck: { test: ['CMD', 'b'], interval: '1s' } },
  );
});

test('environment and labels merge by key across list and map forms', () => {
  assert.deepEqual(svc({ environment: ['A=1', 'B=2', 'C'], labels: { x: '1' } }, { environment: { B: '3', D: 4 }, labels: ['y=2'] }), {
    environment: { A: '1', B: '3', C: null, D: 4 },
    labels: { x: '1', y: '2' },
  });
});

test('ports and volumes append and de-duplicate by identity; plain lists by value', () => {
  const m = svc(
    { ports: ['80:80', '443:443'], volumes: ['./a:/data', 'v:/other'], dns: ['1.1.1.1'], cap_add: ['NET_ADMIN'] },
    { ports: ['80:80', '8080:8080'], volumes: ['./b:/data'], dns: ['1.1.1.1', '8.8.8.8'], cap_add: ['SYS_ADMIN'] },
  );
  assert.deepEqual(m.ports, ['80:80', '443:443', '8080:8080']);
  assert.deepEqual(m.volumes, ['./b:/data', 'v:/other']);
  assert.deepEqual(m.dns, ['1.1.1.1', '8.8.8.8']);
  assert.deepEqual(m.cap_add, ['NET_ADMIN', 'SYS_ADMIN']);
});

test('depends_on and networks merge as maps from either form', () => {
  const m = svc(
    { depends_on: ['db'], networks: ['front'] },
    { depends_on: { cache: { condition: 'service_healthy' } }, networks: { back: { aliases: ['x'] } } },
  );
  assert.deepEqual(m.depends_on, { db: { condition: 'service_started', required: true }, cache: { condition: 'service_healthy' } });
  assert.deepEqual(m.networks, { front: null, back: { aliases: ['x'] } });
});

test('logging merges only when the drivers agree; build string and mapping merge', () => {
  assert.deepEqual(svc({ logging: { driver: 'json-file', options: { a: '1' } } }, { logging: { options: { b: '2' } } }).logging, {
    driver: 'json-file',
    options: { a: '1', b: '2' },
  });
  assert.deepEqual(svc({ logging: { driver: 'json-file', options: { a: '1' } } }, { logging: { driver: 'syslog' } }).logging, { driver: 'syslog' });
  assert.deepEqual(svc({ build: '.' }, { build: { dockerfile: 'D' } }).build, { context: '.', dockerfile: 'D' });
});

test('!reset removes, !override replaces', () => {
  const m = svc({ ports: ['80:80'], environment: { A: '1' }, image: 'x' }, { ports: RESET, environment: new Override({ B: '2' }) });
  assert.deepEqual(m, { image: 'x', environment: { B: '2' } });
  assert.deepEqual(stripMarkers({ a: RESET, b: [1, RESET], c: new Override([1]) }), { b: [1], c: [1] });
});

test('a mapping cannot be merged with a sequence', () => {
  assert.throws(() => svc({ deploy: { a: 1 } }, { deploy: [1] }), /cannot override services\.s\.deploy/);
});
