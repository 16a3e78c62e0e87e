import assert from 'node:assert/strict';
import { test } from 'node:test';
import { busyboxDaemon, project } from './helpers.ts';

/** Resource and security settings reach the container's HostConfig (and the kernel). */
const d = busyboxDaemon('keel-compose-settings');

test('limits, ulimits, sysctls, shm_size, capabilities, logging', async () => {
  const p = project(d, 'set', {
    'compose.yaml': `services:
  app:
    image: busybox:local
    command: ["sleep", "300"]
    stop_signal: SIGKILL
    mem_limit: 64m
    cpus: 0.5
    pids_limit: 50
    shm_size: 16m
    ulimits: {nofile: {soft: 512, hard: 1024}}
    sysctls: {net.ipv4.ip_forward: "1"}
    cap_add: [NET_ADMIN]
    cap_drop: [CHOWN]
    logging: {driver: json-file, options: {max-size: 1m}}
`,
  });
  const up = await p.compose(['up', '-d']);
  assert.equal(up.code, 0, `${up.stderr}\n${d.log.slice(-2000)}`);
  const [c] = JSON.parse((await d.docker(['inspect', 'set-app-1'])).stdout);
  const h = c.HostConfig;
  assert.equal(h.Memory, 64 * 1024 * 1024);
  assert.equal(h.NanoCpus, 5e8);
  assert.equal(h.PidsLimit, 50);
  assert.equal(h.ShmSize, 16 * 1024 * 1024);
  assert.deepEqual(h.Ulimits, [{ Name: 'nofile', Soft: 512, Hard: 1024 }]);
  assert.deepEqual(h.Sysctls, { 'net.ipv4.ip_forward': '1' });
  assert.deepEqual(h.CapAdd, ['NET_ADMIN']);
  assert.deepEqual(h.CapDrop, ['CHOWN']);
  const sh = async (cmd: string) => (await d.docker(['exec', 'set-app-1', 'sh', '-c', cmd])).stdout.trim();
  assert.match(await sh('grep "Max open files" /proc/1/limits'), /Max open files\s+512\s+1024\s/);
  assert.equal(await sh('cat /proc/sys/net/ipv4/ip_forward'), '1');
  assert.match(await sh('df -k /dev/shm | tail -n 1'), /\s16384\s/);
  assert.equal((await p.compose(['down'])).code, 0);
});
