import { isEngineError } from '../common/errors.ts';
import { log } from '../common/log.ts';
import { joinedContainer } from './network.ts';
import { startOnDaemonStart } from './restart.ts';
import type { ContainerOps, ContainerParts } from './parts.ts';
import { finalizeExit } from './exit.ts';
import { type ContainerRecord, isRunning } from './types.ts';
import type { ContainerState } from '../runtime/index.ts';

/**
 * Brings the records in line with reality when the daemon starts. The
 * truth about a container that was running is, in order: conmon's exit file
 * (it exited meanwhile: record its real code), runc's state (still running
 * or paused: watch it again), or nothing at all (the host rebooted and the
 * exec root is empty: it is exited). Leftovers of interrupted creates and
 * removals are cleaned up; restart policies are applied last.
 */
export async function reconcile(svc: ContainerParts, ops: ContainerOps): Promise<{ running: number; exited: number; stale: number }> {
  svc.rootfs.learnMounts();
  const counts = { running: 0, exited: 0, stale: 0 };
  const wasRunning = new Set<string>();
  for (const rec of svc.store.list()) {
    if (rec.state.Status === 'removing') {
      await ops.remove(rec.id, { force: true }).catch((e) => log.warn('finishing an interrupted removal failed', { id: rec.id, error: String(e) }));
      continue;
    }
    if (!isRunning(rec)) {
      if (await finishInterruptedStart(svc, ops, rec)) {
        wasRunning.add(rec.id);
        counts.running++;
        continue;
      }
      // A rootfs left mounted by a daemon that died between exit and cleanup.
      await svc.rootfs.unmount(rec.id).catch(() => {}); // best effort: a mount that stays is found again by the next reconcile
      continue;
    }
    wasRunning.add(rec.id);
    const info = await svc.runtime.exitInfo(rec.id).catch(() => undefined);
    if (info) {
      await finalizeExit(svc, rec, info);
      counts.exited++;
      continue;
    }
    let status: string | undefined;
    try {
      status = (await svc.runtime.state(rec.id)).status;
    } catch (e) {
      if (!isEngineError(e, 'NOT_FOUND')) log.warn('runc state failed', { id: rec.id, error: String(e) });
    }
    if (status === 'running' || status === 'paused') {
      rec.state.Status = status;
      if (!svc.rootfs.isMounted(rec.id)) log.warn('running container has no rootfs mount in this namespace', { id: rec.id });
      ops.monitor(rec);
      // Probes resume from starting, as after dockerd's restore.
      svc.health.start(rec);
      counts.running++;
      continue;
    }
    // runc knows nothing (host reboot) or the process is gone without an exit record.
    await finalizeExit(svc, rec, { exitCode: -1, oomKilled: false, finishedAt: new Date(), recorded: false });
    rec.state.Error = status
      ? 'the container stopped while keel was not running and its exit code was lost'
      : 'the container was not running when keel started (host reboot?)';
    await svc.store.save(rec).catch(() => {}); // the state is in memory; the next save or reconcile writes it
    counts.stale++;
  }
  await removeOrphans(svc);
  await svc.volumes
    .reconcile(
      svc.store.list().map((r) => r.id),
      svc.store
        .list()
        .filter(isRunning)
        .map((r) => r.id),
    )
    .catch((e) => log.warn('volume reconcile failed', { error: String(e) }));
  // Containers on another's network (container:<id>) start after it, as far down a chain as it goes.
  const joinDepth = (ref: string | undefined, depth = 0): number => {
    const r = ref === undefined ? undefined : svc.store.tryFind(ref);
    const next = r && joinedContainer(r.hostConfig.NetworkMode);
    return next === undefined || depth > 16 ? depth : joinDepth(next, depth + 1);
  };
  const ordered = svc.store
    .list()
    .map((rec) => ({ rec, depth: joinDepth(rec.id) }))
    .sort((a, b) => a.depth - b.depth);
  for (const { rec } of ordered) {
    if (isRunning(rec)) continue;
    if (rec.hostConfig.AutoRemove && wasRunning.has(rec.id)) {
      await ops.remove(rec.id, { force: true }).catch(() => {}); // removed by someone else meanwhile, or retried at the next start
      continue;
    }
    if (rec.hasBeenStarted && startOnDaemonStart(rec.hostConfig.RestartPolicy, rec.manuallyStopped, wasRunning.has(rec.id))) {
      await ops.start(rec.id).catch((e) => log.warn('restart policy start failed', { id: rec.id, error: String(e) }));
    }
  }
  return counts;
}

