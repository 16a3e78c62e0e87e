import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { run, TestDaemon } from '../helpers/daemon.ts';

/**
 * kill -9 of the daemon at each step of a container start (KEEL_TEST_CRASH_AT
 * makes it kill itself there), then a new daemon on the same roots: no
 * container may run that no record says is running, and what a container
 * that is not running held (rootfs mount, address, runc state) is released.
 */
const d = new TestDaemon('keel-crash');
before(async () => {
  await d.start();
  await d.importBusybox();
});
after(() => d.cleanup());

const crashAt = (step: string, fn: () => Promise<unknown>) => d.crashAt(step, fn);

const docker = async (args: string[]) => {
  const r = await d.docker(args);
  assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
};

/** What no record accounts for: runc containers and rootfs mounts of containers that are not running. */
async function assertNothingUnaccounted(): Promise<void> {
  const running = new Set((await docker(['ps', '-q', '--no-trunc'])).split('\n').filter(Boolean));
  const runc = await run(['runc', '--root', path.join(d.execRoot, 'runc'), 'list', '-q']);
  assert.deepEqual(
    runc.stdout.split('\n').filter((id) => id && !running.has(id)),
    [],
    'runc containers without a running record',
  );
  const mounted = fs
    .readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1] ?? '')
    .filter((m) => m.startsWith(path.join(d.execRoot, 'containers')) && m.endsWith('/rootfs'))
    .map((m) => path.basename(path.dirname(m)));
  assert.deepEqual(
    mounted.filter((id) => !running.has(id)),
    [],
    'rootfs mounts of containers that are not running',
  );
  const bridge = JSON.parse(await docker(['network', 'inspect', 'bridge']))[0];
  assert.deepEqual(
    Object.keys(bridge.Containers ?? {}).filter((id) => !running.has(id)),
    [],
    'addresses held for containers that are not running',
  );
}

for (const step of ['after-network-attach', 'after-runc-create']) {
  test(`kill -9 ${step}: the start did not happen; the restarted daemon releases what it took, and the container starts again`, async () => {
    const name = `c-${step}`;
    await docker(['create', '--name', name, 'busybox:local', 'sleep', '1000']);
    await crashAt(step, () => d.docker(['start', name]));
    assert.equal(await docker(['inspect', '-f', '{{.State.Status}}', name]), 'created');
    await assertNothingUnaccounted();
    await docker(['start', name]);
    assert.equal(await docker(['inspect', '-f', '{{.State.Status}}', name]), 'running');
    assert.match(await docker(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', name]), /^10\.\d+\.0\.\d+$/);
    await docker(['rm', '-f', name]);
    await assertNothingUnaccounted();
  });
}

test('kill -9 after-runc-start: the container started, so the restarted daemon records it running and can stop it', async () => {
  const name = 'c-after-runc-start';
  await docker(['create', '--name', name, 'busybox:local', 'sleep', '1000']);
  await crashAt('after-runc-start', () => d.docker(['start', name]));
  assert.equal(await docker(['inspect', '-f', '{{.State.Status}}', name]), 'running');
  assert.ok(Number(await docker(['inspect', '-f', '{{.State.Pid}}', name])) > 0);
  await assertNothingUnaccounted();
  assert.equal(await docker(['exec', name, 'echo', 'in']), 'in');
  await docker(['stop', '-t', '1', name]);
  assert.equal(await docker(['inspect', '-f', '{{.State.Status}}', name]), 'exited');
  await assertNothingUnaccounted();
  await docker(['rm', name]);
});

test('kill -9 after-runc-start of a container that exits at once: its exit is recorded', async () => {
  const name = 'c-quick';
  await docker(['create', '--name', name, 'busybox:local', 'sh', '-c', 'exit 7']);
  await crashAt('after-runc-start', () => d.docker(['start', name]));
  // The exit may be seen by reconcile or, a moment later, by the monitor it started.
  let status = '';
  for (let i = 0; i < 100 && status !== 'exited'; i++) {
    status = await docker(['inspect', '-f', '{{.State.Status}}', name]);
    if (status !== 'exited') await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(status, 'exited');
  assert.equal(await docker(['inspect', '-f', '{{.State.ExitCode}}', name]), '7');
  await assertNothingUnaccounted();
  await docker(['rm', name]);
});
