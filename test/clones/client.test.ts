import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { KeelClient } from '../../src/index.ts';
import { TestDaemon } from '../helpers/daemon.ts';

const d = new TestDaemon('keel-client');
let keel: KeelClient;

before(async () => {
  await d.start();
  await d.importBusybox();
  keel = new KeelClient({ socketPath: d.socket });
  // A seeded source, stopped: the pristine state every test gets a clone of.
  const { id } = await keel.create(
    { Image: 'busybox:local', Cmd: ['sh', '-c', 'test -f /seed || echo rows > /seed; echo ready; exec sleep 3600'], HostConfig: { Binds: ['seeddata:/data'] } },
    { name: 'seed' },
  );
  await keel.start(id);
  assert.equal((await keel.exec('seed', ['sh', '-c', 'echo vol > /data/v'])).exitCode, 0);
  await keel.stop('seed', { timeoutSeconds: 0 });
  await keel.pool.create('db', { from: 'seed', size: 2, ready: 'log:ready' });
});
after(async () => {
  await keel.pool.remove('db').catch(() => {});
  await d.cleanup();
});

describe('tests in parallel, each with a pristine clone from the pool', { concurrency: 3 }, () => {
  for (const n of [1, 2, 3]) {
    test(`test ${n}`, async (t) => {
      const c = await keel.pool.take('db', { timeoutSeconds: 120, signal: t.signal });
      t.after(() => keel.remove(c.id, { force: true, volumes: true }));
      // Pristine: nobody else's write is here.
      assert.equal((await keel.exec(c.name, ['cat', '/seed', '/data/v'])).stdout, 'rows\nvol\n');
      assert.equal((await keel.exec(c.name, ['ls', '/mine'])).exitCode, 1);
      await keel.exec(c.name, ['sh', '-c', `echo ${n} > /mine; echo ${n} > /data/v`]);
      assert.equal((await keel.exec(c.name, ['cat', '/data/v'])).stdout, `${n}\n`);
      assert.match((await keel.logs(c.name)).stdout, /ready/);
    });
  }
});

test('client: clone, errors with codes, AbortSignal', async () => {
  const { clones } = await keel.clone('seed', { count: 2, namePrefix: 'cl' });
  assert.deepEqual(
    clones.map((c) => c.name),
    ['cl1', 'cl2'],
  );
  for (const c of clones) await keel.remove(c.id, { force: true, volumes: true });
  await assert.rejects(keel.clone('nosuch'), (e: Error & { code?: string }) => e.code === 'NOT_FOUND' && /No such container/.test(e.message));
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(keel.inspect('seed', { signal: ac.signal }), (e: Error & { code?: string }) => e.code === 'CANCELLED');
  const pools = await keel.pool.list();
  assert.equal(pools[0]!.name, 'db');
});

test('client: an AbortSignal ends a take that waits on a pool, and the daemon lets go of it', async () => {
  const { id } = await keel.create({ Image: 'busybox:local', Cmd: ['sleep', '3600'] }, { name: 'quiet' });
  await keel.pool.create('never', { from: 'quiet', size: 1, ready: 'log:never printed' });
  const t0 = Date.now();
  await assert.rejects(
    keel.pool.take('never', { timeoutSeconds: 600, signal: AbortSignal.timeout(300) }),
    (e: Error & { code?: string }) => e.code === 'CANCELLED',
  );
  assert.ok(Date.now() - t0 < 10_000, `aborted after ${Date.now() - t0} ms`);
  // The daemon answers the next request on the same pool at once: nothing waits for the abandoned take.
  await assert.rejects(
    keel.pool.take('never', { timeoutSeconds: 0 }),
    (e: Error & { code?: string }) => e.code === 'TIMEOUT' && /pool never had no ready container within 0s/.test(e.message),
  );
  await keel.pool.remove('never');
  await keel.remove(id, { force: true });
});
