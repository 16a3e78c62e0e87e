/**
 * Lifecycle operations on an existing container: stop, kill, restart,
 * pause/unpause, remove, rename and wait. Each takes the container's mutex
 * (wait excepted); the exit itself is handled by the monitor (exit.ts),
 * whose promise in svc.monitors is what stop and kill wait for.
 */
import fsp from 'node:fs/promises';
import { EngineError, conflict, isEngineError } from '../common/errors.ts';
import { log } from '../common/log.ts';
import { isNotRunning, signalNumber } from '../runtime/index.ts';
import type { ContainerService } from './service.ts';
import { checkAllowed, refusal } from './transitions.ts';
import { type ContainerRecord, isRunning } from './types.ts';

/** Sends the stop signal, then SIGKILL after `timeout` seconds (-1: wait forever). */
export async function stop(svc: ContainerService, ref: string, timeout?: number): Promise<void> {
  const rec = svc.find(ref);
  await svc.mutex.run(rec.id, async () => {
    const no = refusal('stop', rec, { ref });
    if (no) {
      if (svc.restartPending.delete(rec.id)) rec.manuallyStopped = true;
      throw no;
    }
    await stopLocked(svc, rec, timeout);
  });
  svc.event('stop', rec);
}

async function stopLocked(svc: ContainerService, rec: ContainerRecord, timeout?: number): Promise<void> {
  rec.manuallyStopped = true;
  const t = timeout ?? rec.config.StopTimeout ?? 10;
  const sig = rec.config.StopSignal || 'SIGTERM';
  const done = svc.monitors.get(rec.id) ?? Promise.resolve();
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

async function sendSignal(svc: ContainerService, rec: ContainerRecord, sig: string | number): Promise<void> {
  try {
    await svc.driver.kill(rec.id, sig);
  } catch (e) {
    // Exited meanwhile: the monitor handles it.
    if (!isNotRunning(e)) throw e;
  }
  if (rec.state.Status === 'paused' && (sig === 'KILL' || sig === 9 || sig === 'SIGKILL' || rec.manuallyStopped)) {
    await svc.driver.resume(rec.id).catch(() => {}); // the signal went out; a container that exited meanwhile cannot be resumed
    rec.state.Status = 'running';
  }
}

export async function kill(svc: ContainerService, ref: string, sig = 'KILL'): Promise<void> {
  const rec = svc.find(ref);
  const num = signalNumber(sig);
  await svc.mutex.run(rec.id, async () => {
    checkAllowed('kill', rec, { ref });
    if (num === 9) rec.manuallyStopped = true;
    svc.event('kill', rec, { signal: String(num) });
    await sendSignal(svc, rec, sig);
    if (num === 9) await svc.monitors.get(rec.id);
  });
}

export async function restart(svc: ContainerService, ref: string, timeout?: number): Promise<void> {
  const rec = svc.find(ref);
  await svc.mutex.run(rec.id, async () => {
    if (isRunning(rec)) await stopLocked(svc, rec, timeout);
    rec.manuallyStopped = false;
    await svc.run(rec);
  });
  svc.event('restart', rec);
}

export async function pause(svc: ContainerService, ref: string): Promise<void> {
  const rec = svc.find(ref);
  await svc.mutex.run(rec.id, async () => {
    checkAllowed('pause', rec, { ref });
    await svc.driver.pause(rec.id);
    rec.state.Status = 'paused';
    svc.health.stop(rec.id);
    await svc.store.save(rec);
  });
  svc.event('pause', rec);
}

export async function unpause(svc: ContainerService, ref: string): Promise<void> {
  const rec = svc.find(ref);
  await svc.mutex.run(rec.id, async () => {
    checkAllowed('unpause', rec, { ref });
    await svc.driver.resume(rec.id);
    rec.state.Status = 'running';
    svc.health.resume(rec);
    await svc.store.save(rec);
  });
  svc.event('unpause', rec);
}

export async function remove(svc: ContainerService, ref: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
  const rec = svc.find(ref);
  let removedMeanwhile = false;
  await svc.mutex.run(rec.id, async () => {
    if (!svc.store.get(rec.id)) return void (removedMeanwhile = true);
    checkAllowed('remove', rec, { ref, force: opts.force });
    if (isRunning(rec)) {
      rec.manuallyStopped = true;
      svc.event('kill', rec, { signal: '9' });
      await sendSignal(svc, rec, 'KILL');
      await svc.monitors.get(rec.id);
      // An --rm container removes itself when it exits.
      if (!svc.store.get(rec.id)) return void (removedMeanwhile = true);
    }
    svc.restartPending.delete(rec.id);
    svc.failPending(rec.id);
    rec.state.Status = 'removing';
    if (svc.driver.has(rec.id)) await svc.driver.delete(rec.id, { force: true }).catch(() => {}); // removal goes on: what runc kept is swept by reconcile at the next start
    await svc.unmount(rec.id);
    await Promise.all([svc.images.snapshots.remove(rec.id), fsp.rm(svc.runDir(rec.id), { recursive: true, force: true }), svc.store.remove(rec)]);
    // `rm -v` and --rm delete anonymous volumes; named ones always stay.
    await svc.volumes.releaseContainerMounts(rec.id, rec.mounts ?? [], { removeAnonymous: !!opts.volumes || rec.hostConfig.AutoRemove }).catch((e) => log.warn('releasing volumes failed', { id: rec.id, error: String(e) }));
  });
  if (removedMeanwhile) return;
  svc.event('destroy', rec);
  svc.bus.emit(`removed:${rec.id}`, rec.state.ExitCode);
}

export async function rename(svc: ContainerService, ref: string, newName: string): Promise<void> {
  const rec = svc.find(ref);
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
export function wait(svc: ContainerService, ref: string, condition: string, signal?: AbortSignal): Promise<number> {
  const rec = svc.find(ref);
  if (!['', 'not-running', 'next-exit', 'removed'].includes(condition)) throw new EngineError('INVALID_ARGUMENT', `invalid condition: "${condition}"`);
  if ((condition === '' || condition === 'not-running') && !isRunning(rec) && !svc.restartPending.has(rec.id)) return Promise.resolve(rec.state.ExitCode);
  const ev = condition === 'removed' ? `removed:${rec.id}` : `exit:${rec.id}`;
  return new Promise((resolve, reject) => {
    const on = (code: number) => {
      signal?.removeEventListener('abort', abort);
      resolve(code);
    };
    const abort = () => {
      svc.bus.off(ev, on);
      reject(new EngineError('CANCELLED', 'wait cancelled'));
    };
    svc.bus.once(ev, on);
    signal?.addEventListener('abort', abort, { once: true });
  });
}
