import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import dnsPacket from 'dns-packet';
import { formatIp, macForIp, parseCidr, parseIp } from './addr.ts';
import { DnsServer } from './dns.ts';
import { hostsFile, parseResolvConf, resolvConf } from './files.ts';
import { filterNetworks } from './filters.ts';
import { chainNames, render } from './iptables.ts';
import { Ipam, pickSubnet, planSubnet } from './ipam.ts';
import { parsePortSpecs, PortAllocator, portRequests } from './ports.ts';
import { NetworkStore } from './store.ts';

test('addresses and subnets', () => {
  assert.equal(formatIp(parseIp('10.80.0.1')), '10.80.0.1');
  assert.throws(() => parseIp('10.80.0.256'), /invalid IP address/);
  assert.throws(() => parseIp('::1'), /IPv4 only/);
  assert.throws(() => parseCidr('10.80.0.1/16'), /host bits are set; did you mean 10\.80\.0\.0\/16/);
  assert.throws(() => parseCidr('10.1.2.300/24'), /^EngineError: invalid CIDR address: 10\.1\.2\.300\/24$/);
  assert.equal(macForIp(parseIp('172.17.0.2')), '02:42:ac:11:00:02');
  assert.throws(() => planSubnet('10.1.0.0/16', '', '', ['10.1.2.0/24']), /Pool overlaps with other one on this address space/);
  assert.throws(() => planSubnet('10.1.0.0/16', '10.2.0.1', '', []), /not a usable address/);
  assert.throws(() => planSubnet('10.1.0.0/16', '', '10.2.0.0/24', []), /not inside subnet/);
  assert.equal(pickSubnet('10.81.0.0/16', 24, ['10.81.0.0/24'], [parseCidr('10.81.1.0/24')]), '10.81.2.0/24');
});

