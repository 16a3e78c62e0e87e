import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { freePort, run } from '../helpers/daemon.ts';
import { NetDaemon } from './helpers.ts';

/**
 * Network mode container:<name|id> (`--network container:A`), driven by the
 * real docker CLI and keel's own: the joiner uses A's network namespace and
 * files, gets nothing of its own, and never takes A's network down with it.
 */
const d = new NetDaemon('keel-netjoin');

before(async () => {
  await d.start();
  await d.importBusybox();
});
after(async () => {
  await d.cleanup();
});

async function ok(args: string[]): Promise<string> {
  const r = await d.docker(args);
  assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}\n${d.log.slice(-3000)}`);
  return r.stdout;
}

const inspect = async (ref: string) => JSON.parse(await ok(['inspect', ref]))[0];

function get(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', timeout: 3000, agent: false }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`status ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** Retries until the published httpd answers (it starts after `docker run -d` returns). */
async function getSoon(port: number): Promise<string> {
  let last: unknown;
  for (let i = 0; i < 50; i++) {
    try {
      return await get(port);
    } catch (e) {
      last = e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw last;
}

/** A raw Engine API call on the daemon's socket. */
function api(method: string, p: string, body?: unknown): Promise<{ status: number; json: { message?: string; Id?: string } }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: d.socket, method, path: p, headers: { 'Content-Type': 'application/json' } }, (res) => {
      let b = '';
      res.on('data', (c) => (b += c));
      res.on('end', () => resolve({ status: res.statusCode!, json: b ? JSON.parse(b) : {} }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/**
 * What this daemon's network layer holds on the host: veths, leases, sandboxes, netns pins, iptables lines.
 * The spare sandbox (one pin and one veth made ahead for the next default-bridge container) is not
 * counted: it comes and goes with other containers. It is the only pin no sandbox owns, so it is
 * found by that, once its veth exists too; there is never more than one.
 */
async function networkFootprint() {
  const json = (f: string) =>
    fs.existsSync(path.join(d.execRoot, 'network', f)) ? JSON.parse(fs.readFileSync(path.join(d.execRoot, 'network', f), 'utf8')) : {};
  for (let i = 0; ; i++) {
    const linkNames = (await run(['ip', '-o', 'link'])).stdout
      .split('\n')
      .filter((l) => l.includes(`: ${d.prefix}`))
      .map((l) => /^\d+: ([^@:]+)/.exec(l)![1]!);
    // Before the first container the network layer has written nothing yet.
    const leases = Object.values((json('leases.json').leases ?? {}) as Record<string, Record<string, string>>);
    const sandboxes = Object.values(
      (json('state.json').sandboxes ?? {}) as Record<string, { NetnsPath: string; Endpoints: Record<string, { HostIfName: string }> }>,
    );
    const pinDir = path.join(d.execRoot, 'netns');
    const pins = fs.existsSync(pinDir) ? fs.readdirSync(pinDir) : [];
    const ownedPins = new Set(sandboxes.map((s) => path.basename(s.NetnsPath)));
    const ownedLinks = new Set(sandboxes.flatMap((s) => Object.values(s.Endpoints).map((e) => e.HostIfName)));
    const sparePins = pins.filter((p) => !ownedPins.has(p)).length;
    const spareLinks = linkNames.filter((l) => !ownedLinks.has(l) && fs.existsSync(`/sys/class/net/${l}/master`)).length;
    if ((sparePins !== spareLinks || sparePins > 1) && i < 50) {
      await new Promise((r) => setTimeout(r, 100));
      continue;
    }
    assert.ok(sparePins <= 1, `${sparePins} netns pins that no sandbox owns`);
    const rules = (await run(['iptables-save'])).stdout.split('\n').filter((l) => l.includes(d.prefix.toUpperCase())).length;
    return {
      links: linkNames.length - spareLinks,
      leases: leases.reduce((n, l) => n + Object.keys(l).length, 0),
      sandboxes: sandboxes.length,
      pins: pins.length - sparePins,
      rules,
    };
  }
}

/** A's httpd serves "hello from A" at / on 8080, published on a host port. */
async function startServer(name: string): Promise<{ id: string; port: number }> {
  const port = await freePort();
  const id = (
    await ok([
      'run',
      '-d',
      '--name',
      name,
      '-p',
      `127.0.0.1:${port}:8080`,
      'busybox:local',
      'sh',
      '-c',
      'mkdir -p /www && echo "hello from A" > /www/index.html && exec httpd -f -p 8080 -h /www',
    ])
  ).trim();
  assert.equal(await getSoon(port), 'hello from A\n');
  return { id, port };
}

test('a joiner reaches A on localhost, has its hostname and files, and nothing of its own', async () => {
  const a = await startServer('A');
  const aInfo = await inspect('A');
  const aIp = aInfo.NetworkSettings.Networks.bridge.IPAddress as string;
  assert.match(aIp, new RegExp(`^10\\.${d.octet}\\.0\\.\\d+$`));
  const base = await networkFootprint();

  const wget = await d.docker(['run', '--rm', '--network', 'container:A', 'busybox:local', 'wget', '-qO-', 'http://127.0.0.1:8080/']);
  assert.equal(wget.code, 0, wget.stderr);
  assert.equal(wget.stdout, 'hello from A\n');
  // The same interfaces as A: its address, no veth of its own.
  const addrs = await ok(['run', '--rm', '--network', 'container:A', 'busybox:local', 'ip', '-o', '-4', 'addr']);
  assert.match(addrs, new RegExp(`inet ${aIp.replace(/\./g, '\\.')}/`));
  // keel's own CLI takes the same flag.
  const k = await d.keel(['run', '--rm', '--network', 'container:A', 'busybox:local', 'wget', '-qO-', 'http://127.0.0.1:8080/']);
  assert.equal(k.code, 0, k.stderr);
  assert.equal(k.stdout, 'hello from A\n');

  const hostnameA = (await ok(['exec', 'A', 'hostname'])).trim();
  assert.equal(hostnameA, aInfo.Config.Hostname);
  assert.equal((await ok(['run', '--rm', '--network', 'container:A', 'busybox:local', 'hostname'])).trim(), hostnameA);
  for (const f of ['/etc/hosts', '/etc/resolv.conf', '/etc/hostname']) {
    assert.equal(await ok(['run', '--rm', '--network', `container:${a.id.slice(0, 12)}`, 'busybox:local', 'cat', f]), await ok(['exec', 'A', 'cat', f]), f);
  }

  const jid = (await ok(['run', '-d', '--name', 'J', '--network', 'container:A', 'busybox:local', 'sleep', '300'])).trim();
  const j = await inspect('J');
  assert.equal(j.HostConfig.NetworkMode, `container:${a.id}`);
  assert.deepEqual(j.NetworkSettings.Networks, {});
  assert.equal(j.NetworkSettings.IPAddress, '');
  assert.equal(j.NetworkSettings.SandboxKey, '');
  assert.equal(j.Config.Hostname, hostnameA);
  assert.equal(j.HostsPath, aInfo.HostsPath);
  assert.equal(j.ResolvConfPath, aInfo.ResolvConfPath);
  assert.equal(j.HostnamePath, aInfo.HostnamePath);
  const ps = (await ok(['ps', '--no-trunc', '--format', '{{.ID}} [{{.Networks}}]'])).trim().split('\n');
  assert.ok(ps.includes(`${jid} []`), ps.join('\n'));
  assert.deepEqual(await networkFootprint(), base, 'a running joiner holds no veth, lease, sandbox, pin or rule');

  const connect = await d.docker(['network', 'connect', 'bridge', 'J']);
  assert.equal(connect.code, 1);
  assert.match(connect.stderr, /container sharing network namespace with another container or host cannot be connected to any other network/);

  await ok(['stop', '-t', '1', 'J']);
  await ok(['rm', 'J']);
  assert.equal(await get(a.port), 'hello from A\n', 'A still serves on its published port');
  assert.equal((await inspect('A')).NetworkSettings.Networks.bridge.IPAddress, aIp);
  const ping = await d.docker(['run', '--rm', 'busybox:local', 'wget', '-qO-', `http://${aIp}:8080/`]);
  assert.equal(ping.code, 0, ping.stderr);
  assert.deepEqual(await networkFootprint(), base, 'the joiners left nothing behind');
  await ok(['rm', '-f', 'A']);
});

test('options that would give a joiner a network of its own are refused at create', async () => {
  await ok(['run', '-d', '--name', 'B', 'busybox:local', 'sleep', '300']);
  const count = async () => (await ok(['ps', '-aq'])).trim().split('\n').length;
  const before = await count();
  const refused: Array<[string[], RegExp]> = [
    [['--hostname', 'h'], /conflicting options: hostname and the network mode/],
    [['-p', '8080:80'], /conflicting options: port publishing and the container type network mode/],
    [['-P'], /conflicting options: port publishing and the container type network mode/],
    [['--expose', '80'], /conflicting options: port exposing and the container type network mode/],
    [['--dns', '192.0.2.53'], /conflicting options: dns and the network mode/],
    [['--add-host', 'db:192.0.2.9'], /conflicting options: custom host-to-IP mapping and the network mode/],
    // docker CLI 28 refuses this one itself against API 1.41 ("specify mac-address per network").
    [['--mac-address', '02:42:ac:11:00:09'], /mac-address/],
    [['--link', 'B:b'], /conflicting options: container type network can't be used with links/],
    // The docker CLI refuses this one itself; the API refuses it too (below).
    [['--network-alias', 'x'], /network-scoped alias/],
  ];
  for (const [flags, msg] of refused) {
    const r = await d.docker(['run', '--rm', '--network', 'container:B', ...flags, 'busybox:local', 'true']);
    assert.equal(r.code, 125, `${flags.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, msg, flags.join(' '));
    const k = await d.keel(['run', '--rm', '--network', 'container:B', ...flags, 'busybox:local', 'true']);
    assert.notEqual(k.code, 0, `keel ${flags.join(' ')}`);
    assert.match(k.stderr, msg, `keel ${flags.join(' ')}`);
  }
  assert.equal(await count(), before, 'no container was created');

  // Untrusted API input: an empty or malformed reference is a 400, aliases and addresses too.
  const create = (mode: string, extra: Record<string, unknown> = {}) =>
    api('POST', '/v1.41/containers/create', { Image: 'busybox:local', Cmd: ['true'], HostConfig: { NetworkMode: mode }, ...extra });
  assert.deepEqual(await create('container:'), { status: 400, json: { message: 'Invalid network mode: invalid container format container:<name|id>' } });
  for (const bad of ['container:a b', 'container:../B', 'container:B\n']) {
    const r = await create(bad);
    assert.equal(r.status, 400, bad);
    assert.match(r.json.message!, /is not a container name or ID/);
  }
  assert.deepEqual(await create('container:B', { MacAddress: '02:42:ac:11:00:09' }), {
    status: 400,
    json: { message: 'conflicting options: mac-address and the network mode' },
  });
  const alias = await create('container:B', { NetworkingConfig: { EndpointsConfig: { 'container:B': { Aliases: ['x'] } } } });
  assert.deepEqual(alias, { status: 400, json: { message: 'network-scoped alias is supported only for containers in user defined networks' } });
  assert.equal(await count(), before);
  await ok(['rm', '-f', 'B']);
});

test('the joined container must exist and run when the joiner starts (404, 409)', async () => {
  const stoppedId = (await ok(['create', '--name', 'idle', 'busybox:local', 'true'])).trim();
  const r = await d.docker(['run', '--rm', '--network', 'container:idle', 'busybox:local', 'true']);
  assert.equal(r.code, 125);
  assert.match(r.stderr, new RegExp(`cannot join network of a non running container: ${stoppedId}`));
  const missing = await d.docker(['run', '--rm', '--network', 'container:nosuch', 'busybox:local', 'true']);
  assert.equal(missing.code, 125);
  assert.match(missing.stderr, /No such container: nosuch/);

  // Over the API: create accepts what dockerd accepts; start answers 409 and 404.
  const j = await api('POST', '/v1.41/containers/create?name=waiter', { Image: 'busybox:local', Cmd: ['true'], HostConfig: { NetworkMode: 'container:idle' } });
  assert.equal(j.status, 201);
  assert.deepEqual(await api('POST', `/v1.41/containers/${j.json.Id}/start`), {
    status: 409,
    json: { message: `cannot join network of a non running container: ${stoppedId}` },
  });
  const m = await api('POST', '/v1.41/containers/create?name=orphan', {
    Image: 'busybox:local',
    Cmd: ['true'],
    HostConfig: { NetworkMode: 'container:nosuch' },
  });
  assert.equal(m.status, 201);
  assert.deepEqual(await api('POST', `/v1.41/containers/${m.json.Id}/start`), { status: 404, json: { message: 'No such container: nosuch' } });
  // Once the target runs, the same joiner starts.
  await ok(['start', 'idle']);
  await ok(['rm', '-f', 'idle', 'waiter', 'orphan']);
});

test('the target restarts, the daemon is killed, the target is removed: the joiner carries on and nothing leaks', async () => {
  const base = await networkFootprint();
  const a = await startServer('T');
  await ok(['run', '-d', '--name', 'side', '--network', 'container:T', 'busybox:local', 'sleep', '300']);

  // Restarting the target while a joiner holds its old namespace: the target gets a fresh network.
  await ok(['restart', '-t', '1', 'T']);
  assert.equal(await getSoon(a.port), 'hello from A\n');
  assert.equal((await inspect('side')).State.Running, true);
  // The joiner is left with the old namespace, emptied of the target's veth (as with dockerd).
  assert.deepEqual(
    (await ok(['exec', 'side', 'ip', '-o', 'link']))
      .trim()
      .split('\n')
      .map((l) => l.split(':')[1]!.trim()),
    ['lo'],
  );
  await ok(['rm', '-f', 'side']);

  // A joiner that runs through a daemon crash is still known and can be stopped.
  const sideId = (await ok(['run', '-d', '--name', 'side2', '--network', 'container:T', 'busybox:local', 'sleep', '300'])).trim();
  await d.kill9();
  await d.start();
  const s = await inspect('side2');
  assert.equal(s.State.Running, true);
  assert.equal(s.HostConfig.NetworkMode, `container:${a.id}`);
  assert.deepEqual(s.NetworkSettings.Networks, {});
  assert.equal(await ok(['exec', 'side2', 'wget', '-qO-', 'http://127.0.0.1:8080/']), 'hello from A\n');
  await ok(['stop', '-t', '1', 'side2']);
  assert.equal((await inspect('side2')).State.Running, false);
  assert.equal(await get(a.port), 'hello from A\n');

  // Removing the target under a running joiner is allowed (as dockerd); the joiner keeps running on lo.
  await ok(['start', 'side2']);
  await ok(['rm', '-f', 'T']);
  const after1 = await inspect(sideId);
  assert.equal(after1.State.Running, true);
  assert.deepEqual(
    (await ok(['exec', 'side2', 'ip', '-o', 'link']))
      .trim()
      .split('\n')
      .map((l) => l.split(':')[1]!.trim()),
    ['lo'],
  );
  assert.deepEqual(await networkFootprint(), base, 'the removed target released its veth, lease, sandbox, pin and rules');
  // Starting it again needs its target: it is gone.
  await ok(['stop', '-t', '1', 'side2']);
  const again = await d.docker(['start', 'side2']);
  assert.equal(again.code, 1);
  assert.match(again.stderr, new RegExp(`No such container: ${a.id}`));
  await ok(['rm', 'side2']);
  assert.deepEqual(await networkFootprint(), base);
});

test('after the daemon restarts, restart policies start a target before the containers on its network', async () => {
  const a = await startServer('RT');
  await ok(['update', '--restart', 'always', 'RT']);
  const joiners = ['RJ1', 'RJ2', 'RJ3'];
  for (const j of joiners) await ok(['run', '-d', '--name', j, '--restart', 'always', '--network', 'container:RT', 'busybox:local', 'sleep', '300']);
  // The daemon dies, then so do the containers (as in a host reboot): the next daemon finds them all exited.
  const pids = await Promise.all(['RT', ...joiners].map(async (n) => (await inspect(n)).State.Pid as number));
  await d.kill9();
  for (const p of pids) process.kill(p, 'SIGKILL');
  await d.start();
  // Records are read in directory order; each joiner must still come up after its target, or it fails with 409.
  for (const n of ['RT', ...joiners]) {
    let running = false;
    for (let i = 0; i < 50 && !running; i++) {
      running = (await inspect(n)).State.Running === true;
      if (!running) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(running, true, `${n} runs again`);
  }
  assert.equal(await ok(['exec', 'RJ1', 'wget', '-qO-', 'http://127.0.0.1:8080/']), 'hello from A\n');
  assert.equal(await getSoon(a.port), 'hello from A\n');
  await ok(['rm', '-f', ...joiners, 'RT']);
});
