import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TestDaemon } from '../helpers/daemon.ts';
import { leftovers, settledLeftovers, NOTHING_LEFT, rawBuild, tarOf, writeContext } from './helpers.ts';

const d = new TestDaemon('keel-buildbad');
const LEGACY = { DOCKER_BUILDKIT: '0' };

before(async () => {
  await d.start();
  await d.importBusybox();
});
after(() => d.cleanup());

async function build(name: string, files: Record<string, string | { link: string }>, args: string[] = []): Promise<{ code: number; out: string }> {
  const ctx = writeContext(path.join(d.dir, name), files);
  const r = await d.docker(['build', ...args, ctx], { env: LEGACY });
  return { code: r.code, out: r.stdout + r.stderr };
}

describe('bad input to the builder: clear errors, nothing left behind', () => {
  test('a syntax error names the file and line', async () => {
    const r = await build('syntax', { Dockerfile: 'FROM busybox:local\nRUN true\nFOO bar\n' });
    assert.equal(r.code, 1);
    assert.match(r.out, /Dockerfile.*3.*unknown instruction: FOO/i);
    assert.deepEqual(await settledLeftovers(d), NOTHING_LEFT);
  });

  test('an unknown flag is refused', async () => {
    const r = await build('flag', { Dockerfile: 'FROM busybox:local\nCOPY --nope=1 a /a\n', a: 'a' });
    assert.notEqual(r.code, 0);
    assert.match(r.out, /nope/);
  });

  test('COPY ../x is outside the context', async () => {
    const r = await build('dotdot', { Dockerfile: 'FROM busybox:local\nCOPY ../x /x\n' });
    assert.notEqual(r.code, 0);
    assert.match(r.out, /outside the build context: \.\.\/x/);
    assert.deepEqual(await settledLeftovers(d), NOTHING_LEFT);
  });

  test('a symlink leaving the context is an error, and the host file is never read', async () => {
    fs.writeFileSync(path.join(d.dir, 'host-secret'), 'HOST-SECRET\n');
    for (const link of [path.join(d.dir, 'host-secret'), '../../host-secret']) {
      const r = await build('symlink', { Dockerfile: 'FROM busybox:local\nCOPY leak /leak\n', leak: { link } });
      assert.notEqual(r.code, 0, r.out);
      assert.match(r.out, /outside the build context/);
    }
    // A directory symlink in a source path as well.
    const dir = await build('symlink-dir', { Dockerfile: 'FROM busybox:local\nCOPY d/host-secret /leak\n', d: { link: d.dir } });
    assert.notEqual(dir.code, 0);
    const grep = spawnSync('grep', ['-rl', 'HOST-SECRET', path.join(d.dataRoot, 'overlay', 'layers')]);
    assert.equal(grep.stdout.toString(), '');
    assert.deepEqual(await settledLeftovers(d), NOTHING_LEFT);
  });

  test('a missing source and a missing Dockerfile', async () => {
    const r = await build('missing', { Dockerfile: 'FROM busybox:local\nCOPY nothere /x\n' });
    assert.notEqual(r.code, 0);
    assert.match(r.out, /nothere/);
    const ctx = writeContext(path.join(d.dir, 'nodf'), { a: 'a' });
    const raw = await rawBuild(d, tarOf(ctx), 'dockerfile=Dockerfile');
    assert.equal(raw.status, 400);
    assert.match(raw.lines[0]!, /Cannot locate specified Dockerfile: Dockerfile/);
  });

  test('ADD of a tar with escaping entries is refused and writes nothing outside', async () => {
    const dir = path.join(d.dir, 'evil');
    writeContext(dir, { Dockerfile: 'FROM busybox:local\nADD evil.tar /dest/\n' });
    const py = `import tarfile, io
t = tarfile.open('${dir}/evil.tar', 'w')
data = b'escaped\\n'
i = tarfile.TarInfo('../../../../../../tmp/keel-evil-${d.tag}'); i.size = len(data); t.addfile(i, io.BytesIO(data))
t.close()`;
    assert.equal(spawnSync('python3', ['-c', py]).status, 0);
    const r = await d.docker(['build', dir], { env: LEGACY });
    assert.notEqual(r.code, 0);
    assert.match(r.stdout + r.stderr, /climbs above the root/);
    assert.equal(fs.existsSync(`/tmp/keel-evil-${d.tag}`), false);
    assert.deepEqual(await settledLeftovers(d), NOTHING_LEFT);
  });

  test('a context with escaping entries is refused', async () => {
    const py = `import tarfile, io, sys
b = io.BytesIO(); t = tarfile.open(fileobj=b, mode='w')
for name, data in [('Dockerfile', b'FROM busybox:local\\n'), ('../../keel-ctx-evil-${d.tag}', b'x')]:
    i = tarfile.TarInfo(name); i.size = len(data); t.addfile(i, io.BytesIO(data))
t.close(); sys.stdout.buffer.write(b.getvalue())`;
    const tar = spawnSync('python3', ['-c', py]).stdout;
    const r = await rawBuild(d, tar, 't=evil');
    assert.equal(r.status, 400);
    assert.match(r.lines[0]!, /invalid build context/);
    assert.deepEqual(await settledLeftovers(d), NOTHING_LEFT);
  });

  test('a client that disconnects mid-RUN cancels the build and leaves nothing', async () => {
    const ctx = writeContext(path.join(d.dir, 'cancel'), { Dockerfile: 'FROM busybox:local\nRUN echo started; sleep 4242\n' });
    const body = tarOf(ctx);
    await new Promise<void>((resolve, reject) => {
      const req = http.request(
        { socketPath: d.socket, method: 'POST', path: '/v1.41/build?t=cancelled', headers: { 'Content-Type': 'application/x-tar' } },
        (res) => {
          res.on('data', (b: Buffer) => {
            if (b.toString().includes('started')) {
              req.destroy();
              resolve();
            }
          });
          res.on('error', () => {});
        },
      );
      req.on('error', () => {});
      setTimeout(() => reject(new Error('the RUN never started')), 30_000);
      req.end(body);
    });
    let left = await leftovers(d);
    for (let i = 0; i < 100 && JSON.stringify(left) !== JSON.stringify(NOTHING_LEFT); i++) {
      await new Promise((r) => setTimeout(r, 100));
      left = await leftovers(d);
    }
    assert.deepEqual(left, NOTHING_LEFT);
    assert.equal(spawnSync('pgrep', ['-f', 'sleep 4242']).status, 1);
    assert.equal((await d.docker(['images', '-q', 'cancelled'])).stdout, '');
  });

  test('POST /build/cancel ends a build in flight; a bad tag is refused before anything runs', async () => {
    const ctx = writeContext(path.join(d.dir, 'cancel-api'), { Dockerfile: 'FROM busybox:local\nRUN echo started; sleep 4343\n' });
    const building = rawBuild(d, tarOf(ctx), 'buildid=b1&t=cancelled2');
    for (let i = 0; i < 300 && spawnSync('pgrep', ['-f', 'sleep 4343']).status !== 0; i++) await new Promise((r) => setTimeout(r, 100));
    const res = await fetchUnix(d, 'POST', '/v1.41/build/cancel?id=b1');
    assert.equal(res, 200);
    const r = await building;
    assert.match(JSON.stringify(r.messages.at(-1)), /cancel/i);
    assert.deepEqual(await settledLeftovers(d), NOTHING_LEFT);
    const bad = await rawBuild(d, tarOf(ctx), 't=Bad%20Tag');
    assert.equal(bad.status, 400);
    assert.match(bad.lines[0]!, /invalid reference format/);
  });
});

describe('a client that goes away while sending the context', () => {
  test('leaves no temp dir behind', async () => {
    const ctx = writeContext(path.join(d.dir, 'halfway'), { Dockerfile: 'FROM busybox:local\n', big: 'x'.repeat(4 << 20) });
    const tar = tarOf(ctx);
    await new Promise<void>((resolve) => {
      const req = http.request({
        socketPath: d.socket,
        method: 'POST',
        path: '/v1.41/build',
        headers: { 'Content-Type': 'application/x-tar', 'Content-Length': String(tar.length) },
      });
      req.on('error', () => resolve());
      req.write(tar.subarray(0, tar.length >> 1), () =>
        setTimeout(() => {
          req.destroy();
          resolve();
        }, 300),
      );
    });
    assert.deepEqual(await settledLeftovers(d), NOTHING_LEFT);
    assert.equal(await d.ping(), true);
  });
});

function fetchUnix(d: TestDaemon, method: string, p: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: d.socket, method, path: p }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on('error', reject);
    req.end();
  });
}
