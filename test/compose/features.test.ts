import assert from 'node:assert/strict';
import { test } from 'node:test';
import { busyboxDaemon, project } from './helpers.ts';

/** Service keys reach the containers: networks with aliases and fixed addresses, secrets and configs, env_file, tmpfs, and the rest of the container settings. */
const d = busyboxDaemon('keel-compose-feat');

test('networks, aliases, ipv4_address, secrets, configs, env_file, settings', async () => {
  const sub = `10.${d.octet}.77`;
  const p = project(d, 'feat', {
    'compose.yaml': `services:
  api:
    image: busybox:local
    command: ["sleep", "300"]
    hostname: apihost
    working_dir: /tmp
    user: "65534"
    env_file: [api.env]
    environment: {FROM_COMPOSE: "yes"}
    labels: {team: core}
    tmpfs: [/scratch]
    read_only: true
    init: true
    extra_hosts: ["db.example:10.1.2.3"]
    restart: unless-stopped
    stop_grace_period: 2s
    networks:
      front: {aliases: [gateway], ipv4_address: ${sub}.10}
      back: {}
    secrets: [token]
    configs: [{source: settings, target: /etc/settings.conf}]
  client:
    image: busybox:local
    command: ["sleep", "300"]
    networks: [front]
networks:
  front:
    ipam: {config: [{subnet: ${sub}.0/24}]}
  back: {internal: true}
secrets:
  token: {file: ./token.txt}
configs:
  settings: {file: ./settings.conf}
`,
    'api.env': 'FROM_FILE=1\nFROM_COMPOSE=overridden-by-environment\n',
    'token.txt': 's3cret',
    'settings.conf': 'level=debug\n',
  });
  const up = await p.compose(['up', '-d']);
  assert.equal(up.code, 0, `${up.stderr}\n${d.log.slice(-2000)}`);
  const [api] = JSON.parse((await d.docker(['inspect', 'feat-api-1'])).stdout);
  assert.equal(api.Config.Hostname, 'apihost');
  assert.equal(api.Config.WorkingDir, '/tmp');
  assert.equal(api.Config.User, '65534');
  assert.ok(api.Config.Env.includes('FROM_FILE=1'));
  assert.ok(api.Config.Env.includes('FROM_COMPOSE=yes'));
  assert.equal(api.Config.Labels.team, 'core');
  assert.equal(api.HostConfig.ReadonlyRootfs, true);
  assert.equal(api.HostConfig.Init, true);
  assert.deepEqual(api.HostConfig.ExtraHosts, ['db.example:10.1.2.3']);
  assert.equal(api.HostConfig.RestartPolicy.Name, 'unless-stopped');
  assert.equal(api.Config.StopTimeout, 2);
  assert.deepEqual(Object.keys(api.NetworkSettings.Networks).sort(), ['feat_back', 'feat_front']);
  assert.equal(api.NetworkSettings.Networks.feat_front.IPAddress, `${sub}.10`);

  const sh = (c: string, cmd: string) => d.docker(['exec', c, 'sh', '-c', cmd]);
  assert.equal((await sh('feat-api-1', 'cat /run/secrets/token')).stdout, 's3cret');
  assert.equal((await sh('feat-api-1', 'cat /etc/settings.conf')).stdout, 'level=debug\n');
  assert.notEqual((await sh('feat-api-1', 'echo x > /run/secrets/token')).code, 0);
  assert.equal((await d.docker(['exec', '-u', '0', 'feat-api-1', 'sh', '-c', 'touch /scratch/ok && echo ok'])).stdout.trim(), 'ok');
  assert.equal((await sh('feat-api-1', 'grep db.example /etc/hosts')).stdout.trim().split(/\s+/)[0], '10.1.2.3');
  // the client resolves the service name and the alias to the fixed address
  for (const name of ['api', 'gateway']) {
    const r = await sh('feat-client-1', `nslookup ${name} 2>&1 | tail -n 3`);
    assert.match(r.stdout, new RegExp(`${sub.replace(/\./g, '\\.')}\\.10`), `${name}: ${r.stdout}${r.stderr}`);
  }
  assert.equal((await p.compose(['down', '-t', '1'])).code, 0);
});

test('config prints the normalized project; --services, --volumes, --hash', async () => {
  const p = project(d, 'cfg', {
    'compose.yaml':
      'services:\n  web:\n    image: busybox:local\n    ports: ["8080:80"]\n    volumes: ["data:/d"]\n  db:\n    image: busybox:local\nvolumes:\n  data: {}\n',
  });
  const cfg = await p.compose(['config']);
  assert.equal(cfg.code, 0, cfg.stderr);
  assert.match(cfg.stdout, /^name: cfg$/m);
  assert.match(cfg.stdout, /ports:\n {6}- mode: ingress\n {8}target: 80\n {8}published: "8080"\n {8}protocol: tcp/);
  assert.match(cfg.stdout, /volumes:\n {2}data:\n {4}name: cfg_data/);
  assert.equal((await p.compose(['config', '--services'])).stdout, 'web\ndb\n');
  assert.equal((await p.compose(['config', '--volumes'])).stdout, 'data\n');
  const hashes = (await p.compose(['config', '--hash', '*'])).stdout.trim().split('\n');
  assert.deepEqual(
    hashes.map((h) => h.split(' ')[0]),
    ['db', 'web'],
  );
  assert.ok(hashes.every((h) => /^\w+ [0-9a-f]{64}$/.test(h)));
  const json = JSON.parse((await p.compose(['config', '--format', 'json'])).stdout);
  assert.equal(json.services.web.image, 'busybox:local');
});

test('logs --tail and -f', async () => {
  const p = project(d, 'logs', {
    'compose.yaml':
      'services:\n  talk:\n    image: busybox:local\n    command: ["sh", "-c", "echo one; echo two; echo three; sleep 4; echo four; sleep 300"]\n    stop_signal: SIGKILL\n',
  });
  assert.equal((await p.compose(['up', '-d'])).code, 0);
  const tail = await p.compose(['logs', '--tail', '1', '--no-log-prefix']);
  assert.equal(tail.stdout, 'three\n');
  const { spawn } = await import('node:child_process');
  const { keelBin } = await import('../helpers/daemon.ts');
  const child = spawn(process.execPath, [keelBin, '-H', `unix://${d.socket}`, 'compose', 'logs', '-f'], { cwd: p.dir, env: { ...process.env, NO_COLOR: '1' } });
  let out = '';
  child.stdout.on('data', (b) => (out += b));
  for (let i = 0; i < 150 && !out.includes('four'); i++) await new Promise((r) => setTimeout(r, 100));
  child.kill('SIGINT');
  await new Promise((r) => child.on('close', r));
  assert.match(out, /talk-1 {2}\| one\n[\s\S]*talk-1 {2}\| four\n/);
  assert.equal((await p.compose(['down'])).code, 0);
});
