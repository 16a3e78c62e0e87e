/**
 * A client that goes away early ends only its own request: each streaming
 * endpoint is driven by a raw client that disconnects (right after the
 * headers, or in the middle of an upload), then the daemon must still
 * answer, and nothing the request held may be left: no extra mount under
 * the data root, no frozen cgroup, no temp file in the data root.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { TestDaemon } from '../helpers/daemon.ts';
import { startRegistry, type Registry } from '../registry/helpers.ts';

const d = new TestDaemon('keel-disc');
let reg: Registry;
let running = '';
let stopped = '';

before(async () => {
  await d.start();
  await d.importBusybox('bb:1');
  // A bigger image, so save/export stream for longer than the socket buffers hold.
  const big = path.join(d.dir, 'big');
  fs.mkdirSync(big);
  fs.writeFileSync(path.join(big, 'blob'), Buffer.alloc(24 << 20, 7));
  const r = await d.docker(['run', '--name', 'mk', '-v', `${big}:/src:ro`, 'bb:1', 'sh', '-c', 'cat /src/blob > /blob']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await d.docker(['commit', 'mk', 'big:1'])).code, 0);
  running = (await d.docker(['run', '-d', 'bb:1', 'sh', '-c', 'while true; do echo tick; sleep 0.1; done'])).stdout.trim();
  stopped = (await d.docker(['create', 'big:1', 'true'])).stdout.trim();
  assert.ok(running && stopped);
  reg = await startRegistry();
});
after(async () => {
  await reg?.stop();
  await d.cleanup();
});

/** Sends a raw request, waits for the status line (or `afterBytes` of upload), then drops the connection. */
function hangUp(
  method: string,
  p: string,
  o: { body?: Buffer; sendBytes?: number; headers?: Record<string, string>; waitHead?: boolean } = {},
): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(d.socket);
    let got = '';
    const headers = { Host: 'keel', ...(o.body ? { 'Content-Length': String(o.body.length), 'Content-Type': 'application/x-tar' } : {}), ...o.headers };
    s.on('connect', () => {
      s.write(
        `${method} ${p} HTTP/1.1\r\n${Object.entries(headers)
          .map(([k, v]) => `${k}: ${v}\r\n`)
          .join('')}\r\n`,
      );
      if (o.body) {
        s.write(o.body.subarray(0, o.sendBytes ?? o.body.length));
        if (o.sendBytes !== undefined) setTimeout(() => s.destroy(), 300);
      }
    });
    s.on('data', (b) => {
      got += b.toString('latin1');
      if (got.includes('\r\n\r\n') || got.length > 64) {
        // Stop reading at once: the server sees a full socket, then a reset.
        s.pause();
        setTimeout(() => s.destroy(), 200);
      }
    });
    s.on('error', () => {});
    s.on('close', () => resolve(got.split('\r\n')[0] ?? ''));
    setTimeout(() => s.destroy(), 15_000);
  });
}

function mountsUnder(root: string): string[] {
  return fs
    .readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1] ?? '')
    .filter((m) => m.startsWith(root))
    .sort();
}

function frozenCgroups(): string[] {
  const base = `/sys/fs/cgroup/freezer${d.cgroupParent}`;
  if (!fs.existsSync(base)) return [];
  return fs.readdirSync(base).filter((n) => {
    try {
      return fs.readFileSync(path.join(base, n, 'freezer.state'), 'utf8').trim() !== 'THAWED';
    } catch {
      return false;
    }
  });
}

function tempFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, depth: number) => {
    if (depth > 6) return;
    let ents: fs.Dirent[];
    try {
      ents = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of ents) {
      const p = path.join(dir, e.name);
      if (/\.(tmp|partial)$|^\.tmp-|^scratch-|^rm-/.test(e.name)) out.push(p);
      if (e.isDirectory() && !p.includes('/overlay/snapshots/') && !p.includes('/volumes/')) walk(p, depth + 1);
    }
  };
  walk(root, 0);
  const snapTmp = path.join(root, 'snapshots', 'tmp');
  if (fs.existsSync(snapTmp)) for (const n of fs.readdirSync(snapTmp)) out.push(path.join(snapTmp, n));
  return out;
}

