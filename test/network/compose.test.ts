import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { NetDaemon } from './helpers.ts';

/**
 * A docker-compose v1 (Debian docker-compose 1.29) project against keel: two
 * services on the project network sharing a named volume. compose creates the
 * network, creates the containers, disconnects + connects them to the network
 * with their aliases, then starts them (compose-up.log).
 */
const d = new NetDaemon('keel-compose');

const COMPOSE = `version: "3"
services:
  web:
    image: busybox:local
    command: ["httpd", "-f", "-p", "80", "-h", "/srv"]
    volumes: ["data:/srv"]
  client:
    image: busybox:local
    command: ["sh", "-c", "echo hello-from-volume > /srv/index.html; until wget -q -O- http://web/index.html; do sleep 0.2; done; sleep 300"]
    volumes: ["data:/srv"]
volumes:
  data: {}
`;

let compose: (args: string[]) => ReturnType<typeof d.docker>;

before(async () => {
  await d.start();
  await d.importBusybox();
  compose = d.composeProject('t', COMPOSE);
});
after(async () => {
  await compose(['down', '-v']).catch(() => {});
  await d.cleanup();
});

test('docker-compose up -d, ps, logs, down -v', async () => {
  const up = await compose(['up', '-d']);
  assert.equal(up.code, 0, `${up.stdout}${up.stderr}\n${d.log.slice(-4000)}`);
  assert.match(up.stderr, /Creating network "t_default" with the default driver/);
  const [n] = JSON.parse((await d.docker(['network', 'inspect', 't_default'])).stdout);
  assert.equal(n.Labels['com.docker.compose.project'], 't');
  assert.equal(n.Labels['com.docker.compose.network'], 'default');

  // client resolves "web" through the embedded DNS and prints what it wrote to the shared volume.
  let logs = '';
  for (let i = 0; i < 50 && !logs.includes('hello-from-volume'); i++) {
    logs = (await compose(['logs', '--no-color', 'client'])).stdout;
    if (!logs.includes('hello-from-volume')) await new Promise((r) => setTimeout(r, 200));
  }
  assert.match(logs, /client_1\s+\| hello-from-volume/);

  const ps = await compose(['ps']);
  assert.equal(ps.code, 0, ps.stderr);
  assert.match(ps.stdout, /t_web_1\s.*Up/);
  assert.match(ps.stdout, /t_client_1\s.*Up/);
  const webNets = JSON.parse((await d.docker(['inspect', '-f', '{{json .NetworkSettings.Networks}}', 't_web_1'])).stdout);
  assert.deepEqual(Object.keys(webNets), ['t_default']);
  assert.ok(webNets.t_default.Aliases.includes('web'));

  const down = await compose(['down', '-v', '-t', '1']);
  assert.equal(down.code, 0, down.stderr);
  assert.match(down.stderr, /Removing network t_default/);
  const nets = await d.docker(['network', 'ls', '--format', '{{.Name}}']);
  assert.doesNotMatch(nets.stdout, /t_default/);
  const ctrs = await d.docker(['ps', '-aq']);
  assert.equal(ctrs.stdout.trim(), '');
  const vols = await d.docker(['volume', 'ls', '-q']);
  assert.doesNotMatch(vols.stdout, /t_data/);
});
