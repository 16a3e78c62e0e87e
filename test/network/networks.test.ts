import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { NetDaemon, rows } from './helpers.ts';

/** docker network create/ls/inspect/rm/prune through the real docker CLI and the keel CLI. */
const d = new NetDaemon('keel-networks');
before(() => d.start());
after(() => d.cleanup());

test('predefined networks are listed as docker lists them; bridge is the configured bridge', async () => {
  const ls = await d.docker(['network', 'ls']);
  assert.equal(ls.code, 0, ls.stderr);
  const r = rows(ls.stdout);
  assert.deepEqual(r[0], ['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE']);
  const byName = Object.fromEntries(r.slice(1).map((x) => [x[1], x]));
  assert.equal(byName.bridge?.[2], 'bridge');
  assert.equal(byName.host?.[2], 'host');
  assert.equal(byName.none?.[2], 'null');
  for (const x of r.slice(1)) assert.match(x[0]!, /^[0-9a-f]{12}$/);
  const insp = await d.docker(['network', 'inspect', 'bridge']);
  assert.equal(insp.code, 0, insp.stderr);
  const [b] = JSON.parse(insp.stdout);
  assert.equal(b.Options['com.docker.network.bridge.name'], d.bridge);
  assert.equal(b.Options['com.docker.network.bridge.default_bridge'], 'true');
  assert.deepEqual(b.IPAM, { Driver: 'default', Options: null, Config: [{ Subnet: `10.${d.octet}.0.0/24` }] });
  const rm = await d.docker(['network', 'rm', 'bridge']);
  assert.equal(rm.code, 1);
  assert.match(rm.stderr, /bridge is a pre-defined network and cannot be removed/);
});

test('create, inspect shape, ls formats and filters, rm', async () => {
  const c = await d.docker(['network', 'create', '--label', 'team=a', '--label', 'x', 'n-one']);
  assert.equal(c.code, 0, c.stderr);
  const id = c.stdout.trim();
  assert.match(id, /^[0-9a-f]{64}$/);
  const insp = await d.docker(['network', 'inspect', 'n-one']);
  assert.equal(insp.code, 0, insp.stderr);
  const [n] = JSON.parse(insp.stdout);
  assert.deepEqual(Object.keys(n), [
    'Name',
    'Id',
    'Created',
    'Scope',
    'Driver',
    'EnableIPv6',
    'IPAM',
    'Internal',
    'Attachable',
    'Ingress',
    'ConfigFrom',
    'ConfigOnly',
    'Containers',
    'Options',
    'Labels',
  ]);
  assert.equal(n.Id, id);
  assert.equal(n.Driver, 'bridge');
  assert.equal(n.Scope, 'local');
  assert.deepEqual(n.Labels, { team: 'a', x: '' });
  assert.deepEqual(n.Containers, {});
  assert.equal(n.IPAM.Config.length, 1);
  assert.match(n.IPAM.Config[0].Subnet, new RegExp(`^10\\.${d.octet}\\.(1[2-9][0-9]|2[0-5][0-9])\\.0/24$`));
  assert.equal(n.IPAM.Config[0].Gateway, n.IPAM.Config[0].Subnet.replace(/0\/24$/, '1'));
  const f = await d.docker(['network', 'inspect', '-f', '{{.Name}} {{.Driver}} {{.Internal}}', id.slice(0, 10)]);
  assert.equal(f.stdout, 'n-one bridge false\n');

  const q = await d.docker(['network', 'ls', '-q', '--filter', 'label=team=a']);
  assert.equal(q.stdout, `${id.slice(0, 12)}\n`);
  const nt = await d.docker(['network', 'ls', '--no-trunc', '--filter', 'name=n-one', '--format', '{{.ID}} {{.Name}} {{.Driver}} {{.Scope}}']);
  assert.equal(nt.stdout, `${id} n-one bridge local\n`);
  const custom = await d.docker(['network', 'ls', '--filter', 'type=custom', '--format', '{{.Name}}']);
  assert.deepEqual(custom.stdout.trim().split('\n'), ['n-one']);
  const builtin = await d.docker(['network', 'ls', '--filter', 'type=builtin', '--format', '{{.Name}}']);
  assert.deepEqual(builtin.stdout.trim().split('\n').sort(), ['bridge', 'host', 'none']);
  const drv = await d.docker(['network', 'ls', '-f', 'driver=null', '--format', '{{.Name}}']);
  assert.equal(drv.stdout, 'none\n');
  const byId = await d.docker(['network', 'ls', '-f', `id=${id.slice(0, 8)}`, '--format', '{{.Name}}']);
  assert.equal(byId.stdout, 'n-one\n');
  const dangling = await d.docker(['network', 'ls', '-f', 'dangling=true', '--format', '{{.Name}}']);
  assert.equal(dangling.stdout, 'n-one\n');
  const bad = await d.docker(['network', 'ls', '-f', 'type=foo']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /invalid filter/);

  const dup = await d.docker(['network', 'create', 'n-one']);
  assert.equal(dup.code, 1);
  assert.match(dup.stderr, /Error response from daemon: network with name n-one already exists/);

  const rm = await d.docker(['network', 'rm', 'n-one']);
  assert.equal(rm.code, 0, rm.stderr);
  assert.equal(rm.stdout, 'n-one\n');
  const gone = await d.docker(['network', 'rm', 'n-one']);
  assert.equal(gone.code, 1);
  // docker CLI 28 adds "exit status 1", as against dockerd (network-rm-missing.cmd).
  assert.equal(gone.stderr.trim(), 'Error response from daemon: network n-one not found\nexit status 1');
});

