import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { repoRoot, run } from '../helpers/daemon.ts';
import { project, TestDaemon } from './helpers.ts';

/**
 * keel compose and docker-compose v1 (Debian's, a real API client) find
 * each other's projects by docker compose's labels; `docker compose` runs
 * keel's compose as a docker CLI plugin.
 */
const d = new TestDaemon('keel-compose-interop');

const YAML = `services:
  web:
    image: busybox:local
    command: ["sleep", "300"]
  worker:
    image: busybox:local
    command: ["sleep", "300"]
    depends_on: [web]
`;

before(async () => {
  await d.start();
  await d.importBusybox();
});
after(async () => {
  await d.cleanup();
});

test('a docker-compose v1 project: keel compose ps sees it, keel compose down removes it', async () => {
  const v1 = d.composeProject('fromv1', YAML);
  const up = await v1(['up', '-d']);
  assert.equal(up.code, 0, up.stderr);
  const p = project(d, 'fromv1', { 'compose.yaml': YAML });
  const ps = await p.compose(['ps', '--format', 'json']);
  assert.equal(ps.code, 0, ps.stderr);
  const rows = ps.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(rows.map((r) => [r.Name, r.Service, r.State]).sort(), [
    ['fromv1_web_1', 'web', 'running'],
    ['fromv1_worker_1', 'worker', 'running'],
  ]);
  const down = await p.compose(['down', '-t', '1']);
  assert.equal(down.code, 0, down.stderr);
  assert.match(down.stderr, /Container fromv1_worker_1 {2}Removed/);
  assert.match(down.stderr, /Network fromv1_default {2}Removed/);
  assert.equal((await d.docker(['ps', '-aq'])).stdout.trim(), '');
});

test('a keel compose project: docker-compose v1 ps sees it and down removes it', async () => {
  const p = project(d, 'fromkeel', { 'compose.yaml': YAML });
  const up = await p.compose(['up', '-d']);
  assert.equal(up.code, 0, up.stderr);
  const v1 = d.composeProject('fromkeel', YAML);
  const ps = await v1(['ps']);
  assert.equal(ps.code, 0, ps.stderr);
  assert.match(ps.stdout, /fromkeel-web-1\s.*Up/);
  assert.match(ps.stdout, /fromkeel-worker-1\s.*Up/);
  const down = await v1(['down', '-t', '1']);
  assert.equal(down.code, 0, down.stderr);
  assert.equal((await d.docker(['ps', '-aq'])).stdout.trim(), '');
  assert.notEqual((await d.docker(['network', 'inspect', 'fromkeel_default'])).code, 0);
});

test('docker compose (the CLI plugin) runs keel compose', async () => {
  const plugins = path.join(d.dir, 'docker-config', 'cli-plugins');
  fs.mkdirSync(plugins, { recursive: true });
  fs.symlinkSync(path.join(repoRoot, 'bin/docker-compose'), path.join(plugins, 'docker-compose'));
  const meta = await run([path.join(repoRoot, 'bin/docker-compose'), 'docker-cli-plugin-metadata']);
  assert.equal(JSON.parse(meta.stdout).SchemaVersion, '0.1.0');
  const version = await d.docker(['compose', 'version']);
  assert.match(version.stdout, /Docker Compose version v2\.\d+\.\d+ \(keel compose\)/);
  const p = project(d, 'plug', { 'compose.yaml': YAML });
  const up = await d.docker(['compose', '--project-directory', p.dir, 'up', '-d']);
  assert.equal(up.code, 0, up.stderr);
  assert.match(up.stderr, /Container plug-worker-1 {2}Started/);
  const ls = await d.docker(['compose', 'ls', '--format', 'json']);
  assert.deepEqual(
    JSON.parse(ls.stdout).map((x: { Name: string }) => x.Name),
    ['plug'],
  );
  const down = await d.docker(['compose', '-p', 'plug', 'down', '-t', '1']);
  assert.equal(down.code, 0, down.stderr);
  assert.equal((await d.docker(['ps', '-aq'])).stdout.trim(), '');
});
