/**
 * The volume view of `docker cp` against a host user racing it: with a
 * volume nested under a bind mount (`-v /home/u/x:/data -v vol:/data/sub`),
 * the owner of /home/u/x swaps `sub` for a symlink to a host directory in a
 * loop while cp runs. A mount resolved by path would follow the symlink and
 * put the volume over the host directory; mounted onto a descriptor
 * resolved in the rootfs (volumes/hostview.ts), it never does, and every
 * mount the view made is gone afterwards.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startSwapper } from '../../src/archive/testrace.ts';
import { packTar } from '../../src/archive/testtar.ts';
import { mountPoints } from '../../src/volumes/mount.ts';
import { TestDaemon } from '../helpers/daemon.ts';

let d: TestDaemon;
const IMG = 'busybox:local';
const HOST_USER = 4242;
let hostDir: string;
let secretDir: string;

before(async () => {
  d = new TestDaemon('keel-cpmount');
  await d.start();
  await d.importBusybox(IMG);
  hostDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-cpmount-host-'));
  fs.chmodSync(hostDir, 0o755);
  secretDir = path.join(hostDir, 'secret');
  fs.mkdirSync(secretDir);
  fs.writeFileSync(path.join(secretDir, 'secret'), 'host');
});

after(async () => {
  const ids = (await d.docker(['ps', '-aq'])).stdout.split('\n').filter(Boolean);
  if (ids.length) await d.docker(['rm', '-f', ...ids]);
  await d.cleanup();
  // A failing run (the old path-based view) may have left the volume over the host directory.
  for (const m of await mountPoints()) if (m.startsWith(hostDir)) fs.existsSync(m) && (await import('node:child_process')).spawnSync('umount', ['-l', m]);
  fs.rmSync(hostDir, { recursive: true, force: true });
});

function request(method: string, p: string, body?: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const headers = body ? { 'Content-Type': 'application/x-tar', 'Content-Length': body.length } : {};
    const req = http.request({ socketPath: d.socket, method, path: p, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c)).on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) })).on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Mount points over the host directory (must never exist, not even for a moment). */
async function overHost(): Promise<string[]> {
  return (await mountPoints()).filter((m) => m.startsWith(hostDir));
}

/**
 * The view's mounts under the rootfs still there: GET archive unmounts when
 * its stream ends, a moment after the client read the last byte, so this
 * looks again for a while before calling them left behind.
 */
async function leftBehind(): Promise<string[]> {
  let found: string[] = [];
  for (let i = 0; i < 50; i++) {
    found = (await mountPoints()).filter((m) => m.startsWith(d.dir) && /\/data(\/sub)?$/.test(m));
    if (found.length === 0) return found;
    await new Promise((r) => setTimeout(r, 100));
  }
  return found;
}

test('a host user swapping the mount point of a nested volume: cp never mounts over a host directory, nothing leaks', async () => {
  const bind = path.join(hostDir, 'bind');
  fs.mkdirSync(bind);
  const sub = path.join(bind, 'sub');
  const link = path.join(bind, 'sublink');
  fs.mkdirSync(sub);
  fs.symlinkSync(secretDir, link);
  for (const p of [bind, sub, link]) fs.lchownSync(p, HOST_USER, HOST_USER);
  await d.docker(['volume', 'create', 'cpmountvol']);
  const id = (await d.docker(['run', '-d', '--network', 'none', '-v', `${bind}:/data`, '-v', 'cpmountvol:/data/sub', IMG, 'sleep', '1000'])).stdout.trim();
  const src = path.join(d.dir, 'cp-mount.txt');
  fs.writeFileSync(src, 'copied\n');
  const tar = await packTar([{ name: 'put.txt', body: 'put' }]);
  const swapper = await startSwapper(sub, link, { uid: HOST_USER, gid: HOST_USER });
  let swaps: number;
  try {
    for (let i = 0; i < 40; i++) {
      const got = await request('GET', `/v1.41/containers/${id}/archive?path=${encodeURIComponent('/data/sub')}`);
      assert.ok(got.status === 200 || got.status === 404, `GET archive: ${got.status} ${got.body}`);
      const put = await request('PUT', `/v1.41/containers/${id}/archive?path=${encodeURIComponent('/data')}`, tar);
      assert.equal(put.status, 200, String(put.body));
      if (i % 10 === 0) {
        await d.docker(['cp', src, `${id}:/data/`]);
        await d.docker(['cp', `${id}:/data/put.txt`, path.join(d.dir, `out-${i}.txt`)]);
      }
      assert.deepEqual(await overHost(), [], `round ${i}: the cp view mounted over a host directory`);
      assert.deepEqual(await leftBehind(), [], `round ${i}: a mount of the cp view was left behind`);
      assert.deepEqual(fs.readdirSync(secretDir), ['secret'], `round ${i}: the host directory changed`);
    }
  } finally {
    swaps = await swapper.stop();
  }
  assert.ok(swaps > 100, `the race ran (${swaps} swaps)`);
  assert.equal(fs.readFileSync(path.join(bind, 'put.txt'), 'utf8'), 'put');
  assert.equal(fs.readFileSync(path.join(d.dir, 'out-0.txt'), 'utf8'), 'put');
  await d.docker(['rm', '-f', id]);
  assert.deepEqual(await overHost(), []);
  assert.deepEqual(await leftBehind(), []);
});
