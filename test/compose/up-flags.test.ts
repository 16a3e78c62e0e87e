import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { busyboxDaemon, project } from './helpers.ts';

/** `up`'s attach and recreate flags, as docker compose has them. */
const d = busyboxDaemon('keel-compose-upflags', (d) => d.importBusybox('busybox:vol', ['VOLUME /data']));

const state = async (p: ReturnType<typeof project>, svc: string) => JSON.parse((await p.compose(['ps', '-a', '--format', 'json', svc])).stdout).State;

test('--attach shows one service and up ends when it exits, the others left running; --timestamps; --no-attach', async () => {
  const p = project(d, 'att', {
    'compose.yaml': `services:
  job:
    image: busybox:local
    command: ["sh", "-c", "echo job-done"]
  server:
    image: busybox:local
    command: ["sh", "-c", "echo server-up; sleep 300"]
    stop_signal: SIGKILL
`,
  });
  const r = await p.compose(['up', '--attach', 'job', '--timestamps']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^job-1 +\| \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z job-done$/m);
  assert.doesNotMatch(r.stdout, /server-up/);
  assert.equal(await state(p, 'server'), 'running');
  // --no-attach: the rest is shown (and waited for)
  const na = await p.compose(['up', '--no-attach', 'server', '--no-log-prefix']);
  assert.equal(na.code, 0, na.stderr);
  assert.match(na.stdout, /^job-done$/m);
  assert.doesNotMatch(na.stdout, /server-up/);
  const bad = await p.compose(['up', '--attach', 'nope']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /cannot attach to services not included in up: nope/);
  for (const [flags, error] of [
    [['-d', '--attach', 'job'], /--detach cannot be combined with --abort-on-container-exit, --abort-on-container-failure, --attach/],
    [['--attach', 'job', '--attach-dependencies'], /cannot combine --attach and --attach-dependencies/],
    [['--abort-on-container-exit', '--abort-on-container-failure'], /--abort-on-container-failure cannot be combined with --abort-on-container-exit/],
    [['-V', '--no-recreate'], /--no-recreate and --renew-anon-volumes are incompatible/],
    [['--always-recreate-deps', '--no-recreate'], /--always-recreate-deps and --no-recreate are incompatible/],
    [['--pull', 'sometimes'], /invalid --pull option "sometimes"/],
  ] as const) {
    const e = await p.compose(['up', ...flags]);
    assert.notEqual(e.code, 0, flags.join(' '));
    assert.match(e.stderr, error, flags.join(' '));
  }
  assert.equal((await p.compose(['down'])).code, 0);
});

test('up SERVICE shows and waits for that service only, its dependencies left running; --attach-dependencies shows them too', async () => {
  const p = project(d, 'named', {
    'compose.yaml': `services:
  client:
    image: busybox:local
    command: ["sh", "-c", "echo client-ran"]
    depends_on: [backend]
  backend:
    image: busybox:local
    command: ["sh", "-c", "echo backend-up; sleep 300"]
    stop_signal: SIGKILL
`,
  });
  const r = await p.compose(['up', 'client']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^client-1 +\| client-ran$/m);
  assert.doesNotMatch(r.stdout, /backend-up/);
  assert.equal(await state(p, 'backend'), 'running');
  assert.equal((await p.compose(['down'])).code, 0);
  // the client waits until the backend serves (its line is logged by then), so both show
  fs.writeFileSync(
    path.join(p.dir, 'compose.yaml'),
    fs
      .readFileSync(path.join(p.dir, 'compose.yaml'), 'utf8')
      .replace('echo client-ran', 'until wget -q -O /dev/null http://backend:7/etc/passwd; do sleep 0.1; done; echo client-ran')
      .replace('echo backend-up; sleep 300', 'echo backend-up; exec httpd -f -p 7 -h /'),
  );
  const deps = await p.compose(['up', '--attach-dependencies', 'client']);
  assert.equal(deps.code, 0, deps.stderr);
  assert.match(deps.stdout, /^client-1 +\| client-ran$/m);
  assert.match(deps.stdout, /^backend-1 +\| backend-up$/m);
  assert.equal((await p.compose(['down'])).code, 0);
});

test('--abort-on-container-failure: a clean exit goes on, a failure stops the project with its code', async () => {
  const p = project(d, 'fail', {
    'compose.yaml': `services:
  ok:
    image: busybox:local
    command: ["true"]
  bad:
    image: busybox:local
    command: ["sh", "-c", "sleep 1; echo failing; exit 3"]
  long:
    image: busybox:local
    command: ["sleep", "300"]
    stop_signal: SIGKILL
`,
  });
  const r = await p.compose(['up', '--abort-on-container-failure', '--menu']);
  assert.equal(r.code, 3, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /^ok-1 exited with code 0$/m);
  assert.match(r.stdout, /^bad-1 +\| failing$/m);
  assert.match(r.stdout, /Aborting on container exit/);
  assert.equal(await state(p, 'long'), 'exited');
  assert.equal((await p.compose(['down'])).code, 0);
});

test('a recreated container keeps the anonymous volumes (service and image VOLUME); -V renews them; --always-recreate-deps', async () => {
  const p = project(d, 'anon', {
    'compose.yaml': `services:
  app:
    image: busybox:vol
    command: ["sleep", "300"]
    stop_signal: SIGKILL
    volumes: ["/cache"]
    depends_on: [dep]
  dep:
    image: busybox:local
    command: ["sleep", "300"]
    stop_signal: SIGKILL
`,
  });
  assert.equal((await p.compose(['up', '-d'])).code, 0);
  const sh = (cmd: string) => d.docker(['exec', 'anon-app-1', 'sh', '-c', cmd]);
  assert.equal((await sh('echo kept > /data/f && echo kept > /cache/f')).code, 0);
  const id = async (c: string) => (await d.docker(['inspect', '-f', '{{.Id}}', c])).stdout.trim();
  const dep1 = await id('anon-dep-1');
  const app1 = await id('anon-app-1');
  const up = await p.compose(['up', '-d', '--force-recreate', 'app']);
  assert.equal(up.code, 0, up.stderr);
  assert.notEqual(await id('anon-app-1'), app1);
  assert.equal(await id('anon-dep-1'), dep1, 'a dependency is not recreated by --force-recreate of app');
  assert.equal((await sh('cat /data/f /cache/f')).stdout, 'kept\nkept\n');
  const renew = await p.compose(['up', '-d', '-V', '--always-recreate-deps', 'app']);
  assert.equal(renew.code, 0, renew.stderr);
  assert.notEqual(await id('anon-dep-1'), dep1);
  assert.notEqual((await sh('cat /data/f')).code, 0, 'a new /data');
  assert.notEqual((await sh('cat /cache/f')).code, 0, 'a new /cache');
  assert.equal((await p.compose(['down', '-v'])).code, 0);
});
