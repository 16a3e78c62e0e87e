import assert from 'node:assert/strict';
import { test } from 'node:test';
import { projectOf } from './fake.ts';
import { configHash, projectData } from './serialize.ts';

const project = (yaml: string) => projectOf(yaml);

const service = (yaml: string) => (projectData(project(yaml)).services as Record<string, Record<string, unknown>>).web!;

test('config prints deploy.resources memory as a string of bytes and cpus as a number, as compose-go does', () => {
  const web = service(`services:
  web:
    image: busybox
    deploy:
      replicas: 2
      resources:
        limits: {cpus: '0.50', memory: 64m, pids: 10}
        reservations: {cpus: "1", memory: 1g, devices: [{capabilities: [gpu]}]}
`);
  assert.deepEqual(web.deploy, {
    replicas: 2,
    resources: {
      limits: { cpus: 0.5, memory: '67108864', pids: 10 },
      reservations: { cpus: 1, memory: '1073741824', devices: [{ capabilities: ['gpu'] }] },
    },
  });
  // a float32, printed as Go prints it
  assert.equal(
    (service(`services:\n  web: {image: busybox, deploy: {resources: {limits: {cpus: 0.1}}}}\n`).deploy as { resources: { limits: { cpus: number } } })
      .resources.limits.cpus,
    0.1,
  );
});

test("config prints the service's sizes (UnitBytes) as strings of bytes; the hash is the same as before", () => {
  const yaml = `services:
  web:
    image: busybox
    mem_limit: 32m
    memswap_limit: -1
    shm_size: 1m
    volumes: [{type: tmpfs, target: /t, tmpfs: {size: 1k}}]
`;
  const web = service(yaml);
  assert.equal(web.mem_limit, '33554432');
  assert.equal(web.memswap_limit, '-1');
  assert.equal(web.shm_size, '1048576');
  assert.deepEqual((web.volumes as { tmpfs: unknown }[])[0]!.tmpfs, { size: '1024' });
  // (the hash keel computed for this file before sizes were printed as strings)
  assert.equal(configHash(project(yaml).services.web!), '02179d8bb3127bc38dba4b610ae3809a18da2d11ac220445d9c9422b9b77b8ec');
});
