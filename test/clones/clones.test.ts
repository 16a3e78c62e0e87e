import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { run, TestDaemon } from '../helpers/daemon.ts';
import { du, frozenLayers, keelOk, mountsUnder, ok } from './helpers.ts';

const d = new TestDaemon('keel-clones');
before(async () => {
  await d.start();
  await d.importBusybox();
});
after(async () => {
  await d.cleanup();
});

const md5 = async (c: string, f: string) => (await ok(d, ['exec', c, 'busybox', 'md5sum', f])).split(' ')[0];
const exists = async (c: string, f: string) => (await d.docker(['exec', c, 'test', '-e', f])).code === 0;

test('clones of a stopped container share its data without copying; writes stay private; SRC keeps working; rm frees the frozen layer', async () => {
  const before = du(path.join(d.dataRoot, 'overlay/active')) + du(path.join(d.dataRoot, 'overlay/frozen'));
  // SRC writes 50 MB into its rootfs and a file into a named volume on its first start only.
  await ok(d, [
    'run',
    '-d',
    '--name',
    'src',
    '-v',
    'srcdata:/data',
    '-e',
    'ROLE=src',
    'busybox:local',
    'sh',
    '-c',
    'test -f /big || { head -c 52428800 /dev/urandom > /big; echo src > /data/who; }; exec sleep 3600',
  ]);
  for (let i = 0; i < 100 && !(await exists('src', '/data/who')); i++) await new Promise((r) => setTimeout(r, 100));
  const sum = await md5('src', '/big');
  await ok(d, ['stop', '-t', '0', 'src']);

  const t0 = performance.now();
  const names = (await keelOk(d, ['clone', 'src', '--count', '5', '--name-prefix', 'c'])).trim().split('\n');
  const cloneMs = performance.now() - t0;
  assert.deepEqual(names, ['c1', 'c2', 'c3', 'c4', 'c5']);
  console.log(`# 5 clones of a 50 MB container: ${cloneMs.toFixed(0)} ms (CLI included)`);
  await ok(d, ['start', ...names]);
  for (const c of names) {
    assert.equal(await md5(c, '/big'), sum, `${c} sees SRC's rootfs data`);
    assert.equal(await ok(d, ['exec', c, 'cat', '/data/who']), 'src\n', `${c} sees SRC's volume data`);
    assert.match(await ok(d, ['exec', c, 'env']), /ROLE=src/);
  }
  // Each clone has its own volume, labelled with its origin.
  const vols = (await ok(d, ['volume', 'ls', '-q', '--filter', 'label=keel.clone.origin=srcdata'])).trim().split('\n');
  assert.equal(vols.length, 5);
  const inspect = JSON.parse(await ok(d, ['inspect', 'c1']))[0];
  const c1vol = inspect.Mounts.find((m: { Destination: string }) => m.Destination === '/data').Name;
  assert.ok(vols.includes(c1vol));

  // A write in one clone is invisible to the others and to SRC.
  await ok(d, ['exec', 'c1', 'sh', '-c', 'echo c1 > /mine; echo c1 > /data/mine; echo changed > /data/who']);
  for (const c of names.slice(1)) {
    assert.equal(await exists(c, '/mine'), false);
    assert.equal(await exists(c, '/data/mine'), false);
    assert.equal(await ok(d, ['exec', c, 'cat', '/data/who']), 'src\n');
  }
  await ok(d, ['start', 'src']);
  assert.equal(await md5('src', '/big'), sum, 'SRC keeps its data');
  assert.equal(await exists('src', '/mine'), false);
  assert.equal(await ok(d, ['exec', 'src', 'cat', '/data/who']), 'src\n');
  // SRC's own new writes are invisible to the clones.
  await ok(d, ['exec', 'src', 'sh', '-c', 'echo again > /srcnew; echo again > /data/srcnew']);
  for (const c of names) {
    assert.equal(await exists(c, '/srcnew'), false);
    assert.equal(await exists(c, '/data/srcnew'), false);
  }

  // Removing SRC and its volume keeps the clones working.
  await ok(d, ['rm', '-f', 'src']);
  await ok(d, ['volume', 'rm', 'srcdata']);
  assert.equal(await md5('c2', '/big'), sum);
  assert.equal(await ok(d, ['exec', 'c2', 'cat', '/data/who']), 'src\n');
  assert.ok(frozenLayers(d).rootfs.length >= 1);

  // system df counts the frozen layers.
  const df = (await d.api('GET', '/system/df')).json;
  assert.ok(
    df.FrozenLayers.some((l: { Size: number; RefCount: number }) => l.Size >= 50 * 1024 * 1024 && l.RefCount === 5),
    JSON.stringify(df.FrozenLayers),
  );

  // The last clone gone, the frozen data goes too.
  await ok(d, ['rm', '-f', '-v', ...names]);
  assert.deepEqual(frozenLayers(d), { rootfs: [], volumes: [] });
  assert.equal((await ok(d, ['volume', 'ls', '-q'])).trim(), '');
  const afterBytes = du(path.join(d.dataRoot, 'overlay/active')) + du(path.join(d.dataRoot, 'overlay/frozen'));
  assert.ok(afterBytes - before < 1024 * 1024, `disk back: ${before} → ${afterBytes}`);
  assert.deepEqual(mountsUnder(d), []);
});

