import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { after, before, test } from 'node:test';
import dnsPacket from 'dns-packet';
import { BB, cid, harness, inNs, type Harness } from './helpers.ts';

/** The "host resolver" the embedded DNS forwards to: a tiny DNS server on loopback of our own. */
let upstream: dgram.Socket;
let h: Harness;

before(async () => {
  upstream = dgram.createSocket('udp4');
  upstream.on('message', (m, r) => {
    const q = dnsPacket.decode(m);
    const name = q.questions![0]!.name;
    const known = name === 'outside.test' && q.questions![0]!.type === 'A';
    upstream.send(
      dnsPacket.encode({
        // rcode NXDOMAIN (3) goes in the low bits of flags.
        id: q.id,
        type: 'response',
        flags: dnsPacket.RECURSION_AVAILABLE | (name === 'outside.test' ? 0 : 3),
        questions: q.questions,
        answers: known ? [{ name, type: 'A', class: 'IN', ttl: 60, data: '10.9.8.7' }] : [],
      }),
      r.port,
      r.address,
    );
  });
  await new Promise<void>((r) => upstream.bind(0, '127.0.0.1', r));
  h = await harness({ dnsUpstreams: [`127.0.0.1:${upstream.address().port}`] });
});

after(async () => {
  await h.cleanup();
  upstream.close();
});

const lookup = (netns: string, name: string, server: string, timeoutMs = 8000) => inNs(netns, [BB, 'nslookup', '-type=a', name, server], timeoutMs);

test('user network: members resolve by name, alias and short id; other names are forwarded', async () => {
  await h.nm.createNetwork({ Name: 'app' });
  const gw = h.nm.inspect('app').network.Gateway;
  const [a, b] = [cid(), cid()];
  try {
    const sa = await h.nm.attach(a, { containerName: 'db', networks: [{ network: 'app', aliases: ['postgres'] }] });
    const sb = await h.nm.attach(b, { containerName: 'web', networks: [{ network: 'app' }] });
    const ipA = Object.values(sa.Endpoints)[0]!.IPAddress;
    assert.match(h.nm.resolvConf(b), new RegExp(`nameserver ${gw.replace(/\./g, '\\.')}\\n`));
    for (const name of ['db', 'postgres', a.slice(0, 12), 'DB']) {
      const r = await lookup(sb.NetnsPath, name, gw);
      assert.match(r.stdout, new RegExp(`Address: ${ipA.replace(/\./g, '\\.')}`), `${name}: ${r.stdout}${r.stderr}`);
    }
    assert.match((await lookup(sb.NetnsPath, 'outside.test', gw)).stdout, /Address: 10\.9\.8\.7/);
    assert.match((await lookup(sb.NetnsPath, 'nope.test', gw)).stdout + (await lookup(sb.NetnsPath, 'nope.test', gw)).stderr, /NXDOMAIN|can't find/);
    // The same answers over TCP, asked from the host.
    const reply = await tcpQuery(gw, 'postgres');
    assert.deepEqual(
      reply.answers!.map((x) => (x as { data: string }).data),
      [ipA],
    );
    // After detach the name is gone.
    await h.nm.detach(a);
    assert.doesNotMatch((await lookup(sb.NetnsPath, 'db', gw)).stdout, new RegExp(ipA.replace(/\./g, '\\.')));
  } finally {
    await h.nm.detach(a);
    await h.nm.detach(b);
    await h.nm.removeNetwork('app');
  }
});

test('an alias shared by several containers answers every address, first each in turn (round robin, as Docker)', async () => {
  await h.nm.createNetwork({ Name: 'rr' });
  const gw = h.nm.inspect('rr').network.Gateway;
  const ids = [cid(), cid(), cid()];
  try {
    const ips: string[] = [];
    for (const [i, id] of ids.entries()) {
      const sb = await h.nm.attach(id, { containerName: `web-${i + 1}`, networks: [{ network: 'rr', aliases: ['web'] }] });
      ips.push(Object.values(sb.Endpoints)[0]!.IPAddress);
    }
    const first = new Set<string>();
    for (let i = 0; i < 60; i++) {
      const got = (await tcpQuery(gw, 'web')).answers!.map((x) => (x as { data: string }).data);
      assert.deepEqual([...got].sort(), [...ips].sort());
      first.add(got[0]!);
    }
    // 60 shuffles of 3: each address comes first at some point (missing one has probability ~3e-11)
    assert.equal(first.size, 3);
  } finally {
    for (const id of ids) await h.nm.detach(id);
    await h.nm.removeNetwork('rr');
  }
});

test('the default bridge has no name resolution', async () => {
  const [a, b] = [cid(), cid()];
  try {
    await h.nm.attach(a, { containerName: 'one' });
    const sb = await h.nm.attach(b, { containerName: 'two' });
    const gw = Object.values(sb.Endpoints)[0]!.Gateway;
    const r = await lookup(sb.NetnsPath, 'one', gw, 1500); // nothing listens: it can only time out
    assert.notEqual(r.code, 0);
    assert.doesNotMatch(h.nm.resolvConf(b), new RegExp(`nameserver ${gw}`));
  } finally {
    await h.nm.detach(a);
    await h.nm.detach(b);
  }
});

function tcpQuery(server: string, name: string): Promise<dnsPacket.Packet> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: server, port: 53 });
    const q = dnsPacket.encode({ id: 7, type: 'query', flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type: 'A', class: 'IN' }] });
    const len = Buffer.alloc(2);
    len.writeUInt16BE(q.length);
    let buf = Buffer.alloc(0);
    s.setTimeout(3000, () => (s.destroy(), reject(new Error('timeout'))));
    s.on('connect', () => s.write(Buffer.concat([len, q])));
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        s.destroy();
        resolve(dnsPacket.decode(buf.subarray(2)));
      }
    });
    s.on('error', reject);
  });
}
