import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { project } from '../compose/helpers.ts';
import { TestDaemon } from '../helpers/daemon.ts';

/**
 * The IPC, PID and cgroup namespace modes and the per-container cgroup
 * parent, through the docker CLI, with dockerd 20.10's behaviour: joining
 * another container's IPC namespace (shareable ones only) and /dev/shm, its
 * PID namespace (its processes die with it), the errors for a missing or
 * stopped container, and a container's cgroup under its own parent.
 */
let d: TestDaemon;
const IMG = 'busybox:local';
const NET = ['--network', 'none'];

before(async () => {
  d = new TestDaemon('keel-ns');
  await d.start();
  await d.importBusybox(IMG);
});

after(async () => {
  await d.cleanup();
});

async function ok(args: string[]): Promise<string> {
  const r = await d.docker(args);
  assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}\n${d.log.slice(-1500)}`);
  return r.stdout;
}

const inspect = async (ref: string) => JSON.parse(await ok(['inspect', ref]))[0];

test('ipc container:X joins a shareable X: one IPC namespace and one /dev/shm, which outlive X', async () => {
  const t = (await ok(['run', '-d', ...NET, '--name', 'ipc-t', '--ipc', 'shareable', IMG, 'sleep', '300'])).trim();
  await ok(['exec', 'ipc-t', 'sh', '-c', 'echo from-target > /dev/shm/f']);
  const ns = (await ok(['exec', 'ipc-t', 'busybox', 'readlink', '/proc/self/ns/ipc'])).trim();
  assert.notEqual(ns, fs.readlinkSync('/proc/self/ns/ipc'), 'shareable is a namespace of its own');
  // A new daemon finds the running target's /dev/shm again (its mount is learned, as the rootfs').
  await d.stop();
  await d.start();

  const j = (await ok(['run', '-d', ...NET, '--name', 'ipc-j', '--ipc', 'container:ipc-t', IMG, 'sleep', '300'])).trim();
  assert.equal((await inspect(j)).HostConfig.IpcMode, `container:${t}`, 'recorded by ID, as dockerd');
  assert.equal((await inspect(t)).HostConfig.IpcMode, 'shareable');
  assert.equal((await ok(['exec', 'ipc-j', 'busybox', 'readlink', '/proc/self/ns/ipc'])).trim(), ns);
  assert.equal(await ok(['exec', 'ipc-j', 'cat', '/dev/shm/f']), 'from-target\n');
  await ok(['exec', 'ipc-j', 'sh', '-c', 'echo from-joiner > /dev/shm/g']);
  assert.equal(await ok(['exec', 'ipc-t', 'cat', '/dev/shm/g']), 'from-joiner\n');

  // As dockerd: X may go while its joiners run; they keep the namespace and the files.
  await ok(['rm', '-f', 'ipc-t']);
  assert.equal((await inspect(j)).State.Running, true);
  assert.equal((await ok(['exec', 'ipc-j', 'busybox', 'readlink', '/proc/self/ns/ipc'])).trim(), ns);
  assert.equal(await ok(['exec', 'ipc-j', 'cat', '/dev/shm/f']), 'from-target\n');
  assert.equal(fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(`${t}/shm`), false, "the target's shm tmpfs is unmounted on the host when it stops");
  await ok(['rm', '-f', 'ipc-j']);
});

test('ipc: a private target is refused at start; a missing one at create, a stopped one at start, with dockerd messages', async () => {
  const p = (await ok(['run', '-d', ...NET, '--name', 'ipc-priv', IMG, 'sleep', '300'])).trim();
  assert.equal((await inspect(p)).HostConfig.IpcMode, 'private', "dockerd 20.10's default");
  const refused = await d.docker(['run', '--rm', ...NET, '--ipc', 'container:ipc-priv', IMG, 'true']);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, new RegExp(`can't join IPC of container ${p}: non-shareable IPC \\(hint: use IpcMode:shareable for the donor container\\)`));

  const before = (await ok(['ps', '-aq'])).split('\n').filter(Boolean).length;
  const missing = await d.docker(['create', '--ipc', 'container:nope', IMG, 'true']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /No such container: nope/);
  const missingPid = await d.docker(['create', '--pid', 'container:nope', IMG, 'true']);
  assert.match(missingPid.stderr, /No such container: nope/);
  assert.equal((await ok(['ps', '-aq'])).split('\n').filter(Boolean).length, before, 'nothing created');

  const s = (await ok(['create', ...NET, '--name', 'ipc-stopped', '--ipc', 'shareable', IMG, 'sleep', '300'])).trim();
  await ok(['create', ...NET, '--name', 'ipc-j2', '--ipc', 'container:ipc-stopped', '--pid', 'container:ipc-stopped', IMG, 'sleep', '300']);
  const notRunning = await d.docker(['start', 'ipc-j2']);
  assert.notEqual(notRunning.code, 0);
  assert.match(notRunning.stderr, new RegExp(`container ${s} is not running`));
  await ok(['rm', 'ipc-stopped']);
  const gone = await d.docker(['start', 'ipc-j2']);
  assert.match(gone.stderr, new RegExp(`can't join IPC of container ${s}: No such container: ${s}`), 'IPC checked first, as dockerd');
  const pidOnly = (await ok(['create', ...NET, '--pid', 'container:ipc-j2', IMG, 'true'])).trim();
  await ok(['rm', 'ipc-j2']);
  const pidGone = await d.docker(['start', pidOnly]);
  assert.match(pidGone.stderr, /cannot join PID of a non running container: [0-9a-f]{64}: No such container: [0-9a-f]{64}/);
  await ok(['rm', '-f', pidOnly, 'ipc-priv']);
});

