import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { TestDaemon } from '../helpers/daemon.ts';
import { buildPostgres, psql } from '../helpers/postgres.ts';
import { keelOk, ok } from './helpers.ts';

// A real database as the test of clones: PostgreSQL from Debian, seeded with ~100 MB of rows,
// stopped cleanly, cloned 20 times; every clone accepts connections and holds the same rows.

const d = new TestDaemon('keel-pg');
let image = '';
let checksum = '';
let tableFile = '';
const CHECKSUM = 'SELECT count(*), sum(hashtext(payload)) FROM t';
/** The checksum, and whether table `mine` (made in one clone) is absent. */
const CHECKSUM_AND_MINE = "SELECT count(*), sum(hashtext(payload)), to_regclass('mine') IS NULL FROM t";
const CLONES = 20;

before(async () => {
  await d.start();
  const t0 = performance.now();
  image = await buildPostgres(d);
  console.log(`# PostgreSQL image (keel build with apt-get, or keel load of the image a first build saved): ${((performance.now() - t0) / 1000).toFixed(1)} s`);
});
after(async () => {
  await d.cleanup();
});

async function sql(c: string, s: string | string[]): Promise<string> {
  const r = await psql(d, c, s);
  assert.equal(r.code, 0, `psql in ${c} failed: ${r.stderr}`);
  return r.stdout.trim();
}

/**
 * Waits until the server in `c` accepts TCP connections: its health check (pg_isready on the unix socket)
 * passed, read from the API (cheap beside 20 pollers exec'ing), then pg_isready over TCP says so too.
 */
async function accepting(c: string, ms = 600_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const st = (await d.api('GET', `/containers/${c}/json`)).json.State;
    if (st.Status !== 'running') break;
    if (st.Health?.Status === 'healthy') {
      // -t: a loaded machine can take more than pg_isready's default 3 s to answer a connection.
      const r = await d.docker(['exec', c, 'pg_isready', '-q', '-t', '60', '-h', '127.0.0.1', '-U', 'postgres'], { timeoutMs: 120_000 });
      if (r.code === 0) return;
    }
    await new Promise((r) => setTimeout(r, 250)); // a poll interval: the health status has no event to wait on here
  }
  throw new Error(`${c} does not accept connections:\n${(await d.docker(['logs', '--tail', '20', c])).stderr}`);
}

/** Files under a writable layer (an upper dir), path → size. */
function upperFiles(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = path.join(rel, e.name);
      if (e.isDirectory()) walk(r);
      else if (e.isFile()) out.set(r, fs.lstatSync(path.join(dir, r)).size);
    }
  };
  walk('');
  return out;
}

/** The clone's two writable layers: its rootfs upper and its PGDATA volume's upper. */
async function writableLayers(c: string): Promise<{ rootfs: Map<string, number>; data: Map<string, number> }> {
  const info = JSON.parse(await ok(d, ['inspect', c]))[0];
  const vol = info.Mounts.find((m: { Destination: string }) => m.Destination === '/var/lib/postgresql/data').Name;
  return {
    rootfs: upperFiles(path.join(d.dataRoot, 'overlay/active', info.Id, 'upper')),
    data: upperFiles(path.join(d.dataRoot, 'volumes', vol, '_upper')),
  };
}

const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
const MiB = 1024 * 1024;
/** What PostgreSQL itself writes in an idle cluster: pid and options files, pg_control, relation cache init files, WAL. */
const WRITTEN = /^(postmaster\.(pid|opts)|global\/pg_control|(global|base\/\d+)\/pg_internal\.init|pg_wal\/.*|pg_stat(_tmp)?\/.*|pg_logical\/.*)$/;
/** System catalog files (relfilenodes below 16384, FirstNormalObjectId): opened read-write, so copied up whole. */
function isCatalog(f: string): boolean {
  const m = /^(?:global|base\/\d+)\/(\d+)(?:_fsm|_vm)?$/.exec(f);
  return !!m && Number(m[1]) < 16384;
}

