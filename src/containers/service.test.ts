/**
 * ContainerService on fakes, without root: the fake OCI runtime
 * (runtime/fake.ts), the overlay snapshotter in a temp dir with a fake
 * mounter (snapshots/fake.ts). start, stop, kill, restart, the restart
 * policies (no, always, on-failure:N with its count and back-off,
 * unless-stopped across a daemon restart) and reconcile.
 */
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import { packTar } from '../archive/testtar.ts';
import { EngineError } from '../common/errors.ts';
import { createLayerImage } from '../images/import.ts';
import { ImageService } from '../images/service.ts';
import { Snapshotter } from '../snapshots/overlay.ts';
import { FakeRuntime } from '../runtime/fake.ts';
import { FakeMounter } from '../snapshots/fake.ts';
import { VolumeService } from '../volumes/index.ts';
import { restartDelayMs } from './restart.ts';
import { ContainerService } from './service.ts';
import type { RestartPolicy } from './types.ts';

const roots: string[] = [];
after(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});

interface World {
  root: string;
  images: ImageService;
  rt: FakeRuntime;
  mounter: FakeMounter;
}

/** A state root with a one-layer image `fake:latest` (an /etc/passwd, `sleep 600`). */
async function world(): Promise<World> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-svc-unit-'));
  roots.push(root);
  const images = new ImageService(path.join(root, 'data'), new Snapshotter(path.join(path.join(root, 'data'), 'overlay')));
  await images.init();
  const tar = await packTar([
    { name: 'etc/', type: 'directory', uid: process.getuid!(), gid: process.getgid!() },
    { name: 'etc/passwd', body: 'root:x:0:0:root:/root:/bin/sh\n', uid: process.getuid!(), gid: process.getgid!() },
  ]);
  await createLayerImage(images, { layer: Readable.from([tar]), ref: 'fake:latest', config: { Cmd: ['sleep', '600'] } });
  return { root, images, rt: new FakeRuntime(), mounter: new FakeMounter() };
}

/** A ContainerService (one daemon's life) over the world's roots; `events` has "action name" lines, `seen` emits each. */
async function daemon(w: World): Promise<{ svc: ContainerService; events: string[]; seen: EventEmitter }> {
  const events: string[] = [];
  const seen = new EventEmitter();
  const svc = new ContainerService({
    dataRoot: path.join(w.root, 'data'),
    execRoot: path.join(w.root, 'run'),
    cgroupParent: '/keel-unit',
    images: w.images,
    volumes: new VolumeService(path.join(w.root, 'data')),
    runtime: w.rt,
    mounter: w.mounter,
    events: (action, rec) => {
      events.push(`${action} ${rec.name}`);
      seen.emit(`${action} ${rec.name}`);
    },
  });
  await svc.store.load();
  return { svc, events, seen };
}

async function create(svc: ContainerService, name: string, restart: RestartPolicy['Name'] = 'no', max = 0): Promise<string> {
  const { id } = await svc.create({ image: 'fake:latest', name, networkMode: 'none', restartPolicy: { name: restart, maximumRetryCount: max } });
  return id;
}

/** Lets the monitor's exit handling (and the restart policy's decision after it) finish. */
async function exitHandled(svc: ContainerService, id: string): Promise<void> {
  await svc.parts.exits.done(id);
}

