import assert from 'node:assert/strict';
import os from 'node:os';
import { after, before, test } from 'node:test';
import { TestDaemon } from '../helpers/daemon.ts';
import { keelOk, ok } from './helpers.ts';

const d = new TestDaemon('keel-pools');
before(async () => {
  await d.start();
  await d.importBusybox();
});
after(async () => {
  await d.cleanup();
});

async function until(what: string, fn: () => Promise<boolean>, ms = 120_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}\n${d.log.slice(-3000)}`);
}

const pool = async (name: string) =>
  ((await d.api('GET', '/keel/pools')).json as { name: string; readyCount: number; starting: number }[]).find((p) => p.name === name);

test('pool create / take / refill / restart / rm', async () => {
  await ok(d, [
    'create',
    '--name',
    'web',
    '-p',
    '80',
    '-v',
    'webdata:/www',
    'busybox:local',
    'sh',
    '-c',
    'echo hi > /www/index.html; exec httpd -f -p 80 -h /www',
  ]);
  await keelOk(d, ['pool', 'create', 'p1', '--from', 'web', '--size', '2', '--ready', 'port']);
  await until('2 ready', async () => (await pool('p1'))?.readyCount === 2);
  assert.match(await keelOk(d, ['pool', 'ls']), /^NAME\s+SOURCE\s+SIZE\s+READY.*\np1\s+web\s+2\s+2\s+0\s+port/);

  const t0 = performance.now();
  const out = JSON.parse(await keelOk(d, ['pool', 'take', 'p1']));
  const cliMs = performance.now() - t0;
  assert.match(out.name, /^web-clone-/);
  assert.match(out.ports['80/tcp'], /^\d+$/);
  const taken = JSON.parse(await ok(d, ['inspect', out.name]))[0];
  assert.equal(taken.State.Status, 'running');
  assert.equal(taken.Config.Labels['keel.pool.taken'], 'p1');
  assert.equal(taken.Config.Labels['keel.pool'], undefined);
  assert.equal(await ok(d, ['exec', out.name, 'cat', '/www/index.html']), 'hi\n');

  await until('refilled', async () => (await pool('p1'))?.readyCount === 2);
  const t1 = performance.now();
  const r = await d.api('POST', '/keel/pools/p1/take');
  const apiMs = performance.now() - t1;
  assert.equal(r.status, 200, r.text);
  console.log(`# pool take: CLI ${cliMs.toFixed(1)} ms (process start included), API ${apiMs.toFixed(1)} ms, waited ${r.json.WaitedMs} ms`);

  // The pool survives a daemon restart.
  await d.stop();
  await d.start();
  await until('ready after restart', async () => (await pool('p1'))?.readyCount === 2);

  await keelOk(d, ['pool', 'rm', 'p1']);
  assert.equal(await pool('p1'), undefined);
  // Only the taken containers and the source remain.
  const names = (await ok(d, ['ps', '-a', '--format', '{{.Names}}'])).trim().split('\n').sort();
  assert.deepEqual(names, [out.name, r.json.Name, 'web'].sort());
  await ok(d, ['rm', '-f', '-v', out.name, r.json.Name, 'web']);
});

test('a kill -9 of the daemon right after a take answered: the taken container stays an ordinary one, the pool refills without it', async () => {
  await ok(d, ['create', '--name', 'csrc', 'busybox:local', 'sleep', '3600']);
  await keelOk(d, ['pool', 'create', 'cp', '--from', 'csrc', '--size', '2', '--ready', 'running']);
  await until('2 ready', async () => (await pool('cp'))?.readyCount === 2);
  let r: Awaited<ReturnType<typeof d.api>> | undefined;
  // The record was written before the answer, the durable write and the refill come after it: the crash is between.
  await d.crashAt('pool-taken', async () => (r = await d.api('POST', '/keel/pools/cp/take')));
  assert.equal(r?.status, 200, r?.text);
  const id = r!.json.Id as string;
  const taken = JSON.parse(await ok(d, ['inspect', id]))[0];
  assert.equal(taken.State.Status, 'running');
  assert.equal(taken.Config.Labels['keel.pool.taken'], 'cp');
  assert.equal(taken.Config.Labels['keel.pool'], undefined);
  await until('refilled after the restart', async () => (await pool('cp'))?.readyCount === 2);
  const members = (await ok(d, ['ps', '-q', '--no-trunc', '--filter', 'label=keel.pool=cp'])).trim().split('\n');
  assert.equal(members.length, 2);
  assert.ok(!members.includes(id), 'the taken container is not a member again');
  const next = await Promise.all([d.api('POST', '/keel/pools/cp/take'), d.api('POST', '/keel/pools/cp/take')]);
  assert.deepEqual(next.map((x) => x.json.Id).sort(), [...members].sort());
  await keelOk(d, ['pool', 'rm', 'cp']);
  await ok(d, ['rm', '-f', id, ...members, 'csrc']);
  assert.equal((await ok(d, ['ps', '-aq'])).trim(), '');
});

