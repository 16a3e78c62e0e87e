import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort, keelBin, run, type RunResult } from '../helpers/daemon.ts';
import { importDebian } from '../helpers/debian.ts';
import { eventually, TestDaemon } from './helpers.ts';

/**
 * A real three-tier project (fixtures/three-tier): PostgreSQL, a CGI app that
 * reads from it, and nginx publishing 127.0.0.1:PORT, each built by keel from
 * Debian bookworm with packages from the Debian mirror. keel compose brings it
 * up, scales and rebuilds it; then docker-compose v1 runs the same project
 * against keel, on the images keel built (the compose file names them, so v1
 * finds them and builds nothing).
 */
const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'three-tier');
const d = new TestDaemon('keel-compose-project');
let dir = '';
let port = 0;

const compose = (args: string[], timeoutMs = 120_000): Promise<RunResult> => {
  const prev = process.cwd();
  process.chdir(dir);
  try {
    return d.keel(['compose', ...args], { env: { NO_COLOR: '1' }, timeoutMs });
  } finally {
    process.chdir(prev);
  }
};

/** docker-compose v1 (Debian's 1.29) on the same directory, as another project. */
const v1 = (args: string[], timeoutMs = 180_000): Promise<RunResult> =>
  run(['docker-compose', '-p', 'threetierv1', '--project-directory', dir, '-f', path.join(dir, 'compose.yaml'), ...args], {
    env: { DOCKER_HOST: `unix://${d.socket}`, COMPOSE_INTERACTIVE_NO_CLI: '1' },
    timeoutMs,
  });

