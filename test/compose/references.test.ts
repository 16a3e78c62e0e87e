import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { busyboxDaemon, project } from './helpers.ts';

/**
 * Services that reference others (volumes_from) and the
 * less common keys: what reaches the containers, and that the config hash
 * covers them as docker compose's does (a change recreates, nothing
 * changed recreates nothing).
 */
const d = busyboxDaemon('keel-compose-refs');

const compose = (period: number) => `services:
  data:
    image: busybox:local
    command: ["sh", "-c", "echo shared > /data/file; sleep 300"]
    volumes: [store:/data]
    stop_signal: SIGKILL
  reader:
    image: busybox:local
    command: ["sleep", "300"]
    volumes_from: ["data:ro"]
    cpu_period: ${period}
    cpu_quota: 50000
    label_file: ./labels.env
    labels: {tier: yaml}
    stop_signal: SIGKILL
volumes:
  store:
`;

test('volumes_from a service reaches the container, label_file its labels; the hash covers them as docker compose', async () => {
  const p = project(d, 'refs', { 'compose.yaml': compose(100000), 'labels.env': 'team=core\ntier=file\n' });
  const up = await p.compose(['up', '-d']);
  assert.equal(up.code, 0, `${up.stderr}\n${d.log.slice(-2000)}`);
  const inspect = async (n: string) => JSON.parse((await d.docker(['inspect', n])).stdout)[0];
  const data = await inspect('refs-data-1');
  const reader = await inspect('refs-reader-1');
  assert.deepEqual(reader.HostConfig.VolumesFrom, [`${data.Id}:ro`]);
  assert.equal(reader.HostConfig.CpuPeriod, 100000);
  assert.equal(reader.HostConfig.CpuQuota, 50000);
  assert.equal(reader.Config.Labels.team, 'core');
  assert.equal(reader.Config.Labels.tier, 'yaml', 'the service labels win over the label file');
  // the reader sees data's volume, read-only
  const cat = await d.docker([
    'exec',
    'refs-reader-1',
    'sh',
    '-c',
    'for i in 1 2 3 4 5 6 7 8 9 10; do [ -s /data/file ] && break; sleep 0.2; done; cat /data/file',
  ]);
  assert.equal(cat.stdout.trim(), 'shared');
  assert.notEqual((await d.docker(['exec', 'refs-reader-1', 'touch', '/data/x'])).code, 0);
  // the label is config --hash of the service, with data's container id in it (as docker compose hashes it)
  const hashOut = (await p.compose(['config', '--hash', 'reader'])).stdout.trim();
  assert.match(hashOut, /^reader [0-9a-f]{64}$/);
  assert.notEqual(reader.Config.Labels['com.docker.compose.config-hash'], hashOut.split(' ')[1], 'config --hash cannot know the container id');

  const again = await p.compose(['up', '-d']);
  assert.equal(again.code, 0, again.stderr);
  assert.equal((await inspect('refs-reader-1')).Id, reader.Id, 'nothing changed: nothing recreated');

  fs.writeFileSync(path.join(p.dir, 'compose.yaml'), compose(200000));
  const changed = await p.compose(['up', '-d']);
  assert.equal(changed.code, 0, changed.stderr);
  const after = await inspect('refs-reader-1');
  assert.notEqual(after.Id, reader.Id, 'a changed cpu_period recreates');
  assert.equal(after.HostConfig.CpuPeriod, 200000);
  assert.equal((await inspect('refs-data-1')).Id, data.Id, 'data is kept');

  // a running container cut off from its network is recreated on it, as docker compose does
  assert.equal((await d.docker(['network', 'disconnect', 'refs_default', 'refs-data-1'])).code, 0);
  const reconnect = await p.compose(['up', '-d']);
  assert.equal(reconnect.code, 0, reconnect.stderr);
  const data2 = await inspect('refs-data-1');
  assert.notEqual(data2.Id, data.Id);
  assert.deepEqual(Object.keys(data2.NetworkSettings.Networks), ['refs_default']);
  assert.equal((await p.compose(['down', '-v'])).code, 0);
});

test('a network whose configuration changed is made anew with its containers; a changed volume is kept with a warning', async () => {
  const file = (v: string) => `services:
  app:
    image: busybox:local
    command: ["sleep", "300"]
    stop_signal: SIGKILL
    networks: [mesh]
    volumes: [store:/store]
networks:
  mesh:
    labels: {revision: "${v}"}
volumes:
  store:
    labels: {revision: "${v}"}
`;
  const p = project(d, 'netchange', { 'compose.yaml': file('1') });
  assert.equal((await p.compose(['up', '-d'])).code, 0);
  const inspect = async (kind: string, n: string) => JSON.parse((await d.docker([kind, 'inspect', n])).stdout)[0];
  const net1 = await inspect('network', 'netchange_mesh');
  const app1 = await inspect('container', 'netchange-app-1');
  assert.match(net1.Labels['com.docker.compose.config-hash'], /^[0-9a-f]{64}$/);
  assert.match((await inspect('volume', 'netchange_store')).Labels['com.docker.compose.config-hash'], /^[0-9a-f]{64}$/);

  const same = await p.compose(['up', '-d']);
  assert.equal(same.code, 0, same.stderr);
  assert.equal((await inspect('network', 'netchange_mesh')).Id, net1.Id, 'unchanged: kept');

  fs.writeFileSync(path.join(p.dir, 'compose.yaml'), file('2'));
  const changed = await p.compose(['up', '-d']);
  assert.equal(changed.code, 0, changed.stderr);
  const net2 = await inspect('network', 'netchange_mesh');
  assert.notEqual(net2.Id, net1.Id);
  assert.equal(net2.Labels.revision, '2');
  const app2 = await inspect('container', 'netchange-app-1');
  assert.notEqual(app2.Id, app1.Id);
  assert.equal(app2.State.Running, true);
  assert.equal(app2.NetworkSettings.Networks.netchange_mesh.NetworkID, net2.Id);
  assert.match(changed.stderr, /volume "netchange_store" exists but doesn't match configuration in compose file/);
  assert.equal((await inspect('volume', 'netchange_store')).Labels.revision, '1', 'the volume and its data are kept');
  assert.equal((await p.compose(['down', '-v'])).code, 0);
});
