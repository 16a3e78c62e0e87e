import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TestDaemon } from '../helpers/daemon.ts';
import { settledLeftovers, NOTHING_LEFT, writeContext } from './helpers.ts';

const d = new TestDaemon('keel-buildgaps');

before(async () => {
  await d.start();
  await d.importBusybox();
});
after(() => d.cleanup());

async function keelBuild(
  name: string,
  files: Record<string, string>,
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

async function layers(image: string): Promise<number> {
  const r = await d.docker(['image', 'inspect', '-f', '{{len .RootFS.Layers}}', image]);
  assert.equal(r.code, 0, r.stderr);
  return Number(r.stdout.trim());
}

describe('builder gaps', () => {
  test('WORKDIR creates a missing directory as root 0755 whatever USER says (a layer), and adds an empty layer when it exists', async () => {
    const r = await keelBuild(
      'workdir',
      {
        Dockerfile: 'FROM busybox:local\nUSER nobody\nWORKDIR /made/deep\nWORKDIR rel\nWORKDIR /etc\n',
      },
      ['-t', 'workdir'],
    );
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.equal(await sh('workdir', "pwd; stat -c '%U:%G %a' /made /made/deep /made/deep/rel"), '/etc\nroot:root 755\nroot:root 755\nroot:root 755\n');
    assert.equal(await layers('workdir'), (await layers('busybox:local')) + 2);
    const h = await d.docker(['history', '--no-trunc', '--format', '{{.CreatedBy}}', 'workdir']);
    assert.equal(
      h.stdout.split('\n').slice(0, 3).join('\n'),
      '/bin/sh -c #(nop) WORKDIR /etc\n/bin/sh -c #(nop) WORKDIR /made/deep/rel\n/bin/sh -c #(nop) WORKDIR /made/deep',
    );
    const again = await d.keel(['build', '--progress=plain', '-t', 'workdir', r.dir]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout.match(/Using cache/g)?.length, 4);
    const scratch = await keelBuild('workdir-scratch', { Dockerfile: 'FROM scratch\nWORKDIR /app\nCOPY f .\n', f: 'x' }, ['-t', 'workdir-scratch']);
    assert.equal(scratch.code, 0, scratch.stderr + scratch.stdout);
    assert.equal(await layers('workdir-scratch'), 2);
  });

  test('COPY <<EOF expands variables unless the delimiter is quoted; --chmod takes symbolic modes', async () => {
    const r = await keelBuild(
      'heredoc-chmod',
      {
        Dockerfile:
          [
            'FROM busybox:local',
            'ARG NAME=world',
            'ENV GREETING=hello',
            'COPY <<EOF /expanded.txt',
            '$GREETING ${NAME} "q"',
            'EOF',
            'COPY <<"EOF" /literal.txt',
            '$GREETING ${NAME}',
            'EOF',
            'COPY --chmod=u+x,go-w f /sym1',
            'COPY --chmod=a=r f /sym2',
            'COPY --chmod=u=rwX,go=rX dir/ /symdir/',
            'COPY --chmod=0750 f /oct',
          ].join('\n') + '\n',
        f: 'f',
        'dir/sub/x': 'x',
        'dir/y': 'y',
      },
      ['-t', 'heredoc-chmod', '--build-arg', 'NAME=keel'],
    );
    fs.chmodSync(path.join(r.dir, 'f'), 0o666);
    fs.chmodSync(path.join(r.dir, 'dir/y'), 0o700);
    const r2 = await d.keel(['build', '--progress=plain', '-t', 'heredoc-chmod', '--build-arg', 'NAME=keel', r.dir]);
    assert.equal(r2.code, 0, r2.stderr + r2.stdout);
    const out = await sh('heredoc-chmod', "cat /expanded.txt /literal.txt; stat -c '%a' /sym1 /sym2 /symdir/sub /symdir/sub/x /symdir/y /oct");
    assert.equal(out, 'hello keel "q"\n$GREETING ${NAME}\n744\n444\n755\n644\n755\n750\n');
  });

  test('cache mounts: sharing=private gives a busy id another directory, sharing=locked serialises, from= seeds a new cache', async () => {
    // Both builds' RUNs meet through a shared cache dir, so each private dir is chosen while the other is in use.
    const meet = 'touch /rv/$N; i=0; while [ ! -e /rv/A ] || [ ! -e /rv/B ]; do i=$((i+1)); [ $i -gt 600 ] && exit 9; sleep 0.1; done';
    const priv = {
      Dockerfile:
        [
          'FROM busybox:local',
          'ARG N',
          `RUN --mount=type=cache,id=rv,target=/rv --mount=type=cache,id=p,target=/c,sharing=private touch /c/$N && ${meet} && ls /c > /seen && sleep 1`,
        ].join('\n') + '\n',
    };
    const dir = writeContext(path.join(d.dir, 'private'), priv);
    const [a, b] = await Promise.all(['A', 'B'].map((n) => d.keel(['build', '--progress=plain', '-t', `priv:${n}`, '--build-arg', `N=${n}`, dir])));
    assert.equal(a!.code, 0, a!.stderr + a!.stdout);
    assert.equal(b!.code, 0, b!.stderr + b!.stdout);
    assert.equal(await sh('priv:A', 'cat /seen'), 'A\n');
    assert.equal(await sh('priv:B', 'cat /seen'), 'B\n');

    const lockedDf = (n: string) => ({
      Dockerfile: `FROM busybox:local\nRUN --mount=type=cache,id=l,target=/c,sharing=locked echo start ${n} >> /c/log && sleep 2 && echo end ${n} >> /c/log && cp /c/log /log\n`,
    });
    const dirs = ['A', 'B'].map((n) => writeContext(path.join(d.dir, `locked-${n}`), lockedDf(n)));
    const runs = await Promise.all(dirs.map((x, i) => d.keel(['build', '--progress=plain', '-t', `locked:${i}`, x])));
    for (const x of runs) assert.equal(x.code, 0, x.stderr + x.stdout);
    const logs = [await sh('locked:0', 'cat /log'), await sh('locked:1', 'cat /log')].sort((x, y) => x.length - y.length);
    assert.match(logs[0]!, /^start (A|B)\nend \1\n$/);
    assert.match(logs[1]!, /^start (A|B)\nend \1\nstart (A|B)\nend \2\n$/);
    assert.notEqual(logs[1]!.split('\n')[0], logs[1]!.split('\n')[2]);

    const seeded = await keelBuild(
      'seeded',
      {
        Dockerfile:
          [
            'FROM busybox:local AS seed',
            'RUN mkdir -p /seeddir && echo seeded > /seeddir/f',
            'FROM busybox:local',
            'ARG N=1',
            'RUN --mount=type=cache,id=s,target=/c,from=seed,source=/seeddir ls /c > /got && echo more$N > /c/more$N',
          ].join('\n') + '\n',
      },
      ['-t', 'seeded:1'],
    );
    assert.equal(seeded.code, 0, seeded.stderr + seeded.stdout);
    assert.equal(await sh('seeded:1', 'cat /got'), 'f\n');
    const seeded2 = await d.keel(['build', '--progress=plain', '-t', 'seeded:2', '--build-arg', 'N=2', seeded.dir]);
    assert.equal(seeded2.code, 0, seeded2.stderr);
    assert.equal(await sh('seeded:2', 'cat /got'), 'f\nmore1\n');
    assert.deepEqual(await settledLeftovers(d), NOTHING_LEFT);
  });
});