test('custom subnet, gateway and ip-range are honoured and validated', async () => {
  const sn = `10.${d.octet}.64.0/24`;
  const c = await d.docker([
    'network',
    'create',
    '--subnet',
    sn,
    '--gateway',
    `10.${d.octet}.64.254`,
    '--ip-range',
    `10.${d.octet}.64.128/25`,
    '--internal',
    '-o',
    'com.docker.network.driver.mtu=1400',
    'n-sub',
  ]);
  assert.equal(c.code, 0, c.stderr);
  const [n] = JSON.parse((await d.docker(['network', 'inspect', 'n-sub'])).stdout);
  assert.deepEqual(n.IPAM.Config, [{ Subnet: sn, Gateway: `10.${d.octet}.64.254`, IPRange: `10.${d.octet}.64.128/25` }]);
  assert.equal(n.Internal, true);
  assert.deepEqual(n.Options, { 'com.docker.network.driver.mtu': '1400' });

  const overlap = await d.docker(['network', 'create', '--subnet', `10.${d.octet}.64.0/25`, 'n-overlap']);
  assert.equal(overlap.code, 1);
  assert.match(overlap.stderr, /Pool overlaps with other one on this address space/);
  const overlapDefault = await d.docker(['network', 'create', '--subnet', `10.${d.octet}.0.0/16`, 'n-overlap2']);
  assert.equal(overlapDefault.code, 1);
  assert.match(overlapDefault.stderr, /overlaps/);
  const badCidr = await d.docker(['network', 'create', '--subnet', '10.1.2.300/24', 'n-bad']);
  assert.equal(badCidr.code, 1);
  assert.match(badCidr.stderr, /invalid CIDR address: 10\.1\.2\.300\/24/);
  const badGw = await d.docker(['network', 'create', '--subnet', `10.${d.octet}.65.0/24`, '--gateway', `10.${d.octet}.66.1`, 'n-bad']);
  assert.equal(badGw.code, 1);
  assert.match(badGw.stderr, /no matching subnet for gateway/); // the docker CLI checks this itself
  const apiGw = await d.api('POST', '/v1.41/networks/create', {
    Name: 'n-bad',
    IPAM: { Config: [{ Subnet: `10.${d.octet}.65.0/24`, Gateway: `10.${d.octet}.65.255` }] },
  });
  assert.equal(apiGw.status, 400);
  assert.match((apiGw.json as { message: string }).message, /gateway 10\.\d+\.65\.255 is not a usable address of subnet/);
  const badRange = await d.docker(['network', 'create', '--subnet', `10.${d.octet}.65.0/24`, '--ip-range', `10.${d.octet}.66.0/25`, 'n-bad']);
  assert.equal(badRange.code, 1);
  assert.match(badRange.stderr, /no matching subnet for range/); // the docker CLI checks this itself
  const apiRange = await d.api('POST', '/v1.41/networks/create', {
    Name: 'n-bad',
    IPAM: { Config: [{ Subnet: `10.${d.octet}.65.0/24`, IPRange: `10.${d.octet}.65.128/24` }] },
  });
  assert.equal(apiRange.status, 400);
  assert.match((apiRange.json as { message: string }).message, /ip-range .* is not inside subnet|host bits are set/);
  const badName = await d.docker(['network', 'create', 'bad/name']);
  assert.notEqual(badName.code, 0);
  const badDriver = await d.docker(['network', 'create', '-d', 'overlay', 'n-ov']);
  assert.equal(badDriver.code, 1);
  assert.match(badDriver.stderr, /plugin "overlay" not found/);
  const v6 = await d.docker(['network', 'create', '--ipv6', 'n-v6']);
  assert.equal(v6.code, 1);
  assert.match(v6.stderr, /IPv6/);
  const ls = await d.docker(['network', 'ls', '--format', '{{.Name}}']);
  assert.doesNotMatch(ls.stdout, /n-bad|n-overlap|n-ov|n-v6/);
  assert.equal((await d.docker(['network', 'rm', 'n-sub'])).code, 0);
});

