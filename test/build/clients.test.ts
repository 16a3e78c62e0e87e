import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Docker from 'dockerode';
import { TestDaemon } from '../helpers/daemon.ts';
import { settledLeftovers, NOTHING_LEFT, tarOf, writeContext } from './helpers.ts';

const d = new TestDaemon('keel-buildcli');

before(async () => {
  await d.start();
  await d.importBusybox();
});
after(() => d.cleanup());

const DOCKERFILE =
  'FROM busybox:local AS base\nARG WHO=world\nRUN echo "hello $WHO" > /greeting\nFROM base AS final\nCOPY note.txt /note.txt\nCMD ["cat", "/greeting", "/note.txt"]\n';

describe('build clients: dockerode, docker-compose v1, keel build', () => {
  test('dockerode buildImage streams the build and tags the image', async () => {
    const ctx = writeContext(path.join(d.dir, 'ctx-dockerode'), { Dockerfile: DOCKERFILE, 'note.txt': 'from dockerode\n' });
    const docker = new Docker({ socketPath: d.socket });
    const stream = await docker.buildImage(tarOf(ctx) as unknown as NodeJS.ReadableStream, { t: 'dode:1', buildargs: { WHO: 'dockerode' } });
    const msgs = await new Promise<{ stream?: string; aux?: { ID: string }; error?: string }[]>((resolve, reject) =>
      docker.modem.followProgress(stream, (e, r) => (e ? reject(e) : resolve(r))),
    );
    assert.equal(
      msgs.find((m) => m.error),
      undefined,
    );
    const id = msgs.find((m) => m.aux)!.aux!.ID;
    assert.match(id, /^sha256:[a-f0-9]{64}$/);
    assert.ok(msgs.some((m) => m.stream === 'Successfully tagged dode:1\n'));
    const img = await docker.getImage('dode:1').inspect();
    assert.equal(img.Id, id);
    const run = await d.docker(['run', '--rm', 'dode:1']);
    assert.equal(run.stdout, 'hello dockerode\nfrom dockerode\n');
  });

  test('docker-compose (v1) build builds the service image', async () => {
    const ctx = writeContext(path.join(d.dir, 'ctx-compose'), { Dockerfile: DOCKERFILE, 'note.txt': 'from compose\n' });
    const compose = d.composeProject(
      'bproj',
      `version: "2.4"\nservices:\n  web:\n    build:\n      context: ${ctx}\n      args:\n        WHO: compose\n      labels:\n        made.by: compose\n`,
    );
    const r = await compose(['build']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const img = JSON.parse((await d.docker(['image', 'inspect', 'bproj_web'])).stdout)[0];
    assert.equal(img.Config.Labels['made.by'], 'compose');
    assert.equal((await d.docker(['run', '--rm', 'bproj_web'])).stdout, 'hello compose\nfrom compose\n');
  });

  test('keel build: -t, -f, --build-arg, --target, -q, --iidfile, --label, and a context from stdin', async () => {
    const ctx = writeContext(path.join(d.dir, 'ctx-keel'), {
      'build/Containerfile': DOCKERFILE,
      'note.txt': 'from keel\n',
      'ignored.txt': 'x',
      '.dockerignore': 'ignored.txt\n',
    });
    const iid = path.join(d.dir, 'iid');
    const r = await d.keel([
      'build',
      '--progress=plain',
      '-t',
      'kb:1',
      '-t',
      'kb:2',
      '-f',
      path.join(ctx, 'build/Containerfile'),
      '--build-arg',
      'WHO=keel',
      '--label',
      'l=v',
      '--iidfile',
      iid,
      ctx,
    ]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /^Step 1\/7 : FROM busybox:local AS base$/m);
    assert.match(r.stdout, /^Successfully tagged kb:2$/m);
    assert.match(fs.readFileSync(iid, 'utf8'), /^sha256:[a-f0-9]{64}$/);
    assert.equal((await d.keel(['run', '--rm', 'kb:1'])).stdout, 'hello keel\nfrom keel\n');
    const q = await d.keel(['build', '-q', '--target', 'base', '-f', path.join(ctx, 'build/Containerfile'), ctx]);
    assert.equal(q.code, 0, q.stderr);
    assert.match(q.stdout, /^sha256:[a-f0-9]{64}\n$/);
    // An outside Dockerfile travels in the tar; the ignored file does not.
    fs.writeFileSync(path.join(ctx, 'build/Containerfile'), 'FROM busybox:local\nCOPY . /ctx/\nRUN ls /ctx\n');
    const ls = await d.keel(['build', '--progress=plain', '-f', path.join(ctx, 'build/Containerfile'), ctx]);
    assert.equal(ls.code, 0, ls.stderr);
    assert.doesNotMatch(ls.stdout, /ignored\.txt/);
    const stdin = writeContext(path.join(d.dir, 'ctx-stdin'), { Dockerfile: 'FROM busybox:local\nCOPY x /x\nCMD ["cat", "/x"]\n', x: 'from stdin\n' });
    const piped = await d.keel(['build', '--progress=plain', '-t', 'stdin:1', '-'], { input: tarOf(stdin) });
    assert.equal(piped.code, 0, piped.stderr);
    assert.equal((await d.keel(['run', '--rm', 'stdin:1'])).stdout, 'from stdin\n');
  });

  test('keel build exits with the failing RUN exit code and leaves nothing', async () => {
    const ctx = writeContext(path.join(d.dir, 'ctx-kfail'), { Dockerfile: 'FROM busybox:local\nRUN echo failing; exit 42\n' });
    const r = await d.keel(['build', '--progress=plain', ctx]);
    assert.equal(r.code, 42);
    assert.match(r.stdout, /failing/);
    assert.match(r.stderr, /returned a non-zero code: 42/);
    assert.deepEqual(await settledLeftovers(d), NOTHING_LEFT);
  });

  test('docker build -f- DIR and docker build - (a Dockerfile on stdin)', async () => {
    const ctx = writeContext(path.join(d.dir, 'ctx-fstdin'), { 'note.txt': 'from -f-\n' });
    const env = { DOCKER_BUILDKIT: '0' };
    const a = await d.docker(['build', '-q', '-t', 'fstdin:1', '-f-', ctx], {
      env,
      input: 'FROM busybox:local\nCOPY note.txt /note.txt\nCMD ["cat", "/note.txt"]\n',
    });
    assert.equal(a.code, 0, a.stderr);
    assert.equal((await d.docker(['run', '--rm', 'fstdin:1'])).stdout, 'from -f-\n');
    const b = await d.docker(['build', '-q', '-t', 'stdin:2', '-'], { env, input: 'FROM busybox:local\nRUN echo only > /o\nCMD ["cat", "/o"]\n' });
    assert.equal(b.code, 0, b.stderr);
    assert.equal((await d.docker(['run', '--rm', 'stdin:2'])).stdout, 'only\n');
  });
});