test('clone time does not grow with the data: 1 MB vs 1 GB upper dir', async () => {
  // The first clone freezes the upper dir (a rename); later ones reuse the frozen layer.
  const timeClone = async (name: string, mb: number) => {
    await ok(d, ['run', '--name', name, 'busybox:local', 'sh', '-c', `head -c ${mb * 1024 * 1024} /dev/zero > /fill`]);
    // The container's writes reach the disk first: the clone's own fsyncs must not pay for flushing them.
    await run(['sync']);
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const r = await d.api('POST', `/containers/${name}/clone`);
      times.push(performance.now() - t0);
      assert.equal(r.status, 201, r.text);
    }
    return { freeze: times[0]!, again: Math.min(times[1]!, times[2]!) };
  };
  const small = await timeClone('small', 1);
  const big = await timeClone('big', 1024);
  console.log(
    `# clone via the API, first (freezes the upper) / next: 1 MB upper ${small.freeze.toFixed(1)} / ${small.again.toFixed(1)} ms, 1 GB upper ${big.freeze.toFixed(1)} / ${big.again.toFixed(1)} ms`,
  );
  // Copying 1 GB takes seconds here; a rename does not (the bound leaves room for this machine's fsync stalls).
  assert.ok(big.freeze < Math.max(small.freeze * 3, 400), `freezing 1 GB (${big.freeze} ms) costs about what 1 MB does (${small.freeze} ms)`);
  const ids = (await ok(d, ['ps', '-aq'])).trim().split('\n');
  await ok(d, ['rm', '-f', '-v', ...ids]);
  assert.deepEqual(frozenLayers(d), { rootfs: [], volumes: [] });
});

test('bad input: missing SRC, bind mounts (warned, or refused with --strict), running SRC without --pause, bad counts', async () => {
  const missing = await d.keel(['clone', 'nosuch']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /No such container: nosuch/);
  assert.equal((await d.api('POST', '/containers/nosuch/clone')).status, 404);

  await ok(d, ['create', '--name', 'withbind', '-v', `${d.dir}:/host`, 'busybox:local', 'true']);
  const strict = await d.keel(['clone', '--strict', 'withbind']);
  assert.equal(strict.code, 1);
  assert.match(strict.stderr, /bind mounts .* are shared with clones, not cloned/);
  const warned = await d.api('POST', '/containers/withbind/clone');
  assert.equal(warned.status, 201);
  assert.match(warned.json.Warnings[0], /bind mounts are shared with the clones/);

  await ok(d, ['run', '-d', '--name', 'runner', 'busybox:local', 'sleep', '3600']);
  const running = await d.keel(['clone', 'runner']);
  assert.equal(running.code, 1);
  assert.match(running.stderr, /is running: stop it first .*--pause/);
  for (const c of ['0', '101', 'x']) assert.equal((await d.api('POST', `/containers/withbind/clone?count=${c}`)).status, 400, c);
  assert.equal((await d.api('POST', '/containers/withbind/clone?count=2&name=x')).status, 400);
  const ids = (await ok(d, ['ps', '-aq'])).trim().split('\n');
  await ok(d, ['rm', '-f', '-v', ...ids]);
});

test("a cloned volume keeps its root's owner and mode, in the clone and in the source (PostgreSQL checks its PGDATA's)", async () => {
  await ok(d, [
    'run',
    '--name',
    'owner',
    '-v',
    'ownerdata:/data',
    'busybox:local',
    'sh',
    '-c',
    'test -f /data/f || { chown 65534:65534 /data; chmod 700 /data; echo x > /data/f; }',
  ]);
  const clone = (await keelOk(d, ['clone', 'owner'])).trim();
  for (const c of [clone, 'owner']) {
    const r = await d.docker(['start', '-a', c]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await ok(d, ['run', '--rm', '--volumes-from', c, 'busybox:local', 'busybox', 'stat', '-c', '%u:%g %a', '/data']), '65534:65534 700\n', c);
  }
  await ok(d, ['rm', '-f', '-v', clone, 'owner']);
  await ok(d, ['volume', 'rm', 'ownerdata']);
  assert.deepEqual(frozenLayers(d), { rootfs: [], volumes: [] });
});

