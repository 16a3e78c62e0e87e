/**
 * A pristine PostgreSQL per test, tests in parallel: keel's warm pool from a
 * node:test file (the README's example; test/clones/example.test.ts runs it).
 *
 * Before: a seeded PostgreSQL container, stopped, named pg-seed (PG_SEED names
 * another) whose database has a table t(id int, payload text), e.g.
 *   keel build -t pg examples/postgres
 *   keel run -d --name pg-seed pg
 *   keel exec pg-seed psql -c "CREATE TABLE t AS SELECT g AS id, md5(g::text) AS payload FROM generate_series(1, 100000) g"
 *   keel stop pg-seed
 * Then: node --test examples/pg-pool.test.ts   (KEEL_HOST=unix:///path/to/keel.sock for another daemon)
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { KeelClient } from 'keel';

const keel = new KeelClient(); // /run/keel/keel.sock, or $KEEL_HOST
const pool = `pg-${process.pid}`;
before(() => keel.pool.create(pool, { from: process.env.PG_SEED ?? 'pg-seed', size: 4, ready: 'health' }));
after(() => keel.pool.remove(pool));

async function psql(db: string, sql: string, signal: AbortSignal): Promise<string> {
  const r = await keel.exec(db, ['psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-U', 'postgres', '-c', sql], { signal });
  assert.equal(r.exitCode, 0, r.stderr);
  return r.stdout.trim();
}

describe('each test has its own pristine database', { concurrency: 4 }, () => {
  for (const n of [1, 2, 3, 4, 5, 6]) {
    test(`test ${n}`, async (t) => {
      // A started, healthy clone of pg-seed; more tests than the pool holds wait for its refill.
      const db = await keel.pool.take(pool, { timeoutSeconds: 300, signal: t.signal });
      t.after(() => keel.remove(db.id, { force: true, volumes: true }));
      // Nobody else's writes are here...
      assert.equal(await psql(db.name, 'SELECT count(*) FROM t WHERE id < 0', t.signal), '0');
      assert.ok(Number(await psql(db.name, 'SELECT count(*) FROM t', t.signal)) > 0);
      // ...and this test's writes go nowhere else.
      await psql(db.name, `INSERT INTO t VALUES (-${n}, 'test ${n}'); DELETE FROM t WHERE id BETWEEN 1 AND 10`, t.signal);
      assert.equal(await psql(db.name, 'SELECT count(*) FROM t WHERE id < 0', t.signal), '1');
    });
  }
});
