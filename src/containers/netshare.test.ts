import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { checkJoinedNetworkOptions } from './create.ts';
import { hostConfigOf } from './record.ts';
import type { ContainerSpec } from './spec.ts';
import { joinedContainer } from './network.ts';
import { hasJoiners, joinNetwork, networkFiles } from './netshare.ts';
import { ContainerStore } from './store.ts';
import { type ContainerRecord, ZERO_TIME } from './types.ts';

const hostConfig = (s: Partial<ContainerSpec>) => hostConfigOf({ image: 'x', ...s });

test('network mode container:<ref> is parsed and checked at create', () => {
  assert.equal(joinedContainer('container:web'), 'web');
  assert.equal(joinedContainer('container:'), '');
  assert.equal(joinedContainer('bridge'), undefined);
  assert.equal(joinedContainer('container'), undefined); // a network named "container", as in docker
  assert.equal(hostConfig({ networkMode: 'container:web' }).NetworkMode, 'container:web');
  assert.equal(hostConfig({ networkMode: `container:${'a'.repeat(64)}` }).NetworkMode, `container:${'a'.repeat(64)}`);
  assert.equal(hostConfig({ networkMode: 'container:/web' }).NetworkMode, 'container:/web');
  assert.throws(() => hostConfig({ networkMode: 'container:' }), {
    code: 'INVALID_ARGUMENT',
    message: 'Invalid network mode: invalid container format container:<name|id>',
  });
  for (const bad of ['container:a b', 'container:../x', 'container:-x', 'container:web\0', 'container:a:b']) {
    assert.throws(() => hostConfig({ networkMode: bad }), { code: 'INVALID_ARGUMENT', message: /is not a container name or ID/ }, bad);
  }
});

test('options that would configure a network of its own conflict with container:<ref>, with dockerd messages', () => {
  const check = (s: Partial<ContainerSpec>) => () => {
    const spec: ContainerSpec = { image: 'x', networkMode: 'container:web', ...s };
    checkJoinedNetworkOptions(spec, hostConfigOf(spec));
  };
  const conflict = (m: string) => ({ code: 'INVALID_ARGUMENT', message: `conflicting options: ${m}` });
  assert.throws(check({ hostname: 'h' }), conflict('hostname and the network mode'));
  assert.throws(check({ links: ['db:db'] }), conflict("container type network can't be used with links. This would result in undefined behavior"));
  assert.throws(check({ dns: ['192.0.2.1'] }), conflict('dns and the network mode'));
  assert.throws(check({ extraHosts: ['a:192.0.2.1'] }), conflict('custom host-to-IP mapping and the network mode'));
  assert.throws(check({ macAddress: '02:42:ac:11:00:02' }), conflict('mac-address and the network mode'));
  assert.throws(check({ endpoints: { 'container:web': { macAddress: '02:42:ac:11:00:02' } } }), conflict('mac-address and the network mode'));
  // -p also exposes the port: publishing is what docker reports.
  assert.throws(
    check({ exposedPorts: ['80/tcp'], portBindings: { '80/tcp': [{ hostPort: '8080' }] } }),
    conflict('port publishing and the container type network mode'),
  );
  assert.throws(check({ publishAllPorts: true }), conflict('port publishing and the container type network mode'));
  assert.throws(check({ exposedPorts: ['80/tcp'] }), conflict('port exposing and the container type network mode'));
  assert.throws(check({ endpoints: { 'container:web': { aliases: ['a'] } } }), {
    message: 'network-scoped alias is supported only for containers in user defined networks',
  });
  assert.throws(check({ endpoints: { x: { ipv4Address: '10.0.0.9' } } }), {
    message: 'user specified IP address is supported on user defined networks only',
  });
  // What the docker CLI sends for a plain `--network container:web` (decoded), and dockerd's accepted leftovers.
  check({ exposedPorts: [], endpoints: {}, portBindings: {}, links: null, dns: [], dnsSearch: ['example.org'], dnsOptions: ['ndots:2'] })();
  // The same options are fine on other modes.
  const other: ContainerSpec = { image: 'x', hostname: 'h', exposedPorts: ['80/tcp'], dns: ['192.0.2.1'], publishAllPorts: true };
  checkJoinedNetworkOptions(other, hostConfigOf(other));
});