async function settled(mountsBefore: string[]): Promise<void> {
  // Releases run after the close is noticed: give them a moment, then insist.
  for (let i = 0; i < 50; i++) {
    if (JSON.stringify(mountsUnder(d.dataRoot)) === JSON.stringify(mountsBefore) && !frozenCgroups().length && !tempFiles(d.dataRoot).length) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(await d.ping(), `daemon stopped answering:\n${d.log.slice(-3000)}`);
  assert.deepEqual(mountsUnder(d.dataRoot), mountsBefore, 'mounts left behind');
  assert.deepEqual(frozenCgroups(), [], 'frozen cgroups left behind');
  assert.deepEqual(tempFiles(d.dataRoot), [], 'temp files left behind');
}

test('every streaming endpoint survives a client that hangs up early', async (t) => {
  const before = mountsUnder(d.dataRoot);
  const tar = fs.readFileSync(path.join(d.dir, 'busybox-rootfs.tar'));
  const cases: [string, () => Promise<string>][] = [
    ['save by name', () => hangUp('GET', '/v1.41/images/big:1/get')],
    ['save by names=', () => hangUp('GET', '/v1.41/images/get?names=big:1&names=bb:1')],
    ['export (stopped container)', () => hangUp('GET', `/v1.41/containers/${stopped}/export`)],
    ['export (running container)', () => hangUp('GET', `/v1.41/containers/${running}/export`)],
    ['archive GET (stopped)', () => hangUp('GET', `/v1.41/containers/${stopped}/archive?path=/`)],
    ['archive GET (running, frozen)', () => hangUp('GET', `/v1.41/containers/${running}/archive?path=/`)],
    ['archive PUT, upload cut', () => hangUp('PUT', `/v1.41/containers/${running}/archive?path=/tmp`, { body: tar, sendBytes: 100_000 })],
    ['logs -f', () => hangUp('GET', `/v1.41/containers/${running}/logs?stdout=1&stderr=1&follow=1`)],
    ['stats stream', () => hangUp('GET', `/v1.41/containers/${running}/stats?stream=1`)],
    ['events', () => hangUp('GET', '/v1.41/events')],
    ['events with until', () => hangUp('GET', `/v1.41/events?since=0&until=${Math.floor(Date.now() / 1000) + 1}`)],
    ['load, upload cut', () => hangUp('POST', '/v1.41/images/load', { body: tar, sendBytes: 200_000 })],
    ['import, upload cut', () => hangUp('POST', '/v1.41/images/create?fromSrc=-&repo=cut', { body: tar, sendBytes: 200_000 })],
    [
      'push',
      async () => {
        assert.equal((await d.docker(['tag', 'big:1', `${reg.host}/big:1`])).code, 0);
        return hangUp('POST', `/v1.41/images/${reg.host}/big/push?tag=1`, { headers: { 'X-Registry-Auth': 'e30=' } });
      },
    ],
    [
      'pull',
      async () => {
        const p = await d.docker(['push', `${reg.host}/big:1`]);
        assert.equal(p.code, 0, p.stderr);
        assert.equal((await d.docker(['rmi', `${reg.host}/big:1`])).code, 0);
        return hangUp('POST', `/v1.41/images/create?fromImage=${reg.host}/big&tag=1`);
      },
    ],
    ['attach', () => hangUp('POST', `/v1.41/containers/${running}/attach?stream=1&stdout=1&stderr=1`, { headers: { Connection: 'Upgrade', Upgrade: 'tcp' } })],
    [
      'exec start',
      async () => {
        const r = await fetchJson('POST', `/v1.41/containers/${running}/exec`, {
          Cmd: ['sh', '-c', 'busybox yes | head -c 50000000'],
          AttachStdout: true,
          AttachStderr: true,
        });
        const body = Buffer.from(JSON.stringify({ Detach: false, Tty: false }));
        return hangUp('POST', `/v1.41/exec/${r.Id}/start`, { body, headers: { Connection: 'Upgrade', Upgrade: 'tcp', 'Content-Type': 'application/json' } });
      },
    ],
  ];
  for (const [name, fn] of cases) {
    await t.test(name, async () => {
      await fn();
      await settled(before);
    });
  }
  // The container kept running through all of it, and the next requests work.
  const ps = await d.docker(['ps', '-q', '--no-trunc']);
  assert.match(ps.stdout, new RegExp(running));
  const ls = await d.docker(['exec', running, 'ls', '/bin/busybox']);
  assert.equal(ls.code, 0, ls.stderr);
  assert.ok(!/uncaught|ERR_STREAM_PREMATURE_CLOSE/i.test(d.log), 'no uncaught stream errors in the log');
});

async function fetchJson(method: string, p: string, body: unknown): Promise<{ Id: string }> {
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const s = net.connect(d.socket, () =>
      s.write(
        `${method} ${p} HTTP/1.1\r\nHost: keel\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(data)}\r\n\r\n${data}`,
      ),
    );
    let got = '';
    s.on('data', (b) => (got += b));
    s.on('error', reject);
    s.on('end', () => resolve(JSON.parse(got.slice(got.indexOf('\r\n\r\n') + 4))));
  });
}