test('start runs the process on a mounted rootfs; stop records the exit, releases the mount and publishes kill, die, stop', async () => {
  const w = await world();
  const { svc, events } = await daemon(w);
  const id = await create(svc, 'web');
  await svc.start('web');
  const rec = svc.find(id);
  assert.equal(rec.state.Status, 'running');
  assert.equal(rec.state.Pid, 4242);
  assert.ok(rec.hasBeenStarted);
  assert.deepEqual(w.rt.created, [id]);
  assert.ok(svc.parts.rootfs.isMounted(id));
  assert.ok(fs.existsSync(path.join(svc.parts.rootfs.path(id), 'etc/passwd')), 'the image is in the rootfs');
  assert.ok(fs.existsSync(path.join(svc.parts.rootfs.runDir(id), 'config.json')), 'the runtime spec is written');
  await assert.rejects(svc.start('web'), (e: Error & { code?: string }) => e.code === 'NOT_MODIFIED');

  await svc.stop('web', 5);
  assert.equal(rec.state.Status, 'exited');
  assert.equal(rec.state.ExitCode, 143);
  assert.ok(rec.manuallyStopped);
  assert.ok(!svc.parts.rootfs.isMounted(id));
  assert.ok(!w.rt.has(id), 'the runtime state is deleted');
  assert.deepEqual(events, ['create web', 'start web', 'kill web', 'die web', 'stop web']);
  // Saved: a new daemon reads the same state.
  const again = await daemon(w);
  assert.equal(again.svc.find('web').state.ExitCode, 143);
  svc.close();
  again.svc.close();
});

test('a start the runtime refuses undoes itself: exit code 127 for a missing command, still created, rootfs unmounted', async () => {
  const w = await world();
  const { svc, events } = await daemon(w);
  const id = await create(svc, 'bad');
  w.rt.failCreate = new EngineError('COMMAND_NOT_FOUND', 'exec: "nope": executable file not found in $PATH');
  await assert.rejects(svc.start('bad'), /executable file not found/);
  const rec = svc.find(id);
  assert.equal(rec.state.Status, 'created');
  assert.equal(rec.state.ExitCode, 127);
  assert.ok(!svc.parts.rootfs.isMounted(id));
  // The next start works.
  await svc.start('bad');
  assert.equal(rec.state.Status, 'running');
  await svc.kill('bad');
  assert.equal(rec.state.ExitCode, 137);
  assert.deepEqual(events, ['create bad', 'start bad', 'kill bad', 'die bad']);
  svc.close();
});

test('restart stops a running container and starts it again; kill with a caught signal leaves it running', async () => {
  const w = await world();
  const { svc, events } = await daemon(w);
  const id = await create(svc, 'r');
  await svc.start('r');
  await svc.kill('r', 'USR1');
  assert.equal(svc.find(id).state.Status, 'running');
  await svc.restart('r', 1);
  const rec = svc.find(id);
  assert.equal(rec.state.Status, 'running');
  assert.equal(rec.manuallyStopped, false);
  assert.deepEqual(w.rt.created, [id, id]);
  assert.deepEqual(events, ['create r', 'start r', 'kill r', 'kill r', 'die r', 'start r', 'restart r']);
  // restart of a stopped container just starts it.
  await svc.stop('r');
  await svc.restart('r');
  assert.equal(rec.state.Status, 'running');
  await svc.kill('r');
  svc.close();
});

test('restart policy no: an exit is final', async () => {
  const w = await world();
  const { svc } = await daemon(w);
  const id = await create(svc, 'once');
  await svc.start('once');
  w.rt.exit(id, 1);
  await exitHandled(svc, id);
  const rec = svc.find(id);
  assert.equal(rec.state.Status, 'exited');
  assert.equal(rec.state.ExitCode, 1);
  assert.equal(svc.parts.restarts.isPending(id), false);
  assert.equal(await svc.wait('once', 'not-running'), 1);
  svc.close();
});

test('restart policy always: restarts after any exit with a doubling back-off, until stopped; stop cancels a pending restart', async () => {
  const w = await world();
  const { svc, seen } = await daemon(w);
  const id = await create(svc, 'al', 'always');
  await svc.start('al');
  const rec = svc.find(id);
  for (let n = 0; n < 2; n++) {
    const started = once(seen, 'start al');
    w.rt.exit(id, 0);
    await exitHandled(svc, id);
    const t0 = Date.now();
    assert.equal(svc.parts.restarts.isPending(id), true);
    await started;
    assert.ok(Date.now() - t0 >= restartDelayMs(n) - 5, `restart ${n + 1} waited its back-off`);
    assert.equal(rec.state.Status, 'running');
    assert.equal(rec.restartCount, n + 1);
  }
  // An exit, then stop while the restart waits: it stays stopped.
  w.rt.exit(id, 2);
  await exitHandled(svc, id);
  assert.equal(svc.parts.restarts.isPending(id), true);
  await assert.rejects(svc.stop('al'), (e: Error & { code?: string }) => e.code === 'NOT_MODIFIED');
  assert.equal(svc.parts.restarts.isPending(id), false);
  assert.ok(rec.manuallyStopped);
  assert.equal(rec.state.Status, 'exited');
  assert.equal(rec.restartCount, 2);
  // A manual start resets the count.
  await svc.start('al');
  assert.equal(rec.restartCount, 0);
  await svc.kill('al');
  svc.close();
});