async function inBatches<T>(items: T[], n: number, fn: (x: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += n) await Promise.all(items.slice(i, i + n).map(fn));
}

test('PostgreSQL seeded with ~100 MB, stopped cleanly, 20 clones: all accept connections, same rows, private writes, small idle disk', async () => {
  await ok(d, ['run', '-d', '--name', 'pgsrc', '-p', '5432', image]);
  await accepting('pgsrc');
  const t0 = performance.now();
  const size = Number(
    await sql('pgsrc', [
      'CREATE TABLE t (id int PRIMARY KEY, payload text NOT NULL)',
      'INSERT INTO t SELECT g, md5(g::text) || md5((-g)::text) FROM generate_series(1, 800000) g',
      // Hint bits and the visibility map are set now, so a clone's reads do not dirty pages.
      'VACUUM (FREEZE, ANALYZE) t',
      'CHECKPOINT',
      "SELECT pg_total_relation_size('t')",
    ]),
  );
  tableFile = await sql('pgsrc', "SELECT pg_relation_filepath('t')");
  console.log(`# seeded ${(size / MiB).toFixed(0)} MB in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  assert.ok(size > 80 * MiB && size < 160 * MiB, `table size ${size}`);
  checksum = await sql('pgsrc', CHECKSUM);
  assert.match(checksum, /^800000\|-?\d+$/);

  // A clean stop: SIGINT (the image's STOPSIGNAL) is PostgreSQL's fast shutdown, which ends with a checkpoint.
  await ok(d, ['stop', '-t', '60', 'pgsrc']);
  assert.equal(JSON.parse(await ok(d, ['inspect', 'pgsrc']))[0].State.ExitCode, 0);
  assert.match((await d.docker(['logs', '--tail', '3', 'pgsrc'])).stderr, /database system is shut down/);

  const t1 = performance.now();
  const names = (await keelOk(d, ['clone', 'pgsrc', '--count', String(CLONES), '--name-prefix', 'pg'])).trim().split('\n');
  const cloneMs = performance.now() - t1;
  assert.equal(names.length, CLONES);
  // Started through the API a few at a time (the docker CLI starts one after another).
  await inBatches(names, 4, async (c) => {
    const r = await d.api('POST', `/containers/${c}/start`);
    assert.equal(r.status, 204, `${c}: ${r.text}`);
  });
  await Promise.all(names.map((c) => accepting(c)));
  console.log(
    `# ${CLONES} clones: made in ${cloneMs.toFixed(0)} ms (one CLI call), all accepting connections ${((performance.now() - t1) / 1000).toFixed(1)} s after the clone began`,
  );

  // Idle clones (started, answering) hold in their writable layers what PostgreSQL writes (its pid file,
  // pg_control, relation cache init files, the current WAL segment) and the system catalog files the server,
  // its autovacuum and the health checks opened: overlayfs copies a file up whole when it is opened for
  // writing, and PostgreSQL opens every relation file read-write. None of the seeded data is copied.
  for (const c of names) {
    const w = await writableLayers(c);
    const written = sum(new Map([...w.data].filter(([f]) => WRITTEN.test(f))));
    const catalogs = sum(new Map([...w.data].filter(([f]) => !WRITTEN.test(f) && isCatalog(f))));
    const other = [...w.data.keys()].filter((f) => !WRITTEN.test(f) && !isCatalog(f));
    const total = sum(w.rootfs) + sum(w.data);
    if (c === names[0])
      console.log(
        `# idle clone ${c}: ${(total / 1024).toFixed(0)} KiB in its writable layers: ${(written / 1024).toFixed(0)} KiB written by PostgreSQL, ${(catalogs / 1024).toFixed(0)} KiB of system catalogs copied up, ${(sum(w.rootfs) / 1024).toFixed(0)} KiB in its rootfs`,
      );
    assert.deepEqual(other, [], `${c}: files beyond what PostgreSQL writes and its catalogs: ${JSON.stringify([...w.data])}`);
    assert.equal(w.data.has(tableFile), false, `${c}: the seeded table was copied`);
    assert.ok(sum(w.rootfs) <= 64 * 1024, `${c}: rootfs upper ${JSON.stringify([...w.rootfs])}`);
    assert.ok(written <= 2 * MiB, `${c}: ${written} bytes written: ${JSON.stringify([...w.data].filter(([f]) => WRITTEN.test(f)))}`);
    assert.ok(catalogs <= 8 * MiB, `${c}: ${catalogs} bytes of catalogs`);
  }

  // A write in one clone; then one query per clone proves it holds the seeded rows and none of that write.
  await sql(names[0]!, ["INSERT INTO t VALUES (0, 'only in the first clone')", 'CREATE TABLE mine (x int)']);
  const t2 = performance.now();
  await inBatches(names, 4, async (c) => {
    const want =
      c === names[0] ? `800001|${Number(checksum.split('|')[1]) + Number(await sql(c, "SELECT hashtext('only in the first clone')"))}|f` : `${checksum}|t`;
    assert.equal(await sql(c, CHECKSUM_AND_MINE), want, c);
  });
  const after = sum((await writableLayers(names[1]!)).data);
  console.log(
    `# checksum in ${CLONES} clones: ${((performance.now() - t2) / 1000).toFixed(1)} s; after reading the table a clone's data upper holds ${(after / MiB).toFixed(0)} MiB (PostgreSQL opens relation files read-write, so overlayfs copies each file a clone touches)`,
  );

  await ok(d, ['start', 'pgsrc']);
  await accepting('pgsrc');
  assert.equal(await sql('pgsrc', CHECKSUM_AND_MINE), `${checksum}|t`);
  await ok(d, ['stop', '-t', '60', 'pgsrc']);

  await ok(d, ['rm', '-f', '-v', ...names]);
  assert.equal((await ok(d, ['ps', '-a', '--format', '{{.Names}}'])).trim(), 'pgsrc');
});

