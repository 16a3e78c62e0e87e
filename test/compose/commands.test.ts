import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { freePort } from '../helpers/daemon.ts';
import { eventually, project, TestDaemon } from './helpers.ts';

/** The compose commands besides up/down, on one project: scale, wait, stop/start/restart, kill, pause, exec, run, top, port, images, ls, rm. */
const d = new TestDaemon('keel-compose-cmds');
let port = 0;

before(async () => {
  await d.start();
  await d.importBusybox();
  port = await freePort();
});
after(async () => {
  await d.cleanup();
});

const yaml = (p: number) => `services:
  web:
    image: busybox:local
    command: ["httpd", "-f", "-p", "80", "-h", "/"]
    ports: ["127.0.0.1:${p}:80"]
    healthcheck:
      test: ["CMD", "true"]
      interval: 200ms
  worker:
    image: busybox:local
    command: ["sh", "-c", "echo worker \${HOSTNAME:-x}; sleep 300"]
    stop_grace_period: 1s
    stop_signal: SIGKILL
`;

test('up --wait --scale, port, exec, run, top, images, ls, stop/start/restart, pause, kill, rm', async () => {
  const p = project(d, 'cmds', { 'compose.yaml': yaml(port) });
  const up = await p.compose(['up', '-d', '--wait', '--scale', 'worker=3']);
  assert.equal(up.code, 0, `${up.stderr}\n${d.log.slice(-3000)}`);
  assert.match(up.stderr, /Container cmds-web-1 {2}Healthy/);
  const names = async () => (await p.compose(['ps', '--format', '{{.Name}}'])).stdout.trim().split('\n').sort();
  assert.deepEqual(await names(), ['cmds-web-1', 'cmds-worker-1', 'cmds-worker-2', 'cmds-worker-3']);

  // the published port answers on the host
  const got = await fetch(`http://127.0.0.1:${port}/etc/passwd`)
    .then((r) => r.status)
    .catch((e) => String(e));
  assert.equal(got, 200);
  assert.equal((await p.compose(['port', 'web', '80'])).stdout.trim(), `127.0.0.1:${port}`);

  const ex = await p.compose(['exec', '-T', 'worker', 'sh', '-c', 'echo in-$((1+2)); exit 4'], {});
  assert.equal(ex.code, 4);
  assert.equal(ex.stdout.trim(), 'in-3');
  const ex2 = await p.compose(['exec', '-T', '--index', '2', 'worker', 'hostname']);
  assert.equal(ex2.code, 0, ex2.stderr);

  const runOut = await p.compose(['run', '--rm', '-T', '-e', 'X=from-run', 'worker', 'sh', '-c', 'echo $X; exit 3']);
  assert.equal(runOut.code, 3, runOut.stderr);
  assert.equal(runOut.stdout.trim(), 'from-run');
  // -e KEY takes KEY from the environment, and is left out where it is not set (runc refuses a bare KEY)
  const bare = ['sh', '-c', 'echo ${KEEL_T_SET-unset} ${KEEL_T_UNSET-unset}'];
  const runBare = await p.compose(['run', '--rm', '-T', '-e', 'KEEL_T_SET', '-e', 'KEEL_T_UNSET', 'worker', ...bare], { KEEL_T_SET: 'here' });
  assert.equal(runBare.stdout.trim(), 'here unset', runBare.stderr);
  const exBare = await p.compose(['exec', '-T', '-e', 'KEEL_T_SET', '-e', 'KEEL_T_UNSET', 'worker', ...bare], { KEEL_T_SET: 'here' });
  assert.equal(exBare.stdout.trim(), 'here unset', exBare.stderr);
  const runBad = await p.compose(['run', '--rm', '-T', '-e', '=x', 'worker', 'true']);
  assert.equal(runBad.code, 1);
  assert.equal(runBad.stderr, 'invalid environment variable: =x\n');
  assert.equal((await d.docker(['ps', '-aq', '--filter', 'label=com.docker.compose.oneoff=True'])).stdout.trim(), '');
  assert.equal((await d.docker(['ps', '-aq', '--filter', 'label=com.docker.compose.oneoff=True'])).stdout.trim(), '');

  const runVol = await p.compose(['run', '--rm', '-T', '-v', `${p.dir}:/host:ro`, 'worker', 'head', '-n', '1', '/host/compose.yaml']);
  assert.equal(runVol.stdout.trim(), 'services:', runVol.stderr);
  const running = await p.compose(['ps', '--filter', 'status=running', '--format', '{{.Name}}', 'worker']);
  assert.equal(running.stdout.trim().split('\n').length, 3);

  const top = await p.compose(['top', 'web']);
  assert.match(top.stdout, /cmds-web-1\n.*PID[\s\S]*httpd/);
  const images = await p.compose(['images', '--format', 'json']);
  assert.equal(JSON.parse(images.stdout).length, 4);
  const ls = await p.compose(['ls', '--format', 'json']);
  assert.deepEqual(JSON.parse(ls.stdout), [{ Name: 'cmds', Status: 'running(4)', ConfigFiles: `${p.dir}/compose.yaml` }]);

  // scale down removes the highest numbers
  const down1 = await p.compose(['up', '-d', '--scale', 'worker=1']);
  assert.equal(down1.code, 0, down1.stderr);
  assert.deepEqual(await names(), ['cmds-web-1', 'cmds-worker-1']);

  assert.equal((await p.compose(['stop', 'worker'])).code, 0);
  assert.deepEqual(await names(), ['cmds-web-1']);
  assert.equal((await p.compose(['start', 'worker'])).code, 0);
  assert.deepEqual(await names(), ['cmds-web-1', 'cmds-worker-1']);
  const restart = await p.compose(['restart', '-t', '1', 'worker']);
  assert.match(restart.stderr, /Container cmds-worker-1 {2}Restarting/);

  const { spawn } = await import('node:child_process');
  const { keelBin } = await import('../helpers/daemon.ts');
  const watcher = spawn(process.execPath, [keelBin, '-H', `unix://${d.socket}`, 'compose', 'events', 'web'], { cwd: p.dir });
  let events = '';
  watcher.stdout.on('data', (b) => (events += b));
  // The watcher is subscribed once it shows an event: a signal httpd ignores makes one.
  await eventually(async () => {
    await p.compose(['kill', '-s', 'WINCH', 'web']);
    return /container kill/.test(events);
  }, `the events watcher's first event, got: ${events}`);
  assert.equal((await p.compose(['pause', 'web'])).code, 0);
  assert.match((await p.compose(['ps', '--format', 'json', 'web'])).stdout, /"State":"paused"/);
  assert.equal((await p.compose(['unpause', 'web'])).code, 0);
  assert.match((await p.compose(['ps', '--format', 'json', 'web'])).stdout, /"State":"running"/);
  await eventually(async () => /container unpause/.test(events), `events, got: ${events}`);
  watcher.kill('SIGINT');
  assert.match(events, /^\d{4}-\d\d-\d\d [\d:.]+ container pause [0-9a-f]{64} \(.*name=cmds-web-1/m);

  const fs = await import('node:fs');
  fs.writeFileSync(`${p.dir}/note.txt`, 'copied-in\n');
  const cpIn = await p.compose(['cp', `${p.dir}/note.txt`, 'worker:/tmp/note.txt']);
  assert.equal(cpIn.code, 0, cpIn.stderr);
  assert.equal((await d.docker(['exec', 'cmds-worker-1', 'cat', '/tmp/note.txt'])).stdout, 'copied-in\n');
  const cpOut = await p.compose(['cp', 'web:/etc/passwd', `${p.dir}/passwd.copy`]);
  assert.equal(cpOut.code, 0, cpOut.stderr);
  assert.match(fs.readFileSync(`${p.dir}/passwd.copy`, 'utf8'), /^root:x:0:0/);

  assert.equal((await p.compose(['kill', 'worker'])).code, 0);
  await eventually(async () => (await names()).length === 1, 'worker killed');
  const rm = await p.compose(['rm', '-f', 'worker']);
  assert.match(rm.stderr, /Container cmds-worker-1 {2}Removed/);
  assert.deepEqual((await p.compose(['ps', '-a', '--services'])).stdout.trim(), 'web');

  assert.equal((await p.compose(['down', '-t', '1'])).code, 0);
  assert.equal((await d.docker(['ps', '-aq'])).stdout.trim(), '');
});
