/**
 * Volumes with containers through the real docker CLI against keel's
 * socket: `docker run -v`, `--mount`, `--tmpfs`, `--volumes-from`,
 * `docker volume rm` refused while a container uses the volume, and
 * `--rm` / `rm -v` removing anonymous volumes.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { busyboxRootfsTar, TestDaemon } from '../helpers/daemon.ts';

const d = new TestDaemon('keel-volrun');

async function ok(args: string[]): Promise<string> {
  const r = await d.docker(args);
  assert.equal(r.code, 0, `docker ${args.join(' ')} failed (${r.code}): ${r.stderr}\n${d.log.slice(-3000)}`);
  return r.stdout;
}

before(async () => {
  await d.start();
  const tar = busyboxRootfsTar(d.dir);
  await ok(['import', '--change', 'VOLUME /anon', tar, 'busybox:local']);
});
after(async () => {
  await d.docker(['rm', '-f', '-v', ...(await d.docker(['ps', '-aq'])).stdout.split('\n').filter(Boolean)]);
  await d.cleanup();
});

test('docker run -v name:/data: a second container reads what the first wrote', async () => {
  await ok(['run', '--rm', '-v', 'apires-data:/data', 'busybox:local', 'sh', '-c', 'echo x > /data/f']);
  assert.equal(await ok(['run', '--rm', '-v', 'apires-data:/data:ro', 'busybox:local', 'cat', '/data/f']), 'x\n');
  assert.equal(await ok(['volume', 'ls', '-q', '--filter', 'name=apires-data']), 'apires-data\n');
  const ro = await d.docker(['run', '--rm', '-v', 'apires-data:/data:ro', 'busybox:local', 'touch', '/data/g']);
  assert.notEqual(ro.code, 0);
  assert.match(ro.stderr, /Read-only file system/);
  await ok(['volume', 'rm', 'apires-data']);
});

test('docker volume rm is refused while a container uses the volume', async () => {
  await ok(['volume', 'create', 'apires-v2']);
  const id = (await ok(['create', '--name', 'apires-vu', '-v', 'apires-v2:/d', 'busybox:local', '/bin/true'])).trim();
  const r = await d.docker(['volume', 'rm', 'apires-v2']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, `Error response from daemon: remove apires-v2: volume is in use - [${id}]\n`);
  assert.equal(await ok(['volume', 'ls', '-q', '--filter', 'dangling=false', '--filter', 'name=apires']), 'apires-v2\n');
  const [c] = JSON.parse(await ok(['inspect', 'apires-vu']));
  const m = c.Mounts.find((x: { Destination: string }) => x.Destination === '/d');
  assert.deepEqual(m, {
    Type: 'volume',
    Name: 'apires-v2',
    Source: path.join(d.dataRoot, 'volumes/apires-v2/_data'),
    Destination: '/d',
    Driver: 'local',
    Mode: 'z',
    RW: true,
    Propagation: '',
  });
  const anon = c.Mounts.find((x: { Destination: string }) => x.Destination === '/anon').Name;
  await ok(['rm', '-v', 'apires-vu']);
  assert.equal(await ok(['volume', 'rm', 'apires-v2']), 'apires-v2\n');
  assert.equal((await d.docker(['volume', 'inspect', anon])).code, 1, 'rm -v removed the anonymous volume of the image VOLUME');
});

test('bind, --mount, --tmpfs and --volumes-from', async () => {
  const host = path.join(d.dir, 'hostdir');
  fs.mkdirSync(host);
  fs.writeFileSync(path.join(host, 'h'), 'host\n');
  assert.equal(await ok(['run', '--rm', '-v', `${host}:/x:ro`, 'busybox:local', 'cat', '/x/h']), 'host\n');
  const ro = await d.docker(['run', '--rm', '-v', `${host}:/x:ro`, 'busybox:local', 'touch', '/x/new']);
  assert.notEqual(ro.code, 0);
  assert.equal(fs.existsSync(path.join(host, 'new')), false);
  const missing = await d.docker(['run', '--rm', '--mount', 'type=bind,source=/nope-keel,target=/x', 'busybox:local', 'true']);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /invalid mount config for type "bind": bind source path does not exist: \/nope-keel/);
  const made = path.join(d.dir, 'made-by-v');
  await ok(['run', '--rm', '-v', `${made}:/m`, 'busybox:local', 'true']);
  assert.ok(fs.statSync(made).isDirectory(), '-v creates a missing host dir');
  assert.equal(await ok(['run', '--rm', '--tmpfs', '/t:size=1m', 'busybox:local', 'sh', '-c', 'grep " /t " /proc/mounts | cut -d" " -f3']), 'tmpfs\n');
  await ok(['run', '--name', 'donor', '-v', 'donated:/shared', 'busybox:local', 'sh', '-c', 'echo gift > /shared/g']);
  assert.equal(await ok(['run', '--rm', '--volumes-from', 'donor:ro', 'busybox:local', 'cat', '/shared/g']), 'gift\n');
  await ok(['rm', 'donor']);
  await ok(['volume', 'rm', 'donated']);
});

test('--rm removes the anonymous volumes of the image VOLUME and -v /path; named ones stay', async () => {
  const before = (await ok(['volume', 'ls', '-q'])).split('\n').filter(Boolean);
  assert.equal(await ok(['run', '--rm', '-v', '/extra', '-v', 'stays:/s', 'busybox:local', 'sh', '-c', 'ls -d /anon /extra']), '/anon\n/extra\n');
  const after = (await ok(['volume', 'ls', '-q'])).split('\n').filter(Boolean);
  assert.deepEqual(
    after.filter((v) => !before.includes(v)),
    ['stays'],
  );
  const id = (await ok(['create', 'busybox:local', 'true'])).trim();
  const anon = (await ok(['volume', 'ls', '-q', '--filter', 'dangling=false'])).trim();
  assert.match(anon, /^[0-9a-f]{64}$/);
  await ok(['rm', id]);
  assert.equal(await ok(['volume', 'ls', '-q', '--filter', 'dangling=true', '--filter', `name=${anon}`]), `${anon}\n`, 'rm without -v keeps it');
  const pruned = await ok(['volume', 'prune', '-f']);
  assert.match(pruned, new RegExp(`Deleted Volumes:\\n(.*\\n)*${anon}\\n`));
  assert.match(pruned, /stays/);
});

test('docker cp reads and writes volumes, binds and the network files, running or not; nothing stays mounted', async () => {
  const host = path.join(d.dir, 'cpbind');
  fs.mkdirSync(host);
  fs.writeFileSync(path.join(host, 'b'), 'bound\n');
  const out = path.join(d.dir, 'cpout');
  fs.mkdirSync(out);
  // The usual way to fill a volume: a created (never started) container as the door.
  const door = (await ok(['create', '--name', 'cp-door', '-v', 'cp-vol:/data', 'busybox:local', 'true'])).trim();
  fs.writeFileSync(path.join(out, 'in'), 'into-volume\n');
  await ok(['cp', path.join(out, 'in'), 'cp-door:/data/in']);
  assert.equal(fs.readFileSync(path.join(d.dataRoot, 'volumes/cp-vol/_data/in'), 'utf8'), 'into-volume\n');
  await ok(['rm', door]);
  const id = (
    await ok([
      'run',
      '-d',
      '--name',
      'cp-run',
      '--network',
      'none',
      '-v',
      'cp-vol:/data',
      '-v',
      `${host}:/b:ro`,
      'busybox:local',
      'sh',
      '-c',
      'echo made > /data/made; sleep 100',
    ])
  ).trim();
  for (let i = 0; i < 50 && !fs.existsSync(path.join(d.dataRoot, 'volumes/cp-vol/_data/made')); i++) await new Promise((r) => setTimeout(r, 50));
  await ok(['cp', 'cp-run:/data/made', path.join(out, 'made')]);
  assert.equal(fs.readFileSync(path.join(out, 'made'), 'utf8'), 'made\n');
  await ok(['cp', 'cp-run:/data', path.join(out, 'datadir')]);
  assert.deepEqual(fs.readdirSync(path.join(out, 'datadir')).sort(), ['in', 'made']);
  await ok(['cp', 'cp-run:/b/b', path.join(out, 'b')]);
  assert.equal(fs.readFileSync(path.join(out, 'b'), 'utf8'), 'bound\n');
  await ok(['cp', 'cp-run:/etc/hostname', path.join(out, 'hostname')]);
  assert.equal(fs.readFileSync(path.join(out, 'hostname'), 'utf8'), `${id.slice(0, 12)}\n`);
  const ro = await d.docker(['cp', path.join(out, 'in'), 'cp-run:/b/']);
  assert.notEqual(ro.code, 0, 'a read-only bind stays read-only for cp');
  assert.deepEqual(fs.readdirSync(host), ['b']);
  // Back to back and side by side: each cp freezes and thaws the container cleanly.
  await Promise.all([1, 2, 3].map(() => ok(['cp', 'cp-run:/data/made', '-'])));
  assert.equal((await ok(['inspect', '-f', '{{.State.Status}}', 'cp-run'])).trim(), 'running');
  const mounts = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.includes(`${id}/rootfs/`));
  assert.deepEqual(mounts, [], 'no cp mount is left under the rootfs');
  await ok(['rm', '-f', 'cp-run']);
  await ok(['volume', 'rm', 'cp-vol']);
});
