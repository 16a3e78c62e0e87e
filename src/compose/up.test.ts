import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EngineError } from '../common/errors.ts';
import { FakeEngine, projectOf } from './fake.ts';
import { down, stop } from './ops.ts';
import { collectingReporter } from './reporter.ts';
import { up } from './up.ts';

const project = (yaml: string, env: Record<string, string> = {}) => projectOf(yaml, { env });

const YAML = `services:
  web:
    image: busybox
    environment: ["V=\${V:-1}"]
    depends_on:
      db: {condition: service_healthy, restart: true}
  db:
    image: busybox
    healthcheck: {test: ["CMD", "true"]}
  cache:
    image: redis
    scale: 2
`;

test('up creates, starts in dependency order, and a second up changes nothing', async () => {
  const e = new FakeEngine();
  const r = collectingReporter();
  await up(e.backend(), project(YAML), r);
  assert.deepEqual(e.names(), ['app-cache-1:running', 'app-cache-2:running', 'app-db-1:running', 'app-web-1:running']);
  assert.ok(e.calls.includes('pull redis'));
  assert.ok(e.calls.includes('network app_default'));
  assert.ok(e.calls.indexOf('start app-db-1') < e.calls.indexOf('create app-web-1'));
  e.calls.length = 0;
  await up(e.backend(), project(YAML), r);
  assert.equal(e.calls.join(), '');
});

test('a changed service is recreated; its dependents with restart: true restart; scale down removes the highest', async () => {
  const e = new FakeEngine();
  const r = collectingReporter();
  await up(e.backend(), project(YAML), r);
  e.calls.length = 0;
  await up(
    e.backend(),
    project(YAML.replace('healthcheck: {test: ["CMD", "true"]}', 'healthcheck: {test: ["CMD", "true"], retries: 9}').replace('scale: 2', 'scale: 1')),
    r,
  );
  assert.ok(e.calls.includes('create app-db-1'));
  assert.ok(e.calls.includes('restart app-web-1'));
  assert.ok(e.calls.includes('remove app-cache-2'));
  assert.ok(!e.calls.includes('create app-web-1'));
  assert.deepEqual(e.names(), ['app-cache-1:running', 'app-db-1:running', 'app-web-1:running']);
  e.calls.length = 0;
  await up(
    e.backend(),
    project(YAML.replace('scale: 2', 'scale: 1').replace('healthcheck: {test: ["CMD", "true"]}', 'healthcheck: {test: ["CMD", "true"], retries: 9}'), {
      V: '2',
    }),
    r,
    { noRecreate: true },
  );
  assert.equal(e.calls.join(), '');
  await up(e.backend(), project(YAML, { V: '2' }), r, { services: ['web'], noDeps: true });
  assert.deepEqual(
    e.calls.filter((c) => c.startsWith('create')),
    ['create app-web-1'],
  );
});

test('orphans are reported, removed with removeOrphans; down stops in reverse order and removes everything', async () => {
  const e = new FakeEngine();
  const r = collectingReporter();
  await up(e.backend(), project(YAML), r);
  const smaller = project(YAML.replace(/ {2}cache:\n.*\n.*\n/, ''));
  await up(e.backend(), smaller, r);
  assert.match(r.warnings.join('\n'), /Found orphan containers \(\[app-cache-1 app-cache-2\]\)/);
  await up(e.backend(), smaller, r, { removeOrphans: true });
  assert.deepEqual(e.names(), ['app-db-1:running', 'app-web-1:running']);
  e.calls.length = 0;
  await stop(e.backend(), { name: 'app', project: smaller }, r);
  assert.deepEqual(e.calls, ['stop app-web-1', 'stop app-db-1']);
  await down(e.backend(), { name: 'app' }, r, { volumes: true });
  assert.deepEqual(e.names(), []);
  assert.equal(e.networks.size, 0);
});

test('a service with build and no image is built; --build rebuilds', async () => {
  const e = new FakeEngine();
  const r = collectingReporter();
  const p = project('services:\n  api:\n    build: .\n');
  await up(e.backend(), p, r);
  assert.ok(e.calls.includes('build app-api'));
  e.calls.length = 0;
  await up(e.backend(), p, r);
  assert.ok(!e.calls.some((c) => c.startsWith('build')));
  await up(e.backend(), p, r, { build: true });
  assert.ok(e.calls.includes('build app-api'));
});

