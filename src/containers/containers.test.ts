import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { checkContainerPath, mergeConfig, mergeEnv, parseRestartPolicy } from './create.ts';
import { hostConfigOf } from './record.ts';
import { humanDuration, listContainers } from './query.ts';
import { restartDelayMs, shouldRestart, startOnDaemonStart } from './restart.ts';
import { openDirIn, readFileIn, statIn } from './scoped.ts';
import { ContainerStore } from './store.ts';
import { type ContainerRecord, ZERO_TIME } from './types.ts';
import { resolveUser } from './user.ts';

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n';
const GROUP = 'root:x:0:\nnogroup:x:65534:\napp:x:1000:\nwheel:x:10:app\n';

test('user resolution: names, numbers, groups, errors', () => {
  assert.deepEqual(resolveUser('', PASSWD, GROUP), { uid: 0, gid: 0, additionalGids: [], home: '/root' });
  assert.deepEqual(resolveUser('app', PASSWD, GROUP), { uid: 1000, gid: 1000, additionalGids: [10], home: '/home/app' });
  assert.deepEqual(resolveUser('app:nogroup', PASSWD, GROUP), { uid: 1000, gid: 65534, additionalGids: [], home: '/home/app' });
  assert.deepEqual(resolveUser('4242:77', PASSWD, GROUP), { uid: 4242, gid: 77, additionalGids: [], home: '/' });
  assert.deepEqual(resolveUser('1000', PASSWD, GROUP, ['wheel', '5']).additionalGids.sort(), [10, 5].sort());
  assert.throws(() => resolveUser('nosuch', PASSWD, GROUP), /unable to find user nosuch/);
  assert.throws(() => resolveUser('app:nosuch', PASSWD, GROUP), /unable to find group nosuch/);
  assert.throws(() => resolveUser('4000000000', PASSWD, GROUP), /range/);
  assert.throws(() => resolveUser('root', undefined, undefined), /unable to find user root/);
});