test('ipc none has no /dev/shm; ipc host is the host namespace and /dev/shm; uts and userns host are accepted', async () => {
  assert.equal(await ok(['run', '--rm', ...NET, '--ipc', 'none', IMG, 'sh', '-c', 'test -e /dev/shm && echo yes || echo no']), 'no\n');
  const marker = `keel-ns-${d.tag}`;
  fs.writeFileSync(`/dev/shm/${marker}`, 'host\n');
  try {
    const out = await ok(['run', '--rm', ...NET, '--ipc', 'host', IMG, 'sh', '-c', `busybox readlink /proc/self/ns/ipc; cat /dev/shm/${marker}`]);
    assert.equal(out, `${fs.readlinkSync('/proc/self/ns/ipc')}\nhost\n`);
    // A host-IPC container may be joined too (dockerd): the joiner gets the host's namespace and /dev/shm.
    await ok(['run', '-d', ...NET, '--name', 'ipc-host', '--ipc', 'host', IMG, 'sleep', '300']);
    const joined = await ok([
      'run',
      '--rm',
      ...NET,
      '--ipc',
      'container:ipc-host',
      IMG,
      'sh',
      '-c',
      `busybox readlink /proc/self/ns/ipc; cat /dev/shm/${marker}`,
    ]);
    assert.equal(joined, out);
    await ok(['rm', '-f', 'ipc-host']);
  } finally {
    fs.rmSync(`/dev/shm/${marker}`, { force: true });
  }
  const uts = await ok(['run', '--rm', ...NET, '--uts', 'host', '--userns', 'host', IMG, 'busybox', 'readlink', '/proc/self/ns/uts']);
  assert.equal(uts.trim(), fs.readlinkSync('/proc/self/ns/uts'));
  // keel's own CLI has the flags too
  const k = await d.keel([
    'run',
    '--rm',
    ...NET,
    '--ipc',
    'none',
    '--cgroupns',
    'private',
    IMG,
    'sh',
    '-c',
    'test -e /dev/shm || grep memory /proc/self/cgroup',
  ]);
  assert.equal(k.code, 0, k.stderr);
  assert.match(k.stdout, /:memory:\/$/m);
});