function record(
  id: string,
  name: string,
  o: { status?: ContainerRecord['state']['Status']; pid?: number; mode?: string; hostname?: string } = {},
): ContainerRecord {
  return {
    id,
    name,
    created: '2024-01-01T00:00:00Z',
    imageId: `sha256:${'f'.repeat(64)}` as ContainerRecord['imageId'],
    path: 'sh',
    args: [],
    config: { Hostname: o.hostname ?? id.slice(0, 12), Domainname: '', Labels: {}, Image: 'img' } as unknown as ContainerRecord['config'],
    hostConfig: { NetworkMode: o.mode ?? 'default' } as ContainerRecord['hostConfig'],
    state: { Status: o.status ?? 'running', Pid: o.pid ?? 0, ExitCode: 0, Error: '', StartedAt: ZERO_TIME, FinishedAt: ZERO_TIME, OOMKilled: false },
    restartCount: 0,
    manuallyStopped: false,
    hasBeenStarted: true,
  };
}

test('joining a network: docker errors, the target namespace and files, chains, joiners', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-netshare-'));
  try {
    const store = new ContainerStore(dir);
    await store.load();
    const a = record('a'.repeat(64), 'web', { pid: 4242, hostname: 'webhost' });
    const stopped = record('b'.repeat(64), 'stopped', { status: 'exited' });
    const restarting = record('c'.repeat(64), 'flappy', { status: 'restarting', pid: 7 });
    for (const r of [a, stopped, restarting]) await store.add(r);
    const files = networkFiles(store.containerDir(a.id));
    for (const f of Object.values(files)) fs.writeFileSync(f, 'x\n');

    const joiner = (mode: string) => record('d'.repeat(64), 'side', { status: 'created', mode });
    assert.throws(() => joinNetwork(store, joiner('container:missing')), { code: 'NOT_FOUND', message: 'No such container: missing' });
    assert.throws(() => joinNetwork(store, joiner(`container:${stopped.id}`)), {
      code: 'CONFLICT',
      message: `cannot join network of a non running container: ${stopped.id}`,
    });
    assert.throws(() => joinNetwork(store, joiner('container:flappy')), {
      code: 'CONFLICT',
      message: 'Container flappy is restarting, wait until the container is running',
    });
    const self = joiner('container:side');
    await store.add(self);
    assert.throws(() => joinNetwork(store, self), { message: 'cannot join own network' });

    const b = record('e'.repeat(64), 'side2', { status: 'created', mode: `container:${a.id}` });
    const joined = joinNetwork(store, b);
    assert.deepEqual(joined, { namespace: { path: '/proc/4242/ns/net' }, files });
    assert.equal(b.config.Hostname, 'webhost');
    assert.equal(b.networkOwner, a.id);
    assert.equal(hasJoiners(store, a.id), false, 'b is not running yet');
    b.state = { ...b.state, Status: 'running', Pid: 5151 };
    await store.add(b);
    assert.equal(hasJoiners(store, a.id), true);

    // c joins b, which joined a: b's process, a's files.
    const c = record('1'.repeat(64), 'chain', { status: 'created', mode: `container:${b.id}` });
    assert.deepEqual(joinNetwork(store, c), { namespace: { path: '/proc/5151/ns/net' }, files });
    assert.equal(c.networkOwner, a.id);

    // A joined host-network container leaves the joiner on the host's network; files that are gone are not mounted.
    const h = record('2'.repeat(64), 'hostnet', { pid: 99, mode: 'host' });
    await store.add(h);
    fs.writeFileSync(networkFiles(store.containerDir(h.id)).hosts, 'x\n');
    assert.deepEqual(joinNetwork(store, record('3'.repeat(64), 'onhost', { status: 'created', mode: 'container:hostnet' })), {
      namespace: 'host',
      files: { hosts: networkFiles(store.containerDir(h.id)).hosts },
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