test('scoped reads never leave the root, symlinks included', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-scoped-'));
  try {
    const root = path.join(dir, 'root');
    fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(root, 'etc/passwd'), 'inside\n');
    fs.writeFileSync(path.join(dir, 'secret'), 'outside\n');
    fs.symlinkSync('../../secret', path.join(root, 'etc/rel'));
    fs.symlinkSync('/etc', path.join(root, 'abs'));
    fs.symlinkSync('../..', path.join(root, 'up'));
    assert.equal(readFileIn(root, '/etc/passwd')?.toString(), 'inside\n');
    assert.equal(readFileIn(root, '/etc/rel'), undefined);
    assert.equal(readFileIn(root, '/abs/passwd')?.toString(), 'inside\n');
    assert.equal(readFileIn(root, '/up/up/etc/passwd')?.toString(), 'inside\n');
    assert.equal(readFileIn(root, '/../../../secret'), undefined);
    assert.equal(statIn(root, '/abs')?.linkTarget, '/etc');
    assert.equal(statIn(root, '/abs', true)?.clean, '/etc');
    const d = openDirIn(root, '/up/work/dir'.replace('/dir', ''), { create: true });
    d.close();
    assert.ok(fs.existsSync(path.join(root, 'work')));
    assert.equal(fs.existsSync(path.join(dir, 'work')), false);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('create: config merge, env, entrypoint, paths, restart policy, host config', () => {
  const img = { Env: ['PATH=/bin', 'A=1'], Cmd: ['sh'], Entrypoint: null, WorkingDir: '/srv', User: 'app', Labels: { a: 'b' } };
  const c = mergeConfig({ image: 'x', env: ['A=2', 'B=3'], labels: { c: 'd' } }, img, 'a'.repeat(64));
  assert.deepEqual(c.Env, ['PATH=/bin', 'A=2', 'B=3']);
  assert.deepEqual(c.Cmd, ['sh']);
  assert.equal(c.WorkingDir, '/srv');
  assert.equal(c.User, 'app');
  assert.equal(c.Hostname, 'aaaaaaaaaaaa');
  assert.deepEqual(c.Labels, { a: 'b', c: 'd' });
  const ep = mergeConfig({ image: 'x', entrypoint: ['echo'] }, img, 'b'.repeat(64));
  assert.deepEqual([ep.Entrypoint, ep.Cmd], [['echo'], null]);
  assert.throws(() => mergeConfig({ image: 'x', cmd: [] }, { Cmd: null }, 'c'.repeat(64)), /No command specified/);
  assert.throws(() => mergeConfig({ image: 'x', cmd: ['a'] }, { WorkingDir: '/a/../../etc' }, 'c'.repeat(64)), /must not contain '\.\.'/);
  assert.throws(() => mergeConfig({ image: 'x', cmd: ['a'] }, { Volumes: { '/data/../x': {} } }, 'c'.repeat(64)), /image volume/);
  assert.throws(() => mergeConfig({ image: 'x', cmd: ['a'], workingDir: 'rel' }, {}, 'c'.repeat(64)), /absolute path/);
  assert.throws(() => mergeConfig({ image: 'x', cmd: ['a'], user: '99999999999' }, {}, 'c'.repeat(64)), /range/);
  assert.equal(checkContainerPath('/a//b/', 'x'), '/a/b/');
  assert.deepEqual(mergeEnv(['X=1'], ['X']), ['X']);
  assert.deepEqual(parseRestartPolicy({ Name: 'on-failure', MaximumRetryCount: 3 }, false), { Name: 'on-failure', MaximumRetryCount: 3 });
  assert.throws(() => parseRestartPolicy({ Name: 'always' }, true), /AutoRemove/);
  assert.throws(() => parseRestartPolicy({ Name: 'sometimes' as 'always' }, false), /invalid restart policy/);
  const h = hostConfigOf({ image: 'x', networkMode: 'none', resources: { memory: 1 << 26 } });
  assert.equal(h.NetworkMode, 'none');
  assert.equal(h.Memory, 1 << 26);
  assert.equal(h.ShmSize, 64 << 20);
  assert.equal(h.IpcMode, 'private');
  assert.deepEqual(h.RestartPolicy, { Name: '', MaximumRetryCount: 0 });
  assert.throws(() => hostConfigOf({ image: 'x', resources: { nanoCpus: 1e9, cpuQuota: 5000 } }), /Conflicting options/);
  assert.throws(() => hostConfigOf({ image: 'x', autoRemove: true, restartPolicy: { name: 'always', maximumRetryCount: 0 } }), /AutoRemove/);
  assert.throws(() => hostConfigOf({ image: 'x', resources: { memory: -1 } }), /cannot be negative/);
  assert.throws(() => hostConfigOf({ image: 'x', securityOpt: ['apparmor=docker-default'] }), /AppArmor/);
  assert.throws(() => hostConfigOf({ image: 'x', mounts: [{ kind: 'tmpfs-flag', target: 'rel', options: '' }] }), /absolute paths/);
});

test('restart policy decisions', () => {
  const p = (Name: 'no' | 'always' | 'unless-stopped' | 'on-failure', MaximumRetryCount = 0) => ({ Name, MaximumRetryCount });
  assert.equal(shouldRestart({ policy: p('no'), exitCode: 1, restartCount: 0, manuallyStopped: false }), false);
  assert.equal(shouldRestart({ policy: p('always'), exitCode: 0, restartCount: 9, manuallyStopped: false }), true);
  assert.equal(shouldRestart({ policy: p('always'), exitCode: 0, restartCount: 0, manuallyStopped: true }), false);
  assert.equal(shouldRestart({ policy: p('on-failure', 2), exitCode: 1, restartCount: 1, manuallyStopped: false }), true);
  assert.equal(shouldRestart({ policy: p('on-failure', 2), exitCode: 1, restartCount: 2, manuallyStopped: false }), false);
  assert.equal(shouldRestart({ policy: p('on-failure'), exitCode: 0, restartCount: 0, manuallyStopped: false }), false);
  assert.equal(startOnDaemonStart(p('unless-stopped'), true, false), false);
  assert.equal(startOnDaemonStart(p('always'), true, false), true);
  assert.equal(restartDelayMs(0), 100);
  assert.equal(restartDelayMs(50), 60_000);
});

function rec(id: string, name: string, status: ContainerRecord['state']['Status'], created: string, labels: Record<string, string> = {}): ContainerRecord {
  return {
    id,
    name,
    created,
    imageId: ('sha256:' + 'f'.repeat(64)) as ContainerRecord['imageId'],
    path: 'sh',
    args: [],
    config: { Labels: labels, Image: 'img' } as ContainerRecord['config'],
    hostConfig: { NetworkMode: 'default' } as ContainerRecord['hostConfig'],
    state: { Status: status, Pid: 0, ExitCode: status === 'exited' ? 1 : 0, Error: '', StartedAt: ZERO_TIME, FinishedAt: ZERO_TIME, OOMKilled: false },
    restartCount: 0,
    manuallyStopped: false,
    hasBeenStarted: true,
  };
}

test('list filters and name/ID lookup', async () => {
  const a = rec('a'.repeat(64), 'alpha', 'running', '2026-01-01T00:00:01Z', { k: 'v' });
  const b = rec('ab' + 'c'.repeat(62), 'beta', 'exited', '2026-01-01T00:00:02Z');
  const all = [a, b];
  assert.deepEqual(
    listContainers(all, {}).map((r) => r.name),
    ['alpha'],
  );
  assert.deepEqual(
    listContainers(all, { all: true }).map((r) => r.name),
    ['beta', 'alpha'],
  );
  assert.deepEqual(
    listContainers(all, { filters: { status: ['exited'] } }).map((r) => r.name),
    ['beta'],
  );
  assert.deepEqual(
    listContainers(all, { all: true, filters: { label: ['k=v'] } }).map((r) => r.name),
    ['alpha'],
  );
  assert.deepEqual(
    listContainers(all, { all: true, filters: { name: ['^/be'] } }).map((r) => r.name),
    ['beta'],
  );
  assert.deepEqual(
    listContainers(all, { all: true, filters: { name: ['^beta$'] } }).map((r) => r.name),
    ['beta'],
    'docker matches the name without its slash too',
  );
  assert.deepEqual(
    listContainers(all, { filters: { exited: ['1'] } }).map((r) => r.name),
    ['beta'],
  );
  assert.deepEqual(
    listContainers(all, { limit: 1 }).map((r) => r.name),
    ['beta'],
  );
  assert.throws(() => listContainers(all, { filters: { bogus: ['1'] } }), /invalid filter 'bogus'/);
  assert.equal(humanDuration(500), 'Less than a second');
  assert.equal(humanDuration(150_000), '2 minutes');

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-store-'));
  try {
    const s = new ContainerStore(dir);
    await s.load();
    await s.add(a);
    await s.add(b);
    assert.equal(s.find('alpha').id, a.id);
    assert.equal(s.find('/beta').id, b.id);
    assert.equal(s.find('abc').id, b.id);
    assert.throws(() => s.find('a'), /multiple IDs/);
    assert.throws(() => s.find('nope'), /No such container: nope/);
    await assert.rejects(
      s.add(rec('d'.repeat(64), 'alpha', 'created', '2026-01-01T00:00:03Z')),
      /Conflict\. The container name "\/alpha" is already in use by container "a{64}"/,
    );
    await s.rename(a, 'gamma');
    const again = new ContainerStore(dir);
    await again.load();
    assert.equal(again.find('gamma').id, a.id);
    assert.equal(again.tryFind('alpha'), undefined);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
