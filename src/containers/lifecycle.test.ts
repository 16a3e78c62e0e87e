/**
 * The containers layer on a fake OCI runtime (no root, no runc): what a
 * restarted daemon makes of the containers it finds (reconcile), and stop,
 * kill, pause and unpause of a running one, down to the recorded exit.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { newId } from '../common/ids.ts';
import { ImageService } from '../images/service.ts';
import { Snapshotter } from '../snapshots/overlay.ts';
import type { Digest } from '../oci/digest.ts';
import { FakeRuntime } from '../runtime/fake.ts';
import { VolumeService } from '../volumes/index.ts';
import { ContainerService } from './service.ts';
import { type ContainerRecord, type ContainerStatus, ZERO_TIME } from './types.ts';

const roots: string[] = [];
after(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});

function setup(): { svc: ContainerService; rt: FakeRuntime; events: string[] } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-ctr-unit-'));
  roots.push(root);
  const rt = new FakeRuntime();
  const events: string[] = [];
  const svc = new ContainerService({
    dataRoot: path.join(root, 'data'),
    execRoot: path.join(root, 'run'),
    cgroupParent: '/keel-unit',
    images: new ImageService(path.join(root, 'data'), new Snapshotter(path.join(path.join(root, 'data'), 'overlay'))),
    volumes: new VolumeService(path.join(root, 'data')),
    runtime: rt,
    events: (action, rec) => events.push(`${action} ${rec.name}`),
  });
  return { svc, rt, events };
}

function record(name: string, status: ContainerStatus, o: { restart?: string; hasBeenStarted?: boolean } = {}): ContainerRecord {
  return {
    id: newId(),
    name,
    created: new Date().toISOString(),
    imageId: `sha256:${'0'.repeat(64)}` as Digest,
    path: 'sleep',
    args: ['600'],
    config: {
      Hostname: 'h',
      Domainname: '',
      User: '',
      AttachStdin: false,
      AttachStdout: false,
      AttachStderr: false,
      Tty: false,
      OpenStdin: false,
      StdinOnce: false,
      Env: [],
      Cmd: ['sleep', '600'],
      Image: 'busybox',
      Volumes: null,
      WorkingDir: '',
      Entrypoint: null,
      OnBuild: null,
      Labels: {},
      StopTimeout: 1,
    },
    hostConfig: { NetworkMode: 'none', RestartPolicy: { Name: o.restart ?? 'no', MaximumRetryCount: 0 }, AutoRemove: false } as ContainerRecord['hostConfig'],
    state: {
      Status: status,
      Pid: status === 'running' ? 4242 : 0,
      ExitCode: 0,
      Error: '',
      StartedAt: new Date().toISOString(),
      FinishedAt: ZERO_TIME,
      OOMKilled: false,
    },
    restartCount: 0,
    manuallyStopped: false,
    hasBeenStarted: o.hasBeenStarted ?? status !== 'created',
    mounts: [],
  };
}

test('reconcile: an exit recorded while the daemon was down, a container still running, one lost with the host, and runtime leftovers', async () => {
  const { svc, rt, events } = setup();
  const exited = record('exited-meanwhile', 'running');
  const alive = record('still-running', 'running');
  const lost = record('lost', 'running');
  const stopped = record('stopped-before', 'exited');
  for (const r of [exited, alive, lost, stopped]) await svc.store.add(r);
  rt.adopt(exited.id, 'stopped', { exitCode: 3 });
  rt.adopt(alive.id, 'running');
  const orphan = newId();
  rt.adopt(orphan, 'stopped');

  const counts = await svc.reconcile();
  assert.deepEqual(counts, { running: 1, exited: 1, stale: 1 });
  assert.equal(exited.state.Status, 'exited');
  assert.equal(exited.state.ExitCode, 3);
  assert.equal(alive.state.Status, 'running');
  assert.equal(lost.state.Status, 'exited');
  assert.equal(lost.state.ExitCode, 255);
  assert.match(lost.state.Error, /not running when keel started/);
  assert.equal(stopped.state.Status, 'exited');
  // The exited one's runtime state and the orphan (no record) are gone; the running one is kept.
  assert.ok(rt.deleted.includes(exited.id) && rt.deleted.includes(orphan));
  assert.ok(rt.has(alive.id));
  assert.deepEqual(events.filter((e) => e.startsWith('die')).sort(), ['die exited-meanwhile', 'die lost']);
  svc.close();
});

test('stop, kill, pause and unpause a running container; its exit is recorded once, with docker errors for the illegal moves', async () => {
  const { svc, rt, events } = setup();
  const a = record('a', 'running');
  const b = record('b', 'running');
  await svc.store.add(a);
  await svc.store.add(b);
  rt.adopt(a.id, 'running');
  rt.adopt(b.id, 'running');
  await svc.reconcile();

  await svc.pause('a');
  assert.equal(a.state.Status, 'paused');
  await assert.rejects(svc.pause('a'), /Container .* is already paused/);
  await assert.rejects(svc.start('a'), /cannot start a paused container/);
  await svc.unpause('a');
  assert.equal(a.state.Status, 'running');
  await assert.rejects(svc.unpause('a'), /is not paused/);

  // The fake process ends on SIGTERM: stop records exit 143 and publishes die then stop.
  const waited = svc.wait('a', 'next-exit');
  await svc.stop('a');
  assert.equal(await waited, 143);
  assert.equal(a.state.Status, 'exited');
  assert.equal(a.state.ExitCode, 143);
  assert.equal(a.manuallyStopped, true);
  await assert.rejects(svc.stop('a'), (e: Error & { code?: string }) => e.code === 'NOT_MODIFIED');
  await assert.rejects(svc.kill('a'), /Cannot kill container: a: Container .* is not running/);

  // A caught signal leaves it running; SIGKILL ends it.
  await svc.kill('b', 'USR1');
  assert.equal(b.state.Status, 'running');
  await svc.kill('b', 'KILL');
  assert.equal(b.state.Status, 'exited');
  assert.equal(b.state.ExitCode, 137);
  assert.deepEqual(
    rt.signals.map(([id, s]) => [id === a.id ? 'a' : 'b', s]),
    [
      ['a', 'SIGTERM'],
      ['b', 'USR1'],
      ['b', 'KILL'],
    ],
  );
  assert.deepEqual(
    events.filter((e) => /^(pause|unpause|die|stop|kill)/.test(e)),
    ['pause a', 'unpause a', 'kill a', 'die a', 'stop a', 'kill b', 'kill b', 'die b'],
  );
  svc.close();
});