test("a service in another service's network namespace is recreated with it", async () => {
  const e = new FakeEngine();
  const r = collectingReporter();
  const y = 'services:\n  net:\n    image: busybox\n    environment: ["V=${V:-1}"]\n  side:\n    image: busybox\n    network_mode: "service:net"\n';
  await up(e.backend(), project(y), r);
  const netId = [...e.containers.values()].find((c) => c.name === 'app-net-1')!.id;
  assert.equal([...e.containers.values()].find((c) => c.name === 'app-side-1')!.spec.host.NetworkMode, `container:${netId}`);
  e.calls.length = 0;
  await up(e.backend(), project(y, { V: '2' }), r);
  const newNet = [...e.containers.values()].find((c) => c.name === 'app-net-1')!.id;
  assert.notEqual(newNet, netId);
  assert.equal([...e.containers.values()].find((c) => c.name === 'app-side-1')!.spec.host.NetworkMode, `container:${newNet}`);
});

test('volumes_from and ipc service:X take X container id; a no-op up keeps them; a new X container recreates them', async () => {
  const e = new FakeEngine();
  const r = collectingReporter();
  const y =
    'services:\n  data:\n    image: busybox\n    environment: ["V=${V:-1}"]\n' +
    '  reader:\n    image: busybox\n    volumes_from: ["data:ro", "container:legacy"]\n    ipc: service:data\n    cgroup_parent: /custom\n    cgroup: host\n';
  await up(e.backend(), project(y), r);
  const byName = (n: string) => [...e.containers.values()].find((c) => c.name === n)!;
  const dataId = byName('app-data-1').id;
  assert.deepEqual(byName('app-reader-1').spec.host.VolumesFrom, [`${dataId}:ro`, 'legacy']);
  assert.equal(byName('app-reader-1').spec.host.IpcMode, `container:${dataId}`);
  assert.equal(byName('app-reader-1').spec.host.CgroupParent, '/custom');
  assert.equal(byName('app-reader-1').spec.host.CgroupnsMode, 'host');
  assert.ok(e.calls.indexOf('start app-data-1') < e.calls.indexOf('create app-reader-1'), 'data is a dependency of reader');
  e.calls.length = 0;
  await up(e.backend(), project(y), r);
  assert.deepEqual(
    e.calls.filter((c) => c.startsWith('create') || c.startsWith('remove')),
    [],
    'nothing changed, nothing recreated',
  );
  await up(e.backend(), project(y.replace('cgroup_parent: /custom', 'cgroup_parent: /other')), r);
  assert.ok(e.calls.includes('create app-reader-1'), 'a changed cgroup_parent recreates');
  e.calls.length = 0;
  await up(e.backend(), project(y.replace('cgroup_parent: /custom', 'cgroup_parent: /other'), { V: '2' }), r);
  const newData = byName('app-data-1').id;
  assert.notEqual(newData, dataId);
  assert.deepEqual(byName('app-reader-1').spec.host.VolumesFrom, [`${newData}:ro`, 'legacy']);
});

test("a missing image is pulled for the service's platform", async () => {
  const e = new FakeEngine();
  await up(e.backend(), project('services:\n  a:\n    image: arm-only\n    platform: linux/arm64\n'), collectingReporter());
  assert.ok(e.calls.includes('pull arm-only linux/arm64'), e.calls.join('\n'));
});

test(
  'down: the stops follow the dependency order; a stopped container is removed beside the next stops; a failed removal fails down after the others',
  { timeout: 10_000 },
  async () => {
    const e = new FakeEngine();
    const r = collectingReporter();
    const p = project(YAML);
    await up(e.backend(), p, r);
    const b = e.backend();
    // web's removal finishes only once db has been stopped: a down that waited for it before stopping db would never end
    let dbStopped!: () => void;
    const gate = new Promise<void>((res) => (dbStopped = res));
    const stopContainer = b.stopContainer;
    b.stopContainer = async (id, t) => {
      await stopContainer(id, t);
      if (e.find(id).name === 'app-db-1') dbStopped();
    };
    const removeContainer = b.removeContainer;
    b.removeContainer = async (id, o) => {
      const name = e.find(id).name;
      if (name === 'app-web-1') await gate;
      if (name === 'app-cache-2') throw new EngineError('INTERNAL', 'cannot remove app-cache-2');
      await removeContainer(id, o);
    };
    e.calls.length = 0;
    await assert.rejects(down(b, { name: 'app', project: p }, r), /cannot remove app-cache-2/);
    assert.ok(e.calls.indexOf('stop app-web-1') < e.calls.indexOf('stop app-db-1'));
    assert.ok(e.calls.indexOf('stop app-db-1') < e.calls.indexOf('remove app-web-1'));
    assert.deepEqual(e.names(), ['app-cache-2:exited']);
  },
);