test('pid container:X: the joiner sees X processes and dies with X; removing a joiner ends its processes (the runc path)', async () => {
  const t = (await ok(['run', '-d', ...NET, '--name', 'pid-t', IMG, 'sleep', '301'])).trim();
  const j = (await ok(['run', '-d', ...NET, '--name', 'pid-j', '--pid', 'container:pid-t', IMG, 'sleep', '302'])).trim();
  assert.equal((await inspect(j)).HostConfig.PidMode, `container:${t}`);
  const ps = await ok(['exec', 'pid-j', 'ps', '-o', 'pid,args']);
  assert.match(ps, /^\s*1 sleep 301$/m, "X's init is pid 1 in the joiner's view");
  assert.match(ps, /sleep 302$/m);
  assert.equal(
    (await ok(['exec', 'pid-j', 'busybox', 'readlink', '/proc/self/ns/pid'])).trim(),
    (await ok(['exec', 'pid-t', 'busybox', 'readlink', '/proc/self/ns/pid'])).trim(),
  );

  // A second joiner, removed while running: its processes go with it, X stays.
  const j2 = (await ok(['run', '-d', ...NET, '--name', 'pid-j2', '--pid', 'container:pid-t', IMG, 'sh', '-c', 'sleep 303 & sleep 304'])).trim();
  assert.match(await ok(['exec', 'pid-t', 'ps', '-o', 'args']), /sleep 303/);
  await ok(['rm', '-f', j2]);
  assert.doesNotMatch(await ok(['exec', 'pid-t', 'ps', '-o', 'args']), /sleep 30[34]/);
  assert.equal(fs.existsSync(`/sys/fs/cgroup/memory${d.cgroupParent}/${j2}`), false);
  // A joiner whose init exits: what it left in X's namespace is killed with it (dockerd: runc delete kills its cgroup).
  await ok(['run', '-d', ...NET, '--name', 'pid-j3', '--pid', 'container:pid-t', IMG, 'sh', '-c', 'sleep 305 & exit 0']);
  assert.equal((await ok(['wait', 'pid-j3'])).trim(), '0');
  assert.doesNotMatch(await ok(['exec', 'pid-t', 'ps', '-o', 'args']), /sleep 305/);

  // X's init ends: the kernel ends its whole PID namespace, the joiner included (dockerd: Exited (137)).
  await ok(['kill', 'pid-t']);
  assert.equal((await ok(['wait', 'pid-j'])).trim(), '137');
  const state = (await inspect(j)).State;
  assert.equal(state.Running, false);
  await ok(['rm', 'pid-j', 'pid-t']);
});

