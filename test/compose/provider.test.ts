import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { busyboxDaemon, project } from './helpers.ts';

/**
 * Provider services through `keel compose` with a real daemon: a provider
 * program written here (a shell script that records its argv and prints
 * docker compose's JSON-lines messages) found as a docker CLI plugin or on
 * PATH, as docker compose finds it.
 */
const d = busyboxDaemon('keel-compose-provider');

/** An executable shell script at `file`. */
function script(file: string, body: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
}

const lines = (file: string) => fs.readFileSync(file, 'utf8').trim().split('\n');

test('up -d runs the provider (a docker CLI plugin) before its dependents, which get <SERVICE>_<KEY>; down runs it with down', async () => {
  const log = path.join(d.dir, 'plugin-argv.log');
  const config = path.join(d.dir, 'provider-docker-config');
  script(
    path.join(config, 'cli-plugins', 'docker-keeltestprov'),
    `[ "$1 $2" = "compose metadata" ] && exit 1
echo "$*" >> ${log}
case "$3" in
  up) echo '{"type":"info","message":"allocating a database"}'
      echo '{"type":"setenv","message":"URL=tcp://db.example:5432/app"}'
      echo '{"type":"setenv","message":"TOKEN=a=b"}' ;;
  down) echo '{"type":"info","message":"releasing"}' ;;
esac`,
  );
  const p = project(d, 'prov', {
    'compose.yaml': `services:
  database:
    provider:
      type: keeltestprov
      options:
        size: 10
        region: [eu, us]
  web:
    image: busybox:local
    command: ["sleep", "300"]
    stop_signal: SIGKILL
    depends_on: [database]
  lone:
    image: busybox:local
    command: ["sleep", "300"]
    stop_signal: SIGKILL
`,
  });
  const env = { DOCKER_CONFIG: config };
  const upRes = await p.compose(['up', '-d'], env);
  assert.equal(upRes.code, 0, upRes.stderr);
  assert.deepEqual(lines(log), ['compose --project-name=prov up --region=eu --region=us --size=10 database']);
  assert.match(upRes.stderr, /database +allocating a database/);
  assert.ok(upRes.stderr.indexOf('database  Created') < upRes.stderr.indexOf('prov-web-1  Created'), upRes.stderr);
  const web = (await d.api('GET', '/containers/prov-web-1/json')).json as { Id: string; Config: { Env: string[] } };
  assert.ok(web.Config.Env.includes('DATABASE_URL=tcp://db.example:5432/app'), web.Config.Env.join(' '));
  assert.ok(web.Config.Env.includes('DATABASE_TOKEN=a=b'));
  const lone = (await d.api('GET', '/containers/prov-lone-1/json')).json as { Config: { Env: string[] | null } };
  assert.ok(!(lone.Config.Env ?? []).some((e) => e.startsWith('DATABASE_')));
  // no container for the provider service
  assert.equal((await d.api('GET', '/containers/prov-database-1/json')).status, 404);

  // the provider gives the same values again: the dependent's config hash matches, it is kept
  const again = await p.compose(['up', '-d'], env);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(((await d.api('GET', '/containers/prov-web-1/json')).json as { Id: string }).Id, web.Id);
  assert.equal(lines(log).length, 2);

  const downRes = await p.compose(['down'], env);
  assert.equal(downRes.code, 0, downRes.stderr);
  assert.equal(lines(log).at(-1), 'compose --project-name=prov down --region=eu --region=us --size=10 database');
  assert.match(downRes.stderr, /database +Removed/);
  const ps = await p.compose(['ps', '-a', '-q']);
  assert.equal(ps.stdout.trim(), '');
});

test('a provider that prints an error fails up with its message and leaves nothing down cannot remove; a missing one is named', async () => {
  const bin = path.join(d.dir, 'provider-bin');
  const log = path.join(d.dir, 'path-argv.log');
  script(
    path.join(bin, 'keelfailprov'),
    `[ "$1 $2" = "compose metadata" ] && exit 1
echo "$*" >> ${log}
case "$3" in
  up) echo '{"type":"info","message":"trying"}'
      echo '{"type":"error","message":"no capacity left in region eu"}' ;;
esac`,
  );
  const p = project(d, 'provfail', {
    'compose.yaml': `services:
  cache:
    image: busybox:local
    command: ["sleep", "300"]
    stop_signal: SIGKILL
  queue:
    provider: {type: keelfailprov}
    depends_on: [cache]
  app:
    image: busybox:local
    command: ["sleep", "300"]
    depends_on: [queue]
`,
  });
  const env = { PATH: `${bin}:${process.env.PATH}`, DOCKER_CONFIG: path.join(d.dir, 'empty-docker-config') };
  const upRes = await p.compose(['up', '-d'], env);
  assert.notEqual(upRes.code, 0);
  assert.match(upRes.stderr, /no capacity left in region eu/);
  // its dependency was started; its dependent never created
  assert.equal((await d.api('GET', '/containers/provfail-cache-1/json')).status, 200);
  assert.equal((await d.api('GET', '/containers/provfail-app-1/json')).status, 404);
  const downRes = await p.compose(['down'], env);
  assert.equal(downRes.code, 0, downRes.stderr);
  assert.equal(lines(log).at(-1), 'compose --project-name=provfail down queue');
  assert.equal((await p.compose(['ps', '-a', '-q'])).stdout.trim(), '');
  const nets = (await d.api('GET', '/networks')).json as { Name: string }[];
  assert.ok(!nets.some((n) => n.Name.startsWith('provfail')));

  // without the program on PATH: an error naming the service and the type when its turn comes; down removes the rest and reports it too
  const missing = await p.compose(['up', '-d'], { DOCKER_CONFIG: env.DOCKER_CONFIG });
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /service "queue": provider type "keelfailprov" not found/);
  assert.equal((await d.api('GET', '/containers/provfail-app-1/json')).status, 404);
  assert.equal((await p.compose(['down'], { DOCKER_CONFIG: env.DOCKER_CONFIG })).code, 1);
  assert.equal((await p.compose(['down'], env)).code, 0);
});
