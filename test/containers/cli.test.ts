import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { run, TestDaemon } from '../helpers/daemon.ts';

let d: TestDaemon;
const IMG = 'busybox:local';
const NET = ['--network', 'none'];

before(async () => {
  d = new TestDaemon('keel-ctr');
  await d.start();
  await d.importBusybox(IMG);
});

after(async () => {
  await d.docker(['rm', '-f', ...(await d.docker(['ps', '-aq'])).stdout.split('\n').filter(Boolean)]);
  await d.cleanup();
});

test('run --rm: output, exit codes, stdin, and docker error codes', async () => {
  const hi = await d.docker(['run', '--rm', ...NET, IMG, 'sh', '-c', 'echo out; echo err >&2']);
  assert.equal(hi.code, 0, hi.stderr);
  assert.equal(hi.stdout, 'out\n');
  assert.equal(hi.stderr, 'err\n');
  assert.equal((await d.docker(['run', '--rm', ...NET, IMG, 'sh', '-c', 'exit 3'])).code, 3);
  const piped = await d.docker(['run', '-i', '--rm', ...NET, IMG, 'cat'], { input: 'piped\n' });
  assert.equal(piped.stdout, 'piped\n');
  const bad = await d.docker(['run', '--rm', ...NET, IMG, '/nonexistent']);
  assert.equal(bad.code, 127, bad.stderr);
  assert.match(bad.stderr, /no such file or directory/);
  const noUser = await d.docker(['run', '--rm', ...NET, '-u', 'nosuch', IMG, 'true']);
  assert.equal(noUser.code, 125);
  assert.match(noUser.stderr, /unable to find user nosuch/);
  const range = await d.docker(['run', '--rm', ...NET, '-u', '4000000000', IMG, 'true']);
  assert.equal(range.code, 125);
  const user = await d.docker([
    'run',
    '--rm',
    ...NET,
    '-u',
    'nobody',
    '-w',
    '/tmp/new',
    '-e',
    'A=1',
    '--hostname',
    'hn',
    IMG,
    'sh',
    '-c',
    'id -u; id -g; echo $A $PWD; hostname',
  ]);
  assert.equal(user.stdout, '65534\n65534\n1 /tmp/new\nhn\n');
  const ep = await d.docker(['run', '--rm', ...NET, '--entrypoint', 'echo', IMG, 'a', 'b']);
  assert.equal(ep.stdout, 'a b\n');
  const ro = await d.docker([
    'run',
    '--rm',
    ...NET,
    '--read-only',
    '--tmpfs',
    '/scratch',
    IMG,
    'sh',
    '-c',
    'touch /x 2>/dev/null && echo rw || echo ro; touch /scratch/y && echo tmpfs',
  ]);
  assert.equal(ro.stdout, 'ro\ntmpfs\n');
  const init = await d.docker(['run', '--rm', ...NET, '--init', IMG, 'sh', '-c', 'cat /proc/1/cmdline | tr "\\0" " "']);
  assert.match(init.stdout, /docker-init/);
  const pid1 = await d.docker(['run', '--rm', ...NET, IMG, 'sh', '-c', 'echo $$']);
  assert.equal(pid1.stdout, '1\n');
  // Nothing left behind by the failures.
  assert.equal((await d.docker(['ps', '-aq'])).stdout, '');
});

test("a --rm container's rootfs is volatile (no fsync for what is thrown away); a kept container's is not", async () => {
  const rootLine = "grep ' / / ' /proc/self/mountinfo";
  const rm = await d.docker(['run', '--rm', ...NET, IMG, 'sh', '-c', `echo data > /f && cat /f && ${rootLine}`]);
  assert.equal(rm.code, 0, rm.stderr);
  assert.match(rm.stdout, /^data\n/);
  // The kernel lists it as "volatile" (5.10) or "fsync=volatile" (6.x).
  assert.match(rm.stdout, /\bvolatile\b/, rm.stdout);
  const kept = (await d.docker(['run', '-d', ...NET, IMG, 'sleep', '100'])).stdout.trim();
  const line = (await d.docker(['exec', kept, 'sh', '-c', rootLine])).stdout;
  assert.match(line, /overlay/);
  assert.doesNotMatch(line, /volatile/);
  await d.docker(['rm', '-f', kept]);
});

