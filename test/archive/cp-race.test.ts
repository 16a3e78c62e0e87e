/**
 * docker cp / export / commit against trees that change under them: a
 * container swapping a directory with a symlink to a host directory, a host
 * user (not root) doing the same in the bind-mount source they own, and a
 * FIFO swapped in for a file. The host directory must stay unchanged and its
 * file must appear in no output; the daemon must keep answering. Then the
 * copy semantics of `docker cp` into a container (not a layer) and of
 * `keel cp` out of one (merging into an existing destination).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startSwapper } from '../../src/archive/testrace.ts';
import { packTar } from '../../src/archive/testtar.ts';
import { run, TestDaemon } from '../helpers/daemon.ts';

let d: TestDaemon;
const IMG = 'busybox:local';
const NET = ['--network', 'none'];
const SECRET = `HOST-SECRET-${randomBytes(6).toString('hex')}`;
const HOST_USER = 4242;
let hostDir: string;
let secretDir: string;

before(async () => {
  d = new TestDaemon('keel-cprace');
  await d.start();
  await d.importBusybox(IMG);
  // World-traversable, so the unprivileged "host user" can reach its bind source.
  hostDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-cprace-host-'));
  fs.chmodSync(hostDir, 0o755);
  secretDir = path.join(hostDir, 'secret');
  fs.mkdirSync(secretDir);
  fs.writeFileSync(path.join(secretDir, 'secret'), SECRET);
});

after(async () => {
  const ids = (await d.docker(['ps', '-aq'])).stdout.split('\n').filter(Boolean);
  if (ids.length) await d.docker(['rm', '-f', ...ids]);
  await d.cleanup();
  fs.rmSync(hostDir, { recursive: true, force: true });
});

function hostUnchanged(): void {
  assert.deepEqual(fs.readdirSync(secretDir), ['secret']);
  assert.equal(fs.readFileSync(path.join(secretDir, 'secret'), 'utf8'), SECRET);
}

/** The raw bytes a docker command writes to stdout. */
async function dockerBytes(args: string[]): Promise<{ code: number; out: Buffer; stderr: string }> {
  const { spawn } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    const c = spawn('docker', args, { env: { ...process.env, DOCKER_HOST: `unix://${d.socket}`, DOCKER_CONFIG: path.join(d.dir, 'docker-config') } });
    const out: Buffer[] = [];
    let stderr = '';
    c.stdout.on('data', (b: Buffer) => out.push(b));
    c.stderr.on('data', (b: Buffer) => (stderr += b));
    c.on('error', reject);
    c.on('close', (code) => resolve({ code: code ?? -1, out: Buffer.concat(out), stderr }));
  });
}

function noSecret(buf: Buffer, what: string): void {
  assert.ok(!buf.includes(SECRET), `${what} contains a host file`);
}

test('a container swapping a directory with a symlink to the host: cp in/out, export and commit stay inside', async () => {
  const loop =
    `mkdir -p /race/d && echo inside > /race/d/f && busybox ln -s ${secretDir} /race/s && ` +
    'while :; do busybox mv /race/d /race/t; busybox mv /race/s /race/d; busybox mv /race/t /race/s; done';
  const id = (await d.docker(['run', '-d', ...NET, IMG, 'sh', '-c', loop])).stdout.trim();
  const src = path.join(d.dir, 'cp-in-race.txt');
  fs.writeFileSync(src, 'copied\n');
  await new Promise((r) => setTimeout(r, 500));
  for (let i = 0; i < 4; i++) {
    const out = await dockerBytes(['cp', `${id}:/race`, '-']);
    assert.equal(out.code, 0, out.stderr);
    noSecret(out.out, 'docker cp out');
    for (const p of ['/race/d', '/race/s']) noSecret((await dockerBytes(['cp', `${id}:${p}/.`, '-'])).out, `docker cp ${p} out`);
    await d.docker(['cp', src, `${id}:/race/d/`]);
    await d.docker(['cp', src, `${id}:/race/s/`]);
    hostUnchanged();
    const exp = await dockerBytes(['export', id]);
    assert.equal(exp.code, 0, exp.stderr);
    noSecret(exp.out, 'docker export');
    const c = await d.docker(['commit', id, `raced:${i}`]);
    assert.equal(c.code, 0, c.stderr);
    const cid = (await d.docker(['create', `raced:${i}`, 'true'])).stdout.trim();
    noSecret((await dockerBytes(['export', cid])).out, 'the committed image');
    await d.docker(['rm', cid]);
    await d.docker(['rmi', `raced:${i}`]);
  }
  // The loop really ran, and the copies landed inside the container.
  // One look can fall between two renames of the loop (only d and t present, d the dangling link): look again.
  let seen = '';
  for (let i = 0; i < 20 && !/cp-in-race\.txt|f/.test(seen); i++)
    seen = (await d.docker(['exec', id, 'sh', '-c', 'ls /race; ls /race/d/ /race/s/ 2>/dev/null'])).stdout;
  assert.match(seen, /cp-in-race\.txt|f/);
  hostUnchanged();
  await d.docker(['rm', '-f', id]);
});