test('pool bad input: size 0 or 10000, missing source, missing pool, take from a pool that never gets ready', async () => {
  await ok(d, ['create', '--name', 'quiet', 'busybox:local', 'sleep', '3600']);
  for (const size of ['0', '10000']) {
    const r = await d.keel(['pool', 'create', 'bad', '--from', 'quiet', '--size', size]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /invalid pool size .*: a pool keeps 1 to 256 containers ready/);
  }
  const missing = await d.keel(['pool', 'create', 'bad', '--from', 'nosuch', '--size', '1']);
  assert.match(missing.stderr, /No such container: nosuch/);
  const nopool = await d.keel(['pool', 'take', 'nosuch']);
  assert.match(nopool.stderr, /no such pool: nosuch/);

  await keelOk(d, ['pool', 'create', 'never', '--from', 'quiet', '--size', '1', '--ready', 'log:never printed']);
  const t0 = Date.now();
  const r = await d.keel(['pool', 'take', 'never', '--timeout', '1']);
  assert.equal(r.code, 124);
  assert.match(r.stderr, /pool never had no ready container within 1s/);
  assert.ok(Date.now() - t0 < 10_000);
  await keelOk(d, ['pool', 'rm', 'never']);
  assert.equal((await ok(d, ['ps', '-aq'])).trim().split('\n').length, 1);
  await ok(d, ['rm', '-f', 'quiet']);
});

test('a source with a health check makes a pool whose members are ready once healthy', async () => {
  await ok(d, ['create', '--name', 'hsrc', '--health-cmd', 'true', '--health-interval', '1s', 'busybox:local', 'sleep', '3600']);
  await keelOk(d, ['pool', 'create', 'hp', '--from', 'hsrc', '--size', '1']);
  assert.match(await keelOk(d, ['pool', 'ls']), /\nhp\s+hsrc\s+1\s+\d\s+\d\s+health/);
  await until('healthy member', async () => (await pool('hp'))?.readyCount === 1);
  const out = JSON.parse(await keelOk(d, ['pool', 'take', 'hp']));
  assert.equal(JSON.parse(await ok(d, ['inspect', out.name]))[0].State.Health.Status, 'healthy');
  await keelOk(d, ['pool', 'rm', 'hp']);
  await ok(d, ['rm', '-f', out.name, 'hsrc']);
});

test('--ready log:TEXT: a member is ready once its log shows TEXT (followed, not re-read)', async () => {
  await ok(d, ['create', '--name', 'slowlog', 'busybox:local', 'sh', '-c', 'echo starting; sleep 2; echo up and ready; exec sleep 3600']);
  await keelOk(d, ['pool', 'create', 'lp', '--from', 'slowlog', '--size', '1', '--ready', 'log:up and ready']);
  await until('member ready', async () => (await pool('lp'))?.readyCount === 1);
  const out = JSON.parse(await keelOk(d, ['pool', 'take', 'lp']));
  assert.match(await ok(d, ['logs', out.name]), /starting\nup and ready\n/);
  await keelOk(d, ['pool', 'rm', 'lp']);
  await ok(d, ['rm', '-f', out.name, 'slowlog']);
});

test('a pool refills at most one member per CPU at a time: taking many at once does not start as many databases side by side', async () => {
  const cpus = os.availableParallelism();
  const size = cpus + 2;
  await ok(d, ['create', '--name', 'paced', 'busybox:local', 'sh', '-c', 'sleep 1; echo up; exec sleep 3600']);
  await keelOk(d, ['pool', 'create', 'pp', '--from', 'paced', '--size', String(size), '--ready', 'log:up']);
  // Members are cloned in milliseconds and need a second to be ready: without the bound all `size`
  // would be starting at once within the first poll or two.
  let most = 0;
  await until(`${size} ready`, async () => {
    const p = await pool('pp');
    most = Math.max(most, p?.starting ?? 0);
    return p?.readyCount === size;
  });
  assert.ok(most >= 1 && most <= cpus, `at most ${cpus} members were starting at once, saw ${most}`);
  await keelOk(d, ['pool', 'rm', 'pp']);
  await ok(d, ['rm', '-f', 'paced']);
});