test('--pause clones a running container: frozen, copied, thawed', async () => {
  await ok(d, ['run', '-d', '--name', 'live', '-v', 'livedata:/data', 'busybox:local', 'sh', '-c', 'echo one > /f; echo one > /data/f; exec sleep 3600']);
  for (let i = 0; i < 100 && !(await exists('live', '/data/f')); i++) await new Promise((r) => setTimeout(r, 100));
  const name = (await keelOk(d, ['clone', '--pause', '--name', 'livecopy', 'live'])).trim();
  assert.equal(name, 'livecopy');
  const st = JSON.parse(await ok(d, ['inspect', 'live']))[0].State;
  assert.equal(st.Status, 'running', 'thawed after the copy');
  await ok(d, ['exec', 'live', 'sh', '-c', 'echo two > /f; echo two > /data/f']);
  await ok(d, ['start', 'livecopy']);
  assert.equal(await ok(d, ['exec', 'livecopy', 'cat', '/f', '/data/f']), 'one\none\n');
  await ok(d, ['rm', '-f', '-v', 'live', 'livecopy']);
  await ok(d, ['volume', 'rm', 'livedata']);
  assert.deepEqual(frozenLayers(d), { rootfs: [], volumes: [] });
});

test('200 clone/start/rm cycles leave no mounts, volumes, snapshots or cgroups', async () => {
  await ok(d, ['run', '--name', 'cyc', '-v', 'cycdata:/data', 'busybox:local', 'sh', '-c', 'echo x > /data/x; echo y > /y']);
  const mountsBefore = mountsUnder(d).length;
  for (let i = 0; i < 200; i++) {
    const r = await d.api('POST', '/containers/cyc/clone');
    assert.equal(r.status, 201, r.text);
    const id = r.json.Clones[0].Id;
    if (i % 10 === 0) assert.equal((await d.api('POST', `/containers/${id}/start`)).status, 204);
    assert.equal((await d.api('DELETE', `/containers/${id}?force=1&v=1`)).status, 204);
  }
  // What stays mounted is the source volume itself: an overlay over its frozen data since the first clone.
  assert.deepEqual(mountsUnder(d).slice(mountsBefore), [path.join(d.dataRoot, 'volumes/cycdata/_data')]);
  assert.equal((await ok(d, ['volume', 'ls', '-q'])).trim(), 'cycdata');
  assert.equal((await ok(d, ['ps', '-aq'])).trim().split('\n').length, 1);
  const { readdirSync } = await import('node:fs');
  assert.equal(readdirSync(path.join(d.dataRoot, 'overlay/active')).length, 1);
  const cg = (() => {
    try {
      return readdirSync(`/sys/fs/cgroup/memory${d.cgroupParent}`, { withFileTypes: true }).filter((e) => e.isDirectory()).length;
    } catch {
      return 0;
    }
  })();
  assert.equal(cg, 0);
  await ok(d, ['rm', '-f', '-v', 'cyc']);
  await ok(d, ['volume', 'rm', 'cycdata']);
  assert.deepEqual(frozenLayers(d), { rootfs: [], volumes: [] });
});

test('clone --start: the clones run when the answer comes, as docker run', async () => {
  await ok(d, ['create', '--name', 'startsrc', 'busybox:local', 'sh', '-c', 'test -f /seed || echo seeded > /seed; exec sleep 3600']);
  await ok(d, ['start', 'startsrc']);
  await ok(d, ['stop', '-t', '0', 'startsrc']);
  const names = (await keelOk(d, ['clone', '--start', '--count', '2', '--name-prefix', 'started', 'startsrc'])).trim().split('\n');
  assert.deepEqual(names, ['started1', 'started2']);
  for (const n of names) {
    assert.equal(JSON.parse(await ok(d, ['inspect', n]))[0].State.Status, 'running');
    assert.equal(await ok(d, ['exec', n, 'cat', '/seed']), 'seeded\n');
  }
  const one = await d.api('POST', '/containers/startsrc/clone?start=1&name=started3');
  assert.equal(one.status, 201, one.text);
  assert.equal(JSON.parse(await ok(d, ['inspect', 'started3']))[0].State.Status, 'running');
  await ok(d, ['rm', '-f', '-v', 'startsrc', ...names, 'started3']);
});
