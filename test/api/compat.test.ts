/**
 * What real clients probe and expect to work as with dockerd: plugins,
 * swarm and search without those features, options keel cannot honour
 * refused at create, and `docker load` of a legacy (v1) `docker save`.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { run, TestDaemon } from '../helpers/daemon.ts';

const d = new TestDaemon('keel-compat');
before(async () => {
  await d.start();
  await d.importBusybox('bb:1');
});
after(() => d.cleanup());

function postJson(p: string, body: unknown): Promise<{ status: number; body: string }> {
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const s = net.connect(d.socket, () =>
      s.write(
        `POST ${p} HTTP/1.1\r\nHost: keel\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(data)}\r\n\r\n${data}`,
      ),
    );
    let got = '';
    s.on('data', (b) => (got += b));
    s.on('error', reject);
    s.on('end', () => resolve({ status: Number(got.split(' ')[1]), body: got.slice(got.indexOf('\r\n\r\n') + 4) }));
  });
}

function fetchRaw(method: string, p: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(d.socket, () => s.write(`${method} ${p} HTTP/1.1\r\nHost: keel\r\nConnection: close\r\n\r\n`));
    let got = '';
    s.on('data', (b) => (got += b));
    s.on('error', reject);
    s.on('end', () => {
      const [head, body = ''] = got.split('\r\n\r\n');
      resolve({ status: Number(head!.split(' ')[1]), type: /content-type: ([^\r\n]+)/i.exec(head!)?.[1] ?? '', body });
    });
  });
}

test('plugins, swarm and search answer as dockerd does without them', async () => {
  const plugins = await fetchRaw('GET', '/v1.41/plugins');
  assert.equal(plugins.status, 200);
  assert.deepEqual(JSON.parse(plugins.body), []);
  const insp = await fetchRaw('GET', '/v1.41/plugins/x/json');
  assert.equal(insp.status, 404);
  for (const p of ['/v1.41/swarm', '/v1.41/nodes', '/v1.41/services', '/v1.41/tasks', '/v1.41/secrets', '/v1.41/configs', '/v1.41/services/abc']) {
    const r = await fetchRaw('GET', p);
    assert.equal(r.status, 503, p);
    assert.equal(r.type, 'application/json');
    assert.deepEqual(JSON.parse(r.body), {
      message: 'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.',
    });
  }
  const ls = await d.docker(['service', 'ls']);
  assert.notEqual(ls.code, 0);
  assert.match(ls.stderr, /not a swarm manager/);
  // No index is reachable from these machines: dockerd answers 500 naming the request that failed.
  const s = await fetchRaw('GET', '/v1.41/images/search?term=busybox&limit=5');
  assert.equal(s.status, 500);
  assert.match(JSON.parse(s.body).message, /^Get "https:\/\/index\.docker\.io\/v1\/search\?q=busybox&n=5": /);
  const info = await d.docker(['info', '--format', '{{json .Plugins}} {{.Swarm.LocalNodeState}}']);
  assert.equal(info.code, 0, info.stderr);
  assert.match(info.stdout, /inactive/);
});

test('security options and user namespaces keel cannot honour are refused at create', async () => {
  for (const [flags, why] of [
    [['--security-opt', 'apparmor=docker-default'], /AppArmor/],
    [['--security-opt', 'label=type:svirt_t'], /SELinux/],
  ] as const) {
    const r = await d.docker(['create', ...flags, 'bb:1', 'true']);
    assert.notEqual(r.code, 0, flags.join(' '));
    assert.match(r.stderr, why);
  }
  // The docker CLI checks --userns itself; other clients send any mode.
  const userns = await postJson('/v1.41/containers/create', { Image: 'bb:1', Cmd: ['true'], HostConfig: { UsernsMode: 'private' } });
  assert.equal(userns.status, 400);
  assert.match(JSON.parse(userns.body).message, /user namespace/);
  for (const flags of [
    ['--security-opt', 'apparmor=unconfined'],
    ['--security-opt', 'label=disable'],
    ['--userns', 'host'],
  ]) {
    const r = await d.docker(['run', '--rm', ...flags, 'bb:1', 'true']);
    assert.equal(r.code, 0, `${flags.join(' ')}: ${r.stderr}`);
  }
});

test('docker load of a legacy v1 archive (repositories + <id>/json + <id>/layer.tar)', async () => {
  const dir = path.join(d.dir, 'legacy');
  const base = path.join(dir, 'base');
  fs.mkdirSync(base, { recursive: true });
  // Layer 1: the busybox rootfs the helper made; layer 2: one file, and a whiteout of /etc/group.
  const l1 = fs.readFileSync(path.join(d.dir, 'busybox-rootfs.tar'));
  const l2dir = path.join(dir, 'l2');
  fs.mkdirSync(path.join(l2dir, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(l2dir, 'marker'), 'legacy v1\n');
  fs.writeFileSync(path.join(l2dir, 'etc/.wh.group'), '');
  const l2tar = path.join(dir, 'l2.tar');
  assert.equal((await run(['tar', '-C', l2dir, '-cf', l2tar, 'marker', 'etc'])).code, 0);
  const l2 = fs.readFileSync(l2tar);
  const id1 = createHash('sha256').update('layer-one').digest('hex');
  const id2 = createHash('sha256').update('layer-two').digest('hex');
  const v1 = (id: string, parent: string | undefined, cmd: string[]) =>
    JSON.stringify({
      id,
      ...(parent ? { parent } : {}),
      created: '2015-10-01T00:00:00Z',
      container_config: { Cmd: cmd },
      docker_version: '1.8.2',
      config: { Env: ['PATH=/bin'], Cmd: ['cat', '/marker'] },
      architecture: 'amd64',
      os: 'linux',
      Size: 0,
    });
  for (const [id, parent, layer, cmd] of [
    [id1, undefined, l1, ['/bin/sh', '-c', '#(nop) ADD file:rootfs in /']],
    [id2, id1, l2, ['/bin/sh', '-c', 'echo legacy > /marker']],
  ] as const) {
    fs.mkdirSync(path.join(base, id));
    fs.writeFileSync(path.join(base, id, 'VERSION'), '1.0');
    fs.writeFileSync(path.join(base, id, 'json'), v1(id, parent, [...cmd]));
    fs.writeFileSync(path.join(base, id, 'layer.tar'), layer);
  }
  fs.writeFileSync(path.join(base, 'repositories'), JSON.stringify({ legacy: { v1: id2 } }));
  const tar = path.join(dir, 'legacy.tar');
  assert.equal((await run(['tar', '-C', base, '-cf', tar, 'repositories', id1, id2])).code, 0);
  const r = await d.docker(['load', '-i', tar]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Loaded image: legacy:v1/);
  const out = await d.docker(['run', '--rm', 'legacy:v1']);
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stdout, 'legacy v1\n');
  const gone = await d.docker(['run', '--rm', 'legacy:v1', 'ls', '/etc']);
  assert.doesNotMatch(gone.stdout, /group/);
  const hist = await d.docker(['history', '--no-trunc', '--format', '{{.CreatedBy}}', 'legacy:v1']);
  assert.match(hist.stdout, /echo legacy > \/marker/);
});