test('cgroup-parent: the cgroup is made under it, limits apply there, stats/top/update/pause find it, rm removes it', async () => {
  const parent = `/keel-ns-parent-${d.tag}`;
  try {
    const id = (await ok(['run', '-d', ...NET, '--name', 'cg', '--cgroup-parent', parent, '--memory', '64m', IMG, 'sleep', '300'])).trim();
    const dir = `/sys/fs/cgroup/memory${parent}/${id}`;
    assert.equal(fs.readFileSync(`${dir}/memory.limit_in_bytes`, 'utf8').trim(), String(64 << 20));
    assert.equal(fs.existsSync(`/sys/fs/cgroup/memory${d.cgroupParent}/${id}`), false, "not under the daemon's parent");
    assert.equal((await inspect('cg')).HostConfig.CgroupParent, parent);
    assert.match(await ok(['exec', 'cg', 'cat', '/proc/self/cgroup']), new RegExp(`memory:${parent}/${id}`));
    const stats = JSON.parse(await ok(['stats', '--no-stream', '--format', '{{json .}}', 'cg']));
    assert.match(stats.MemUsage, /\/ 64MiB$/);
    assert.match(await ok(['top', 'cg']), /sleep 300/);
    await ok(['update', '--memory', '48m', '--memory-swap', '96m', 'cg']);
    assert.equal(fs.readFileSync(`${dir}/memory.limit_in_bytes`, 'utf8').trim(), String(48 << 20));
    await ok(['pause', 'cg']);
    assert.equal(fs.readFileSync(`/sys/fs/cgroup/freezer${parent}/${id}/freezer.state`, 'utf8').trim(), 'FROZEN');
    await ok(['unpause', 'cg']);
    await ok(['kill', 'cg']);
    await ok(['start', 'cg']);
    assert.equal(fs.readFileSync(`${dir}/memory.limit_in_bytes`, 'utf8').trim(), String(48 << 20), 'a restart keeps the parent and the limits');
    await ok(['rm', '-f', 'cg']);
    for (const ctl of ['memory', 'pids', 'cpu', 'freezer']) assert.equal(fs.existsSync(`/sys/fs/cgroup/${ctl}${parent}/${id}`), false, ctl);
  } finally {
    await d.docker(['rm', '-f', 'cg']);
    // As dockerd, keel leaves the parent itself (others may share it).
    for (const ctl of fs.readdirSync('/sys/fs/cgroup')) {
      try {
        fs.rmdirSync(`/sys/fs/cgroup/${ctl}${parent}`);
      } catch {
        // not made under this controller
      }
    }
  }
});

test('cgroupns private: the container sees its own cgroup as the root; host (the default) sees the path', async () => {
  const own = await ok(['run', '--rm', ...NET, '--cgroupns', 'private', IMG, 'grep', 'memory', '/proc/self/cgroup']);
  assert.match(own, /:memory:\/$/m);
  const host = await ok(['run', '--rm', ...NET, IMG, 'grep', 'memory', '/proc/self/cgroup']);
  assert.match(host, new RegExp(`:memory:${d.cgroupParent}/[0-9a-f]{64}$`, 'm'));
  const c = (await ok(['create', '--cgroupns', 'private', IMG, 'true'])).trim();
  assert.equal((await inspect(c)).HostConfig.CgroupnsMode, 'private');
  assert.equal((await inspect((await ok(['create', IMG, 'true'])).trim())).HostConfig.CgroupnsMode, 'host');
  const bad = await d.api('POST', '/containers/create', { Image: IMG, HostConfig: { CgroupnsMode: 'bogus' } });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.message, 'invalid cgroup namespace mode: bogus');
});

test('keel compose: ipc and pid service:X reach the engine as container:<id> and work', async () => {
  const p = project(d, 'nsc', {
    'compose.yaml': `services:
  db:
    image: ${IMG}
    network_mode: none
    ipc: shareable
    command: ["sh", "-c", "echo shared > /dev/shm/f; sleep 301"]
    stop_signal: SIGKILL
  side:
    image: ${IMG}
    network_mode: none
    ipc: service:db
    pid: service:db
    command: ["sleep", "300"]
    stop_signal: SIGKILL
`,
  });
  const up = await p.compose(['up', '-d']);
  assert.equal(up.code, 0, `${up.stderr}\n${d.log.slice(-2000)}`);
  const db = await inspect('nsc-db-1');
  const side = await inspect('nsc-side-1');
  assert.equal(side.HostConfig.IpcMode, `container:${db.Id}`);
  assert.equal(side.HostConfig.PidMode, `container:${db.Id}`);
  const cat = await ok(['exec', 'nsc-side-1', 'sh', '-c', 'for i in 1 2 3 4 5 6 7 8 9 10; do [ -s /dev/shm/f ] && break; sleep 0.2; done; cat /dev/shm/f']);
  assert.equal(cat, 'shared\n');
  assert.match(await ok(['exec', 'nsc-side-1', 'ps', '-o', 'pid,args']), /^\s*1 sleep 301$/m);
  const down = await p.compose(['down']);
  assert.equal(down.code, 0, down.stderr);
});
