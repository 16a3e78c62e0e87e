/**
 * Lifecycle operations on an existing container: stop, kill, restart,
 * pause/unpause, remove, rename and wait. Each takes the container's mutex
 * (wait excepted); the exit itself is handled by the monitor (exit.ts),
 * whose promise (exits.done) is what stop and kill wait for. Each takes the
 * pieces of the service it uses (parts.ts).
 */
import { EngineError, conflict } from '../common/errors.ts';
import { log } from '../common/log.ts';
import { isNotRunning, signalNumber } from '../runtime/index.ts';
import type { ContainerOps, ContainerParts } from './parts.ts';
import { checkAllowed, refusal } from './transitions.ts';
import { type ContainerRecord, isRunning } from './types.ts';

type Signalling = Pick<ContainerParts, 'store' | 'mutex' | 'runtime' | 'exits' | 'event'>;

/** Sends the stop signal, then SIGKILL after `timeout` seconds (-1: wait forever). */
export async function stop(svc: Signalling & Pick<ContainerParts, 'restarts'>, ref: string, timeout?: number): Promise<void> {
  const rec = svc.store.find(ref);
  await svc.mutex.run(rec.id, async () => {
    const no = refusal('stop', rec, { ref });
    if (no) {
      if (svc.restarts.cancel(rec.id)) rec.manuallyStopped = true;
      throw no;
    }
    await stopLocked(svc, rec, timeout);
  });
  svc.event('stop', rec);
}

async function stopLocked(svc: Signalling, rec: ContainerRecord, timeout?: number): Promise<void> {
  rec.manuallyStopped = true;
  const t = timeout ?? rec.config.StopTimeout ?? 10;
  const sig = rec.config.StopSignal || 'SIGTERM';
  const done = svc.exits.done(rec.id) ?? Promise.resolve();
  svc.event('kill', rec, { signal: String(signalNumber(sig)) });
  await sendSignal(svc, rec, sig);
  if (t >= 0) {
    const timedOut = await Promise.race([done.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), t * 1000).unref())]);
    if (timedOut) {
      svc.event('kill', rec, { signal: '9' });
      await sendSignal(svc, rec, 'KILL');
    }
  }
  await done;
}

async function sendSignal(svc: Pick<ContainerParts, 'runtime'>, rec: ContainerRecord, sig: string | number): Promise<void> {
  try {
    await svc.runtime.kill(rec.id, sig);
  } catch (e) {
    // Exited meanwhile: the monitor handles it.
    if (!isNotRunning(e)) throw e;
  }
  if (rec.state.Status === 'paused' && (sig === 'KILL' || sig === 9 || sig === 'SIGKILL' || rec.manuallyStopped)) {
    await svc.runtime.resume(rec.id).catch(() => {}); // the signal went out; a container that exited meanwhile cannot be resumed
    rec.state.Status = 'running';
  }
}

export async function kill(svc: Signalling, ref: string, sig = 'KILL'): Promise<void> {
  const rec = svc.store.find(ref);
  const num = signalNumber(sig);
  await svc.mutex.run(rec.id, async () => {
    checkAllowed('kill', rec, { ref });
    if (num === 9) rec.manuallyStopped = true;
    svc.event('kill', rec, { signal: String(num) });
    await sendSignal(svc, rec, sig);
    if (num === 9) await svc.exits.done(rec.id);
  });
}

export async function restart(svc: Signalling, ops: Pick<ContainerOps, 'run'>, ref: string, timeout?: number): Promise<void> {
  const rec = svc.store.find(ref);
  await svc.mutex.run(rec.id, async () => {
    if (isRunning(rec)) await stopLocked(svc, rec, timeout);
    rec.manuallyStopped = false;
    await ops.run(rec);
  });
  svc.event('restart', rec);
}

export async function pause(svc: Pick<ContainerParts, 'store' | 'mutex' | 'runtime' | 'health' | 'event'>, ref: string): Promise<void> {
  const rec = svc.store.find(ref);
  await svc.mutex.run(rec.id, async () => {
    checkAllowed('pause', rec, { ref });
    await svc.runtime.pause(rec.id);
    rec.state.Status = 'paused';
    svc.health.stop(rec.id);
    await svc.store.save(rec);
  });
  svc.event('pause', rec);
}