test('a host user swapping directories with symlinks in its bind-mount source: cp in and out stay inside', async () => {
  const bind = path.join(hostDir, 'bind');
  const PAIRS = 8;
  fs.mkdirSync(bind);
  fs.lchownSync(bind, HOST_USER, HOST_USER);
  const pairs: [string, string][] = [];
  for (let i = 0; i < PAIRS; i++) {
    const dir = path.join(bind, `d${i}`);
    const link = path.join(bind, `s${i}`);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'f'), 'inside');
    fs.symlinkSync(secretDir, link);
    for (const p of [dir, path.join(dir, 'f'), link]) fs.lchownSync(p, HOST_USER, HOST_USER);
    pairs.push([dir, link]);
  }
  const id = (await d.docker(['run', '-d', ...NET, '-v', `${bind}:/data`, IMG, 'sleep', '1000'])).stdout.trim();
  const src = path.join(d.dir, 'cp-in-bind.txt');
  fs.writeFileSync(src, 'copied\n');
  const swapper = await startSwapper(pairs[0]![0], pairs[0]![1], { uid: HOST_USER, gid: HOST_USER, more: pairs.slice(1) });
  let swaps: number;
  try {
    const tar = await packTar([
      { name: 'cp-in-bind.txt', body: 'copied' },
      { name: 'sub/', type: 'directory' },
      { name: 'sub/x', body: 'x' },
    ]);
    for (let i = 0; i < 25; i++) {
      // Each walk of /data passes every swapped directory: PAIRS chances per copy to be led outside.
      const out = await d.getArchive(id, '/data');
      assert.equal(out.status, 200);
      noSecret(out.body, 'GET archive /data');
      noSecret((await d.getArchive(id, `/data/d${i % PAIRS}/.`)).body, 'GET archive of a raced directory');
      await d.putArchive(id, `/data/d${i % PAIRS}`, tar);
      if (i % 8 === 0) {
        noSecret((await dockerBytes(['cp', `${id}:/data`, '-'])).out, 'docker cp /data out');
        await d.docker(['cp', src, `${id}:/data/d${i % PAIRS}/`]);
      }
      hostUnchanged();
    }
  } finally {
    swaps = await swapper.stop();
  }
  assert.ok(swaps > 100, `the race ran (${swaps} swaps)`);
  hostUnchanged();
  await d.docker(['rm', '-f', id]);
});

