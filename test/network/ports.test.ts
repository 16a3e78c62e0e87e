import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { parsePortSpecs } from '../../src/network/index.ts';
import { freePort } from '../helpers/daemon.ts';
import { cid, harness, hostAddress, httpdInNs, httpGet, wgetInNs, type Harness } from './helpers.ts';

let h: Harness;
let hostIp: string;
const stops: Array<() => void> = [];

before(async () => {
  h = await harness();
  hostIp = await hostAddress();
});
after(async () => {
  for (const s of stops) s();
  await h.cleanup();
});

test('published port: reachable on 127.0.0.1, the host address, and from containers (hairpin); a second claim fails', async () => {
  const hp = await freePort();
  const [a, b, c] = [cid(), cid(), cid()];
  try {
    const sa = await h.nm.attach(a, { containerName: 'web', portBindings: parsePortSpecs([`${hp}:80`]).bindings });
    assert.deepEqual(
      sa.Ports.map((p) => [p.HostIp, p.HostPort, p.ContainerPort, p.Proto]),
      [['0.0.0.0', hp, 80, 'tcp']],
    );
    stops.push(await httpdInNs(sa.NetnsPath, h.root, 80, 'hello-from-a'));
    assert.equal(await httpGet('127.0.0.1', hp), 'hello-from-a');
    assert.equal(await httpGet(hostIp, hp), 'hello-from-a');
    const sb = await h.nm.attach(b, { containerName: 'client' });
    assert.equal((await wgetInNs(sb.NetnsPath, `http://${hostIp}:${hp}/`)).stdout, 'hello-from-a', 'hairpin from a peer');
    assert.equal((await wgetInNs(sa.NetnsPath, `http://${hostIp}:${hp}/`)).stdout, 'hello-from-a', 'hairpin to itself');
    await assert.rejects(h.nm.attach(c, { containerName: 'second', portBindings: parsePortSpecs([`${hp}:80`]).bindings }), {
      message: `Bind for 0.0.0.0:${hp} failed: port is already allocated`,
    });
    assert.equal(h.nm.sandbox(c), undefined, 'the failed container leaves nothing behind');
    assert.equal(await httpGet('127.0.0.1', hp), 'hello-from-a', 'the first keeps working');
  } finally {
    for (const x of [a, b, c]) await h.nm.detach(x);
  }
  assert.ok((await httpGet('127.0.0.1', hp)) instanceof Error, 'the DNAT rule is gone after detach');
});

test('-p container picks a port from the ephemeral range; -P publishes exposed ports; bound IP is honoured', async () => {
  const a = cid();
  const hp = await freePort();
  try {
    const { bindings } = parsePortSpecs(['80', `127.0.0.1:${hp}:8080`]);
    const sa = await h.nm.attach(a, { containerName: 'rnd', portBindings: bindings, publishAll: true, exposedPorts: ['80/tcp', '53/udp'] });
    const byPort = new Map(sa.Ports.map((p) => [`${p.ContainerPort}/${p.Proto}`, p]));
    const r80 = byPort.get('80/tcp')!;
    assert.ok(r80.HostPort >= 32768 && r80.HostPort <= 60999, `random port ${r80.HostPort}`);
    assert.ok(byPort.get('53/udp')!.HostPort >= 32768);
    assert.equal(byPort.get('8080/tcp')!.HostIp, '127.0.0.1');
    stops.push(await httpdInNs(sa.NetnsPath, h.root, 80, 'rnd'));
    stops.push(await httpdInNs(sa.NetnsPath, h.root, 8080, 'lo-only'));
    assert.equal(await httpGet('127.0.0.1', r80.HostPort), 'rnd');
    assert.equal(await httpGet('127.0.0.1', hp), 'lo-only');
    assert.ok((await httpGet(hostIp, hp)) instanceof Error, 'bound to 127.0.0.1 only');
  } finally {
    await h.nm.detach(a);
  }
});

test("a host port held by another process is refused with docker's error", async () => {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '0.0.0.0', r));
  const hp = (s.address() as net.AddressInfo).port;
  const a = cid();
  try {
    await assert.rejects(
      h.nm.attach(a, { containerName: 'busy', portBindings: parsePortSpecs([`${hp}:80`]).bindings }),
      /listen tcp4 0\.0\.0\.0:\d+: bind: address already in use/,
    );
    assert.equal(h.nm.counts().leases, 0);
  } finally {
    await new Promise((r) => s.close(r));
    await h.nm.detach(a);
  }
});
