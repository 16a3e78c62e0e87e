import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { freePort } from '../helpers/daemon.ts';
import { NetDaemon } from './helpers.ts';
import { processGone, until } from '../helpers/wait.ts';

/** Containers on keel networks, driven by the real docker CLI: DNS by name, connect/disconnect, published ports. */
const d = new NetDaemon('keel-netctr');

before(async () => {
  await d.start();
  await d.importBusybox();
});
after(async () => {
  const ids = (await d.docker(['ps', '-aq'])).stdout.trim().split('\n').filter(Boolean);
  if (ids.length) await d.docker(['rm', '-f', ...ids]);
  await d.cleanup();
});

async function ok(args: string[]): Promise<string> {
  const r = await d.docker(args);
  assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}\n${d.log.slice(-3000)}`);
  return r.stdout;
}

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, timeout: 3000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

test('containers on a user network resolve each other by name and alias', async () => {
  await ok(['network', 'create', 'dnsnet']);
  await ok(['run', '-d', '--name', 'srv', '--network', 'dnsnet', '--network-alias', 'db', 'busybox:local', 'sleep', '300']);
  const ping = await d.docker(['run', '--rm', '--network', 'dnsnet', 'busybox:local', 'ping', '-c1', '-W2', 'srv']);
  assert.equal(ping.code, 0, ping.stdout + ping.stderr);
  assert.match(ping.stdout, /1 packets received/);
  // --dns makes the embedded DNS forward to that server; container names still resolve.
  const withDns = await d.docker(['run', '--rm', '--network', 'dnsnet', '--dns', '192.0.2.53', 'busybox:local', 'ping', '-c1', '-W2', 'srv']);
  assert.equal(withDns.code, 0, withDns.stdout + withDns.stderr);
  const alias = await d.docker(['run', '--rm', '--network', 'dnsnet', 'busybox:local', 'ping', '-c1', '-W2', 'db']);
  assert.equal(alias.code, 0, alias.stdout + alias.stderr);
  const [n] = JSON.parse(await ok(['network', 'inspect', 'dnsnet']));
  const eps = Object.values(n.Containers) as { Name: string; IPv4Address: string }[];
  assert.deepEqual(
    eps.map((e) => e.Name),
    ['srv'],
  );
  assert.match(eps[0]!.IPv4Address, new RegExp(`^10\\.${d.octet}\\.\\d+\\.\\d+/24$`));
  const ip = (await ok(['inspect', '-f', '{{.NetworkSettings.Networks.dnsnet.IPAddress}}', 'srv'])).trim();
  assert.equal(`${ip}/24`, eps[0]!.IPv4Address);
  // The default bridge has no embedded DNS (as docker): names do not resolve there.
  const onBridge = await d.docker(['run', '--rm', 'busybox:local', 'ping', '-c1', '-W1', 'srv']);
  assert.notEqual(onBridge.code, 0);

  const rm = await d.docker(['network', 'rm', 'dnsnet']);
  assert.equal(rm.code, 1);
  assert.match(rm.stderr, new RegExp(`error while removing network: network dnsnet id ${n.Id} has active endpoints`));
  await ok(['rm', '-f', 'srv']);
  await ok(['network', 'rm', 'dnsnet']);
});

test('network connect/disconnect on a running container, with --alias and --ip', async () => {
  await ok(['network', 'create', '--subnet', `10.${d.octet}.90.0/24`, 'cnet']);
  await ok(['run', '-d', '--name', 'mover', 'busybox:local', 'sleep', '300']);
  await ok(['network', 'connect', '--alias', 'moved', '--ip', `10.${d.octet}.90.77`, 'cnet', 'mover']);
  const nets = JSON.parse(await ok(['inspect', '-f', '{{json .NetworkSettings.Networks}}', 'mover']));
  assert.deepEqual(Object.keys(nets).sort(), ['bridge', 'cnet']);
  assert.equal(nets.cnet.IPAddress, `10.${d.octet}.90.77`);
  assert.ok(nets.cnet.Aliases.includes('moved'));
  const byAlias = await d.docker(['run', '--rm', '--network', 'cnet', 'busybox:local', 'ping', '-c1', '-W2', 'moved']);
  assert.equal(byAlias.code, 0, byAlias.stdout + byAlias.stderr);
  const again = await d.docker(['network', 'connect', 'cnet', 'mover']);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /endpoint with name mover already exists in network cnet/);

  await ok(['network', 'disconnect', 'cnet', 'mover']);
  const after1 = JSON.parse(await ok(['inspect', '-f', '{{json .NetworkSettings.Networks}}', 'mover']));
  assert.deepEqual(Object.keys(after1), ['bridge']);
  const gone = await d.docker(['run', '--rm', '--network', 'cnet', 'busybox:local', 'ping', '-c1', '-W1', `10.${d.octet}.90.77`]);
  assert.notEqual(gone.code, 0);
  const notConnected = await d.docker(['network', 'disconnect', 'cnet', 'mover']);
  assert.equal(notConnected.code, 1);
  assert.equal((await d.docker(['network', 'disconnect', '-f', 'cnet', 'mover'])).code, 0);
  const noSuch = await d.docker(['network', 'connect', 'cnet', 'nosuchcontainer']);
  assert.equal(noSuch.code, 1);
  assert.match(noSuch.stderr, /No such container: nosuchcontainer/);

  // A created container keeps the connection in its record and joins at start.
  await ok(['create', '--name', 'later', 'busybox:local', 'sleep', '300']);
  await ok(['network', 'connect', '--alias', 'lt', 'cnet', 'later']);
  await ok(['start', 'later']);
  const lt = await d.docker(['run', '--rm', '--network', 'cnet', 'busybox:local', 'ping', '-c1', '-W2', 'lt']);
  assert.equal(lt.code, 0, lt.stdout + lt.stderr);
  // Disconnected from every network before start: lo only, and connect still works once it runs.
  await ok(['create', '--name', 'bare', 'busybox:local', 'sleep', '300']);
  await ok(['network', 'disconnect', 'bridge', 'bare']);
  await ok(['start', 'bare']);
  assert.equal((await ok(['inspect', '-f', '{{json .NetworkSettings.Networks}}', 'bare'])).trim(), '{}');
  await ok(['network', 'connect', '--alias', 'bb', 'cnet', 'bare']);
  const bb = await d.docker(['run', '--rm', '--network', 'cnet', 'busybox:local', 'ping', '-c1', '-W2', 'bb']);
  assert.equal(bb.code, 0, bb.stdout + bb.stderr);
  await ok(['rm', '-f', 'mover', 'later', 'bare']);
  await ok(['network', 'rm', 'cnet']);
});

test('-p 127.0.0.1:PORT:80 reaches busybox httpd from the host', async () => {
  const port = await freePort();
  await ok(['run', '-d', '--name', 'web', '-p', `127.0.0.1:${port}:80`, 'busybox:local', 'httpd', '-f', '-p', '80', '-h', '/etc']);
  const ports = await ok(['port', 'web']);
  assert.equal(ports.trim(), `80/tcp -> 127.0.0.1:${port}`);
  let res: { status: number; body: string } | undefined;
  for (let i = 0; i < 50 && !res; i++) {
    res = await get(port, '/passwd').catch(() => undefined);
    if (!res) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(res, 'httpd never answered');
  assert.equal(res.status, 200);
  assert.match(res.body, /^root:x:0:0:/);
  await ok(['rm', '-f', 'web']);
  await assert.rejects(get(port, '/passwd'));
});

test('a --rm container frees its published port by the time docker run returns', async () => {
  const port = await freePort();
  for (let i = 0; i < 3; i++) await ok(['run', '--rm', '-p', `127.0.0.1:${port}:80`, 'busybox:local', 'true']);
});

test('events: network connect/disconnect for docker network connect and for container start/stop', async () => {
  const since = Math.floor(Date.now() / 1000) - 1;
  await ok(['network', 'create', 'evnet']);
  const id = (await ok(['run', '-d', '--name', 'ev', '--network', 'evnet', 'busybox:local', 'sleep', '300'])).trim();
  await ok(['rm', '-f', 'ev']);
  await ok(['network', 'rm', 'evnet']);
  const ev = await d.docker([
    'events',
    '--since',
    String(since),
    '--until',
    String(Math.ceil(Date.now() / 1000) + 1),
    '--filter',
    'type=network',
    '--filter',
    'network=evnet',
    '--format',
    '{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.container}} {{.Actor.Attributes.type}}',
  ]);
  assert.equal(ev.code, 0, ev.stderr);
  assert.deepEqual(ev.stdout.trim().split('\n'), [
    'create evnet <no value> bridge',
    `connect evnet ${id} bridge`,
    `disconnect evnet ${id} bridge`,
    'destroy evnet <no value> bridge',
  ]);
});

test('daemon restart: running containers keep their network and DNS; gone ones release theirs', async () => {
  await ok(['network', 'create', 'rnet']);
  await ok(['run', '-d', '--name', 'stays', '--network', 'rnet', '-p', '127.0.0.1::80', 'busybox:local', 'httpd', '-f', '-p', '80', '-h', '/etc']);
  await ok(['run', '-d', '--name', 'dies', '--network', 'rnet', 'busybox:local', 'sleep', '1']);
  const port = Number((await ok(['port', 'stays', '80'])).trim().split(':').pop());
  const diesPid = Number((await ok(['inspect', '-f', '{{.State.Pid}}', 'dies'])).trim());
  await d.kill9();
  await until('"dies" to exit while the daemon is down', () => !diesPid || processGone(diesPid));
  await d.start();
  const [n] = JSON.parse(await ok(['network', 'inspect', 'rnet']));
  assert.deepEqual(
    (Object.values(n.Containers) as { Name: string }[]).map((c) => c.Name),
    ['stays'],
  );
  const ping = await d.docker(['run', '--rm', '--network', 'rnet', 'busybox:local', 'ping', '-c1', '-W2', 'stays']);
  assert.equal(ping.code, 0, ping.stdout + ping.stderr);
  const res = await get(port, '/passwd');
  assert.equal(res.status, 200);
  await ok(['rm', '-f', 'stays', 'dies']);
  await ok(['network', 'rm', 'rnet']);
});

test('keel CLI: network connect/disconnect', async () => {
  await ok(['network', 'create', 'knet']);
  await ok(['run', '-d', '--name', 'kc', 'busybox:local', 'sleep', '300']);
  const c = await d.keel(['network', 'connect', '--alias', 'kca', 'knet', 'kc']);
  assert.equal(c.code, 0, c.stderr);
  const ping = await d.docker(['run', '--rm', '--network', 'knet', 'busybox:local', 'ping', '-c1', '-W2', 'kca']);
  assert.equal(ping.code, 0, ping.stdout + ping.stderr);
  const rm = await d.keel(['network', 'rm', 'knet']);
  assert.equal(rm.code, 1);
  assert.match(rm.stderr, /^Error response from daemon: error while removing network: network knet id [0-9a-f]{64} has active endpoints\n$/);
  const dc = await d.keel(['network', 'disconnect', 'knet', 'kc']);
  assert.equal(dc.code, 0, dc.stderr);
  const again = await d.keel(['network', 'disconnect', 'knet', 'kc']);
  assert.equal(again.code, 1);
  await ok(['rm', '-f', 'kc']);
  assert.equal((await d.keel(['network', 'rm', 'knet'])).code, 0);
});
