import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { busyboxDaemon, project } from './helpers.ts';

/** Lifecycle hooks (post_start, pre_stop) run by exec, and use_api_socket. */
const d = busyboxDaemon('keel-compose-hooks');

test('post_start runs after start with its user, workdir and environment; pre_stop before stop; a failing hook fails the command', async () => {
  const p = project(d, 'hooks', {
    'compose.yaml': `services:
  app:
    image: busybox:local
    command: ["sleep", "300"]
    stop_signal: SIGKILL
    volumes: [shared:/shared]
    post_start:
      - command: ["sh", "-c", "echo \\"started as $$(id -u) in $$(pwd) mode=$$MODE\\" >> /shared/log"]
        user: "65534"
        working_dir: /tmp
        environment: {MODE: hook}
    pre_stop:
      - command: ["sh", "-c", "echo stopping >> /shared/log"]
  watcher:
    image: busybox:local
    command: ["sleep", "300"]
    stop_signal: SIGKILL
    volumes: [shared:/shared]
  broken:
    image: busybox:local
    command: ["sleep", "300"]
    stop_signal: SIGKILL
    profiles: [broken]
    post_start:
      - command: ["sh", "-c", "echo working; echo no database >&2; exit 4"]
volumes:
  shared:
`,
  });
  const up = await p.compose(['up', '-d', 'watcher']);
  assert.equal(up.code, 0, up.stderr);
  assert.equal((await d.docker(['exec', 'hooks-watcher-1', 'sh', '-c', 'chmod 777 /shared'])).code, 0);
  const app = await p.compose(['up', '-d', 'app']);
  assert.equal(app.code, 0, app.stderr);
  const log = () => d.docker(['exec', 'hooks-watcher-1', 'cat', '/shared/log']).then((r) => r.stdout);
  assert.equal(await log(), 'started as 65534 in /tmp mode=hook\n');
  const stop = await p.compose(['stop', 'app']);
  assert.equal(stop.code, 0, stop.stderr);
  assert.equal(await log(), 'started as 65534 in /tmp mode=hook\nstopping\n');
  const restart = await p.compose(['start', 'app']);
  assert.equal(restart.code, 0, restart.stderr);
  assert.equal((await log()).split('\n').filter(Boolean).length, 3);

  const bad = await p.compose(['--profile', 'broken', 'up', '-d', 'broken']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /broken hook exited with status 4: no database/);
  const down = await p.compose(['--profile', 'broken', 'down', '-v']);
  assert.equal(down.code, 0, down.stderr);
});

test('use_api_socket: the engine socket at /var/run/docker.sock and the client credentials at $DOCKER_CONFIG', async () => {
  const cfg = path.join(d.dir, 'docker-config');
  fs.mkdirSync(cfg, { recursive: true });
  fs.writeFileSync(path.join(cfg, 'config.json'), JSON.stringify({ auths: { 'reg.example:5000': { auth: Buffer.from('me:pw').toString('base64') } } }));
  const p = project(d, 'apisock', {
    'compose.yaml': `services:
  ci:
    image: busybox:local
    command: ["sleep", "300"]
    stop_signal: SIGKILL
    use_api_socket: true
`,
  });
  const up = await p.compose(['up', '-d'], { DOCKER_CONFIG: cfg });
  assert.equal(up.code, 0, up.stderr);
  const sh = (c: string) => d.docker(['exec', 'apisock-ci-1', 'sh', '-c', c]);
  assert.equal((await sh('test -S /var/run/docker.sock && echo socket')).stdout.trim(), 'socket');
  assert.equal((await sh('echo $DOCKER_CONFIG')).stdout.trim(), '/run/secrets/docker');
  const json = JSON.parse((await sh('cat /run/secrets/docker/config.json')).stdout);
  assert.deepEqual(json, { auths: { 'reg.example:5000': { auth: Buffer.from('me:pw').toString('base64') } } });
  // it is the daemon's own socket, the one the client talked to
  assert.equal(Number((await sh('stat -c %i /var/run/docker.sock')).stdout.trim()), fs.statSync(d.socket).ino);
  assert.equal((await p.compose(['down'])).code, 0);
});

test("attached up shows a post_start hook's output as <service>-<n> ->", async () => {
  const p = project(d, 'hookout', {
    'compose.yaml': `services:
  app:
    image: busybox:local
    command: ["sh", "-c", "sleep 1; echo main-done"]
    post_start:
      - command: ["sh", "-c", "echo seeded; echo to-stderr >&2"]
`,
  });
  const r = await p.compose(['up']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^app-1 -> +\| seeded$/m);
  assert.match(r.stdout, /^app-1 -> +\| to-stderr$/m);
  assert.match(r.stdout, /^app-1 +\| main-done$/m);
  assert.equal((await p.compose(['down'])).code, 0);
});

test('run (attached) runs the post_start hooks once the container started', async () => {
  const p = project(d, 'hookrun', {
    'compose.yaml': `services:
  task:
    image: busybox:local
    post_start:
      - command: ["sh", "-c", "echo from-hook > /tmp/hooked"]
`,
  });
  const r = await p.compose(['run', '--rm', '-T', 'task', 'sh', '-c', 'while [ ! -f /tmp/hooked ]; do sleep 0.1; done; cat /tmp/hooked']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'from-hook\n');
  assert.equal((await p.compose(['down'])).code, 0);
});