test('FIFOs (also swapped in for a file) never block cp out, export or the daemon', async () => {
  const bind = path.join(hostDir, 'fifo-bind');
  fs.mkdirSync(bind);
  fs.writeFileSync(path.join(bind, 'file'), 'data');
  const mk = await run(['mkfifo', path.join(bind, 'fifo')]);
  assert.equal(mk.code, 0, mk.stderr);
  for (const p of [bind, path.join(bind, 'file'), path.join(bind, 'fifo')]) fs.lchownSync(p, HOST_USER, HOST_USER);
  const id = (await d.docker(['run', '-d', ...NET, '-v', `${bind}:/data`, IMG, 'sh', '-c', 'busybox mkfifo /pipe && sleep 1000'])).stdout.trim();
  await new Promise((r) => setTimeout(r, 300));
  const swapper = await startSwapper(path.join(bind, 'file'), path.join(bind, 'fifo'), { uid: HOST_USER, gid: HOST_USER });
  let worst = 0;
  let pinging = true;
  const pinger = (async () => {
    while (pinging) {
      const t = Date.now();
      assert.ok(await d.ping(), 'the daemon answers /_ping');
      worst = Math.max(worst, Date.now() - t);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  try {
    for (let i = 0; i < 25; i++) {
      for (const p of ['/data', '/data/file', '/data/fifo', '/pipe']) {
        const out = await d.getArchive(id, p);
        assert.ok(out.status === 200 || out.status === 404, `GET archive ${p}: ${out.status} ${out.body}`);
      }
      if (i % 10 === 0) {
        const exp = await dockerBytes(['export', id]);
        assert.equal(exp.code, 0, exp.stderr);
      }
    }
  } finally {
    pinging = false;
    await pinger;
    await swapper.stop();
  }
  assert.ok(worst < 5000, `/_ping took ${worst} ms`);
  const list = await run(['sh', '-c', `DOCKER_HOST=unix://${d.socket} docker cp ${id}:/pipe - | tar -tvf -`]);
  assert.match(list.stdout, /^p/m, 'the FIFO is archived as a FIFO');
  await d.docker(['rm', '-f', id]);
});

test('docker cp into a container is a copy, not a layer: whiteout names are files, no deletes, never across a mount', async () => {
  const vol = path.join(hostDir, 'vol');
  fs.mkdirSync(vol);
  fs.writeFileSync(path.join(vol, 'keep'), 'kept');
  const id = (
    await d.docker(['run', '-d', ...NET, '-v', `${vol}:/data`, IMG, 'sh', '-c', 'mkdir /dir && echo lower > /dir/lower && echo f > /x && sleep 1000'])
  ).stdout.trim();
  await new Promise((r) => setTimeout(r, 300));
  const wh = await packTar([
    { name: '.wh.data', body: 'w' },
    { name: 'dir/.wh..wh..opq', body: '' },
    { name: 'dir/.wh.lower', body: 'w2' },
    { name: 'data/.wh.keep', body: 'w3' },
  ]);
  const r1 = await d.docker(['cp', '-', `${id}:/`], { input: wh });
  assert.equal(r1.code, 0, r1.stderr);
  const ls = await d.docker(['exec', id, 'sh', '-c', 'ls -a / /dir /data']);
  assert.match(ls.stdout, /^\.wh\.data$/m);
  assert.match(ls.stdout, /^\.wh\.\.wh\.\.opq$/m);
  assert.match(ls.stdout, /^lower$/m, 'an opaque marker deletes nothing');
  assert.match(ls.stdout, /^\.wh\.lower$/m);
  assert.equal(fs.readFileSync(path.join(vol, 'keep'), 'utf8'), 'kept');
  assert.equal(fs.readFileSync(path.join(vol, '.wh.keep'), 'utf8'), 'w3');
  // `data` as a file would replace the mount point: refused, the volume stays.
  const r2 = await d.docker(['cp', '-', `${id}:/`], { input: await packTar([{ name: 'data', body: 'file' }]) });
  assert.notEqual(r2.code, 0);
  assert.match(r2.stderr, /overwrite directory/);
  assert.equal(fs.readFileSync(path.join(vol, 'keep'), 'utf8'), 'kept');
  assert.equal((await d.docker(['exec', id, 'cat', '/data/keep'])).stdout, 'kept');
  // Straight to the API without noOverwriteDirNonDir: still no file over a directory; a directory may replace a file.
  const fileOverDir = await d.putArchive(id, '/', await packTar([{ name: 'dir', body: 'file' }]));
  assert.equal(fileOverDir.status, 400, fileOverDir.body);
  const dirOverFile = await d.putArchive(
    id,
    '/',
    await packTar([
      { name: 'x/', type: 'directory' },
      { name: 'x/y', body: 'y' },
    ]),
  );
  assert.equal(dirOverFile.status, 200, dirOverFile.body);
  assert.equal((await d.docker(['exec', id, 'cat', '/x/y'])).stdout, 'y');
  // With noOverwriteDirNonDir (what the CLI sends), a directory does not replace a file either.
  await d.docker(['exec', id, 'sh', '-c', 'echo f > /z']);
  const noOver = await d.putArchive(id, '/', await packTar([{ name: 'z/', type: 'directory' }]), '&noOverwriteDirNonDir=true');
  assert.equal(noOver.status, 400, noOver.body);
  assert.equal((await d.docker(['exec', id, 'cat', '/z'])).stdout, 'f\n');
  await d.docker(['rm', '-f', id]);
});

test('keel cp out of a container merges into an existing destination, as docker cp does', async () => {
  const id = (
    await d.docker([
      'run',
      '-d',
      ...NET,
      IMG,
      'sh',
      '-c',
      'mkdir -p /src/sub && echo a > /src/a && echo b > /src/sub/b && chown -R 1234:1234 /src/sub && sleep 1000',
    ])
  ).stdout.trim();
  await new Promise((r) => setTimeout(r, 300));
  const base = path.join(d.dir, 'merge');
  const into = path.join(base, 'into');
  fs.mkdirSync(path.join(into, 'src'), { recursive: true });
  fs.writeFileSync(path.join(into, 'src', 'old'), 'old');
  fs.writeFileSync(path.join(into, 'src', 'a'), 'replaced');
  const r1 = await d.keel(['cp', `${id}:/src`, into]);
  assert.equal(r1.code, 0, r1.stderr);
  assert.equal(fs.readFileSync(path.join(into, 'src', 'old'), 'utf8'), 'old');
  assert.equal(fs.readFileSync(path.join(into, 'src', 'a'), 'utf8'), 'a\n');
  assert.equal(fs.readFileSync(path.join(into, 'src', 'sub', 'b'), 'utf8'), 'b\n');
  const contents = path.join(base, 'contents');
  fs.mkdirSync(contents);
  fs.writeFileSync(path.join(contents, 'z'), 'z');
  const r2 = await d.keel(['cp', `${id}:/src/.`, contents]);
  assert.equal(r2.code, 0, r2.stderr);
  assert.deepEqual(fs.readdirSync(contents).sort(), ['a', 'sub', 'z']);
  const fresh = path.join(base, 'fresh');
  const r3 = await d.keel(['cp', `${id}:/src`, fresh]);
  assert.equal(r3.code, 0, r3.stderr);
  assert.deepEqual(fs.readdirSync(fresh).sort(), ['a', 'sub']);
  // Owned by who ran the copy (root here), not by the container's uid 1234: the docker CLI extracts with NoLchown.
  for (const p of [path.join(fresh, 'sub'), path.join(fresh, 'sub', 'b')]) assert.deepEqual([fs.lstatSync(p).uid, fs.lstatSync(p).gid], [0, 0], p);
  const file = path.join(base, 'renamed.txt');
  const r4 = await d.keel(['cp', `${id}:/src/a`, file]);
  assert.equal(r4.code, 0, r4.stderr);
  assert.equal(fs.readFileSync(file, 'utf8'), 'a\n');
  // The same flows with the docker CLI give the same trees.
  const dockerInto = path.join(base, 'docker-into');
  fs.mkdirSync(path.join(dockerInto, 'src'), { recursive: true });
  fs.writeFileSync(path.join(dockerInto, 'src', 'old'), 'old');
  assert.equal((await d.docker(['cp', `${id}:/src`, dockerInto])).code, 0);
  assert.deepEqual(fs.readdirSync(path.join(dockerInto, 'src')).sort(), fs.readdirSync(path.join(into, 'src')).sort());
  assert.equal(fs.lstatSync(path.join(dockerInto, 'src', 'sub', 'b')).uid, fs.lstatSync(path.join(into, 'src', 'sub', 'b')).uid);
  await d.docker(['rm', '-f', id]);
});
