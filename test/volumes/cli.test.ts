import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { TestDaemon } from '../helpers/daemon.ts';

const d = new TestDaemon('keel-volumes');
before(async () => {
  await d.start();
});
after(async () => {
  await d.cleanup();
});

async function ok(args: string[]): Promise<string> {
  const r = await d.docker(args);
  assert.equal(r.code, 0, `docker ${args.join(' ')} failed: ${r.stderr}\n${d.log.slice(-2000)}`);
  return r.stdout;
}

test("docker volume create / ls / inspect / rm with dockerd's shapes", async () => {
  assert.equal(await ok(['volume', 'create', 'apires-vol']), 'apires-vol\n');
  assert.equal(await ok(['volume', 'ls']), 'DRIVER    VOLUME NAME\nlocal     apires-vol\n');
  const [v] = JSON.parse(await ok(['volume', 'inspect', 'apires-vol']));
  assert.deepEqual(Object.keys(v).sort(), ['CreatedAt', 'Driver', 'Labels', 'Mountpoint', 'Name', 'Options', 'Scope']);
  assert.equal(v.Name, 'apires-vol');
  assert.equal(v.Driver, 'local');
  assert.equal(v.Scope, 'local');
  assert.equal(v.Labels, null);
  assert.equal(v.Options, null);
  assert.equal(v.Mountpoint, path.join(d.dataRoot, 'volumes/apires-vol/_data'));
  assert.match(v.CreatedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.ok(fs.statSync(v.Mountpoint).isDirectory());
  assert.equal(await ok(['volume', 'rm', 'apires-vol']), 'apires-vol\n');
  assert.equal(fs.existsSync(v.Mountpoint), false);
  const missing = await d.docker(['volume', 'inspect', 'apires-vol']);
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr, 'Error response from daemon: get apires-vol: no such volume\n');
  const rmMissing = await d.docker(['volume', 'rm', 'apires-vol']);
  assert.equal(rmMissing.code, 1);
  assert.equal(rmMissing.stderr, 'Error response from daemon: get apires-vol: no such volume\n');
});

test('labels, options, filters, -q and --format', async () => {
  await ok(['volume', 'create', '--label', 'team=a', '--label', 'x', 'lab1']);
  await ok(['volume', 'create', '-d', 'local', '-o', 'type=tmpfs', '-o', 'device=tmpfs', '-o', 'o=size=10m', 'tmp1']);
  const anon = (await ok(['volume', 'create'])).trim();
  assert.match(anon, /^[0-9a-f]{64}$/);
  const [t] = JSON.parse(await ok(['volume', 'inspect', 'tmp1']));
  assert.deepEqual(t.Options, { type: 'tmpfs', device: 'tmpfs', o: 'size=10m' });
  const [l] = JSON.parse(await ok(['volume', 'inspect', 'lab1']));
  assert.deepEqual(l.Labels, { team: 'a', x: '' });
  assert.equal(await ok(['volume', 'ls', '-q', '--filter', 'label=team=a']), 'lab1\n');
  assert.equal(await ok(['volume', 'ls', '-q', '--filter', 'name=tmp']), 'tmp1\n');
  assert.equal(await ok(['volume', 'ls', '-q', '--filter', 'dangling=true', '--filter', 'name=^(lab|tmp)']), 'lab1\ntmp1\n');
  assert.equal(await ok(['volume', 'ls', '--format', '{{.Name}} {{.Driver}}', '--filter', 'label=x']), 'lab1 local\n');
  assert.equal(await ok(['volume', 'inspect', '--format', '{{.Mountpoint}}', 'lab1']), path.join(d.dataRoot, 'volumes/lab1/_data') + '\n');
  const bad = await d.docker(['volume', 'ls', '--filter', 'bogus=1']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /invalid filter 'bogus'/);
  const badName = await d.docker(['volume', 'create', 'a/b']);
  assert.notEqual(badName.code, 0);
  assert.match(badName.stderr, /"a\/b" includes invalid characters for a local volume name/);
  const badOpt = await d.docker(['volume', 'create', '-o', 'size=1', 'v9']);
  assert.match(badOpt.stderr, /invalid option key: "size"/);
  const badDriver = await d.docker(['volume', 'create', '-d', 'nfs', 'v9']);
  assert.notEqual(badDriver.code, 0);
  for (const n of ['lab1', 'tmp1', anon]) await ok(['volume', 'rm', n]);
});

test('prune removes all unused volumes and reports the space', async () => {
  await ok(['volume', 'create', 'p1']);
  await ok(['volume', 'create', '--label', 'keep=1', 'p2']);
  fs.writeFileSync(path.join(d.dataRoot, 'volumes/p1/_data/f'), Buffer.alloc(5000));
  const out = await ok(['volume', 'prune', '-f', '--filter', 'label!=keep']);
  assert.equal(out, 'Deleted Volumes:\np1\n\nTotal reclaimed space: 5kB\n');
  assert.equal(await ok(['volume', 'ls', '-q']), 'p2\n');
  assert.equal(await ok(['volume', 'prune', '-f']), 'Deleted Volumes:\np2\n\nTotal reclaimed space: 0B\n');
  assert.equal(await ok(['volume', 'prune', '-f']), 'Total reclaimed space: 0B\n');
});

test('the keel CLI speaks the same endpoints', async () => {
  const k = async (args: string[]) => {
    const r = await d.keel(args);
    assert.equal(r.code, 0, `keel ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  assert.equal(await k(['volume', 'create', '--name', 'kv1', '--label', 'a=b']), 'kv1\n');
  assert.equal(await k(['volume', 'ls']), 'DRIVER    VOLUME NAME\nlocal     kv1\n');
  assert.equal(JSON.parse(await k(['volume', 'inspect', 'kv1']))[0].Labels.a, 'b');
  assert.equal(await k(['volume', 'ls', '-q', '-f', 'dangling=true']), 'kv1\n');
  assert.equal(await k(['volume', 'rm', 'kv1']), 'kv1\n');
  const r = await d.keel(['volume', 'inspect', 'kv1']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'Error response from daemon: get kv1: no such volume\n');
  assert.equal(await k(['volume', 'prune', '-f']), 'Total reclaimed space: 0B\n');
});