test('a pool of the seeded PostgreSQL with --ready health hands out a database that is already up', async () => {
  assert.ok(checksum, 'the seeded source from the first test');
  await keelOk(d, ['pool', 'create', 'pg', '--from', 'pgsrc', '--size', '2', '--ready', 'health']);
  const t0 = performance.now();
  const taken = JSON.parse(await keelOk(d, ['pool', 'take', 'pg', '--timeout', '240'], 300_000));
  console.log(
    `# first take from a new pool of 2: ${((performance.now() - t0) / 1000).toFixed(1)} s (waited ${taken.waitedMs} ms for a member to become healthy)`,
  );
  assert.match(taken.ports['5432/tcp'], /^\d+$/);
  const info = JSON.parse(await ok(d, ['inspect', taken.name]))[0];
  assert.equal(info.State.Health.Status, 'healthy');
  // Ready means ready: it answers at once, with the seeded rows.
  assert.equal((await d.docker(['exec', taken.name, 'pg_isready', '-q', '-t', '30', '-h', '127.0.0.1'], { timeoutMs: 120_000 })).code, 0);
  assert.equal(await sql(taken.name, CHECKSUM), checksum);

  // The second member was started beside the first; a take now does not wait for a start.
  const second = JSON.parse(await keelOk(d, ['pool', 'take', 'pg', '--timeout', '240'], 300_000));
  assert.notEqual(second.name, taken.name);
  assert.equal((await d.docker(['exec', second.name, 'pg_isready', '-q', '-t', '30', '-h', '127.0.0.1'], { timeoutMs: 120_000 })).code, 0);
  await sql(second.name, 'DELETE FROM t WHERE id <= 10');
  assert.equal(await sql(taken.name, 'SELECT count(*) FROM t'), '800000');

  await keelOk(d, ['pool', 'rm', 'pg']);
  await ok(d, ['rm', '-f', '-v', taken.name, second.name]);
  assert.equal((await ok(d, ['ps', '-a', '--format', '{{.Names}}'])).trim(), 'pgsrc');
});