function ok(r: RunResult, what: string): RunResult {
  assert.equal(r.code, 0, `${what} failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** GET /cgi-bin/items through nginx: the app version, the replica that answered, the rows. */
async function items(): Promise<{ version: string; replica: string; rows: string[] }> {
  const res = await fetch(`http://127.0.0.1:${port}/cgi-bin/items`, { signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  const [version, replica, ...rows] = text.trim().split('\n');
  return { version: version!, replica: replica!.replace(/^replica /, ''), rows };
}

/** The proxy answers once nginx and a web replica are up (nginx starts after web starts, not when it listens). */
async function waitServing(): Promise<void> {
  await eventually(
    async () => {
      try {
        return (await items()).version.startsWith('app ');
      } catch {
        return false;
      }
    },
    `the proxy on 127.0.0.1:${port}`,
    60_000,
  );
}

/** Asks through nginx until two replicas have answered (each request goes to the replica nginx picks among web's addresses). */
async function replicasSeen(): Promise<Set<string>> {
  const seen = new Set<string>();
  await eventually(
    async () => {
      seen.add((await items()).replica);
      return seen.size > 1;
    },
    'requests through nginx to reach a second web replica',
    30_000,
  ).catch(() => {});
  return seen;
}

/** Container IDs of one service of a project, sorted. */
async function ids(projectName: string, service: string): Promise<string[]> {
  const r = ok(
    await d.docker([
      'ps',
      '-q',
      '--no-trunc',
      '--filter',
      `label=com.docker.compose.project=${projectName}`,
      '--filter',
      `label=com.docker.compose.service=${service}`,
    ]),
    'docker ps',
  );
  return r.stdout.split('\n').filter(Boolean).sort();
}

async function volumes(): Promise<string[]> {
  return ok(await d.docker(['volume', 'ls', '-q']), 'docker volume ls')
    .stdout.split('\n')
    .filter(Boolean);
}

before(async () => {
  await d.start();
  await importDebian(d, 'debian:bookworm');
  dir = path.join(d.dir, 'threetier');
  fs.cpSync(FIXTURE, dir, { recursive: true });
  port = await freePort();
  // both tools read the project directory's .env
  fs.writeFileSync(path.join(dir, '.env'), `PROXY_PORT=${port}\n`);
});
after(async () => {
  await d.cleanup();
});

// apt-get installs ~80 MB of packages: on a loaded machine this step alone has taken 8 minutes
test('keel compose build: three images from Debian bookworm; web reuses the package layer db built', { timeout: 1_500_000 }, async () => {
  const build = ok(await compose(['build'], 1_500_000), 'build');
  for (const s of ['db', 'web', 'proxy']) assert.match(build.stderr + build.stdout, new RegExp(`Service ${s} {2}Built`));
  // db and web begin with the same RUN step: the build cache runs it once
  const web = (build.stderr + build.stdout).split('Service web  Building')[1] ?? '';
  assert.match(web, /Step 2\/\d+ : RUN [^\n]*postgresql busybox[^\n]*\n\s*---> Using cache/);
  for (const image of ['threetier/db:local', 'threetier/web:local', 'threetier/proxy:local'])
    ok(await d.docker(['image', 'inspect', image]), `inspect ${image}`);
});

test('keel compose: up --build --scale web=3 waits for a healthy PostgreSQL, nginx spreads requests over the replicas', async () => {
  const up = ok(await compose(['up', '-d', '--build', '--scale', 'web=3', '--wait'], 300_000), 'up --build');
  assert.match(up.stderr, /Container threetier-db-1 {2}Healthy/);
  assert.equal((await ids('threetier', 'web')).length, 3);
  // web started only once db was healthy: its first container was created after db reported healthy
  const dbHealthy = JSON.parse(ok(await d.docker(['inspect', 'threetier-db-1']), 'inspect db').stdout)[0].State.Health;
  assert.equal(dbHealthy.Status, 'healthy');
  const webStarted = JSON.parse(ok(await d.docker(['inspect', 'threetier-web-1']), 'inspect web').stdout)[0].State.StartedAt;
  const firstHealthy = dbHealthy.Log.find((l: { ExitCode: number }) => l.ExitCode === 0).End;
  assert.ok(Date.parse(webStarted) >= Date.parse(firstHealthy), `web started ${webStarted}, db healthy ${firstHealthy}`);

  // config --hash prints the hash each container is labelled with (docker compose v2's algorithm)
  const hashes = ok(await compose(['config', '--hash', '*']), 'config --hash')
    .stdout.trim()
    .split('\n')
    .map((l) => l.split(' '));
  assert.deepEqual(
    hashes.map(([n]) => n),
    ['db', 'proxy', 'web'],
  );
  // db's, worked out by hand from compose-go's ServiceConfig: sha256 of
  // {"command":null,"entrypoint":null,"healthcheck":{"test":["CMD","pg_isready","-h","127.0.0.1","-U","postgres"],"timeout":"5s","interval":"1s","retries":60},
  //  "image":"threetier/db:local","networks":{"default":null},"volumes":[{"type":"volume","source":"pgdata","target":"/var/lib/postgresql/data","volume":{}}]}
  assert.deepEqual(hashes[0], ['db', '5baa4c20f58906131ef5f03861b0fd0086569d2d5f8aa9b591366c40d33c593a']);
  for (const [service, hash] of hashes) {
    const labels = JSON.parse(ok(await d.docker(['inspect', `threetier-${service}-1`]), 'inspect').stdout)[0].Config.Labels;
    assert.equal(labels['com.docker.compose.config-hash'], hash, service);
    assert.match(hash!, /^[0-9a-f]{64}$/);
  }

  ok(
    await compose([
      'exec',
      '-T',
      'db',
      'psql',
      '-U',
      'postgres',
      '-c',
      "CREATE TABLE items (id serial PRIMARY KEY, name text); INSERT INTO items (name) VALUES ('apple'), ('pear');",
    ]),
    'exec psql',
  );
  await waitServing();
  const first = await items();
  assert.equal(first.version, 'app v1');
  assert.deepEqual(first.rows, ['apple', 'pear']);
  const seen = await replicasSeen();
  assert.ok(seen.size > 1, `all requests reached one replica: ${[...seen].join(', ')}`);
  const webIds = new Set((await ids('threetier', 'web')).map((id) => id.slice(0, 12)));
  for (const r of seen) assert.ok(webIds.has(r), `replica ${r} is not one of the web containers`);
});

test('keel compose: the named volume keeps the rows across down and up', async () => {
  const down = ok(await compose(['down', '-t', '5']), 'down');
  assert.match(down.stderr, /Network threetier_default {2}Removed/);
  assert.deepEqual(await ids('threetier', 'db'), []);
  assert.ok((await volumes()).includes('threetier_pgdata'));
  ok(await compose(['up', '-d', '--wait'], 300_000), 'up again');
  await waitServing();
  assert.deepEqual((await items()).rows, ['apple', 'pear']);
});

test('keel compose: up --build after an edit of the app rebuilds it and recreates only web', async () => {
  const before = { db: await ids('threetier', 'db'), web: await ids('threetier', 'web'), proxy: await ids('threetier', 'proxy') };
  const cgi = path.join(dir, 'web', 'cgi-bin', 'items');
  fs.writeFileSync(cgi, fs.readFileSync(cgi, 'utf8').replace('app v1', 'app v2'));
  ok(await compose(['up', '-d', '--build', '--wait'], 300_000), 'up --build after the edit');
  const now = { db: await ids('threetier', 'db'), web: await ids('threetier', 'web'), proxy: await ids('threetier', 'proxy') };
  assert.deepEqual(now.db, before.db, 'db was recreated');
  assert.deepEqual(now.proxy, before.proxy, 'proxy was recreated');
  assert.equal(now.web.length, 1);
  assert.ok(!before.web.includes(now.web[0]!), 'web was not recreated');
  // the unchanged nginx finds the new web container by name
  await eventually(async () => (await items().catch(() => undefined))?.version === 'app v2', 'the rebuilt app behind nginx', 30_000);
  assert.deepEqual((await items()).rows, ['apple', 'pear']);
});

test('keel compose watch: an edit of the app is synced into the running web container, nothing recreated', async () => {
  const before = await ids('threetier', 'web');
  const watcher = spawn(
    process.execPath,
    [keelBin, '-H', `unix://${d.socket}`, 'compose', '-f', 'compose.yaml', '-f', 'compose.watch.yaml', 'watch', '--no-up'],
    {
      cwd: dir,
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  watcher.stdout.on('data', (b: Buffer) => (output += b.toString()));
  watcher.stderr.on('data', (b: Buffer) => (output += b.toString()));
  const exited = new Promise<number | null>((r) => watcher.once('exit', (code) => r(code)));
  try {
    await eventually(async () => output.includes('Watch enabled') || watcher.exitCode !== null, 'compose watch to start', 60_000);
    assert.equal(watcher.exitCode, null, output);
    const cgi = path.join(dir, 'web', 'cgi-bin', 'items');
    fs.writeFileSync(cgi, fs.readFileSync(cgi, 'utf8').replace('app v2', 'app v3'));
    await eventually(async () => (await items().catch(() => undefined))?.version === 'app v3', 'the synced app behind nginx', 60_000);
    assert.match(output, /Syncing service "web" after \d+ changes? w(as|ere) detected/);
    assert.deepEqual(await ids('threetier', 'web'), before, 'web was recreated: watch should only sync');
    assert.deepEqual((await items()).rows, ['apple', 'pear']);
  } finally {
    watcher.kill('SIGINT');
  }
  assert.equal(await exited, 0, output);
});

test('keel compose: down -v removes the volume with the project', async () => {
  ok(await compose(['down', '-v', '-t', '5']), 'down -v');
  assert.equal((await volumes()).includes('threetier_pgdata'), false);
  assert.equal(ok(await d.docker(['ps', '-aq']), 'ps').stdout.trim(), '');
});

test('docker-compose v1: the same project on keel, on the images keel built', async () => {
  const up = ok(await v1(['up', '-d', '--scale', 'web=3']), 'v1 up');
  assert.doesNotMatch(up.stderr + up.stdout, /Building/);
  assert.equal((await ids('threetierv1', 'web')).length, 3);
  // v1 starts web only after db's health check passed
  const db = JSON.parse(ok(await d.docker(['inspect', 'threetierv1_db_1']), 'inspect db').stdout)[0].State.Health;
  assert.equal(db.Status, 'healthy');
  ok(
    await v1([
      'exec',
      '-T',
      'db',
      'psql',
      '-U',
      'postgres',
      '-c',
      "CREATE TABLE items (id serial PRIMARY KEY, name text); INSERT INTO items (name) VALUES ('fig');",
    ]),
    'v1 exec psql',
  );
  await waitServing();
  assert.deepEqual((await items()).rows, ['fig']);
  const seen = await replicasSeen();
  assert.ok(seen.size > 1, `all requests reached one replica: ${[...seen].join(', ')}`);

  ok(await v1(['down', '-t', '5']), 'v1 down');
  assert.ok((await volumes()).includes('threetierv1_pgdata'));
  ok(await v1(['up', '-d']), 'v1 up again');
  await waitServing();
  assert.deepEqual((await items()).rows, ['fig']);

  ok(await v1(['down', '-v', '-t', '5']), 'v1 down -v');
  assert.equal((await volumes()).includes('threetierv1_pgdata'), false);
  assert.equal(ok(await d.docker(['ps', '-aq']), 'ps').stdout.trim(), '');
});
