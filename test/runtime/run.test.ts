import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { isNotRunning, readLog, type LogEntry } from '../../src/runtime/index.ts';
import { cgroupParent, fixture, prepare, removeCgroupParent, uniqueId, type Fixture } from './helpers.ts';

let f: Fixture;
before(() => {
  f = fixture();
});
after(async () => {
  await removeCgroupParent();
  f.cleanup();
});

async function run(o: Parameters<typeof prepare>[2], keep = false) {
  const id = uniqueId('run');
  const b = await prepare(f, id, o);
  const logPath = path.join(f.dir, `${id}.log`);
  await f.driver.create(id, b, { logPath });
  await f.driver.start(id);
  const exit = await f.driver.wait(id);
  const entries: LogEntry[] = [];
  for await (const e of readLog(logPath)) entries.push(e);
  const text = (s: string) =>
    entries
      .filter((e) => e.stream === s)
      .map((e) => e.line.toString())
      .join('');
  if (!keep) await f.driver.delete(id);
  return { id, exit, stdout: text('stdout'), stderr: text('stderr') };
}

test('echo hi reaches the log, stdout and stderr apart', async () => {
  const r = await run({ args: ['sh', '-c', 'echo hi; echo oops >&2'] });
  assert.equal(r.stdout, 'hi\n');
  assert.equal(r.stderr, 'oops\n');
  assert.equal(r.exit.exitCode, 0);
});

test('exit code propagates', async () => {
  const r = await run({ args: ['sh', '-c', 'exit 3'] });
  assert.equal(r.exit.exitCode, 3);
  assert.equal(r.exit.recorded, true);
});

test("default capabilities and seccomp are docker's", async () => {
  const r = await run({ args: ['grep', '-E', '^(CapEff|CapInh|CapAmb|CapBnd|Seccomp|NoNewPrivs):', '/proc/self/status'] });
  assert.match(r.stdout, /CapEff:\s+00000000a80425fb/);
  assert.match(r.stdout, /CapBnd:\s+00000000a80425fb/);
  assert.match(r.stdout, /CapInh:\s+0000000000000000/);
  assert.match(r.stdout, /CapAmb:\s+0000000000000000/);
  assert.match(r.stdout, /Seccomp:\s+2/);
});

test('seccomp blocks namespace creation without CAP_SYS_ADMIN, unconfined does not filter', async () => {
  const r = await run({ args: ['unshare', '-U', 'true'] });
  assert.notEqual(r.exit.exitCode, 0);
  const u = await run({ args: ['grep', 'Seccomp:', '/proc/self/status'], seccomp: 'unconfined' });
  assert.match(u.stdout, /Seccomp:\s+0/);
});

test('cap-drop ALL + cap-add one', async () => {
  const r = await run({ args: ['grep', 'CapEff', '/proc/self/status'], capDrop: ['ALL'], capAdd: ['NET_BIND_SERVICE'] });
  assert.match(r.stdout, /CapEff:\s+0000000000000400/);
});

test('privileged gets the host bounding set and no seccomp', async () => {
  const host = /CapBnd:\s+([0-9a-f]+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1];
  const r = await run({ args: ['grep', '-E', 'CapEff|Seccomp:', '/proc/self/status'], privileged: true });
  assert.match(r.stdout, new RegExp(`CapEff:\\s+${host}`));
  assert.match(r.stdout, /Seccomp:\s+0/);
});

test('memory and pids limits land in the cgroup', async () => {
  const id = uniqueId('lim');
  const b = await prepare(f, id, { args: ['sleep', '30'], resources: { memory: 64 << 20, pidsLimit: 20, cpus: 0.5 } });
  await f.driver.create(id, b, {});
  try {
    const cg = `${cgroupParent()}/${id}`;
    assert.equal(fs.readFileSync(`/sys/fs/cgroup/memory${cg}/memory.limit_in_bytes`, 'utf8').trim(), String(64 << 20));
    assert.equal(fs.readFileSync(`/sys/fs/cgroup/pids${cg}/pids.max`, 'utf8').trim(), '20');
    assert.equal(fs.readFileSync(`/sys/fs/cgroup/cpu${cg}/cpu.cfs_quota_us`, 'utf8').trim(), '50000');
  } finally {
    await f.driver.delete(id, { force: true });
  }
});

test('pids limit stops a fork bomb-ish loop', async () => {
  const r = await run({ args: ['sh', '-c', 'for i in 1 2 3 4 5 6 7 8 9 10; do sleep 5 & done; wait; echo done'], resources: { pidsLimit: 5 } });
  assert.match(r.stderr, /fork|resource|Resource/i);
});

test('OOM kill is reported', async () => {
  const r = await run({ args: ['sh', '-c', 'tail /dev/zero'], resources: { memory: 16 << 20, memorySwap: 16 << 20 } });
  assert.equal(r.exit.exitCode, 137);
  assert.equal(r.exit.oomKilled, true);
});

test('read-only rootfs: / not writable, /dev/shm and /tmp tmpfs mount writable', async () => {
  const r = await run({
    args: ['sh', '-c', 'touch /x 2>/dev/null && echo rw || echo ro; touch /dev/shm/a && echo shm-ok; touch /tmp/a && echo tmp-ok'],
    readonlyRootfs: true,
    mounts: [{ destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'size=1m'] }],
  });
  assert.equal(r.stdout, 'ro\nshm-ok\ntmp-ok\n');
});

test('masked and read-only paths', async () => {
  const r = await run({ args: ['sh', '-c', 'cat /proc/kcore | wc -c; echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo w || echo nw'] });
  assert.equal(r.stdout, '0\nnw\n');
});

