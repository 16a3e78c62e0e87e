import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { repoRoot, TestDaemon } from '../helpers/daemon.ts';
import { buildPostgres, psql } from '../helpers/postgres.ts';
import { ok } from './helpers.ts';

// The README's node:test example (examples/pg-pool.test.ts) run as a user runs it, against a test daemon.

const d = new TestDaemon('keel-example');
before(async () => {
  await d.start();
  const image = await buildPostgres(d);
  await ok(d, ['run', '-d', '--name', 'pg-seed', image]);
  for (let i = 0; (await d.docker(['exec', 'pg-seed', 'pg_isready', '-q'])).code !== 0; i++) {
    assert.ok(i < 300, `pg-seed does not accept connections:\n${(await d.docker(['logs', 'pg-seed'])).stderr}`);
    await new Promise((r) => setTimeout(r, 200)); // a poll interval
  }
  const r = await psql(d, 'pg-seed', 'CREATE TABLE t AS SELECT g AS id, md5(g::text) AS payload FROM generate_series(1, 100000) g');
  assert.equal(r.code, 0, r.stderr);
  await ok(d, ['stop', 'pg-seed']);
});
after(async () => {
  await d.cleanup();
});

test('examples/pg-pool.test.ts: six tests, four at a time, each with a pristine PostgreSQL from a pool', async () => {
  // Its own node --test, outside this runner (NODE_TEST_CONTEXT would make it report to us instead).
  const env: NodeJS.ProcessEnv = { ...process.env, KEEL_HOST: `unix://${d.socket}` };
  delete env.NODE_TEST_CONTEXT;
  const out = await new Promise<{ code: number | null; text: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ['--test', '--test-reporter=tap', path.join('examples', 'pg-pool.test.ts')], {
      cwd: repoRoot,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    child.stdout.on('data', (b) => (text += b));
    child.stderr.on('data', (b) => (text += b));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, text }));
  });
  assert.equal(out.code, 0, out.text);
  assert.match(out.text, /^# pass 6$/m);
  assert.match(out.text, /^# fail 0$/m);
  // Its after() removed the pool and each test its database: only the seed is left.
  assert.equal((await ok(d, ['ps', '-a', '--format', '{{.Names}}'])).trim(), 'pg-seed');
  assert.equal((await ok(d, ['volume', 'ls', '-q'])).trim().split('\n').length, 1);
});
