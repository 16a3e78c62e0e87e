import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeEngine, projectOf } from './fake.ts';
import * as L from './labels.ts';
import { collectingReporter } from './reporter.ts';
import { up } from './up.ts';

const project = (yaml: string) => projectOf(yaml);

const YAML = `services:
  web:
    image: busybox
    depends_on: [db]
  db:
    image: postgres
    volumes: ["/scratch", "data:/var/lib/data"]
volumes:
  data: {}
`;

const mountsOf = (e: FakeEngine, name: string) => Object.fromEntries(e.find(name).mounts!.map((m) => [m.destination, m.name]));

test("a recreated container keeps its predecessor's anonymous volumes (the service's and the image's); -V makes new ones", async () => {
  const e = new FakeEngine();
  e.images.set('postgres', 'sha256:pg');
  e.imageVolumes.set('postgres', ['/var/lib/postgresql/data']);
  const r = collectingReporter();
  await up(e.backend(), project(YAML), r);
  const before = mountsOf(e, 'app-db-1');
  assert.deepEqual(Object.keys(before).sort(), ['/scratch', '/var/lib/data', '/var/lib/postgresql/data']);
  assert.equal(before['/var/lib/data'], 'app_data');
  await up(e.backend(), project(YAML), r, { forceRecreate: true });
  assert.deepEqual(mountsOf(e, 'app-db-1'), before);
  await up(e.backend(), project(YAML), r, { renewAnonVolumes: true });
  const renewed = mountsOf(e, 'app-db-1');
  assert.equal(renewed['/var/lib/data'], 'app_data', 'a named volume stays');
  assert.notEqual(renewed['/scratch'], before['/scratch']);
  assert.notEqual(renewed['/var/lib/postgresql/data'], before['/var/lib/postgresql/data']);
});

test('--force-recreate of a named service leaves its dependencies unless --always-recreate-deps', async () => {
  const e = new FakeEngine();
  e.images.set('postgres', 'sha256:pg');
  const r = collectingReporter();
  await up(e.backend(), project(YAML), r);
  const ids = () => Object.fromEntries([...e.containers.values()].map((c) => [c.labels[L.SERVICE], c.id]));
  const first = ids();
  await up(e.backend(), project(YAML), r, { services: ['web'], forceRecreate: true });
  const second = ids();
  assert.notEqual(second.web, first.web);
  assert.equal(second.db, first.db);
  await up(e.backend(), project(YAML), r, { services: ['web'], alwaysRecreateDeps: true });
  const third = ids();
  assert.notEqual(third.db, second.db);
  assert.equal(third.web, second.web, 'web itself is unchanged');
  // nothing named: every service is targeted
  await up(e.backend(), project(YAML), r, { forceRecreate: true });
  const fourth = ids();
  assert.ok(fourth.web !== third.web && fourth.db !== third.db);
});

test('a volume whose configuration changed is kept with a warning, or made anew with its containers under -y', async () => {
  const e = new FakeEngine();
  e.images.set('postgres', 'sha256:pg');
  await up(e.backend(), project(YAML), collectingReporter());
  const changed = YAML.replace('  data: {}', '  data: {labels: {tier: db}}');
  const r = collectingReporter();
  await up(e.backend(), project(changed), r);
  assert.match(r.warnings.join('\n'), /volume "app_data" exists but doesn't match configuration/);
  assert.equal(e.volumes.get('app_data')!.labels.tier, undefined);
  e.calls.length = 0;
  const yes = collectingReporter();
  await up(e.backend(), project(changed), yes, { assumeYes: true });
  assert.deepEqual(yes.warnings, []);
  assert.equal(e.volumes.get('app_data')!.labels.tier, 'db');
  assert.ok(e.calls.indexOf('remove app-db-1') < e.calls.indexOf('remove volume app_data'), e.calls.join());
  assert.deepEqual(e.names(), ['app-db-1:running', 'app-web-1:running']);
  assert.equal(mountsOf(e, 'app-db-1')['/var/lib/data'], 'app_data');
});