test('--init runs tini as pid 1', async () => {
  const r = await run({ args: ['cat', '/proc/1/cmdline'], init: true });
  assert.match(r.stdout, /^\/sbin\/docker-init\0--\0cat\0/);
});

test('user, cwd, env, hostname', async () => {
  const r = await run({
    args: ['sh', '-c', 'id -u; id -G; pwd; echo $FOO; hostname'],
    user: { uid: 65534, gid: 65534, additionalGids: [5] },
    cwd: '/tmp',
    env: ['FOO=bar'],
    hostname: 'box1',
  });
  assert.equal(r.stdout, '65534\n65534 5\n/tmp\nbar\nbox1\n');
});

test('a missing command fails create with COMMAND_NOT_FOUND and leaves nothing behind', async () => {
  const id = uniqueId('bad');
  const b = await prepare(f, id, { args: ['/no/such/binary'] });
  await assert.rejects(f.driver.create(id, b, { logPath: path.join(f.dir, 'bad.log') }), (e: Error & { code?: string }) => e.code === 'COMMAND_NOT_FOUND');
  assert.equal(fs.existsSync(f.driver.containerDir(id)), false);
  assert.equal(fs.existsSync(path.join(f.dir, 'runc', id)), false);
  assert.equal(fs.existsSync(`/sys/fs/cgroup/memory${cgroupParent()}/${id}`), false);
  assert.equal(fs.existsSync(path.join(b, 'attach')), false);
});

test('delete removes state, cgroups, mounts and processes', async () => {
  const id = uniqueId('clean');
  const b = await prepare(f, id, { args: ['sleep', '100'], mounts: [{ destination: '/data', type: 'bind', source: f.dir, options: ['rbind', 'ro'] }] });
  const { pid, conmonPid } = await f.driver.create(id, b, { logPath: path.join(f.dir, `${id}.log`) });
  await f.driver.start(id);
  assert.equal((await f.driver.state(id)).status, 'running');
  await f.driver.delete(id, { force: true });
  assert.equal(fs.existsSync(`/proc/${pid}`), false);
  const st = fs.existsSync(`/proc/${conmonPid}/stat`) ? fs.readFileSync(`/proc/${conmonPid}/stat`, 'utf8') : '';
  assert.ok(st === '' || / Z /.test(st), 'conmon gone');
  assert.equal(fs.existsSync(f.driver.containerDir(id)), false);
  assert.equal(fs.existsSync(path.join(f.dir, 'runc', id)), false);
  for (const c of ['memory', 'pids', 'cpu', 'freezer', 'devices']) assert.equal(fs.existsSync(`/sys/fs/cgroup/${c}${cgroupParent()}/${id}`), false, c);
  assert.equal(fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(f.rootfs), false);
  for (const x of ['attach', 'ctl', 'winsz']) assert.equal(fs.existsSync(path.join(b, x)), false, x);
  await assert.rejects(f.driver.state(id), (e: Error & { code?: string }) => e.code === 'NOT_FOUND');
});

test('start releases a created container once; runc then reports it running, and a second start is refused', async () => {
  const id = uniqueId('start');
  const b = await prepare(f, id, { args: ['sleep', '30'] });
  await f.driver.create(id, b, {});
  try {
    assert.equal((await f.driver.state(id)).status, 'created');
    await f.driver.start(id);
    assert.equal((await f.driver.state(id)).status, 'running');
    assert.equal(fs.existsSync(path.join(f.driver.runc.root, id, 'exec.fifo')), false);
    await assert.rejects(f.driver.start(id), /already running|cannot start/);
  } finally {
    await f.driver.delete(id, { force: true });
  }
});

test('start of a created container whose init was killed fails, naming the cause', async () => {
  const id = uniqueId('dead');
  const b = await prepare(f, id, { args: ['true'] });
  const { pid } = await f.driver.create(id, b, {});
  try {
    process.kill(pid, 'SIGKILL');
    await assert.rejects(f.driver.start(id), /already dead|cannot start|not running|stopped/);
  } finally {
    await f.driver.delete(id, { force: true });
  }
});

test('kill signals a running container (no runc process), reports one that exited as not running; delete of the exited one removes its state and cgroups', async () => {
  const id = uniqueId('term');
  const b = await prepare(f, id, { args: ['sh', '-c', "trap 'exit 7' TERM; while :; do sleep 0.05; done"] });
  await f.driver.create(id, b, { logPath: path.join(f.dir, `${id}.log`) });
  await f.driver.start(id);
  // the trap is set once the shell runs its loop: signal until it counts
  const exit = f.driver.wait(id);
  let code: number | undefined;
  for (let i = 0; i < 100 && code === undefined; i++) {
    await f.driver.kill(id, 'SIGTERM').catch((e: unknown) => assert.ok(isNotRunning(e), String(e)));
    code = await Promise.race([exit.then((x) => x.exitCode), new Promise<undefined>((r) => setTimeout(() => r(undefined), 50))]);
  }
  assert.equal(code, 7);
  await assert.rejects(f.driver.kill(id, 'SIGTERM'), (e: unknown) => isNotRunning(e));
  await f.driver.delete(id);
  assert.equal(fs.existsSync(path.join(f.dir, 'runc', id)), false);
  for (const c of ['memory', 'pids', 'cpu', 'freezer', 'devices']) assert.equal(fs.existsSync(`/sys/fs/cgroup/${c}${cgroupParent()}/${id}`), false, c);
  await assert.rejects(f.driver.state(id), (e: Error & { code?: string }) => e.code === 'NOT_FOUND');
});
