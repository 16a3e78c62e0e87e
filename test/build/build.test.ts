import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { repoRoot, TestDaemon } from '../helpers/daemon.ts';
import { settledLeftovers, normalizeIds, NOTHING_LEFT, rawBuild, tarOf, writeContext } from './helpers.ts';

const d = new TestDaemon('keel-build');
const LEGACY = { DOCKER_BUILDKIT: '0' };

before(async () => {
  await d.start();
  await d.importBusybox();
});
after(() => d.cleanup());

const MULTI = `ARG BASE=busybox:local
FROM \${BASE} AS builder
ARG GREETING=hello
WORKDIR /work
COPY src/ ./src/
RUN echo "$GREETING from builder" > out.txt && ls /work/src > listing.txt
FROM busybox:local
ENV APP=/app
WORKDIR $APP
COPY --from=builder /work/out.txt /work/listing.txt ./
COPY src/*.txt /globbed/
CMD ["cat", "out.txt"]
`;

describe('docker build (legacy protocol) against keel', () => {
  test('the stream is the one dockerd sends (shared/reference build-default)', async () => {
    const ctx = writeContext(path.join(d.dir, 'ctx-ref'), {
      Dockerfile: 'FROM busybox:local\nRUN echo built > /built.txt\nCOPY hello.txt /hello.txt\nENV FOO=bar\nCMD ["/bin/cat","/hello.txt"]\n',
      'hello.txt': 'hello from ctx\n',
    });
    const r = await rawBuild(d, tarOf(ctx), 'dockerfile=Dockerfile&t=apires-built%3A1&version=1');
    assert.equal(r.status, 200);
    // shared/ sits beside the project (DESIGN.md's home), in a session's checkout and in CI's clone alike.
    const refLog = fs.readFileSync(path.join(repoRoot, '../shared/reference/docker-api-1.41/build-default.log'), 'latin1');
    const ref = refLog
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => l.replace(/\\r\\n$/, ''));
    assert.deepEqual(r.lines.map(normalizeIds), ref.map(normalizeIds));
    const run = await d.docker(['run', '--rm', 'apires-built:1']);
    assert.equal(run.stdout, 'hello from ctx\n');
  });

  test('a multi-stage Dockerfile (ARG, FROM AS, WORKDIR, COPY --from, globs, ENV, CMD) builds and runs', async () => {
    const ctx = writeContext(path.join(d.dir, 'ctx-multi'), { Dockerfile: MULTI, 'src/a.txt': 'a\n', 'src/b.txt': 'b\n', 'src/sub/c.md': 'c\n' });
    const r = await d.docker(['build', '-t', 'multi:1', '--build-arg', 'GREETING=hi', ctx], { env: LEGACY });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /^Step 1\/11 : FROM \$\{BASE\} AS builder$/m);
    assert.match(r.stdout, /^Step 11\/11 : CMD \["cat", "out.txt"\]$/m);
    assert.match(r.stdout, /^ ---> Running in [a-f0-9]{12}$/m);
    assert.match(r.stdout, /^Removing intermediate container [a-f0-9]{12}$/m);
    assert.match(r.stdout, /^Successfully built [a-f0-9]{12}$/m);
    assert.match(r.stdout, /^Successfully tagged multi:1$/m);
    const out = await d.docker(['run', '--rm', 'multi:1']);
    assert.equal(out.stdout, 'hi from builder\n');
    const ls = await d.docker(['run', '--rm', 'multi:1', 'sh', '-c', 'pwd; cat listing.txt; ls /globbed; echo $APP']);
    assert.equal(ls.stdout, '/app\na.txt\nb.txt\nsub\na.txt\nb.txt\n/app\n');
    const keel = await d.keel(['run', '--rm', 'multi:1']);
    assert.equal(keel.stdout, 'hi from builder\n');
    const inspect = JSON.parse((await d.docker(['image', 'inspect', 'multi:1'])).stdout)[0];
    assert.deepEqual(inspect.Config.Cmd, ['cat', 'out.txt']);
    assert.equal(inspect.Config.WorkingDir, '/app');
    assert.ok(inspect.Config.Env.includes('APP=/app'));
    // busybox + WORKDIR $APP (it makes /app, as dockerd's legacy builder does) + 2 COPY layers; other metadata steps add history only.
    assert.equal(inspect.RootFS.Layers.length, 4);
    const hist = (await d.docker(['history', '--no-trunc', '--format', '{{.CreatedBy}}', 'multi:1'])).stdout;
    assert.match(hist, /#\(nop\)  CMD \["cat" "out.txt"\]/);
    // Intermediate images show only with -a; the builder stage's result is dangling, as with dockerd.
    const images = (await d.docker(['images', '--format', '{{.Repository}}:{{.Tag}}'])).stdout;
    assert.equal(images.match(/<none>:<none>/g)?.length, 1, images);
    const all = (await d.docker(['images', '-a', '--format', '{{.Repository}}:{{.Tag}}'])).stdout;
    assert.ok(all.match(/<none>/g)!.length > 5);
    assert.deepEqual(await settledLeftovers(d), NOTHING_LEFT);
  });

  test('a rebuild is all cache; editing one file reruns from the first step that reads it', async () => {
    const dir = path.join(d.dir, 'ctx-cache');
    const files = {
      Dockerfile: 'FROM busybox:local\nCOPY a.txt /a.txt\nRUN cat /a.txt > /a-copy\nCOPY b.txt /b.txt\nRUN cat /b.txt > /b-copy\nCMD ["cat", "/b-copy"]\n',
      'a.txt': 'A1\n',
      'b.txt': 'B1\n',
    };
    writeContext(dir, files);
    const first = await d.docker(['build', '-t', 'cache:1', dir], { env: LEGACY });
    assert.equal(first.code, 0, first.stderr);
    const id1 = /Successfully built ([a-f0-9]{12})/.exec(first.stdout)![1];
    const t0 = performance.now();
    const again = await d.docker(['build', '-t', 'cache:1', dir], { env: LEGACY });
    const noop = performance.now() - t0;
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout.match(/ ---> Using cache/g)?.length, 5);
    assert.equal(/Successfully built ([a-f0-9]{12})/.exec(again.stdout)![1], id1);
    console.log(`no-op rebuild through the docker CLI: ${noop.toFixed(0)} ms`);
    // mtimes do not matter, content does
    fs.utimesSync(path.join(dir, 'a.txt'), new Date(2001, 1, 1), new Date(2001, 1, 1));
    const touched = await d.docker(['build', dir], { env: LEGACY });
    assert.equal(touched.stdout.match(/ ---> Using cache/g)?.length, 5);
    fs.writeFileSync(path.join(dir, 'b.txt'), 'B2\n');
    const edited = await d.docker(['build', '-t', 'cache:2', dir], { env: LEGACY });
    assert.equal(edited.code, 0, edited.stderr);
    const steps = edited.stdout.split(/^Step /m).slice(1);
    assert.deepEqual(
      steps.map((s) => s.includes('Using cache')),
      [false, true, true, false, false, false],
    );
    assert.equal((await d.docker(['run', '--rm', 'cache:2'])).stdout, 'B2\n');
    // --no-cache runs everything
    const nc = await d.docker(['build', '--no-cache', dir], { env: LEGACY });
    assert.equal(nc.code, 0);
    assert.doesNotMatch(nc.stdout, /Using cache/);
  });

  test('the cache survives a daemon restart', async () => {
    const dir = path.join(d.dir, 'ctx-cache');
    await d.stop();
    await d.start();
    const r = await d.docker(['build', '-t', 'cache:3', dir], { env: LEGACY });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.match(/ ---> Using cache/g)?.length, 5);
  });

  test('a failing RUN: its output, its exit code, nothing tagged, nothing left behind', async () => {
    const ctx = writeContext(path.join(d.dir, 'ctx-fail'), { Dockerfile: 'FROM busybox:local\nRUN echo to-out; echo to-err >&2; exit 3\n' });
    const r = await d.docker(['build', '-t', 'failed:1', ctx], { env: LEGACY });
    assert.equal(r.code, 3);
    assert.match(r.stdout, /to-out/);
    assert.match(r.stdout + r.stderr, /to-err/);
    assert.match(r.stderr, /The command '\/bin\/sh -c echo to-out; echo to-err >&2; exit 3' returned a non-zero code: 3/);
    assert.equal((await d.docker(['images', '-q', 'failed:1'])).stdout, '');
    assert.deepEqual(await settledLeftovers(d), NOTHING_LEFT);
    const raw = await rawBuild(d, tarOf(ctx), 't=failed');
    const last = raw.messages[raw.messages.length - 1]!;
    assert.deepEqual(last, {
      errorDetail: { code: 3, message: "The command '/bin/sh -c echo to-out; echo to-err >&2; exit 3' returned a non-zero code: 3" },
      error: "The command '/bin/sh -c echo to-out; echo to-err >&2; exit 3' returned a non-zero code: 3",
    });
  });

  test('query parameters: q, labels, target, buildargs with null, platform, remote', async () => {
    const ctx = writeContext(path.join(d.dir, 'ctx-q'), {
      Dockerfile: 'FROM busybox:local AS one\nARG X\nRUN echo "x=$X" > /x\nFROM busybox:local AS two\nRUN exit 9\n',
    });
    const q = await rawBuild(
      d,
      tarOf(ctx),
      `q=1&target=one&t=q%3A1&labels=${encodeURIComponent('{"team":"keel"}')}&buildargs=${encodeURIComponent('{"X":"1","Y":null}')}`,
    );
    assert.equal(q.status, 200);
    const id = (q.messages.find((m) => m.aux) as { aux: { ID: string } }).aux.ID;
    assert.deepEqual(
      q.messages.filter((m) => !m.aux),
      [{ stream: `${id}\n` }],
    );
    const img = JSON.parse((await d.docker(['image', 'inspect', 'q:1'])).stdout)[0];
    assert.deepEqual(img.Config.Labels, { team: 'keel' });
    assert.equal((await d.docker(['run', '--rm', 'q:1', 'cat', '/x'])).stdout, 'x=1\n');
    const plat = await rawBuild(d, tarOf(ctx), 'platform=linux%2Fs390x');
    assert.equal(plat.status, 400);
    assert.match(plat.lines[0]!, /native platform only/);
    const remote = await rawBuild(d, Buffer.alloc(0), 'remote=https%3A%2F%2Fexample.com%2Fx.git');
    assert.equal(remote.status, 400);
    assert.match(remote.lines[0]!, /remote build contexts/);
    const missingTarget = await rawBuild(d, tarOf(ctx), 'target=nope');
    assert.equal(missingTarget.status, 400);
    assert.match(missingTarget.lines[0]!, /failed to reach build target nope/);
  });

  test('rmi then image prune removes the intermediate images of a build', async () => {
    const ctx = writeContext(path.join(d.dir, 'ctx-prune'), { Dockerfile: 'FROM busybox:local\nENV P=1\nRUN echo p > /p\nCMD ["cat", "/p"]\n' });
    const r = await d.docker(['build', '-t', 'prunable:1', ctx], { env: LEGACY });
    assert.equal(r.code, 0, r.stderr);
    const base = (await d.docker(['images', '-q', 'busybox:local'])).stdout.trim();
    const steps = [...r.stdout.matchAll(/^ ---> ([a-f0-9]{12})$/gm)].map((m) => m[1]!).filter((id) => id !== base);
    assert.equal(steps.length, 3);
    assert.equal((await d.docker(['rmi', 'prunable:1'])).code, 0);
    const prune = await d.docker(['image', 'prune', '-f']);
    assert.equal(prune.code, 0, prune.stderr);
    const left = (await d.docker(['images', '-a', '-q'])).stdout;
    for (const id of steps) assert.ok(!left.includes(id), `${id} is gone`);
    assert.ok(left.includes(base));
  });
});
