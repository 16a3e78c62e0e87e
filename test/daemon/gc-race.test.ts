import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type Registry, startRegistry } from '../registry/helpers.ts';
import { TestDaemon } from '../helpers/daemon.ts';

/**
 * Image garbage collection against pulls and container creates, through the
 * API as clients drive it: loops of pull+rmi and pull+run beside loops of
 * `image prune -af`. A command may lose its race (an image pruned between
 * pull and run), but every image the daemon lists must be whole: runnable
 * and savable.
 */
const d = new TestDaemon('keel-gcrace');
let reg: Registry;
const A = () => `${reg.host}/race/a:1`;
const B = () => `${reg.host}/race/b:1`;

before(async () => {
  reg = await startRegistry();
  await d.start();
  await d.importBusybox();
  const ok = async (args: string[]) => {
    const r = await d.docker(args);
    assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
  };
  await ok(['tag', 'busybox:local', A()]);
  await ok(['push', A()]);
  await ok(['run', '--name', 'mk', 'busybox:local', 'sh', '-c', 'echo b > /b; mkdir -p /data; head -c 300000 /bin/busybox > /data/blob']);
  await ok(['commit', 'mk', B()]);
  await ok(['push', B()]);
  await ok(['rm', 'mk']);
  await ok(['rmi', A(), B(), 'busybox:local']);
});
after(async () => {
  await d.cleanup();
  await reg.stop();
});

/** Every listed image runs and saves; a failure that is not "the image is gone by now" is a broken image. */
async function checkListed(): Promise<void> {
  const ids = (await d.docker(['images', '-q', '--no-trunc'])).stdout.split('\n').filter(Boolean);
  for (const id of ids) {
    for (const args of [
      ['save', id],
      ['run', '--rm', '--network', 'none', id, 'true'],
    ]) {
      const r = await d.docker(args);
      if (r.code !== 0 && !/No such image|not found|pull access denied|Unable to find image/i.test(r.stderr))
        assert.fail(
          `docker ${args.join(' ')} of a listed image: ${r.stderr}\n${d.log
            .split('\n')
            .filter((l) => /level=error/.test(l))
            .slice(-10)
            .join('\n')}`,
        );
    }
  }
}

test('pull+rmi and pull+run beside image prune -af: every listed image stays runnable and savable', async () => {
  const rounds = 6;
  const failures: string[] = [];
  const loop = async (fn: (i: number) => Promise<void>) => {
    for (let i = 0; i < rounds; i++) await fn(i);
  };
  const soft = async (args: string[]) => {
    const r = await d.docker(args);
    // Losing a race is allowed; a broken store is not.
    if (r.code !== 0 && /missing|digest|does not exist|no such file|content store|layer/i.test(r.stderr) && !/No such image/.test(r.stderr))
      failures.push(`docker ${args.join(' ')}: ${r.stderr.trim()}`);
  };
  await Promise.all([
    loop(async () => {
      await soft(['pull', '-q', A()]);
      await soft(['rmi', A()]);
    }),
    loop(async () => {
      await soft(['pull', '-q', B()]);
      await soft(['run', '--rm', '--network', 'none', B(), 'cat', '/b']);
    }),
    loop(async () => {
      await soft(['image', 'prune', '-af']);
      await checkListed();
    }),
  ]);
  assert.deepEqual(failures, []);
  await checkListed();
  // Whatever is left pulls and runs.
  for (const ref of [A(), B()]) {
    const p = await d.docker(['pull', '-q', ref]);
    assert.equal(p.code, 0, p.stderr);
    const r = await d.docker(['run', '--rm', '--network', 'none', ref, 'true']);
    assert.equal(r.code, 0, r.stderr);
  }
});
