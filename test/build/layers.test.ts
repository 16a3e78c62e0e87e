import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TestDaemon } from '../helpers/daemon.ts';
import { settledLeftovers, NOTHING_LEFT, writeContext } from './helpers.ts';

const d = new TestDaemon('keel-buildlayers');
const LEGACY = { DOCKER_BUILDKIT: '0' };

before(async () => {
  await d.start();
  await d.importBusybox();
});
after(() => d.cleanup());

async function build(name: string, files: Record<string, string>, args: string[] = []): Promise<{ stdout: string; steps: string[] }> {
  const dir = writeContext(path.join(d.dir, name), files);
  const r = await d.docker(['build', ...args, dir], { env: LEGACY });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  return { stdout: r.stdout, steps: r.stdout.split(/^Step /m).slice(1) };
}

async function sh(image: string, script: string): Promise<string> {
  const r = await d.docker(['run', '--rm', image, 'sh', '-c', script]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

async function inspect(image: string, format: string): Promise<string> {
  const r = await d.docker(['image', 'inspect', '-f', format, image]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

async function allImages(): Promise<string[]> {
  return (await d.docker(['images', '-a', '-q', '--no-trunc'])).stdout.split('\n').filter(Boolean);
}

describe('builder layers', () => {
  test('COPY --link makes its layer in an empty directory: a symlink below in the destination path is not followed', async () => {
    await build(
      'link-symlink',
      {
        Dockerfile: 'FROM busybox:local\nRUN mkdir /real && ln -s /real /lnk\nCOPY --link f /lnk/f\nRUN ln -s /real /lnk3\nCOPY g /lnk3/g\n',
        f: 'F\n',
        g: 'G\n',
      },
      ['-t', 'link-symlink'],
    );
    // --link: /lnk is a directory of the new layer over the link, and f is not in /real. Without it the link is followed.
    assert.equal(
      await sh('link-symlink', 'test -d /lnk && ! test -L /lnk && cat /lnk/f && ls /real && test -L /lnk3 && cat /real/g && stat -c "%a %u" /lnk'),
      'F\ng\nG\n755 0\n',
    );
  });

  test('COPY --link keeps its layer when an earlier step changes: the same diff ID on the new parent, from the cache', async () => {
    const files = {
      Dockerfile: 'FROM busybox:local\nARG V=1\nRUN echo $V > /v\nCOPY --link --chmod=640 app /app/\nCOPY plain /plain\n',
      'app/a': 'A\n',
      'app/sub/b': 'B\n',
      plain: 'P\n',
    };
    const one = await build('link-reuse', files, ['-t', 'link:1']);
    assert.doesNotMatch(one.stdout, /Using cache/);
    const two = await build('link-reuse', files, ['-t', 'link:2', '--build-arg', 'V=2']);
    // Steps: FROM, ARG (cached), RUN (reruns: V changed), COPY --link (its layer reused), COPY (reruns on the new parent).
    assert.deepEqual(
      two.steps.map((s) => s.includes('Using cache')),
      [false, true, false, true, false],
    );
    const top = async (img: string, i: number) => (JSON.parse(await inspect(img, '{{json .RootFS.Layers}}')) as string[]).at(i);
    assert.equal(await top('link:2', -2), await top('link:1', -2));
    assert.notEqual(await top('link:2', -3), await top('link:1', -3));
    assert.notEqual(await inspect('link:2', '{{.Id}}'), await inspect('link:1', '{{.Id}}'));
    assert.equal(await sh('link:2', 'cat /v /app/a /app/sub/b /plain; stat -c %a /app/a'), '2\nA\nB\nP\n640\n');
    // The reused step is an image of its own too: a third build is all cache.
    const three = await build('link-reuse', files, ['-t', 'link:3', '--build-arg', 'V=2']);
    assert.equal(three.stdout.match(/ ---> Using cache/g)?.length, 4);
    assert.equal(await inspect('link:3', '{{.Id}}'), await inspect('link:2', '{{.Id}}'));
    assert.deepEqual(await settledLeftovers(d), NOTHING_LEFT);
  });

  test('a cache mount seeded with from= takes uid, gid and mode for its root, and a different owner is a different cache', async () => {
    const df = [
      'FROM busybox:local AS seed',
      'RUN mkdir -p /s && echo seeded > /s/file && chmod 0711 /s',
      'FROM busybox:local',
      'RUN --mount=type=cache,target=/c,from=seed,source=/s,uid=1000,gid=2000,mode=0750 stat -c "%u %g %a" /c > /perms && cat /c/file >> /perms && touch /c/mine',
      'RUN --mount=type=cache,target=/c,from=seed,source=/s stat -c "%u %g %a" /c > /plain && ls /c >> /plain',
      'RUN --mount=type=cache,target=/c,from=seed,source=/s,uid=1000,gid=2000,mode=0750 ls /c > /again',
    ].join('\n');
    await build('cache-perms', { Dockerfile: df + '\n' }, ['-t', 'cache-perms']);
    assert.equal(await sh('cache-perms', 'cat /perms /plain /again'), '1000 2000 750\nseeded\n0 0 711\nfile\nfile\nmine\n');
  });

  test('rmi of a built image deletes its intermediate images; a parent of other images is never deleted, only untagged', async () => {
    await d.importBusybox('rmibase:1', ['ENV BASE=rmi']);
    const before = await allImages();
    const base = await inspect('rmibase:1', '{{.Id}}');
    const r = await build('rmi', { Dockerfile: 'FROM rmibase:1\nRUN echo a > /a\nENV X=1\nRUN echo b > /b\n' }, ['-t', 'rmi:1']);
    const steps = [...r.stdout.matchAll(/^ ---> ([a-f0-9]{12})$/gm)].map((m) => m[1]!).filter((id) => !base.includes(id));
    assert.equal(steps.length, 3);
    const full = (await allImages()).filter((id) => !before.includes(id));
    assert.equal(full.length, 3);
    // An intermediate image has a child: not even -f deletes it.
    const mid = full.find((id) => id.includes(steps[1]!))!;
    for (const f of [[], ['-f']]) {
      const c = await d.docker(['rmi', ...f, steps[1]!]);
      assert.equal(c.code, 1);
      assert.match(c.stderr, new RegExp(`conflict: unable to delete ${steps[1]} \\(cannot be forced\\) - image has dependent child images`));
    }
    assert.ok((await allImages()).includes(mid));
    // The base's last name goes, the base stays for its children.
    assert.equal((await d.docker(['tag', 'rmibase:1', 'keep:1'])).code, 0);
    const untag = await d.docker(['rmi', 'rmibase:1']);
    assert.equal(untag.stdout, 'Untagged: rmibase:1\n');
    const only = await d.docker(['rmi', 'keep:1']);
    assert.equal(only.code, 0, only.stderr);
    assert.equal(only.stdout, 'Untagged: keep:1\n');
    assert.ok((await allImages()).includes(base));
    // The built image takes its intermediates, then the base, now nameless and childless, with it.
    const rm = await d.docker(['rmi', 'rmi:1']);
    assert.equal(rm.code, 0, rm.stderr);
    // dockerd's order: the image, then each parent in turn.
    const expected = ['Untagged: rmi:1', ...[...steps].reverse().map((id) => full.find((f) => f.includes(id))!), base].map((x, k) => (k ? `Deleted: ${x}` : x));
    assert.deepEqual(rm.stdout.trim().split('\n'), expected);
    assert.deepEqual(
      (await allImages()).filter((id) => !before.includes(id) || id === base),
      [],
    );
  });
});
