import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { exec } from '../../src/common/exec.ts';
import { BB, cid, harness, inNs, outsideNs, serveInNs, type Harness } from './helpers.ts';

let h: Harness;
let outside: Awaited<ReturnType<typeof outsideNs>>;
let stopServer: () => void;

before(async () => {
  h = await harness();
  outside = await outsideNs(h.root, h.tag, h.octet);
  // A TCP service on the "outside" host answering every connection.
  stopServer = await serveInNs(outside.netns, 7000, [BB, 'nc', '-ll', '-p', '7000', '-e', BB, 'echo', 'hello-outside']);
});

after(async () => {
  stopServer?.();
  await outside?.close();
  await h.cleanup();
});

const ipOf = (sb: { Endpoints: Record<string, { IPAddress: string }> }) => Object.values(sb.Endpoints)[0]!.IPAddress;
const ncTo = (netns: string, ip: string) => inNs(netns, [BB, 'nc', '-w', '2', ip, '7000']);

test('default bridge: gateway, peer and outside (through NAT) are reachable', async () => {
  const a = cid(),
    b = cid();
  const sa = await h.nm.attach(a, { containerName: 'a' });
  const sb = await h.nm.attach(b, { containerName: 'b' });
  try {
    const ep = Object.values(sa.Endpoints)[0]!;
    assert.equal(ep.IfName, 'eth0');
    assert.equal(ep.Gateway, `10.${h.octet}.0.1`);
    assert.equal((await inNs(sa.NetnsPath, [BB, 'ping', '-c1', '-W2', ep.Gateway])).code, 0);
    assert.equal((await inNs(sa.NetnsPath, [BB, 'ping', '-c1', '-W2', ipOf(sb)])).code, 0);
    const r = await ncTo(sa.NetnsPath, outside.ip);
    assert.match(r.stdout, /hello-outside/);
    const route = await inNs(sa.NetnsPath, ['ip', 'route']);
    assert.match(route.stdout, new RegExp(`default via ${ep.Gateway} dev eth0`));
    assert.match(h.nm.hostsFile(a), new RegExp(`${ep.IPAddress}\\t${a.slice(0, 12)}`));
    assert.doesNotMatch(h.nm.resolvConf(a), /nameserver 127\./);
  } finally {
    await h.nm.detach(a);
    await h.nm.detach(b);
  }
});

test('two user networks are isolated from each other; --internal has no outbound', async () => {
  await h.nm.createNetwork({ Name: 'n1' });
  await h.nm.createNetwork({ Name: 'n2' });
  await h.nm.createNetwork({ Name: 'int', Internal: true });
  const [a, b, c, d] = [cid(), cid(), cid(), cid()];
  try {
    const sa = await h.nm.attach(a, { containerName: 'a', networks: [{ network: 'n1' }] });
    const sb = await h.nm.attach(b, { containerName: 'b', networks: [{ network: 'n2' }] });
    const sc = await h.nm.attach(c, { containerName: 'c', networks: [{ network: 'int' }] });
    const sd = await h.nm.attach(d, { containerName: 'd', networks: [{ network: 'int' }] });
    assert.equal((await inNs(sa.NetnsPath, [BB, 'ping', '-c1', '-W1', ipOf(sb)])).code, 1, 'n1 must not reach n2');
    assert.equal((await inNs(sb.NetnsPath, [BB, 'ping', '-c1', '-W1', ipOf(sa)])).code, 1, 'n2 must not reach n1');
    assert.match((await ncTo(sa.NetnsPath, outside.ip)).stdout, /hello-outside/, 'n1 reaches outside');
    assert.equal((await inNs(sc.NetnsPath, [BB, 'ping', '-c1', '-W2', ipOf(sd)])).code, 0, 'internal peers talk');
    assert.doesNotMatch((await ncTo(sc.NetnsPath, outside.ip)).stdout, /hello-outside/, 'internal has no outbound');
    assert.doesNotMatch((await inNs(sc.NetnsPath, ['ip', 'route'])).stdout, /default/);
  } finally {
    for (const x of [a, b, c, d]) await h.nm.detach(x);
    for (const n of ['n1', 'n2', 'int']) await h.nm.removeNetwork(n);
  }
});

test('traffic flows while the FORWARD policy is DROP (as dockerd sets it)', async () => {
  const saved = (await exec(['iptables', '-S', 'FORWARD'])).stdout.split('\n')[0]!; // "-P FORWARD ACCEPT"
  const policy = saved.split(' ')[2]!;
  const a = cid();
  try {
    await exec(['iptables', '-P', 'FORWARD', 'DROP']);
    const sa = await h.nm.attach(a, { containerName: 'a' });
    assert.match((await ncTo(sa.NetnsPath, outside.ip)).stdout, /hello-outside/);
  } finally {
    await exec(['iptables', '-P', 'FORWARD', policy]);
    await h.nm.detach(a);
  }
});

test('connect adds eth1 on a second network; disconnect removes it', async () => {
  await h.nm.createNetwork({ Name: 'n3', Subnet: `10.${h.octet}.77.0/24`, Gateway: `10.${h.octet}.77.254` });
  const a = cid();
  try {
    const sa = await h.nm.attach(a, { containerName: 'a' });
    const ep = await h.nm.connect(a, { network: 'n3', ip: `10.${h.octet}.77.9`, aliases: ['db'] });
    assert.equal(ep.IfName, 'eth1');
    assert.equal(ep.IPAddress, `10.${h.octet}.77.9`);
    assert.equal((await inNs(sa.NetnsPath, [BB, 'ping', '-c1', '-W2', `10.${h.octet}.77.254`])).code, 0);
    await assert.rejects(h.nm.connect(a, { network: 'n3' }), /already exists in network n3/);
    await assert.rejects(h.nm.removeNetwork('n3'), /has active endpoints/);
    await h.nm.disconnect(a, 'n3');
    assert.doesNotMatch((await inNs(sa.NetnsPath, ['ip', '-o', 'link'])).stdout, /eth1/);
    assert.equal(h.nm.ipam.list(h.nm.inspect('n3').network.Id).length, 0);
  } finally {
    await h.nm.detach(a);
    await h.nm.removeNetwork('n3');
  }
});

test('none mode has lo only; attaching twice conflicts', async () => {
  const a = cid();
  try {
    const sa = await h.nm.attach(a, { containerName: 'a', mode: 'none' });
    const links = (await inNs(sa.NetnsPath, ['ip', '-o', 'link'])).stdout.trim().split('\n');
    assert.equal(links.length, 1);
    assert.match(links[0]!, /lo:.*UP/);
    await assert.rejects(h.nm.attach(a, { containerName: 'a' }), /already has a network sandbox/);
  } finally {
    await h.nm.detach(a);
  }
});