test('detached container: ps, logs, exec, top, stats, inspect, stop, rm', async () => {
  const r = await d.docker([
    'run',
    '-d',
    '--name',
    'web',
    ...NET,
    '--label',
    'k=v',
    IMG,
    'sh',
    '-c',
    'echo out; echo err >&2; trap "exit 0" TERM; while true; do sleep 0.1; done',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const id = r.stdout.trim();
  const ps = await d.docker(['ps', '--format', '{{.ID}} {{.Names}} {{.Status}}']);
  assert.match(ps.stdout, new RegExp(`^${id.slice(0, 12)} web Up`));
  assert.equal((await d.docker(['ps', '-q', '--filter', 'label=k=v'])).stdout.trim(), id.slice(0, 12));
  assert.equal((await d.docker(['ps', '-q', '--filter', 'label=k=x'])).stdout.trim(), '');
  await new Promise((res) => setTimeout(res, 300));
  const logs = await d.docker(['logs', 'web']);
  assert.equal(logs.stdout, 'out\n');
  assert.equal(logs.stderr, 'err\n');
  const ts = await d.docker(['logs', '-t', '--tail', '1', 'web']);
  assert.match(ts.stdout + ts.stderr, /^\d{4}-\d\d-\d\dT[\d:.]+Z (out|err)\n$/);
  const ex = await d.docker(['exec', '-e', 'X=2', '-w', '/tmp', 'web', 'sh', '-c', 'echo $X $PWD; exit 4']);
  assert.equal(ex.stdout, '2 /tmp\n');
  assert.equal(ex.code, 4);
  assert.equal((await d.docker(['exec', 'web', '/nope'])).code, 127);
  const top = await d.docker(['top', 'web']);
  assert.match(top.stdout, /PID/);
  assert.match(top.stdout, /while true/);
  const stats = await d.docker(['stats', '--no-stream', '--format', '{{.Name}} {{.PIDs}}', 'web']);
  assert.match(stats.stdout, /^web [1-9]/);
  const insp = JSON.parse((await d.docker(['inspect', 'web'])).stdout)[0];
  assert.equal(insp.Id, id);
  assert.equal(insp.Name, '/web');
  assert.equal(insp.State.Status, 'running');
  assert.ok(insp.State.Pid > 0);
  assert.equal(insp.Config.Labels.k, 'v');
  assert.equal(insp.HostConfig.NetworkMode, 'none');
  const rm = await d.docker(['rm', 'web']);
  assert.equal(rm.code, 1);
  assert.match(rm.stderr, /You cannot remove a running container .* Stop the container before attempting removal or force remove/);
  const conflict = await d.docker(['create', '--name', 'web', IMG, 'true']);
  assert.match(
    conflict.stderr,
    /Conflict\. The container name "\/web" is already in use by container ".{64}"\. You have to remove \(or rename\) that container to be able to reuse that name\./,
  );
  assert.equal((await d.docker(['pause', 'web'])).code, 0);
  assert.match((await d.docker(['ps', '--format', '{{.Status}}'])).stdout, /Paused/);
  assert.equal((await d.docker(['unpause', 'web'])).code, 0);
  assert.equal((await d.docker(['rename', 'web', 'web2'])).code, 0);
  const up = await d.docker(['update', '--memory', '64m', '--pids-limit', '50', 'web2']);
  assert.equal(up.code, 0, up.stderr);
  assert.equal(fs.readFileSync(`/sys/fs/cgroup/memory${d.cgroupParent}/${id}/memory.limit_in_bytes`, 'utf8').trim(), String(64 << 20));
  assert.equal((await d.docker(['stop', 'web2'])).code, 0);
  assert.equal((await d.docker(['inspect', '-f', '{{.State.ExitCode}}', 'web2'])).stdout.trim(), '0');
  const again = await d.docker(['stop', 'web2']);
  assert.equal(again.code, 0);
  const execStopped = await d.docker(['exec', 'web2', 'true']);
  assert.match(execStopped.stderr, /is not running/);
  const kill = await d.docker(['kill', 'web2']);
  assert.match(kill.stderr, /Cannot kill container: web2: Container .* is not running/);
  assert.equal((await d.docker(['rm', 'web2'])).code, 0);
  assert.match((await d.docker(['rm', 'web2'])).stderr, /No such container: web2/);
});

test('wait, restart, kill -s, restart policy on-failure', async () => {
  const id = (await d.docker(['run', '-d', ...NET, IMG, 'sh', '-c', 'sleep 0.3; exit 5'])).stdout.trim();
  const w = await d.docker(['wait', id]);
  assert.equal(w.stdout.trim(), '5');
  const pol = (await d.docker(['run', '-d', ...NET, '--restart', 'on-failure:2', IMG, 'sh', '-c', 'exit 1'])).stdout.trim();
  // Generous: each exit unmounts the rootfs, and overlay's unmount syncs the whole upper filesystem,
  // which takes seconds when something else writes a lot to that disk.
  for (let i = 0; i < 200; i++) {
    // The second restart runs the process once more: wait until that run has exited too.
    const s = (await d.docker(['inspect', '-f', '{{.RestartCount}} {{.State.Status}}', pol])).stdout.trim();
    if (s === '2 exited') break;
    await new Promise((res) => setTimeout(res, 100));
  }
  assert.equal((await d.docker(['inspect', '-f', '{{.RestartCount}} {{.State.Status}}', pol])).stdout.trim(), '2 exited', d.log.slice(-3000));
  const k = (await d.docker(['run', '-d', ...NET, IMG, 'sh', '-c', 'trap "exit 9" USR1; while true; do sleep 0.1; done'])).stdout.trim();
  await new Promise((res) => setTimeout(res, 200));
  assert.equal((await d.docker(['kill', '-s', 'USR1', k])).code, 0);
  assert.equal((await d.docker(['wait', k])).stdout.trim(), '9');
  const rs = await d.docker(['restart', k]);
  assert.equal(rs.code, 0, rs.stderr + d.log.slice(-2000));
  assert.equal((await d.docker(['inspect', '-f', '{{.State.Running}}', k])).stdout.trim(), 'true');
  await d.docker(['rm', '-f', id, pol, k]);
});

test('between an exit and the restart by policy that follows it, the container shows as restarting (as docker)', async () => {
  const id = (await d.docker(['run', '-d', ...NET, '--restart', 'on-failure:2', IMG, 'sh', '-c', 'exit 1'])).stdout.trim();
  // The API answers in milliseconds: sampled every 5 ms, the 100 and 200 ms back-offs cannot be missed.
  const seen: string[] = [];
  for (let i = 0; i < 2000; i++) {
    const j = (await d.api('GET', `/containers/${id}/json`)).json;
    let s = `${j.RestartCount} ${j.State.Status}`;
    if (j.State.Status === 'restarting') {
      // listed by ps without -a, and by status=restarting, as dockerd lists a restarting container (the restart may come between
      // the inspect and the lists: one sample with both is asked for, below)
      const list = async (f: object) => (await d.api('GET', `/containers/json?filters=${encodeURIComponent(JSON.stringify({ id: [id], ...f }))}`)).json.length;
      s += ` running=${j.State.Running} restarting=${j.State.Restarting} listed=${await list({})}${await list({ status: ['restarting'] })}`;
    }
    if (seen.at(-1) !== s) seen.push(s);
    if (s === '2 exited') break;
    await new Promise((res) => setTimeout(res, 5));
  }
  // dockerd's restarting container is Running and Restarting, with no pid
  assert.ok(
    seen.some((s) => s.endsWith(' restarting running=true restarting=true listed=11')),
    seen.join(', '),
  );
  assert.ok(!seen.some((s) => s.includes('running=false')), seen.join(', '));
  assert.equal(seen.at(-1), '2 exited', seen.join(', '));
  // A restart by policy counts itself only once it is under way: "2 exited" is its end, never a pause before a third run.
  await new Promise((res) => setTimeout(res, 500));
  assert.equal((await d.api('GET', `/containers/${id}/json`)).json.State.Status, 'exited');
  await d.docker(['rm', '-f', id]);
});

test('cp both ways stays inside the container, diff, commit, export', async () => {
  const id = (await d.docker(['run', '-d', ...NET, IMG, 'sleep', '1000'])).stdout.trim();
  // Nothing changed yet: the mount points keel made (/etc/hosts, ...) and their directory are not changes (as in docker).
  assert.equal((await d.docker(['diff', id])).stdout, '');
  await d.docker(['exec', id, 'sh', '-c', 'ln -s / /tmp/evil; ln -s ../../../../../etc /tmp/evil2; echo inside > /etc/marker']);
  const src = path.join(d.dir, 'cp-in.txt');
  fs.writeFileSync(src, 'copied\n');
  const into = await d.docker(['cp', src, `${id}:/tmp/evil2/`]);
  assert.equal(into.code, 0, into.stderr);
  assert.equal(fs.existsSync('/etc/cp-in.txt'), false);
  assert.equal((await d.docker(['exec', id, 'cat', '/etc/cp-in.txt'])).stdout, 'copied\n');
  const dest = path.join(d.dir, 'out');
  fs.mkdirSync(dest);
  const out = await d.docker(['cp', `${id}:/tmp/evil/etc/marker`, dest]);
  assert.equal(out.code, 0, out.stderr);
  assert.equal(fs.readFileSync(path.join(dest, 'marker'), 'utf8'), 'inside\n');
  const passwd = await d.docker(['cp', `${id}:/tmp/evil2/passwd`, '-']);
  assert.match(passwd.stdout, /nobody:x:65534/);
  assert.doesNotMatch(
    passwd.stdout,
    new RegExp(
      fs
        .readFileSync('/etc/passwd', 'utf8')
        .split('\n')[1]!
        .replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
    ),
  );
  const diff = await d.docker(['diff', id]);
  assert.match(diff.stdout, /^C \/etc$/m);
  assert.match(diff.stdout, /^A \/etc\/marker$/m);
  assert.doesNotMatch(diff.stdout, /^A \/proc$/m);
  const commit = await d.docker(['commit', '-m', 'msg', '-c', 'ENV C=1', id, 'committed:1']);
  assert.equal(commit.code, 0, commit.stderr);
  const fromCommit = await d.docker(['run', '--rm', ...NET, 'committed:1', 'sh', '-c', 'cat /etc/marker; echo $C']);
  assert.equal(fromCommit.stdout, 'inside\n1\n');
  const tarFile = path.join(d.dir, 'export.tar');
  const exp = await d.docker(['export', '-o', tarFile, id]);
  assert.equal(exp.code, 0, exp.stderr);
  const list = await run(['tar', '-tf', tarFile]);
  assert.match(list.stdout, /^etc\/marker$/m);
  await d.docker(['rm', '-f', id]);
  await d.docker(['rmi', 'committed:1']);
});

test('run -it and exec -it under a pty', async () => {
  const env = { DOCKER_HOST: `unix://${d.socket}`, DOCKER_CONFIG: path.join(d.dir, 'docker-config') };
  // stdin stays open (as a terminal user's would) while the command runs.
  const pty = (cmd: string) => run(['sh', '-c', `sleep 3 | script -qfec "${cmd}" /dev/null`], { env });
  const r = await pty(`docker run -it --rm --network none ${IMG} sh -c 'tty; echo hi'`);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /\/dev\/pts\/\d+\r?\n/);
  assert.match(r.stdout, /hi\r\n/);
  const id = (await d.docker(['run', '-d', ...NET, IMG, 'sleep', '1000'])).stdout.trim();
  const e = await pty(`docker exec -it ${id} sh -c 'tty; exit 6'`);
  assert.match(e.stdout, /\/dev\/pts\/\d+/);
  assert.equal(e.code, 6);
  await d.docker(['rm', '-f', id]);
});

test('events: create, start, die, destroy', async () => {
  const since = Math.floor(Date.now() / 1000) - 1;
  const id = (await d.docker(['run', '-d', ...NET, IMG, 'true'])).stdout.trim();
  await d.docker(['wait', id]);
  await d.docker(['rm', id]);
  const ev = await d.docker([
    'events',
    '--since',
    String(since),
    '--until',
    String(Math.ceil(Date.now() / 1000) + 1),
    '--filter',
    `container=${id}`,
    '--format',
    '{{.Action}}',
  ]);
  assert.deepEqual(ev.stdout.trim().split('\n'), ['create', 'start', 'die', 'destroy']);
});
