import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, test } from 'node:test';
import { keelBin, run, TestDaemon } from '../helpers/daemon.ts';

/** The daemon's config file (dockerd's daemon.json keys) as the daemon reads it at start. */
const daemons: TestDaemon[] = [];
after(async () => {
  for (const d of daemons) await d.cleanup();
});

function daemon(config: object): { d: TestDaemon; file: string } {
  const d = new TestDaemon('keel-dcfg');
  daemons.push(d);
  const file = path.join(d.dir, 'custom.json');
  fs.writeFileSync(file, JSON.stringify(config));
  return { d, file };
}

test('default-pids-limit and default-ulimits reach containers that set none; their own flags win', async () => {
  const { d, file } = daemon({
    'default-pids-limit': 77,
    'default-ulimits': { nofile: { Name: 'nofile', Soft: 1000, Hard: 1000 } },
    'log-driver': 'json-file',
    'log-opts': { 'max-size': '1m' },
  });
  await d.start(['--config-file', file]);
  await d.importBusybox();
  const show = ['sh', '-c', 'cat /sys/fs/cgroup/pids/pids.max; ulimit -n'];
  const r = await d.docker(['run', '--rm', 'busybox:local', ...show]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '77\n1000\n');
  const own = await d.docker(['run', '--rm', '--pids-limit', '50', '--ulimit', 'nofile=500:500', 'busybox:local', ...show]);
  assert.equal(own.code, 0, own.stderr);
  assert.equal(own.stdout, '50\n500\n');
  const unlimited = await d.docker(['run', '--rm', '--pids-limit', '-1', 'busybox:local', 'cat', '/sys/fs/cgroup/pids/pids.max']);
  assert.equal(unlimited.stdout, 'max\n');
});

test('registry-mirrors and insecure-registries show in docker info as dockerd reports them', async () => {
  const { d, file } = daemon({ 'registry-mirrors': ['https://mirror.example.com'], 'insecure-registries': ['reg.lan:5000'] });
  await d.start(['--config-file', file]);
  const info = await new Promise<{ RegistryConfig: Record<string, unknown> }>((resolve, reject) => {
    http
      .get({ socketPath: d.socket, path: '/v1.41/info' }, (res) => {
        let body = '';
        res.on('data', (b) => (body += b));
        res.on('end', () => resolve(JSON.parse(body)));
      })
      .on('error', reject);
  });
  assert.deepEqual(info.RegistryConfig, {
    AllowNondistributableArtifactsCIDRs: [],
    AllowNondistributableArtifactsHostnames: [],
    InsecureRegistryCIDRs: ['127.0.0.0/8'],
    IndexConfigs: {
      'docker.io': { Name: 'docker.io', Mirrors: ['https://mirror.example.com/'], Secure: true, Official: true },
      'reg.lan:5000': { Name: 'reg.lan:5000', Mirrors: [], Secure: false, Official: false },
    },
    Mirrors: ['https://mirror.example.com/'],
  });
  // The docker CLI's own rendering of it.
  const r = await d.docker(['info']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Insecure Registries:\n\s+reg\.lan:5000\n\s+127\.0\.0\.0\/8\n/);
  assert.match(r.stdout, /Registry Mirrors:\n\s+https:\/\/mirror\.example\.com\/\n/);
});

async function startFails(args: string[]): Promise<string> {
  const r = await run([process.execPath, keelBin, 'daemon', ...args], { timeoutMs: 30_000 });
  assert.notEqual(r.code, 0);
  return r.stderr;
}

test('unknown keys, bad values and a setting given twice stop the daemon at start, naming the key', async () => {
  const { d, file } = daemon({ 'default-pids-limit': 10, 'log-levle': 'debug' });
  const base = ['--data-root', d.dataRoot, '--exec-root', d.execRoot, '--config-file', file];
  assert.match(await startFails(base), /don't match any configuration option: log-levle/);
  fs.writeFileSync(file, JSON.stringify({ 'default-ulimits': { nofile: { Soft: 'x', Hard: 1 } } }));
  assert.match(await startFails(base), /invalid value for "default-ulimits" in .*custom\.json/);
  fs.writeFileSync(file, JSON.stringify({ bip: '300.1.1.1/24' }));
  assert.match(await startFails(base), /invalid "bip" \(--bip\) "300\.1\.1\.1\/24"/);
  fs.writeFileSync(file, JSON.stringify({ 'data-root': d.dataRoot }));
  assert.match(await startFails(base), /specified both as a flag and in the configuration file: data-root: \(from flag: ".*", from file: ".*"\)/);
  assert.match(await startFails(['--config-file', path.join(d.dir, 'missing.json')]), /missing\.json does not exist/);
  // Nothing was started: no socket, no state.
  assert.equal(fs.existsSync(d.socket), false);
  assert.equal(fs.existsSync(d.dataRoot), false);
});

test('--help documents the config file and the new settings', async () => {
  const r = await run([process.execPath, keelBin, 'daemon', '--help']);
  for (const f of [
    '--config-file',
    '--default-pids-limit',
    '--default-ulimit',
    '--log-driver',
    '--registry-mirror',
    '--insecure-registry',
    '--max-layer-size',
    '--max-image-size',
  ])
    assert.ok(r.stdout.includes(f), f);
});
