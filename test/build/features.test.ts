import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TestDaemon } from '../helpers/daemon.ts';
import { settledLeftovers, NOTHING_LEFT, writeContext } from './helpers.ts';

const d = new TestDaemon('keel-buildfeat');

before(async () => {
  await d.start();
  await d.importBusybox();
});
after(() => d.cleanup());

async function keelBuild(
  name: string,
  files: Record<string, string | { link: string }>,
  args: string[] = [],
): Promise<{ code: number; stdout: string; stderr: string; dir: string }> {
  const dir = writeContext(path.join(d.dir, name), files);
  const r = await d.keel(['build', '--progress=plain', ...args, dir]);
  return { ...r, dir };
}

async function sh(image: string, script: string): Promise<string> {
  const r = await d.docker(['run', '--rm', image, 'sh', '-c', script]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

describe('Dockerfile features through keel build', () => {
  test("COPY follows docker's rules: directories copy contents, dest ending in /, several sources, --chown, --chmod, --parents, --exclude", async () => {
    const r = await keelBuild(
      'copyrules',
      {
        Dockerfile:
          [
            'FROM busybox:local',
            'COPY dir /into-dir',
            'COPY one.txt /as-file',
            'COPY one.txt /newdir/',
            'COPY one.txt two.txt /multi/',
            'COPY --chown=nobody:nogroup --chmod=0640 one.txt /owned',
            'COPY --chown=123 one.txt /numeric',
            'COPY --parents dir/sub/deep.txt /parents/',
            'COPY --exclude=*.md dir/ /excluded/',
            'WORKDIR /rel',
            'COPY one.txt .',
            'COPY <<EOF /heredoc.txt',
            'from a heredoc',
            'EOF',
          ].join('\n') + '\n',
        'dir/a.txt': 'a',
        'dir/readme.md': 'md',
        'dir/sub/deep.txt': 'deep',
        'one.txt': '1',
        'two.txt': '2',
      },
      ['-t', 'copyrules'],
    );
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const out = await sh(
      'copyrules',
      [
        'ls /into-dir',
        'cat /as-file; echo',
        'ls /newdir',
        'ls /multi',
        "stat -c '%U:%G %a' /owned",
        "stat -c '%u:%g' /numeric",
        'cat /parents/dir/sub/deep.txt; echo',
        'ls /excluded',
        'ls /rel',
        'cat /heredoc.txt',
      ].join('; '),
    );
    assert.equal(out, 'a.txt\nreadme.md\nsub\n1\none.txt\none.txt\ntwo.txt\nnobody:nogroup 640\n123:123\ndeep\na.txt\nsub\none.txt\nfrom a heredoc\n');
    const multi = await keelBuild('copymulti', { Dockerfile: 'FROM busybox:local\nCOPY a b /nodir\n', a: 'a', b: 'b' });
    assert.notEqual(multi.code, 0);
    assert.match(multi.stderr, /destination must be a directory and end with a \//);
  });

  test('ENV, LABEL, EXPOSE, USER, VOLUME, STOPSIGNAL, HEALTHCHECK, ENTRYPOINT, SHELL, ONBUILD land in the config', async () => {
    const base = await keelBuild(
      'onbuild-base',
      {
        Dockerfile: 'FROM busybox:local\nONBUILD RUN echo triggered > /trigger\nONBUILD COPY marker /marker\n',
      },
      ['-t', 'obbase'],
    );
    assert.equal(base.code, 0, base.stderr);
    const r = await keelBuild(
      'meta',
      {
        Dockerfile:
          [
            'FROM obbase',
            'ENV A=1 B="two words"',
            'LABEL org.example.team=keel',
            'EXPOSE 80 53/udp',
            'VOLUME ["/data"]',
            'STOPSIGNAL SIGINT',
            'HEALTHCHECK --interval=5s --retries=2 CMD true',
            'SHELL ["/bin/sh", "-ec"]',
            'RUN echo "shell=$0" > /shell.txt',
            'USER nobody',
            'ENTRYPOINT ["/bin/echo"]',
            'CMD ["hi"]',
          ].join('\n') + '\n',
        marker: 'marked\n',
      },
      ['-t', 'meta'],
    );
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /# Executing 2 build triggers/);
    const img = JSON.parse((await d.docker(['image', 'inspect', 'meta'])).stdout)[0];
    const c = img.Config;
    assert.ok(c.Env.includes('A=1') && c.Env.includes('B=two words'));
    assert.equal(c.Labels['org.example.team'], 'keel');
    assert.deepEqual(Object.keys(c.ExposedPorts).sort(), ['53/udp', '80/tcp']);
    assert.deepEqual(Object.keys(c.Volumes), ['/data']);
    assert.equal(c.StopSignal, 'SIGINT');
    assert.deepEqual(c.Healthcheck, { Test: ['CMD-SHELL', 'true'], Interval: 5e9, Retries: 2 });
    assert.deepEqual(c.Shell, ['/bin/sh', '-ec']);
    assert.equal(c.User, 'nobody');
    assert.deepEqual(c.Entrypoint, ['/bin/echo']);
    assert.deepEqual(c.Cmd, ['hi']);
    assert.equal(c.OnBuild ?? null, null);
    assert.equal((await d.docker(['run', '--rm', 'meta'])).stdout, 'hi\n');
    const files = await d.docker(['run', '--rm', '--entrypoint', 'sh', 'meta', '-c', 'cat /trigger /marker /shell.txt']);
    assert.equal(files.stdout, 'triggered\nmarked\nshell=/bin/sh\n');
  });

  test('ADD: a local tar is extracted; an http URL is downloaded and checked against --checksum', async () => {
    const payload = 'served over http\n';
    const server = http.createServer((req, res) => {
      if (req.url === '/files/payload.txt') res.end(payload);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      const sum = createHash('sha256').update(payload).digest('hex');
      const src = path.join(d.dir, 'tarsrc');
      writeContext(src, { 'x/inner.txt': 'inner' });
      const ctx = path.join(d.dir, 'add');
      writeContext(ctx, {
        Dockerfile: `FROM busybox:local\nADD arch.tar.gz /unpacked/\nADD arch.tar.xz arch.tar.bz2 /more/\nADD plain.gz /kept/\nADD --checksum=sha256:${sum} http://127.0.0.1:${port}/files/payload.txt /dl/\n`,
      });
      const { spawnSync } = await import('node:child_process');
      assert.equal(spawnSync('tar', ['-C', src, '-czf', path.join(ctx, 'arch.tar.gz'), 'x']).status, 0);
      assert.equal(spawnSync('tar', ['-C', src, '-cJf', path.join(ctx, 'arch.tar.xz'), 'x']).status, 0);
      writeContext(path.join(d.dir, 'tarsrc2'), { 'y/other.txt': 'other' });
      assert.equal(spawnSync('tar', ['-C', path.join(d.dir, 'tarsrc2'), '-cjf', path.join(ctx, 'arch.tar.bz2'), 'y']).status, 0);
      fs.writeFileSync(path.join(ctx, 'plain.gz'), spawnSync('gzip', ['-c'], { input: 'not a tar' }).stdout);
      const r = await d.keel(['build', '--progress=plain', '--network=host', '-t', 'added', ctx]);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.equal(
        await sh('added', 'cat /unpacked/x/inner.txt; echo; cat /dl/payload.txt; cat /more/x/inner.txt /more/y/other.txt; echo; ls /kept'),
        `inner\n${payload}innerother\nplain.gz\n`,
      );
      fs.writeFileSync(
        path.join(ctx, 'Dockerfile'),
        `FROM busybox:local\nADD --checksum=sha256:${'0'.repeat(64)} http://127.0.0.1:${port}/files/payload.txt /dl/\n`,
      );
      const bad = await d.keel(['build', '--progress=plain', ctx]);
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /checksum mismatch/);
    } finally {
      server.close();
    }
  });

  test('RUN --mount: cache persists between builds without touching the key; secrets never reach a layer; tmpfs; bind from the context', async () => {
    fs.writeFileSync(path.join(d.dir, 'secret.txt'), 'TOPSECRET');
    const files = {
      Dockerfile:
        [
          'FROM busybox:local',
          'ARG N=1',
          'RUN --mount=type=cache,target=/cache echo "run$N" >> /cache/log && cat /cache/log > /seen',
          'RUN --mount=type=secret,id=tok cat /run/secrets/tok > /dev/null && test ! -s /run/secrets/tok || echo "secret-len=$(wc -c < /run/secrets/tok)" > /secret-len',
          'RUN --mount=type=tmpfs,target=/scratch touch /scratch/x && test -f /scratch/x',
          'RUN --mount=type=bind,source=ctxfile,target=/mnt/ctxfile cat /mnt/ctxfile > /from-bind',
          'RUN --mount=type=bind,target=/ctx,rw touch /ctx/written-by-run && test -f /ctx/written-by-run',
          'COPY . /after/',
          'WORKDIR /w',
          'RUN --mount=type=cache,target=rel echo rel > rel/x && test -f /w/rel/x',
          'ARG A=1 B=${A}2',
          'RUN <<EOF',
          'echo "heredoc A=$A B=$B" > /heredoc',
          'EOF',
          'RUN <<EOF',
          '#!/bin/sh',
          'echo "script $0" > /script-out',
          'EOF',
        ].join('\n') + '\n',
      ctxfile: 'bound',
    };
    const r1 = await keelBuild('mounts', files, ['-t', 'mounts:1', '--secret', `id=tok,src=${path.join(d.dir, 'secret.txt')}`]);
    assert.equal(r1.code, 0, r1.stderr + r1.stdout);
    const r2 = await d.keel([
      'build',
      '--progress=plain',
      '-t',
      'mounts:2',
      '--build-arg',
      'N=2',
      '--build-arg',
      'A=5',
      '--secret',
      `id=tok,src=${path.join(d.dir, 'secret.txt')}`,
      r1.dir,
    ]);
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(
      await sh(
        'mounts:2',
        'cat /seen; cat /secret-len; cat /from-bind; echo; ls /cache /scratch /ctx /w/rel 2>/dev/null | wc -l; ls /after; cat /heredoc; grep -c script /script-out',
      ),
      'run1\nrun2\nsecret-len=9\nbound\n0\nDockerfile\nctxfile\nheredoc A=5 B=52\n1\n',
    );
    const { spawnSync } = await import('node:child_process');
    assert.equal(
      spawnSync('grep', [
        '-rl',
        'TOPSECRET',
        path.join(d.dataRoot, 'overlay', 'layers'),
        path.join(d.dataRoot, 'content'),
        path.join(d.dataRoot, 'build', 'cache'),
      ]).stdout.toString(),
      '',
    );
    const prune = await d.keel(['builder', 'prune', '-f']);
    assert.equal(prune.code, 0, prune.stderr);
    const r3 = await d.keel([
      'build',
      '--progress=plain',
      '-t',
      'mounts:3',
      '--build-arg',
      'N=3',
      '--secret',
      `id=tok,src=${path.join(d.dir, 'secret.txt')}`,
      r1.dir,
    ]);
    assert.equal(r3.code, 0, r3.stderr);
    assert.doesNotMatch(r3.stdout, /Using cache/);
    assert.equal(await sh('mounts:3', 'cat /seen'), 'run3\n');
    assert.deepEqual(await settledLeftovers(d), NOTHING_LEFT);
  });

  test('independent stages run at the same time; the stream is in stage order; unreachable stages do not run', async () => {
    const r = await keelBuild(
      'parallel',
      {
        Dockerfile:
          [
            'FROM busybox:local AS a',
            'RUN echo "$(date +%s) " > /a; sleep 3; date +%s >> /a',
            'FROM busybox:local AS b',
            'RUN echo "$(date +%s) " > /b; sleep 3; date +%s >> /b',
            'FROM busybox:local AS unused',
            'RUN exit 1',
            'FROM busybox:local',
            'COPY --from=a /a /a',
            'COPY --from=b /b /b',
            'CMD ["cat", "/a", "/b"]',
          ].join('\n') + '\n',
      },
      ['-t', 'parallel'],
    );
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const steps = [...r.stdout.matchAll(/^Step (\d+)\/(\d+) : (.*)$/gm)].map((m) => `${m[1]}/${m[2]} ${m[3]}`);
    assert.deepEqual(
      steps.map((x) => x.split(' ')[0]),
      ['1/8', '2/8', '3/8', '4/8', '5/8', '6/8', '7/8', '8/8'],
    );
    assert.ok(r.stdout.indexOf('AS a') < r.stdout.indexOf('AS b'));
    const [a0, a1, b0, b1] = (await d.docker(['run', '--rm', 'parallel'])).stdout.split(/\s+/).filter(Boolean).map(Number);
    assert.ok(a0! < b1! && b0! < a1!, `the two RUNs overlapped in time: a ${a0}-${a1}, b ${b0}-${b1}`);
  });
});
