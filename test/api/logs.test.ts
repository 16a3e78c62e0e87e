/**
 * Logging drivers honoured: max-size/max-file bound the disk whatever the
 * container writes, rotated files are still read by `docker logs`, the
 * driver is reported by docker's name, and `none` keeps nothing.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { TestDaemon } from '../helpers/daemon.ts';

const d = new TestDaemon('keel-logs');
before(async () => {
  await d.start();
  await d.importBusybox('bb:1');
});
after(() => d.cleanup());

function logDirFiles(id: string): { name: string; size: number; ino: number }[] {
  const dir = path.join(d.dataRoot, 'containers', id);
  return fs
    .readdirSync(dir)
    .filter((n) => n.startsWith('container.log'))
    .map((n) => {
      const st = fs.statSync(path.join(dir, n));
      return { name: n, size: st.size, ino: st.ino };
    });
}

/** Disk use of the log: distinct inodes only (.keep is a hard link to the live file). */
function diskUse(files: { size: number; ino: number }[]): number {
  const seen = new Map<number, number>();
  for (const f of files) seen.set(f.ino, f.size);
  return [...seen.values()].reduce((a, b) => a + b, 0);
}

test('json-file max-size=1m max-file=2: 66 MB of output stays within 2 MB of files, logs still read', async () => {
  // ~66 MB: 660k lines of 100 bytes, numbered so the end can be checked.
  const script = 'BEGIN { for (i = 0; i < 660000; i++) printf "%08d %091d\\n", i, 0 }';
  const r = await d.docker(['run', '--name', 'big', '--log-opt', 'max-size=1m', '--log-opt', 'max-file=2', 'bb:1', 'busybox', 'awk', script], {
    timeoutMs: 180_000,
  });
  assert.equal(r.code, 0, r.stderr);
  const id = (await d.docker(['inspect', '-f', '{{.Id}}', 'big'])).stdout.trim();
  const files = logDirFiles(id);
  const use = diskUse(files);
  assert.ok(use <= 2 * 1_000_000 + 64 * 1024, `log files use ${use} bytes: ${JSON.stringify(files)}`);
  assert.ok(
    files.some((f) => f.name === 'container.log.1'),
    `an older file is kept: ${JSON.stringify(files)}`,
  );
  const cfg = await d.docker(['inspect', '-f', '{{json .HostConfig.LogConfig}}', 'big']);
  assert.deepEqual(JSON.parse(cfg.stdout), { Type: 'json-file', Config: { 'max-file': '2', 'max-size': '1m' } });
  // The file is conmon's k8s-file, not docker's JSON lines: no path is given out as one (dockerd does the same for `local`).
  assert.equal((await d.docker(['inspect', '-f', '{{.LogPath}}', 'big'])).stdout.trim(), '');
  const tail = await d.docker(['logs', '--tail', '2', 'big']);
  assert.equal(tail.code, 0, tail.stderr);
  assert.deepEqual(
    tail.stdout
      .trim()
      .split('\n')
      .map((l) => l.slice(0, 8)),
    ['00659998', '00659999'],
  );
  // All of what is kept, in order: the older file's lines then the live one's, ending at the last line.
  const all = (await d.docker(['logs', 'big'])).stdout
    .trim()
    .split('\n')
    .map((l) => Number(l.slice(0, 8)));
  // The older file is full (~1 MB of k8s-file records, ~7000 lines); the live one holds 0 to 1 MB more.
  assert.ok(all.length >= 6000 && all.length <= 15_000, `${all.length} lines kept`);
  assert.equal(all.at(-1), 659999);
  for (let i = 1; i < all.length; i++) assert.ok(all[i]! > all[i - 1]!, `lines out of order at ${i}: ${all[i - 1]} then ${all[i]}`);
});

test('logs --tail of 40 MB without a newline: bounded output and daemon memory', async (t) => {
  const id = (await d.docker(['run', '-d', 'bb:1', 'sh', '-c', 'busybox yes | busybox tr -d "\\n" | busybox head -c 40000000; printf END'])).stdout.trim();
  assert.equal((await d.docker(['wait', id], { timeoutMs: 120_000 })).stdout.trim(), '0');
  const pid = d.child!.pid!;
  const rss = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  const start = rss();
  let peak = start;
  const sampler = setInterval(() => (peak = Math.max(peak, rss())), 50);
  const tail = await d.docker(['logs', '--tail', '1', id]);
  clearInterval(sampler);
  assert.equal(tail.code, 0, tail.stderr);
  t.diagnostic(`tail gave ${tail.stdout.length} bytes; daemon RSS peak +${(peak - start).toFixed(1)} MiB`);
  assert.ok(tail.stdout.endsWith('yyEND'), tail.stdout.slice(-20));
  // One endless line: the tail is cut at runtime/logs.ts TAIL_MAX_BYTES (16 MiB) from the end, not read whole.
  assert.ok(tail.stdout.length <= 17 << 20, `${tail.stdout.length} bytes`);
  assert.ok(peak - start < 100, `daemon RSS grew ${(peak - start).toFixed(0)} MiB for a tail`);
});

