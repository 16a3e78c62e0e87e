import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import Docker from 'dockerode';
import { busyboxRootfsTar, TestDaemon } from '../helpers/daemon.ts';
import { processGone, until } from '../helpers/wait.ts';

let d: TestDaemon;
const IMG = 'busybox:local';
const NET = ['--network', 'none'];

before(async () => {
  d = new TestDaemon('keel-ctr2');
  await d.start();
  const r = await d.docker(['import', busyboxRootfsTar(d.dir), IMG]);
  assert.equal(r.code, 0, r.stderr);
});

after(async () => {
  const ids = (await d.docker(['ps', '-aq'])).stdout.split('\n').filter(Boolean);
  if (ids.length) await d.docker(['rm', '-f', ...ids]);
  await d.cleanup();
});

async function restart(): Promise<void> {
  // The socket file of a killed daemon stays behind: wait for the new one to answer.
  await d.start();
}

test('dockerode: create, attach (demuxed), start, wait, exec, inspect, list, remove', async () => {
  const docker = new Docker({ socketPath: d.socket });
  const c = await docker.createContainer({ Image: IMG, Cmd: ['sh', '-c', 'echo out; echo err >&2; exit 3'], HostConfig: { NetworkMode: 'none' } });
  const stream = await c.attach({ stream: true, stdout: true, stderr: true, hijack: true });
  let out = '';
  let err = '';
  const { PassThrough } = await import('node:stream');
  const o = new PassThrough();
  const e = new PassThrough();
  o.on('data', (b) => (out += b));
  e.on('data', (b) => (err += b));
  c.modem.demuxStream(stream, o, e);
  const ended = new Promise((r) => stream.on('end', r));
  await c.start();
  const res = await c.wait();
  await ended;
  assert.equal(res.StatusCode, 3);
  assert.equal(out, 'out\n');
  assert.equal(err, 'err\n');
  const info = await c.inspect();
  assert.equal(info.State.ExitCode, 3);
  const list = await docker.listContainers({ all: true });
  assert.ok(list.some((x) => x.Id === c.id));
  await c.remove();
  await assert.rejects(c.inspect(), (x: { statusCode?: number }) => x.statusCode === 404);

  const s = await docker.createContainer({ Image: IMG, Cmd: ['sleep', '1000'], HostConfig: { NetworkMode: 'none' } });
  await s.start();
  const ex = await s.exec({ Cmd: ['sh', '-c', 'echo fromexec; exit 2'], AttachStdout: true, AttachStderr: true });
  const es = await ex.start({ hijack: true, stdin: false });
  let eo = '';
  const eop = new PassThrough();
  eop.on('data', (b) => (eo += b));
  s.modem.demuxStream(es, eop, new PassThrough());
  await new Promise((r) => es.on('end', r));
  assert.equal(eo, 'fromexec\n');
  assert.equal((await ex.inspect()).ExitCode, 2);
  await s.remove({ force: true });
});