export async function unpause(svc: Pick<ContainerParts, 'store' | 'mutex' | 'runtime' | 'health' | 'event'>, ref: string): Promise<void> {
  const rec = svc.store.find(ref);
  await svc.mutex.run(rec.id, async () => {
    checkAllowed('unpause', rec, { ref });
    await svc.runtime.resume(rec.id);
    rec.state.Status = 'running';
    svc.health.resume(rec);
    await svc.store.save(rec);
  });
  svc.event('unpause', rec);
}

export async function remove(
  svc: Signalling & Pick<ContainerParts, 'restarts' | 'rootfs' | 'images' | 'volumes'>,
  ref: string,
  opts: { force?: boolean; volumes?: boolean },
  /** Answers attaches waiting for a start that will not come. */
  failPending: (id: string) => void,
): Promise<void> {
  const rec = svc.store.find(ref);
  let removedMeanwhile = false;
  await svc.mutex.run(rec.id, async () => {
    if (!svc.store.get(rec.id)) return void (removedMeanwhile = true);
    checkAllowed('remove', rec, { ref, force: opts.force });
    if (isRunning(rec)) {
      rec.manuallyStopped = true;
      svc.event('kill', rec, { signal: '9' });
      await sendSignal(svc, rec, 'KILL');
      await svc.exits.done(rec.id);
      // An --rm container removes itself when it exits.
      if (!svc.store.get(rec.id)) return void (removedMeanwhile = true);
    }
    svc.restarts.cancel(rec.id);
    failPending(rec.id);
    rec.state.Status = 'removing';
    if (svc.runtime.has(rec.id)) await svc.runtime.delete(rec.id, { force: true }).catch(() => {}); // removal goes on: what runc kept is swept by reconcile at the next start
    await svc.rootfs.unmount(rec.id);
    await Promise.all([svc.images.snapshots.remove(rec.id), svc.rootfs.removeRunDir(rec.id), svc.store.remove(rec)]);
    // `rm -v` and --rm delete anonymous volumes; named ones always stay.
    await svc.volumes
      .releaseContainerMounts(rec.id, rec.mounts ?? [], { removeAnonymous: !!opts.volumes || rec.hostConfig.AutoRemove })
      .catch((e) => log.warn('releasing volumes failed', { id: rec.id, error: String(e) }));
  });
  if (removedMeanwhile) return;
  svc.event('destroy', rec);
  svc.exits.removed(rec.id, rec.state.ExitCode);
}

export async function rename(svc: Pick<ContainerParts, 'store' | 'mutex' | 'event'>, ref: string, newName: string): Promise<void> {
  const rec = svc.store.find(ref);
  const name = newName.replace(/^\//, '');
  if (!name) throw new EngineError('INVALID_ARGUMENT', 'Neither old nor new names may be empty');
  await svc.mutex.run(rec.id, async () => {
    const old = rec.name;
    if (old === name) throw conflict(`Renaming a container with the same name as its current name`);
    await svc.store.rename(rec, name);
    svc.event('rename', rec, { oldName: `/${old}` });
  });
}

/**
 * Docker's wait conditions: not-running (now if stopped), next-exit,
 * removed. Resolves with the exit code.
 */
export function wait(svc: Pick<ContainerParts, 'store' | 'exits' | 'restarts'>, ref: string, condition: string, signal?: AbortSignal): Promise<number> {
  const rec = svc.store.find(ref);
  if (!['', 'not-running', 'next-exit', 'removed'].includes(condition)) throw new EngineError('INVALID_ARGUMENT', `invalid condition: "${condition}"`);
  if ((condition === '' || condition === 'not-running') && !isRunning(rec) && !svc.restarts.isPending(rec.id)) return Promise.resolve(rec.state.ExitCode);
  return svc.exits.next(condition === 'removed' ? 'removed' : 'exit', rec.id, signal);
}