test('compress and the local driver: rotated files are gzipped and still read', async () => {
  // Paced (a short pause every 3000 lines): the daemon keeps the rotated files conmon gives up, and a writer
  // flat out on a loaded machine can rotate twice before the daemon looks (a known gap: see containers/logrotate.ts).
  const script = 'i=0; while [ $i -lt 60000 ]; do printf "%08d %091d\\n" $i 0; i=$((i+1)); [ $((i % 3000)) = 0 ] && sleep 0.2; done; true';
  const r = await d.docker([
    'run',
    '--name',
    'loc',
    '--log-driver',
    'local',
    '--log-opt',
    'max-size=1m',
    '--log-opt',
    'max-file=3',
    'bb:1',
    'sh',
    '-c',
    script,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const id = (await d.docker(['inspect', '-f', '{{.Id}}', 'loc'])).stdout.trim();
  const files = logDirFiles(id);
  assert.ok(
    files.some((f) => /\.gz$/.test(f.name)),
    `rotated files are compressed: ${JSON.stringify(files)}`,
  );
  assert.ok(diskUse(files) <= 3 * 1_000_000 + 64 * 1024);
  assert.equal((await d.docker(['inspect', '-f', '{{.HostConfig.LogConfig.Type}}', 'loc'])).stdout.trim(), 'local');
  const all = (await d.docker(['logs', 'loc'])).stdout
    .trim()
    .split('\n')
    .map((l) => Number(l.slice(0, 8)));
  assert.equal(all.at(-1), 59999);
  for (let i = 1; i < all.length; i++) assert.ok(all[i]! === all[i - 1]! + 1, `gap at ${i}: ${all[i - 1]} then ${all[i]}`);
});

test('log driver none keeps nothing; logs refuses as docker does; unknown drivers are refused', async () => {
  const r = await d.docker(['run', '--name', 'quiet', '--log-driver', 'none', 'bb:1', 'echo', 'hello']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'hello\n'); // attached output still arrives
  const id = (await d.docker(['inspect', '-f', '{{.Id}}', 'quiet'])).stdout.trim();
  assert.deepEqual(logDirFiles(id), []);
  const logs = await d.docker(['logs', 'quiet']);
  assert.notEqual(logs.code, 0);
  assert.match(logs.stderr, /configured logging driver does not support reading/);
  const bad = await d.docker(['run', '--log-driver', 'syslog', 'bb:1', 'true']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /logging driver "syslog" is not supported/);
  assert.equal((await d.docker(['run', '--name', 'dflt', 'bb:1', 'true'])).code, 0);
  assert.equal((await d.docker(['inspect', '-f', '{{.HostConfig.LogConfig.Type}}', 'dflt'])).stdout.trim(), 'json-file');
});

test('logs -f goes on across rotations', async () => {
  // 3000 numbered lines in batches, so the 100 kB files rotate a few times while the follower reads
  // (max-file=10 keeps every file).
  const script = 'i=0; while [ $i -lt 3000 ]; do printf "%08d %091d\\n" $i 0; i=$((i+1)); [ $((i % 150)) = 0 ] && sleep 0.3; done; true';
  const id = (await d.docker(['run', '-d', '--log-opt', 'max-size=100k', '--log-opt', 'max-file=10', 'bb:1', 'sh', '-c', script])).stdout.trim();
  const f = await d.docker(['logs', '-f', id]);
  assert.equal(f.code, 0, f.stderr);
  const seen = f.stdout
    .trim()
    .split('\n')
    .map((l) => Number(l.slice(0, 8)));
  assert.equal(seen.at(-1), 2999);
  for (let i = 1; i < seen.length; i++) assert.equal(seen[i], seen[i - 1]! + 1, `gap at ${i}: ${seen[i - 1]} then ${seen[i]}`);
  assert.equal(seen.length, 3000);
});

test('logs -f with a client that stops reading while a dozen files rotate by: no line lost', async () => {
  // 3000 lines of 1000 bytes into 100 kB files: ~30 rotations, one every ~0.4 s. The client reads nothing for
  // 6 s (past the ~230 kB its socket absorbs, the follower waits ~12 files behind the live one), then all.
  const script = 'BEGIN { for (i = 0; i < 3000; i++) { printf "%08d %0990d\\n", i, 0; if (i % 50 == 49) system("sleep 0.2") } }';
  const id = (await d.docker(['run', '-d', '--log-opt', 'max-size=100k', '--log-opt', 'max-file=20', 'bb:1', 'busybox', 'awk', script])).stdout.trim();
  const body = await new Promise<Buffer>((resolve, reject) => {
    http
      .get({ socketPath: d.socket, path: `/v1.41/containers/${id}/logs?follow=1&stdout=1&stderr=1` }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (b: Buffer) => chunks.push(b));
        res.on('end', () => resolve(Buffer.concat(chunks)));
        res.on('error', reject);
        res.pause();
        setTimeout(() => res.resume(), 6000);
      })
      .on('error', reject);
  });
  // A 1000-byte line can arrive in two records (conmon reads the pipe 8 KiB at a time): join the frames first.
  const out: Buffer[] = [];
  for (let off = 0; off + 8 <= body.length;) {
    const n = body.readUInt32BE(off + 4);
    out.push(body.subarray(off + 8, off + 8 + n));
    off += 8 + n;
  }
  const text = Buffer.concat(out).toString();
  assert.match(text.slice(0, 1000), /^00000000 0{990}\n/);
  const lines = text
    .split('\n')
    .filter(Boolean)
    .map((l) => Number(l.slice(0, 8)));
  assert.equal(lines.at(-1), 2999);
  for (let i = 0; i < lines.length; i++) if (lines[i] !== i) assert.fail(`line ${i} is ${lines[i]}`);
  assert.equal(lines.length, 3000);
});
