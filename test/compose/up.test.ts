import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { project, TestDaemon } from './helpers.ts';

/**
 * keel compose against a test daemon: up -d creates the network, volume and
 * containers with docker compose's names and labels, in dependency order;
 * a second up changes nothing; an edit recreates only the edited service;
 * ps, logs and down -v.
 */
const d = new TestDaemon('keel-compose-up');

const COMPOSE = `services:
  web:
    image: busybox:local
    command: ["httpd", "-f", "-p", "80", "-h", "/srv"]
    volumes: ["data:/srv"]
    depends_on:
      init: {condition: service_completed_successfully}
      db: {condition: service_healthy}
    environment:
      GREETING: \${GREETING:-hello}
  init:
    image: busybox:local
    command: ["sh", "-c", "echo \${GREETING:-hello}-from-init > /srv/index.html"]
    volumes: ["data:/srv"]
  db:
    image: busybox:local
    command: ["sh", "-c", "touch /tmp/ready; echo db-started; sleep 300"]
    healthcheck:
      test: ["CMD", "cat", "/tmp/ready"]
      interval: 200ms
      retries: 20
volumes:
  data: {}
`;

before(async () => {
  await d.start();
  await d.importBusybox();
});
after(async () => {
  await d.cleanup();
});

test('up -d, ps, logs, up again (no change), edit and up (recreate one), down -v', async () => {
  const p = project(d, 'proj', { 'compose.yaml': COMPOSE });
  const up = await p.compose(['up', '-d']);
  assert.equal(up.code, 0, `${up.stdout}${up.stderr}\n${d.log.slice(-3000)}`);
  assert.match(up.stderr, /Network proj_default {2}Created/);
  assert.match(up.stderr, /Volume proj_data {2}Created/);
  // web starts only after init completed and db is healthy
  const order = up.stderr.split('\n');
  const at = (s: string) => order.findIndex((l) => l.includes(s));
  assert.ok(at('Container proj-init-1  Exited') < at('Container proj-web-1  Started'), up.stderr);
  assert.ok(at('Container proj-db-1  Healthy') < at('Container proj-web-1  Started'), up.stderr);

  const [web] = JSON.parse((await d.docker(['inspect', 'proj-web-1'])).stdout);
  const l = web.Config.Labels;
  assert.equal(l['com.docker.compose.project'], 'proj');
  assert.equal(l['com.docker.compose.service'], 'web');
  assert.equal(l['com.docker.compose.container-number'], '1');
  assert.equal(l['com.docker.compose.oneoff'], 'False');
  assert.equal(l['com.docker.compose.project.working_dir'], p.dir);
  assert.equal(l['com.docker.compose.project.config_files'], `${p.dir}/compose.yaml`);
  assert.equal(l['com.docker.compose.depends_on'], 'init:service_completed_successfully:false,db:service_healthy:false');
  assert.match(l['com.docker.compose.config-hash'], /^[0-9a-f]{64}$/);
  assert.equal(l['com.docker.compose.image'], web.Image);
  assert.ok(web.Config.Env.includes('GREETING=hello'));
  const hash = (await p.compose(['config', '--hash', 'web'])).stdout.trim().split(' ')[1];
  assert.equal(l['com.docker.compose.config-hash'], hash);

  const [vol] = JSON.parse((await d.docker(['volume', 'inspect', 'proj_data'])).stdout);
  assert.equal(vol.Labels['com.docker.compose.volume'], 'data');
  const [net] = JSON.parse((await d.docker(['network', 'inspect', 'proj_default'])).stdout);
  assert.equal(net.Labels['com.docker.compose.network'], 'default');

  // web serves what init wrote, by its service name, from a container on the project network
  const get = await d.docker(['exec', 'proj-db-1', 'wget', '-q', '-O-', 'http://web/index.html']);
  assert.equal(get.stdout.trim(), 'hello-from-init', get.stderr);

  const ps = await p.compose(['ps', '--format', 'json']);
  assert.equal(ps.code, 0, ps.stderr);
  const rows = ps.stdout
    .trim()
    .split('\n')
    .map((x) => JSON.parse(x));
  assert.deepEqual(rows.map((r) => [r.Service, r.State]).sort(), [
    ['db', 'running'],
    ['web', 'running'],
  ]);
  const all = await p.compose(['ps', '-a', '-q']);
  assert.equal(all.stdout.trim().split('\n').length, 3);

  const logs = await p.compose(['logs', 'db']);
  assert.match(logs.stdout, /^db-1 {2}\| db-started$/m);

  const again = await p.compose(['up', '-d']);
  assert.equal(again.code, 0, again.stderr);
  assert.doesNotMatch(again.stderr, /Recreate|Creating/);
  const [web2] = JSON.parse((await d.docker(['inspect', 'proj-web-1'])).stdout);
  assert.equal(web2.Id, web.Id);

  const edited = await p.compose(['up', '-d'], { GREETING: 'hi' });
  assert.equal(edited.code, 0, edited.stderr);
  const [web3] = JSON.parse((await d.docker(['inspect', 'proj-web-1'])).stdout);
  assert.notEqual(web3.Id, web.Id);
  assert.ok(web3.Config.Env.includes('GREETING=hi'));
  const [db3] = JSON.parse((await d.docker(['inspect', 'proj-db-1'])).stdout);
  assert.match(edited.stderr, /Container proj-db-1 {2}Running/);
  assert.equal(db3.State.Running, true);

  const down = await p.compose(['down', '-v', '-t', '1']);
  assert.equal(down.code, 0, down.stderr);
  assert.equal((await d.docker(['ps', '-aq', '--filter', 'label=com.docker.compose.project=proj'])).stdout.trim(), '');
  assert.notEqual((await d.docker(['volume', 'inspect', 'proj_data'])).code, 0);
  assert.notEqual((await d.docker(['network', 'inspect', 'proj_default'])).code, 0);
});
