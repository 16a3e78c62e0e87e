import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { keelBin } from '../helpers/daemon.ts';
import { eventually, project, TestDaemon } from './helpers.ts';

/**
 * `keel compose watch` on a busybox project: a sync rule copies an edited
 * or new file into the running container and removes a deleted one, its
 * ignore patterns (and docker compose's always-ignored .git) are left out,
 * a sync+exec rule runs its command after the copy, and a rebuild rule
 * builds a new image and recreates the service's container.
 */
const d = new TestDaemon('keel-compose-watch');

const COMPOSE = `services:
  web:
    image: busybox:local
    command: ["sleep", "3600"]
    develop:
      watch:
        - path: ./src
          action: sync
          target: /app/src
          ignore: ["*.tmp", "cache/"]
        - path: ./hooks
          action: sync+exec
          target: /app/hooks
          exec:
            command: ["sh", "-c", "cat /app/hooks/* > /tmp/hooks-ran"]
  api:
    build: ./api
    command: ["sleep", "3600"]
    develop:
      watch:
        - path: ./api/version.txt
          action: rebuild
`;

let watcher: ChildProcess | undefined;
let output = '';

before(async () => {
  await d.start();
  await d.importBusybox();
});
after(async () => {
  if (watcher && watcher.exitCode === null) {
    const gone = new Promise((r) => watcher!.once('exit', r));
    watcher.kill('SIGKILL');
    await gone;
  }
  await d.cleanup();
});

const cat = async (container: string, file: string) => {
  const r = await d.docker(['exec', container, 'cat', file]);
  return r.code === 0 ? r.stdout : undefined;
};

/** Resolves once the watcher's output contains `text` (rejects if it exits first). */
function outputHas(text: string, timeoutMs = 180_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (output.includes(text)) {
        cleanup();
        resolve();
      }
    };
    const onExit = () => {
      cleanup();
      reject(new Error(`watch exited (${watcher!.exitCode}) before printing ${JSON.stringify(text)}:\n${output}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no ${JSON.stringify(text)} from watch in ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      watcher!.stdout!.off('data', check);
      watcher!.stderr!.off('data', check);
      watcher!.off('exit', onExit);
    };
    watcher!.stdout!.on('data', check);
    watcher!.stderr!.on('data', check);
    watcher!.once('exit', onExit);
    check();
  });
}

test('watch: sync, delete, ignore, sync+exec, rebuild', async () => {
  const p = project(d, 'wproj', {
    'compose.yaml': COMPOSE,
    'src/index.html': 'v1\n',
    'hooks/a.sh': 'hook-1\n',
    'api/Dockerfile': 'FROM busybox:local\nCOPY version.txt /version.txt\n',
    'api/version.txt': 'api-1\n',
  });
  watcher = spawn(process.execPath, [keelBin, '-H', `unix://${d.socket}`, 'compose', 'watch'], {
    cwd: p.dir,
    env: { ...process.env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  watcher.stdout!.on('data', (b: Buffer) => (output += b.toString()));
  watcher.stderr!.on('data', (b: Buffer) => (output += b.toString()));
  // watch brings the project up first (building api), then watches
  await outputHas('Watch enabled');
  assert.equal(await cat('wproj-api-1', '/version.txt'), 'api-1\n', output);
  const firstApi = JSON.parse((await d.docker(['inspect', 'wproj-api-1'])).stdout)[0];

  // an edited file and a new one in a new directory show up in the container
  fs.writeFileSync(path.join(p.dir, 'src/index.html'), 'v2\n');
  fs.mkdirSync(path.join(p.dir, 'src/deep/er'), { recursive: true });
  fs.writeFileSync(path.join(p.dir, 'src/deep/er/page.html'), 'deep\n');
  // ignored: by the rule's patterns and by docker compose's defaults
  fs.writeFileSync(path.join(p.dir, 'src/scratch.tmp'), 'no\n');
  fs.mkdirSync(path.join(p.dir, 'src/cache'));
  fs.writeFileSync(path.join(p.dir, 'src/cache/big'), 'no\n');
  fs.mkdirSync(path.join(p.dir, 'src/.git'));
  fs.writeFileSync(path.join(p.dir, 'src/.git/HEAD'), 'no\n');
  await eventually(async () => (await cat('wproj-web-1', '/app/src/deep/er/page.html')) === 'deep\n', 'the new file in the container');
  await eventually(async () => (await cat('wproj-web-1', '/app/src/index.html')) === 'v2\n', 'the edited file in the container');
  const listed = (await d.docker(['exec', 'wproj-web-1', 'busybox', 'find', '/app/src'])).stdout.split('\n').filter(Boolean).sort();
  assert.deepEqual(listed, ['/app/src', '/app/src/deep', '/app/src/deep/er', '/app/src/deep/er/page.html', '/app/src/index.html'], output);
  assert.match(output, /Syncing service "web" after \d+ changes were detected/);

  // deletes propagate: a file, then a directory with what it holds
  fs.rmSync(path.join(p.dir, 'src/index.html'));
  fs.rmSync(path.join(p.dir, 'src/deep'), { recursive: true });
  await eventually(
    async () => (await d.docker(['exec', 'wproj-web-1', 'busybox', 'find', '/app/src'])).stdout.trim() === '/app/src',
    'the deleted paths gone from the container',
  );

  // sync+exec: the command runs after the files are in
  fs.writeFileSync(path.join(p.dir, 'hooks/b.sh'), 'hook-2\n');
  await eventually(async () => (await cat('wproj-web-1', '/tmp/hooks-ran')) === 'hook-2\n', 'the sync+exec command');

  // rebuild: a new image, and the container recreated from it
  fs.writeFileSync(path.join(p.dir, 'api/version.txt'), 'api-2\n');
  await outputHas('service(s) ["api"] successfully built');
  const api = JSON.parse((await d.docker(['inspect', 'wproj-api-1'])).stdout)[0];
  assert.notEqual(api.Id, firstApi.Id, 'the api container is recreated');
  assert.notEqual(api.Image, firstApi.Image, 'from a new image');
  assert.equal(api.State.Running, true);
  assert.equal(await cat('wproj-api-1', '/version.txt'), 'api-2\n');
  // web was not touched by api's rebuild
  assert.equal((await d.docker(['inspect', '-f', '{{.State.Running}}', 'wproj-web-1'])).stdout.trim(), 'true');

  // Ctrl-C ends the watch; the containers keep running
  const exited = new Promise<number | null>((r) => watcher!.once('exit', (code) => r(code)));
  watcher.kill('SIGINT');
  assert.equal(await exited, 0, output);
  const down = await p.compose(['down', '-t', '0']);
  assert.equal(down.code, 0, down.stderr);
});
