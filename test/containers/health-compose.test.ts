import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { TestDaemon } from '../helpers/daemon.ts';

/**
 * docker-compose v1 `depends_on: condition: service_healthy` (file format
 * 2.1+) against keel: compose starts `db`, polls its State.Health.Status,
 * and starts `app` only once it is healthy; an upstream that turns
 * unhealthy fails `up`.
 */
const d = new TestDaemon('keel-hcompose');

const COMPOSE = `version: "2.4"
services:
  db:
    image: busybox:local
    # Becomes ready 1.5 s after it starts.
    command: ["sh", "-c", "sleep 1.5; touch /tmp/ready; exec sleep 300"]
    healthcheck:
      test: ["CMD-SHELL", "test -f /tmp/ready"]
      interval: 200ms
      timeout: 2s
      retries: 50
  app:
    image: busybox:local
    command: ["sleep", "300"]
    depends_on:
      db:
        condition: service_healthy
  broken:
    image: busybox:local
    command: ["sleep", "300"]
    healthcheck:
      test: ["CMD", "false"]
      interval: 200ms
      retries: 1
    profiles: ["broken"]
  waiter:
    image: busybox:local
    command: ["sleep", "300"]
    depends_on:
      broken:
        condition: service_healthy
    profiles: ["broken"]
`;

let compose: (args: string[]) => ReturnType<typeof d.docker>;

before(async () => {
  await d.start();
  await d.importBusybox();
  compose = d.composeProject('hc', COMPOSE);
});
after(async () => {
  await compose(['--profile', 'broken', 'down', '-t', '0']).catch(() => {});
  await d.cleanup();
});

const inspect = async (name: string) => JSON.parse((await d.docker(['inspect', name])).stdout)[0];

test('service_healthy: app starts only once db is healthy', async () => {
  const up = await compose(['up', '-d', 'app']);
  assert.equal(up.code, 0, `${up.stdout}${up.stderr}\n${d.log.slice(-3000)}`);
  const db = await inspect('hc_db_1');
  const app = await inspect('hc_app_1');
  assert.equal(db.State.Health.Status, 'healthy');
  assert.deepEqual(db.Config.Healthcheck, { Test: ['CMD-SHELL', 'test -f /tmp/ready'], Interval: 200_000_000, Timeout: 2_000_000_000, Retries: 50 });
  assert.equal(app.State.Status, 'running');
  // db cannot be healthy before its file exists, 1.5 s after it started.
  const gap = Date.parse(app.State.StartedAt) - Date.parse(db.State.StartedAt);
  assert.ok(gap >= 1500, `app started ${gap} ms after db`);
  const ps = await compose(['ps']);
  assert.match(ps.stdout, /hc_db_1\s.*Up \(healthy\)/);
});

test('service_healthy: an unhealthy dependency fails up', async () => {
  const up = await compose(['--profile', 'broken', 'up', '-d', 'waiter']);
  assert.notEqual(up.code, 0, up.stdout + up.stderr);
  assert.match(up.stderr, /is unhealthy/);
  assert.equal((await inspect('hc_broken_1')).State.Health.Status, 'unhealthy');
  assert.equal((await d.docker(['ps', '-aq', '--filter', 'name=hc_waiter_1', '--filter', 'status=running'])).stdout.trim(), '');
});