test('rm of several networks reports each; prune removes unused custom networks and filters by label', async () => {
  for (const n of ['p1', 'p2', 'p3']) assert.equal((await d.docker(['network', 'create', '--label', `keep=${n === 'p3'}`, n])).code, 0);
  const rm = await d.docker(['network', 'rm', 'p1', 'nope', 'p2']);
  assert.equal(rm.code, 1);
  assert.equal(rm.stdout, 'p1\np2\n');
  assert.match(rm.stderr, /network nope not found/);
  for (const n of ['p4', 'p5']) assert.equal((await d.docker(['network', 'create', '--label', 'keep=false', n])).code, 0);
  const pf = await d.docker(['network', 'prune', '-f', '--filter', 'label=keep=false']);
  assert.equal(pf.code, 0, pf.stderr);
  assert.equal(pf.stdout, 'Deleted Networks:\np4\np5\n\n');
  const left = await d.docker(['network', 'ls', '--format', '{{.Name}}']);
  assert.deepEqual(left.stdout.trim().split('\n').sort(), ['bridge', 'host', 'none', 'p3']);
  const all = await d.docker(['network', 'prune', '-f']);
  assert.equal(all.code, 0);
  assert.match(all.stdout, /p3/);
});

test('Docker API: create 201 {Id, Warning}, 409 duplicate, 404 on missing, list filters as a list, events', async () => {
  const since = Math.floor(Date.now() / 1000) - 1;
  const c = await d.api('POST', '/v1.41/networks/create', {
    Name: 'apinet',
    CheckDuplicate: true,
    Labels: { 'com.docker.compose.project': 'x' },
    Attachable: true,
  });
  assert.equal(c.status, 201);
  const { Id, Warning } = c.json as { Id: string; Warning: string };
  assert.equal(Warning, '');
  assert.match(Id, /^[0-9a-f]{64}$/);
  const dup = await d.api('POST', '/v1.41/networks/create', { Name: 'apinet', CheckDuplicate: true });
  assert.equal(dup.status, 409);
  assert.deepEqual(dup.json, { message: 'network with name apinet already exists' });
  const missing = await d.api('GET', '/v1.41/networks/x_default');
  assert.equal(missing.status, 404);
  assert.deepEqual(missing.json, { message: 'network x_default not found' });
  const list = await d.api('GET', `/v1.41/networks?filters=${encodeURIComponent(JSON.stringify({ label: ['com.docker.compose.project=x'] }))}`);
  assert.equal(list.status, 200);
  assert.deepEqual(
    (list.json as { Name: string }[]).map((n) => n.Name),
    ['apinet'],
  );
  const scoped = await d.api('GET', '/v1.41/networks/apinet?scope=swarm');
  assert.equal(scoped.status, 404);
  const del = await d.api('DELETE', '/v1.41/networks/apinet');
  assert.equal(del.status, 204);
  assert.equal(del.text, '');
  const del404 = await d.api('DELETE', '/v1.41/networks/apinet');
  assert.equal(del404.status, 404);
  const pr = await d.api('POST', '/v1.41/networks/prune');
  assert.deepEqual(pr.json, { NetworksDeleted: null });
  const ev = await d.docker([
    'events',
    '--since',
    String(since),
    '--until',
    String(Math.ceil(Date.now() / 1000) + 1),
    '--filter',
    'type=network',
    '--format',
    '{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.type}}',
  ]);
  assert.equal(ev.code, 0, ev.stderr);
  assert.match(ev.stdout, /^create apinet bridge\n(.*\n)*destroy apinet bridge\n/m);
});

test('keel CLI: network create/ls/inspect/rm', async () => {
  const c = await d.keel(['network', 'create', '--subnet', `10.${d.octet}.70.0/24`, 'k-net']);
  assert.equal(c.code, 0, c.stderr);
  const ls = await d.keel(['network', 'ls']);
  assert.equal(ls.code, 0);
  const r = rows(ls.stdout);
  assert.deepEqual(r[0], ['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE']);
  assert.deepEqual(
    r.slice(1).map((x) => x[1]),
    ['bridge', 'host', 'k-net', 'none'],
  );
  const f = await d.keel(['network', 'inspect', '-f', '{{.Name}}', 'k-net']);
  assert.equal(f.stdout, 'k-net\n');
  const rm = await d.keel(['network', 'rm', 'k-net', 'k-missing']);
  assert.equal(rm.code, 1);
  assert.equal(rm.stdout, 'k-net\n');
  assert.equal(rm.stderr, 'Error response from daemon: network k-missing not found\n');
});