test('restart policy on-failure:2: restarts after a non-zero exit while the count is under 2, never after exit 0', async () => {
  const w = await world();
  const { svc, seen } = await daemon(w);
  const id = await create(svc, 'of', 'on-failure', 2);
  await svc.start('of');
  const rec = svc.find(id);
  for (let n = 0; n < 2; n++) {
    const started = once(seen, 'start of');
    w.rt.exit(id, 3);
    await exitHandled(svc, id);
    assert.equal(svc.parts.restarts.isPending(id), true, `failure ${n + 1} restarts`);
    await started;
    assert.equal(rec.restartCount, n + 1);
  }
  w.rt.exit(id, 3);
  await exitHandled(svc, id);
  assert.equal(svc.parts.restarts.isPending(id), false, 'the third failure is past the maximum');
  assert.equal(rec.state.Status, 'exited');
  assert.equal(rec.state.ExitCode, 3);
  assert.equal(rec.restartCount, 2);
  // A manual start resets the count; a clean exit is final.
  await svc.start('of');
  w.rt.exit(id, 0);
  await exitHandled(svc, id);
  assert.equal(svc.parts.restarts.isPending(id), false);
  assert.equal(rec.state.ExitCode, 0);
  svc.close();
});

test('reconcile after a daemon restart: unless-stopped and always come back unless stopped by hand (always: even then), on-failure only if it was running, no never', async () => {
  const w = await world();
  const first = await daemon(w);
  const ids: Record<string, string> = {};
  for (const [name, policy] of [
    ['us-run', 'unless-stopped'],
    ['us-stopped', 'unless-stopped'],
    ['al-stopped', 'always'],
    ['of-run', 'on-failure'],
    ['of-stopped', 'on-failure'],
    ['no-run', 'no'],
  ] as const) {
    ids[name] = await create(first.svc, name, policy);
    await first.svc.start(name);
  }
  for (const name of ['us-stopped', 'al-stopped', 'of-stopped']) await first.svc.stop(name);
  // The daemon goes away; the containers run on. Then, while it is down, every process dies (the host's OOM killer, say).
  first.svc.close();
  for (const name of ['us-run', 'of-run', 'no-run']) w.rt.exit(ids[name]!, 137);

  const second = await daemon(w);
  const counts = await second.svc.reconcile();
  assert.deepEqual(counts, { running: 0, exited: 3, stale: 0 });
  const status = (n: string) => second.svc.find(n).state.Status;
  assert.equal(status('us-run'), 'running');
  assert.equal(status('us-stopped'), 'exited');
  assert.equal(status('al-stopped'), 'running');
  assert.equal(status('of-run'), 'running');
  assert.equal(status('of-stopped'), 'exited');
  assert.equal(status('no-run'), 'exited');
  assert.equal(second.svc.find('no-run').state.ExitCode, 137);
  for (const n of ['us-run', 'al-stopped', 'of-run']) await second.svc.kill(n);
  second.svc.close();
});

test('reconcile: a container still running is watched again, and its exit is handled by the new daemon', async () => {
  const w = await world();
  const first = await daemon(w);
  const id = await create(first.svc, 'live');
  await first.svc.start('live');
  first.svc.close();
  const second = await daemon(w);
  assert.deepEqual(await second.svc.reconcile(), { running: 1, exited: 0, stale: 0 });
  const rec = second.svc.find(id);
  assert.equal(rec.state.Status, 'running');
  const code = second.svc.wait('live', 'next-exit');
  w.rt.exit(id, 7);
  assert.equal(await code, 7);
  assert.equal(rec.state.Status, 'exited');
  assert.ok(second.events.includes('die live'));
  second.svc.close();
});

