import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { freePort, TestDaemon } from '../helpers/daemon.ts';
import { frozenLayers, keelOk, mountsUnder, ok } from './helpers.ts';

// The bad input for clones and pools that clones.test.ts and pools.test.ts do not cover:
// host port conflicts, takes from an empty pool under load, a source removed while its pool refills.

const d = new TestDaemon('keel-clone-bad');
before(async () => {
  await d.start();
  await d.importBusybox();
});
after(async () => {
  await d.cleanup();
});

const HTTPD = ['busybox:local', 'sh', '-c', 'echo hi > /tmp/i; exec httpd -f -p 80 -h /tmp'];
const hostPort = async (c: string) => JSON.parse(await ok(d, ['inspect', c]))[0].NetworkSettings.Ports['80/tcp']?.[0]?.HostPort as string | undefined;

async function until(what: string, fn: () => Promise<boolean>, ms = 120_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 100)); // a poll interval
  }
  throw new Error(`timed out waiting for ${what}\n${d.log.slice(-3000)}`);
}

async function leftovers(): Promise<void> {
  assert.deepEqual(mountsUnder(d), [], 'mounts');
  assert.deepEqual(frozenLayers(d), { rootfs: [], volumes: [] }, 'frozen layers');
  assert.equal((await ok(d, ['volume', 'ls', '-q'])).trim(), '', 'volumes');
  assert.deepEqual(fs.readdirSync(path.join(d.dataRoot, 'overlay/active')), [], 'snapshots');
  let cgroups: string[] = [];
  try {
    cgroups = fs
      .readdirSync(`/sys/fs/cgroup/memory${d.cgroupParent}`, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    // no container ever made the parent
  }
  assert.deepEqual(cgroups, [], 'cgroups');
}

test('host ports: clones get new ones; a clone told to use a taken host port fails to start with a clear error and leaks nothing', async () => {
  const fixed = String(await freePort());
  await ok(d, ['create', '--name', 'web', '-p', `${fixed}:80`, '-v', 'webdata:/data', ...HTTPD]);
  const [a, b] = (await keelOk(d, ['clone', 'web', '--count', '2', '--name-prefix', 'w'])).trim().split('\n');
  await ok(d, ['start', 'web', a!, b!]);
  const ports = [await hostPort('web'), await hostPort(a!), await hostPort(b!)];
  assert.equal(ports[0], fixed);
  assert.equal(new Set(ports).size, 3, `each clone has its own host port: ${ports}`);

  // Told to publish on the source's (taken) host port: the clone is made, its start is refused.
  const r = await d.api('POST', '/containers/web/clone?pause=1&name=clash', { PortBindings: { '80/tcp': [{ HostPort: fixed }] } });
  assert.equal(r.status, 201, r.text);
  const start = await d.docker(['start', 'clash']);
  assert.notEqual(start.code, 0);
  assert.match(start.stderr, new RegExp(`${fixed}.*(already allocated|in use)|(already allocated|in use).*${fixed}`), start.stderr);
  const st = JSON.parse(await ok(d, ['inspect', 'clash']))[0].State;
  assert.notEqual(st.Status, 'running');
  // The source still serves on its port; nothing of the failed start is left once the clone is removed.
  assert.equal(await ok(d, ['exec', 'web', 'wget', '-qO-', `127.0.0.1:80/i`]), 'hi\n');
  await ok(d, ['rm', '-f', '-v', 'clash', a!, b!, 'web']);
  await ok(d, ['volume', 'rm', 'webdata']);
  await leftovers();
});

test('take from an empty pool under load: concurrent takes wait, time out with a clear error, then each gets its own container', async () => {
  // Members become ready 2 s after they start: the pool is empty for a while after each take.
  await ok(d, ['create', '--name', 'slow', 'busybox:local', 'sh', '-c', 'sleep 2; echo ready; exec sleep 3600']);
  await keelOk(d, ['pool', 'create', 'busy', '--from', 'slow', '--size', '2', '--ready', 'log:ready']);
  const timedOut = await Promise.all(Array.from({ length: 6 }, () => d.api('POST', '/keel/pools/busy/take?timeout=1')));
  for (const r of timedOut) {
    if (r.status === 200) continue; // a member that got ready within the second (a fast machine)
    assert.equal(r.status, 504, r.text);
    assert.match(r.json.message, /^pool busy had no ready container within 1s \(size 2, \d starting\)/);
  }
  assert.ok(
    timedOut.some((r) => r.status === 504),
    'at least one take found the pool empty',
  );
  const cli = await d.keel(['pool', 'take', 'busy', '--timeout', '0']);
  if (cli.code !== 0) {
    assert.equal(cli.code, 124);
    assert.match(cli.stderr, /pool busy had no ready container within 0s/);
  }

  // Eight takes at once from a pool of two: all wait for refills, none gets a container twice.
  const taken = await Promise.all(Array.from({ length: 8 }, () => d.api('POST', '/keel/pools/busy/take?timeout=300')));
  for (const r of taken) assert.equal(r.status, 200, r.text);
  const ids = [...timedOut, ...taken].filter((r) => r.status === 200).map((r) => r.json.Id as string);
  if (cli.code === 0) ids.push(JSON.parse(cli.stdout).id);
  assert.equal(new Set(ids).size, ids.length, 'no container handed out twice');
  for (const id of ids) assert.equal(JSON.parse(await ok(d, ['inspect', id]))[0].State.Status, 'running');

  await keelOk(d, ['pool', 'rm', 'busy']);
  await ok(d, ['rm', '-f', '-v', ...ids, 'slow']);
  await leftovers();
});

test('the source removed while its pool refills: members already made still work, the pool says why it cannot refill, nothing leaks', async () => {
  await ok(d, ['create', '--name', 'src', '-v', 'srcdata:/data', 'busybox:local', 'sh', '-c', 'echo ready; exec sleep 3600']);
  await keelOk(d, ['pool', 'create', 'orphan', '--from', 'src', '--size', '2', '--ready', 'log:ready']);
  await until('2 ready', async () => (await d.api('GET', '/keel/pools')).json[0].readyCount === 2);
  // The take starts a refill; the source goes at once, while that clone is made or started.
  const first = (await d.api('POST', '/keel/pools/orphan/take?timeout=60')).json;
  await ok(d, ['rm', '-f', '-v', 'src']);
  await ok(d, ['volume', 'rm', 'srcdata']);

  // What the pool made before still works: the other ready member, and the refill if it was cloned before
  // the source went. Then the pool is empty for good, and says why: in ls and in a take that times out.
  const ids: string[] = [first.Id];
  for (;;) {
    const r = await d.keel(['pool', 'take', 'orphan', '--timeout', '5'], { timeoutMs: 120_000 });
    if (r.code !== 0) {
      assert.equal(r.code, 124, r.stderr);
      assert.match(r.stderr, /pool orphan had no ready container within 5s .*the pool's source container src was removed/);
      break;
    }
    ids.push(JSON.parse(r.stdout).id);
    assert.ok(ids.length <= 3, 'two members and at most one refill made before the source went');
  }
  assert.ok(ids.length >= 2);
  for (const id of ids) assert.equal(await ok(d, ['exec', id, 'echo', 'up']), 'up\n');
  assert.match(await keelOk(d, ['pool', 'ls']), /orphan\s+src\s+2\s+0\s+0\s+log:ready\s+the pool's source container src was removed/);

  await keelOk(d, ['pool', 'rm', 'orphan']);
  await ok(d, ['rm', '-f', '-v', ...ids]);
  await leftovers();
});
