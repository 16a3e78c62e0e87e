/**
 * Hijacked streams (attach, exec) with real clients: backpressure from a
 * client that stops reading, dockerode's attach body not reaching stdin,
 * and a malformed URL escape answered as the client's error.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { after, before, test } from 'node:test';
import Docker from 'dockerode';
import { TestDaemon } from '../helpers/daemon.ts';
import { until } from '../helpers/wait.ts';

const d = new TestDaemon('keel-streams');
let docker: Docker;
before(async () => {
  await d.start();
  await d.importBusybox('bb:1');
  docker = new Docker({ socketPath: d.socket });
});
after(() => d.cleanup());

function rssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
}

/** Opens a hijacked stream and then never reads from it (what came with the answer's head goes to `first`). */
function stalledClient(path: string, body = '', first: Buffer[] = []): Promise<net.Socket> {
  return new Promise((resolve) => {
    const s = net.connect(d.socket, () => {
      s.write(
        `POST ${path} HTTP/1.1\r\nHost: keel\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      s.once('data', (b: Buffer) => {
        first.push(b);
        s.pause();
        resolve(s);
      });
    });
    s.on('error', () => {});
  });
}

/** Peak growth of the daemon's RSS (MiB) while a client holds the stream open for 12 s and reads nothing. */
async function rssGrowthWhileStalled(path: string, body?: string): Promise<number> {
  const pid = d.child!.pid!;
  const start = rssKiB(pid);
  const s = await stalledClient(path, body);
  let peak = start;
  for (let i = 0; i < 24; i++) {
    await new Promise((r) => setTimeout(r, 500));
    peak = Math.max(peak, rssKiB(pid));
  }
  s.destroy();
  return (peak - start) / 1024;
}

test('attach to a container writing `yes`, a client that never reads: the daemon stays flat', async (t) => {
  const id = (await d.docker(['run', '-d', 'bb:1', 'busybox', 'yes'])).stdout.trim();
  const growth = await rssGrowthWhileStalled(`/v1.41/containers/${id}/attach?stream=1&stdout=1&stderr=1`);
  // Unbounded, this grew ~10 MiB/s here (as fast as conmon relays `yes`): over 100 MiB in the stall. Paused, the
  // daemon holds a few socket and stream buffers (under 64 KiB each); the rest is GC noise.
  t.diagnostic(`daemon RSS grew ${growth.toFixed(1)} MiB`);
  assert.ok(growth < 24, `daemon RSS grew ${growth.toFixed(0)} MiB`);
  assert.ok(await d.ping());
  await d.docker(['rm', '-f', id]);
});

test('exec of `yes`, a client that never reads: the daemon stays flat', async (t) => {
  const id = (await d.docker(['run', '-d', 'bb:1', 'sleep', '600'])).stdout.trim();
  const ex = await docker.getContainer(id).exec({ Cmd: ['busybox', 'yes'], AttachStdout: true, AttachStderr: true });
  const growth = await rssGrowthWhileStalled(`/v1.41/exec/${ex.id}/start`, JSON.stringify({ Detach: false, Tty: false }));
  t.diagnostic(`daemon RSS grew ${growth.toFixed(1)} MiB`);
  assert.ok(growth < 24, `daemon RSS grew ${growth.toFixed(0)} MiB`);
  assert.ok(await d.ping());
  await d.docker(['rm', '-f', id]);
});

/**
 * Opens a hijacked stream, reads nothing for `stallMs` (while `during` runs), then reads it to its end.
 * Returns the stdout frames' text and the daemon's peak RSS growth (MiB) during the stall.
 */
async function stallThenRead(
  path: string,
  body: string,
  stallMs: number,
  during: () => Promise<void>,
  opened = async () => {},
): Promise<{ text: string; growth: number }> {
  const pid = d.child!.pid!;
  const start = rssKiB(pid);
  const chunks: Buffer[] = [];
  const s = await stalledClient(path, body, chunks);
  await opened();
  let peak = start;
  for (let t = 0; t < stallMs; t += 500) {
    await new Promise((r) => setTimeout(r, 500));
    peak = Math.max(peak, rssKiB(pid));
  }
  await during();
  const ended = new Promise((r) => s.once('close', r));
  s.on('data', (b: Buffer) => chunks.push(b));
  s.resume();
  await ended;
  const raw = Buffer.concat(chunks);
  let off = raw.indexOf('\r\n\r\n') + 4;
  const out: Buffer[] = [];
  while (off + 8 <= raw.length) {
    const n = raw.readUInt32BE(off + 4);
    if (raw[off] === 1) out.push(raw.subarray(off + 8, off + 8 + n));
    off += 8 + n;
  }
  return { text: Buffer.concat(out).toString(), growth: (peak - start) / 1024 };
}

function assertSeq(text: string, n: number): void {
  const lines = text.split('\n');
  assert.equal(lines.pop(), '');
  assert.equal(lines.length, n, `${lines.length} of ${n} lines`);
  for (let i = 0; i < n; i++) if (lines[i] !== String(i + 1)) assert.fail(`line ${i + 1} is ${JSON.stringify(lines[i])}`);
}

const SEQ = 3_000_000; // ~21 MB: `seq` writes it in well under a second when nothing holds it back

test('attach, a client that stops reading for 8 s: the container waits, then every line arrives in order', async (t) => {
  const id = (await d.docker(['create', 'bb:1', 'busybox', 'seq', String(SEQ)])).stdout.trim();
  // The attach is registered (to connect at the start) before its answer's head reaches the client.
  const { text, growth } = await stallThenRead(
    `/v1.41/containers/${id}/attach?stream=1&stdout=1&stderr=1`,
    '',
    8000,
    async () => {
      // Held back by the stalled reader, not finished and not dropping its output.
      const st = JSON.parse((await d.docker(['inspect', id])).stdout)[0].State;
      assert.equal(st.Running, true, 'seq ran to its end while its only reader was stalled');
    },
    async () => void (await d.docker(['start', id])),
  );
  t.diagnostic(`daemon RSS grew ${growth.toFixed(1)} MiB during the stall`);
  assertSeq(text, SEQ);
  assert.ok(growth < 24, `daemon RSS grew ${growth.toFixed(0)} MiB`);
  await d.docker(['rm', '-f', id]);
});

test('exec, a client that stops reading for 8 s: every line arrives in order', async (t) => {
  const id = (await d.docker(['run', '-d', 'bb:1', 'sleep', '600'])).stdout.trim();
  const ex = await docker.getContainer(id).exec({ Cmd: ['busybox', 'seq', String(SEQ)], AttachStdout: true, AttachStderr: true });
  const { text, growth } = await stallThenRead(`/v1.41/exec/${ex.id}/start`, JSON.stringify({ Detach: false, Tty: false }), 8000, async () => {
    assert.equal((await docker.getExec(ex.id).inspect()).Running, true, 'the exec ran to its end while its only reader was stalled');
  });
  t.diagnostic(`daemon RSS grew ${growth.toFixed(1)} MiB during the stall`);
  assertSeq(text, SEQ);
  assert.ok(growth < 24, `daemon RSS grew ${growth.toFixed(0)} MiB`);
  await d.docker(['rm', '-f', id]);
});

test('a client that reads slowly gets every byte, in order', async () => {
  const id = (await d.docker(['create', '-i', 'bb:1', 'sh', '-c', 'i=0; while [ $i -lt 20000 ]; do echo line$i; i=$((i+1)); done'])).stdout.trim();
  const r = await d.docker(['start', '-a', id]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 20000);
  assert.equal(lines[19999], 'line19999');
  await d.docker(['rm', '-f', id]);
});

test('dockerode attach with stdin: the JSON options body does not reach the container', async () => {
  const c = await docker.createContainer({
    Image: 'bb:1',
    Cmd: ['sh', '-c', 'head -c 5'],
    OpenStdin: true,
    StdinOnce: true,
    AttachStdin: true,
    AttachStdout: true,
  });
  const stream = await c.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true });
  const out: Buffer[] = [];
  stream.on('data', (b: Buffer) => out.push(b));
  await c.start();
  stream.write('hello');
  await c.wait();
  await until('the output on the attach stream', () => Buffer.concat(out).includes('hello'));
  // The output is framed (no TTY): strip 8-byte headers.
  const raw = Buffer.concat(out);
  let text = '';
  for (let off = 0; off + 8 <= raw.length;) {
    const n = raw.readUInt32BE(off + 4);
    text += raw.subarray(off + 8, off + 8 + n).toString();
    off += 8 + n;
  }
  assert.equal(text, 'hello');
  await c.remove({ force: true });
});

test('a malformed %-escape in the path or query is a 400 with a JSON message', async () => {
  for (const p of ['/v1.41/containers/%zz/json', '/v1.41/images/%/json', '/v1.41/containers/json?filters=%7', '/v1.41/images/a%2/history']) {
    const r = await fetchRaw('GET', p);
    assert.equal(r.status, 400, `${p}: ${r.body}`);
    assert.equal(r.type, 'application/json');
    assert.match(JSON.parse(r.body).message, /escape/);
  }
  assert.ok(await d.ping());
});

function fetchRaw(method: string, p: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(d.socket, () => s.write(`${method} ${p} HTTP/1.1\r\nHost: keel\r\nConnection: close\r\n\r\n`));
    let got = '';
    s.on('data', (b) => (got += b));
    s.on('error', reject);
    s.on('end', () => {
      const [head, body = ''] = got.split('\r\n\r\n');
      resolve({ status: Number(head!.split(' ')[1]), type: /content-type: ([^\r\n]+)/i.exec(head!)?.[1] ?? '', body });
    });
  });
}