test('ipc/pid container:<ref>: the ID recorded at create, the namespaces joined by path and the shareable /dev/shm bound at start; cgroup parent and ipc none in the spec', async () => {
  const w = await world();
  const { svc } = await daemon(w);
  const make = async (name: string, more: object = {}) => (await svc.create({ image: 'fake:latest', name, networkMode: 'none', ...more })).id;
  const spec = (id: string) => JSON.parse(fs.readFileSync(path.join(svc.parts.rootfs.runDir(id), 'config.json'), 'utf8'));
  await assert.rejects(make('bad', { ipcMode: 'container:nope' }), { code: 'INVALID_ARGUMENT', message: 'No such container: nope' });
  await assert.rejects(make('bad', { pidMode: 'container:nope' }), { code: 'INVALID_ARGUMENT', message: 'No such container: nope' });
  const db = await make('db', { ipcMode: 'shareable' });
  const side = await make('side', { ipcMode: 'container:db', pidMode: 'container:db' });
  assert.equal(svc.find(side).hostConfig.IpcMode, `container:${db}`);
  assert.equal(svc.find(side).hostConfig.PidMode, `container:${db}`);
  await assert.rejects(svc.start('side'), { code: 'CONFLICT', message: `can't join IPC of container ${db}: container ${db} is not running` });

  await svc.start('db');
  assert.ok(svc.parts.rootfs.hasShm(db));
  assert.equal(spec(db).mounts.find((m: { destination: string }) => m.destination === '/dev/shm').source, svc.parts.rootfs.shmDir(db));
  await svc.start('side');
  const pid = svc.find(db).state.Pid;
  const s = spec(side);
  assert.deepEqual(
    s.linux.namespaces.filter((n: { type: string }) => n.type === 'ipc' || n.type === 'pid'),
    [
      { type: 'pid', path: `/proc/${pid}/ns/pid` },
      { type: 'ipc', path: `/proc/${pid}/ns/ipc` },
    ],
  );
  assert.deepEqual(
    s.mounts.find((m: { destination: string }) => m.destination === '/dev/shm'),
    {
      destination: '/dev/shm',
      type: 'bind',
      source: svc.parts.rootfs.shmDir(db),
      options: ['rbind', 'rprivate', 'nosuid', 'nodev', 'noexec'],
    },
  );
  await svc.stop('db', 0);
  assert.ok(!svc.parts.rootfs.hasShm(db), "the stop releases db's /dev/shm tmpfs");

  await make('priv');
  await make('j2', { ipcMode: 'container:priv' });
  await svc.start('priv');
  await assert.rejects(svc.start('j2'), { code: 'CONFLICT', message: /non-shareable IPC \(hint: use IpcMode:shareable for the donor container\)$/ });

  const cg = await make('cg', { cgroupParent: 'mine', cgroupnsMode: 'private', ipcMode: 'none' });
  await svc.start('cg');
  assert.equal(svc.find(cg).cgroupsPath, `/mine/${cg}`, 'a relative parent is under the root, as dockerd');
  const cs = spec(cg);
  assert.equal(cs.linux.cgroupsPath, `/mine/${cg}`);
  assert.ok(cs.linux.namespaces.some((n: { type: string }) => n.type === 'cgroup'));
  assert.equal(
    cs.mounts.some((m: { destination: string }) => m.destination === '/dev/shm'),
    false,
    'ipc none: no /dev/shm',
  );
  assert.equal(spec(db).linux.cgroupsPath, `/keel-unit/${db}`);
  assert.equal(
    spec(db).linux.namespaces.some((n: { type: string }) => n.type === 'cgroup'),
    false,
    'the host cgroup namespace by default',
  );
  svc.close();
});
