/**
 * What happens when a container's process ends: a monitor per running
 * container waits for conmon's exit record, then the exit is recorded and
 * the run's resources released (or, for --rm, the container removed), and
 * finally the restart policy is applied. The monitor does not take the
 * per-container mutex, so stop() can hold it while it waits for the exit.
 */
import { log } from '../common/log.ts';
import type { ExitInfo } from '../runtime/index.ts';
import { restartDelayMs, shouldRestart } from './restart.ts';
import type { ContainerOps, ContainerParts } from './parts.ts';
import { type ContainerRecord, isRunning } from './types.ts';

/** What recording an exit releases: runtime state, network, mounts, and who is told. */
type Releasing = Pick<ContainerParts, 'store' | 'runtime' | 'nets' | 'rootfs' | 'volumes' | 'health' | 'exits' | 'event'>;

/** Watches a running container until it exits; exits.done() is its promise until the exit is handled. */
export function monitor(svc: Releasing & Pick<ContainerParts, 'images' | 'restarts' | 'mutex'>, ops: ContainerOps, rec: ContainerRecord): void {
  const p = (async () => {
    let info: ExitInfo;
    try {
      info = await svc.runtime.wait(rec.id, svc.exits.signal);
    } catch (e) {
      if (!svc.exits.shuttingDown) log.error('waiting for container failed', { id: rec.id, error: String(e) });
      return;
    }
    if (rec.hostConfig.AutoRemove && !svc.exits.shuttingDown) await exitAndRemove(svc, rec, info);
    else await finalizeExit(svc, rec, info);
  })();
  svc.exits.track(rec.id, p);
  void p.finally(() => {
    if (!svc.exits.shuttingDown && svc.store.get(rec.id) && rec.state.Status === 'exited') afterExit(svc, ops, rec);
  });
}

/** Records an exit and releases what the run held: runtime state, network, mount. */
export async function finalizeExit(svc: Releasing, rec: ContainerRecord, info: ExitInfo): Promise<void> {
  svc.health.stop(rec.id);
  const code = info.recorded && info.exitCode >= 0 ? info.exitCode : 255;
  rec.state = { ...rec.state, Status: 'exited', Pid: 0, ExitCode: code, FinishedAt: info.finishedAt.toISOString(), OOMKilled: info.oomKilled };
  // Independent releases: run them side by side (this is on the `run --rm` critical path).
  await Promise.all([
    svc.runtime.delete(rec.id, { force: true }).catch((e) => log.warn('runtime cleanup failed', { id: rec.id, error: String(e) })),
    svc.nets.detach(rec).catch((e) => log.warn('network detach failed', { id: rec.id, error: String(e) })),
    svc.rootfs.unmount(rec.id).catch((e) => log.warn('unmount failed', { id: rec.id, error: String(e) })),
  ]);
  svc.nets.forget(rec.id);
  await svc.volumes.teardownContainerMounts(rec.id, rec.mounts ?? []).catch((e) => log.warn('volume teardown failed', { id: rec.id, error: String(e) }));
  if (svc.store.get(rec.id)) await svc.store.save(rec).catch(() => {}); // removed meanwhile: nothing left to record
  if (info.oomKilled) svc.event('oom', rec);
  svc.event('die', rec, { exitCode: String(code) });
  svc.exits.exited(rec.id, code);
}

/**
 * `--rm`: the container is gone for clients as soon as its exit is known
 * and what others could claim (ports, addresses, volumes) is released
 * (record deleted, die and destroy published, `wait` answered); its runtime
 * state, mount and snapshot go right after, off the `run --rm` critical path. A
 * crash in between leaves only ID-keyed leftovers with no record, which
 * reconcile's orphan sweep removes at the next start.
 */
async function exitAndRemove(svc: Releasing & Pick<ContainerParts, 'images'>, rec: ContainerRecord, info: ExitInfo): Promise<void> {
  svc.health.stop(rec.id);
  const code = info.recorded && info.exitCode >= 0 ? info.exitCode : 255;
  rec.state = { ...rec.state, Status: 'removing', Pid: 0, ExitCode: code, FinishedAt: info.finishedAt.toISOString(), OOMKilled: info.oomKilled };
  const warn = (what: string) => (e: unknown) => log.warn(`${what} failed`, { id: rec.id, error: String(e) });
  // What another container could ask for next goes first: once `run --rm`
  // returns, its published ports and addresses are free, its named volumes
  // no longer in use and its anonymous ones gone.
  await svc.nets.detach(rec).catch(warn('network detach'));
  svc.nets.forget(rec.id);
  if (rec.mounts?.length) {
    await svc.volumes.teardownContainerMounts(rec.id, rec.mounts).catch(warn('volume teardown'));
    await svc.volumes.releaseContainerMounts(rec.id, rec.mounts, { removeAnonymous: true }).catch(warn('releasing volumes'));
  }
  await svc.store.remove(rec);
  if (info.oomKilled) svc.event('oom', rec);
  svc.event('die', rec, { exitCode: String(code) });
  svc.exits.exited(rec.id, code);
  svc.event('destroy', rec);
  svc.exits.removed(rec.id, code);
  await Promise.all([svc.runtime.delete(rec.id, { force: true }).catch(warn('runtime cleanup')), svc.rootfs.unmount(rec.id).catch(warn('unmount'))]);
  await Promise.all([svc.images.snapshots.remove(rec.id).catch(warn('snapshot removal')), svc.rootfs.removeRunDir(rec.id).catch(warn('run dir removal'))]);
}

/** AutoRemove or the restart policy, once the exit is recorded. */
function afterExit(svc: Pick<ContainerParts, 'store' | 'exits' | 'restarts' | 'mutex'>, ops: ContainerOps, rec: ContainerRecord): void {
  if (rec.hostConfig.AutoRemove) {
    void ops.remove(rec.id, { force: true }).catch((e) => log.warn('auto-remove failed', { id: rec.id, error: String(e) }));
    return;
  }
  const ctx = { policy: rec.hostConfig.RestartPolicy, exitCode: rec.state.ExitCode, restartCount: rec.restartCount, manuallyStopped: rec.manuallyStopped };
  if (!shouldRestart(ctx)) return;
  svc.restarts.schedule(rec.id, restartDelayMs(rec.restartCount), () => {
    void svc.mutex
      .run(rec.id, async () => {
        svc.restarts.begin(rec.id);
        try {
          if (!svc.store.get(rec.id) || rec.manuallyStopped || isRunning(rec) || svc.exits.shuttingDown) return;
          rec.restartCount++;
          await ops.run(rec);
        } finally {
          svc.restarts.end(rec.id);
        }
      })
      .catch((e) => log.warn('restart by policy failed', { id: rec.id, error: String(e) }));
  });
}