test('containers outlive a kill -9 of the daemon; exits meanwhile keep their code', async () => {
  const long = (await d.docker(['run', '-d', ...NET, IMG, 'sh', '-c', 'i=0; while true; do echo line$i; i=$((i+1)); sleep 0.1; done'])).stdout.trim();
  const short = (await d.docker(['run', '-d', ...NET, IMG, 'sh', '-c', 'sleep 0.5; exit 7'])).stdout.trim();
  const always = (await d.docker(['run', '-d', ...NET, '--restart', 'always', IMG, 'sleep', '1000'])).stdout.trim();
  const shortPid = Number((await d.docker(['inspect', '-f', '{{.State.Pid}}', short])).stdout.trim());
  await d.kill9();
  // While the daemon is down: the short one exits and the long one writes on (its log file, kept by conmon).
  await until('the short container to exit', () => !shortPid || processGone(shortPid));
  const logFile = `${d.dataRoot}/containers/${long}/container.log`;
  await until(
    '15 log lines written while the daemon is down',
    () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '').split('\n').filter((l) => l.includes('line')).length >= 15,
  );
  await restart();
  const ps = (await d.docker(['ps', '-a', '--format', '{{.ID}} {{.Status}}'])).stdout;
  assert.match(ps, new RegExp(`${long.slice(0, 12)} Up`));
  assert.match(ps, new RegExp(`${short.slice(0, 12)} Exited \\(7\\)`));
  assert.match(ps, new RegExp(`${always.slice(0, 12)} Up`));
  const logs = (await d.docker(['logs', long])).stdout.split('\n').filter(Boolean);
  // Nothing lost: the lines are consecutive from line0 on.
  assert.ok(logs.length >= 15, `only ${logs.length} lines`);
  logs.forEach((l, i) => assert.equal(l, `line${i}`));
  assert.equal((await d.docker(['exec', long, 'echo', 'ok'])).stdout, 'ok\n');
  assert.equal((await d.docker(['stop', '-t', '1', long])).code, 0);
  assert.equal((await d.docker(['inspect', '-f', '{{.State.Status}}', long])).stdout.trim(), 'exited');
  // The always-restart container is brought back after a daemon restart if it died meanwhile.
  const pid = Number((await d.docker(['inspect', '-f', '{{.State.Pid}}', always])).stdout.trim());
  await d.kill9();
  process.kill(pid, 'SIGKILL');
  await until('the always-restart container to die', () => processGone(pid));
  await restart();
  assert.equal((await d.docker(['inspect', '-f', '{{.State.Running}}', always])).stdout.trim(), 'true');
  await d.docker(['rm', '-f', long, short, always]);
});

function snapshot(): { mounts: number; cgroups: number; conmons: number } {
  const mounts = fs
    .readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .filter((l) => l.includes(d.dir)).length;
  let cgroups = 0;
  for (const ctl of ['pids', 'memory', 'cpu', 'freezer']) {
    try {
      cgroups += fs.readdirSync(`/sys/fs/cgroup/${ctl}${d.cgroupParent}`).filter((n) => /^[a-f0-9]{64}$/.test(n)).length;
    } catch {
      // no keel cgroup parent yet
    }
  }
  const ps = spawnSync('ps', ['-eo', 'args']).stdout.toString();
  const conmons = ps.split('\n').filter((l) => l.startsWith('/usr/bin/conmon') && l.includes(d.execRoot)).length;
  return { mounts, cgroups, conmons };
}

test('200 create/start/rm cycles leave no mounts, cgroups or processes behind', async () => {
  const before = snapshot();
  const docker = new Docker({ socketPath: d.socket });
  const one = async (i: number) => {
    if (i % 2) {
      const r = await d.docker(['run', '--rm', ...NET, IMG, 'true']);
      assert.equal(r.code, 0, r.stderr);
    } else {
      const c = await docker.createContainer({ Image: IMG, Cmd: ['sleep', '100'], HostConfig: { NetworkMode: 'none' } });
      await c.start();
      await c.remove({ force: true });
    }
  };
  for (let i = 0; i < 200; i += 4) await Promise.all([one(i), one(i + 1), one(i + 2), one(i + 3)]);
  // A failed create must not leave anything either.
  for (let i = 0; i < 5; i++) assert.equal((await d.docker(['run', '--rm', ...NET, IMG, '/nonexistent'])).code, 127);
  assert.equal((await d.docker(['ps', '-aq'])).stdout, '');
  // --rm containers release their resources just after they are reported removed.
  for (let i = 0; i < 50 && JSON.stringify(snapshot()) !== JSON.stringify(before); i++) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(snapshot(), before);
  assert.deepEqual(fs.readdirSync(`${d.execRoot}/containers`), []);
  assert.deepEqual(fs.readdirSync(`${d.dataRoot}/containers`), []);
});