/**
 * A record that does not say running, for a container the runtime has: the
 * daemon died between `runc create`/start and saving the record. runc is
 * the truth. Started (running or paused): the start happened, so the record
 * says so and the container is watched again, keeping its rootfs and
 * address. Exited meanwhile: its exit is recorded and everything released.
 * Created but never started: the start did not happen, so the runtime's
 * container goes (with it conmon), and the caller releases rootfs, address
 * and mounts as for any container that is not running. Returns whether the
 * container is running now.
 */
async function finishInterruptedStart(svc: ContainerParts, ops: ContainerOps, rec: ContainerRecord): Promise<boolean> {
  // Only a start leaves conmon's directory (an exit removes it), so most records cost one stat.
  if (!svc.runtime.has(rec.id)) return false;
  const info = await svc.runtime.exitInfo(rec.id).catch(() => undefined);
  let state: ContainerState | undefined;
  if (!info) state = await svc.runtime.state(rec.id).catch(() => undefined);
  if (state && (state.status === 'running' || state.status === 'paused')) {
    rec.state = {
      ...rec.state,
      Status: state.status,
      Pid: state.pid,
      ExitCode: 0,
      Error: '',
      StartedAt: state.created || new Date().toISOString(),
      OOMKilled: false,
    };
    rec.hasBeenStarted = true;
    // the record is saved again at the container's exit; monitoring it matters more than this write
    await svc.store.save(rec).catch(() => {});
    ops.monitor(rec);
    svc.health.start(rec);
    log.info('adopted a container whose start the last daemon did not record', { id: rec.id });
    return true;
  }
  if (info) {
    rec.hasBeenStarted = true;
    await finalizeExit(svc, rec, info);
    return false;
  }
  await svc.runtime.delete(rec.id, { force: true }).catch((e) => log.warn('removing a start cut short failed', { id: rec.id, error: String(e) }));
  // releasing what a start cut short left: each is also released by the next reconcile if it fails here
  await svc.nets.detach(rec).catch(() => {});
  await svc.volumes.teardownContainerMounts(rec.id, rec.mounts ?? []).catch(() => {});
  log.info('undid a start the last daemon did not finish', { id: rec.id, runtime: state?.status ?? 'unknown' });
  return false;
}

/** Snapshots, runtime dirs and runc containers of IDs that have no record (a create or rm cut short). */
async function removeOrphans(svc: Pick<ContainerParts, 'store' | 'images' | 'runtime' | 'rootfs'>): Promise<void> {
  const known = (id: string) => !!svc.store.get(id);
  for (const key of await svc.images.snapshots.listActive().catch(() => [] as string[])) {
    if (/^[a-f0-9]{64}$/.test(key) && !known(key)) await svc.images.snapshots.remove(key).catch(() => {}); // orphan sweep: what fails stays for the next one
  }
  for (const id of await svc.runtime.ids().catch(() => [] as string[])) {
    if (/^[a-f0-9]{64}$/.test(id) && !known(id)) await svc.runtime.delete(id, { force: true }).catch(() => {}); // orphan sweep: what fails stays for the next one
  }
  const runDirs = await svc.rootfs.runDirs();
  for (const id of runDirs) {
    if (!/^[a-f0-9]{64}$/.test(id) || known(id)) continue;
    // orphan sweep: what fails stays for the next one
    await svc.rootfs.unmount(id).catch(() => {});
    await svc.rootfs.removeRunDir(id).catch(() => {});
  }
}