test('IPAM: sequential allocation, requested addresses, release, reconcile, persistence', async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ipam-'));
  try {
    const file = path.join(dir, 'leases.json');
    const ipam = new Ipam(file);
    const plan = planSubnet('10.5.0.0/29', '', '', []);
    assert.equal(await ipam.allocate('n', plan, 'a'), '10.5.0.2');
    assert.equal(await ipam.allocate('n', plan, 'b'), '10.5.0.3');
    assert.equal(await ipam.allocate('n', plan, 'a'), '10.5.0.2', 'idempotent per owner');
    await assert.rejects(ipam.allocate('n', plan, 'c', '10.5.0.3'), /Address already in use/);
    await assert.rejects(ipam.allocate('n', plan, 'c', '10.6.0.3'), /no configured subnet/);
    assert.equal(await ipam.allocate('n', plan, 'c', '10.5.0.6'), '10.5.0.6');
    await ipam.release('n', 'b');
    assert.equal(await ipam.allocate('n', plan, 'd'), '10.5.0.4', 'does not hand out a just-freed address first');
    assert.equal(await ipam.allocate('n', plan, 'e'), '10.5.0.5');
    assert.equal(await ipam.allocate('n', plan, 'f'), '10.5.0.3');
    await assert.rejects(ipam.allocate('n', plan, 'g'), /no available IPv4 addresses/);
    const again = new Ipam(file);
    await again.load();
    assert.equal(again.list('n').length, 5);
    assert.equal(await again.reconcile(new Set(['a', 'c'])), 3);
    assert.deepEqual(
      again
        .list()
        .map((l) => l.owner)
        .sort(),
      ['a', 'c'],
    );
    const ranged = planSubnet('10.7.0.0/24', '', '10.7.0.128/25', []);
    assert.equal(await again.allocate('r', ranged, 'x'), '10.7.0.128');
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test("IPAM: an unsaved lease (the spare sandbox's) is held in memory, never written, until transferred", async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ipam-'));
  try {
    const file = path.join(dir, 'leases.json');
    const ipam = new Ipam(file);
    const plan = planSubnet('10.5.0.0/29', '', '', []);
    await ipam.allocate('n', plan, 'a');
    ipam.keepUnsaved('spare');
    const ip = await ipam.allocate('n', plan, 'spare');
    assert.equal(await ipam.allocate('n', plan, 'b'), '10.5.0.4', "the spare's address is taken");
    const onDisk = async () => {
      const again = new Ipam(file);
      await again.load();
      return again
        .list()
        .map((l) => `${l.owner}=${l.ip}`)
        .sort();
    };
    assert.deepEqual(await onDisk(), ['a=10.5.0.2', 'b=10.5.0.4'], 'a crash now finds no lease of the spare');
    assert.throws(() => ipam.transfer('n', ip, 'nobody', 'c'), /not leased to/);
    ipam.transfer('n', ip, 'spare', 'c');
    await ipam.save();
    assert.deepEqual(await onDisk(), ['a=10.5.0.2', 'b=10.5.0.4', `c=${ip}`]);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('-p parsing follows docker', () => {
  assert.deepEqual(parsePortSpecs(['8080:80']).bindings, { '80/tcp': [{ HostIp: '', HostPort: '8080' }] });
  assert.deepEqual(parsePortSpecs(['127.0.0.1::53/udp']).bindings, { '53/udp': [{ HostIp: '127.0.0.1', HostPort: '' }] });
  assert.deepEqual(Object.keys(parsePortSpecs(['8000-8002:80-82']).bindings), ['80/tcp', '81/tcp', '82/tcp']);
  assert.deepEqual(parsePortSpecs(['9000-9010:80']).bindings['80/tcp'], [{ HostIp: '', HostPort: '9000-9010' }]);
  assert.throws(() => parsePortSpecs(['8000-8002:80-81']), /invalid ranges specified for container and host Ports: 80-81 and 8000-8002/);
  assert.throws(() => parsePortSpecs(['foo']), /invalid containerPort: foo/);
  assert.throws(() => parsePortSpecs(['x:80']), /invalid hostPort: x/);
  assert.throws(() => parsePortSpecs(['1.2.3:80:80']), /invalid IP address: 1\.2\.3/);
  assert.throws(() => parsePortSpecs(['80/xyz']), /invalid proto: xyz/);
  assert.throws(() => parsePortSpecs(['8080:']), /no port specified: 8080:<empty>/);
  const reqs = portRequests(parsePortSpecs(['80']).bindings, true, ['80/tcp', '443/tcp']);
  assert.deepEqual(
    reqs.map((r) => [r.containerPort, r.hostRange]),
    [
      [80, [0, 0]],
      [443, [0, 0]],
    ],
  );
});

test("port allocator: docker's conflict error, 0.0.0.0 clashes with every IP, release frees", async () => {
  const pa = new PortAllocator([40000, 40009]);
  try {
    const [m] = await pa.allocate('a', 'a', portRequests({ '80/tcp': [{ HostPort: '0' }] }, false, []), '10.0.0.2');
    assert.ok(m!.HostPort >= 40000 && m!.HostPort <= 40009);
    const fixed = { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: String(m!.HostPort) }] };
    await assert.rejects(pa.allocate('b', 'b', portRequests(fixed, false, []), '10.0.0.3'), {
      message: `Bind for 127.0.0.1:${m!.HostPort} failed: port is already allocated`,
    });
    pa.release('a');
    const [m2] = await pa.allocate('b', 'b', portRequests(fixed, false, []), '10.0.0.3');
    assert.equal(m2!.HostPort, m!.HostPort);
  } finally {
    pa.closeAll();
  }
});

test('hosts and resolv.conf', () => {
  const host = parseResolvConf('nameserver 127.0.0.53\nnameserver 10.255.255.53\nsearch example.org\noptions edns0\n');
  assert.equal(resolvConf({ host }), '# Generated by keel.\nsearch example.org\nnameserver 10.255.255.53\noptions edns0\n');
  assert.match(resolvConf({ host, embeddedDns: '10.81.0.1' }), /nameserver 10\.81\.0\.1\noptions edns0 ndots:0\n$/);
  assert.match(resolvConf({ host, dns: ['1.1.1.1'], dnsSearch: ['a.b'] }), /search a\.b\nnameserver 1\.1\.1\.1\n/);
  const h = hostsFile({ hostname: 'abc', ip: '10.80.0.2', extraHosts: ['db:10.0.0.9', 'gw:host-gateway'], hostGateway: '10.80.0.1' });
  assert.match(h, /^127\.0\.0\.1\tlocalhost\n/);
  assert.match(h, /10\.0\.0\.9\tdb\n10\.80\.0\.1\tgw\n10\.80\.0\.2\tabc\n$/);
  assert.throws(() => hostsFile({ hostname: 'x', extraHosts: ['nocolon'] }), /bad format for add-host/);
});

test('store: predefined networks, lookup by name and id prefix; filters', async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'netstore-'));
  try {
    const s = new NetworkStore(dir);
    await s.load({ bridgeName: 'keel0', subnet: '10.80.0.0/16', gateway: '10.80.0.1' });
    assert.deepEqual(
      s
        .list()
        .map((n) => n.Name)
        .sort(),
      ['bridge', 'host', 'none'],
    );
    const b = s.get('bridge');
    assert.equal(s.get(b.Id.slice(0, 5)).Name, 'bridge');
    assert.throws(() => s.get('nope'), /network nope not found/);
    const s2 = new NetworkStore(dir);
    await s2.load({ bridgeName: 'keel0', subnet: '10.80.0.0/16', gateway: '10.80.0.1' });
    assert.equal(s2.get('bridge').Id, b.Id, 'the default network keeps its id');
    assert.deepEqual(
      filterNetworks(s2.list(), { type: ['custom'] }, () => false),
      [],
    );
    assert.deepEqual(
      filterNetworks(s2.list(), { driver: ['null'] }, () => false).map((n) => n.Name),
      ['none'],
    );
    assert.throws(() => filterNetworks(s2.list(), { bogus: ['x'] }, () => false), /invalid filter 'bogus'/);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('iptables render keeps everything in keel chains', () => {
  const c = chainNames('KEEL');
  const text = render(
    c,
    [{ bridge: 'keel0', subnet: '10.80.0.0/16', gateway: '10.80.0.1', internal: false, dns: false }],
    [{ proto: 'tcp', hostIp: '0.0.0.0', hostPort: 8080, containerIp: '10.80.0.2', containerPort: 80 }],
    [['filter', 'FORWARD', '-j KEEL-FORWARD']],
  );
  assert.match(text, /-A KEEL-DNAT -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10\.80\.0\.2:80/);
  assert.match(text, /-I FORWARD 1 -j KEEL-FORWARD/);
  for (const line of text.split('\n').filter((l) => l.startsWith('-A'))) assert.match(line, /^-A KEEL-/);
});

test('embedded DNS answers members, forwards the rest, SERVFAILs when upstream is silent', async () => {
  const up = dgram.createSocket('udp4');
  up.on('message', (m, r) => {
    const q = dnsPacket.decode(m);
    up.send(
      dnsPacket.encode({ id: q.id, type: 'response', questions: q.questions, answers: [{ name: q.questions![0]!.name, type: 'A', data: '1.2.3.4' }] }),
      r.port,
      r.address,
    );
  });
  await new Promise<void>((r) => up.bind(0, '127.0.0.1', r));
  const silent = dgram.createSocket('udp4');
  await new Promise<void>((r) => silent.bind(0, '127.0.0.1', r));
  let upstreams = [`127.0.0.1:${up.address().port}`];
  const srv = new DnsServer({
    address: '127.0.0.1',
    port: 0,
    lookup: (n) => (n === 'web' ? ['10.81.0.5'] : undefined),
    upstreams: () => upstreams,
    timeoutMs: 300,
  });
  try {
    await srv.start();
    const ask = async (name: string, type: 'A' | 'AAAA' = 'A') =>
      dnsPacket.decode((await srv.answer(Buffer.from(dnsPacket.encode({ id: 9, type: 'query', questions: [{ name, type }] })), '10.81.0.9', 'udp'))!);
    assert.deepEqual(
      (await ask('WEB.')).answers!.map((a) => (a as { data: string }).data),
      ['10.81.0.5'],
    );
    assert.deepEqual((await ask('web', 'AAAA')).answers, []);
    assert.deepEqual(
      (await ask('example.test')).answers!.map((a) => (a as { data: string }).data),
      ['1.2.3.4'],
    );
    upstreams = [`127.0.0.1:${silent.address().port}`];
    assert.equal(((await ask('example.test')) as { rcode?: string }).rcode, 'SERVFAIL');
    assert.equal(await srv.answer(Buffer.from('garbage'), '1.1.1.1', 'udp'), undefined);
  } finally {
    srv.close();
    up.close();
    silent.close();
  }
});
