import fsp from 'node:fs/promises';
import path from 'node:path';
import { EngineError, errnoCode, ExecError } from '../common/errors.ts';
import { exec } from '../common/exec.ts';
import { umount } from '../common/umount.ts';
import { mkdirp } from '../common/fs.ts';

/**
 * Network namespaces as bind-mounted nsfs files at a path keel chooses
 * (<exec-root>/netns/<id>), so the exec root stays configurable: iproute2
 * only knows /run/netns. `unshare --net=FILE` creates and pins the namespace
 * and runs the first command in it in one process, which measured ~3 ms.
 */

/** Creates a netns pinned at `file` and runs `ip -batch` (lines) inside it. */
export async function createNetns(file: string, batch: string[]): Promise<void> {
  await mkdirp(path.dirname(file), 0o711);
  try {
    const fh = await fsp.open(file, 'wx', 0o444);
    await fh.close();
  } catch (e) {
    if (errnoCode(e) === 'EEXIST') throw new EngineError('CONFLICT', `network namespace ${file} already exists`);
    throw e;
  }
  try {
    await exec(['unshare', `--net=${file}`, 'ip', '-batch', '-'], { input: batch.join('\n') + '\n', timeoutMs: 10_000 });
  } catch (e) {
    await removeNetns(file).catch(() => {}); // undoing a failed setup: its own error is the one to report
    throw new EngineError('INTERNAL', `cannot set up the network namespace: ${(e as Error).message}`, { cause: e });
  }
}

/** Runs `ip -batch` (lines) inside an existing netns. */
export async function ipInNetns(file: string, batch: string[]): Promise<void> {
  if (!batch.length) return;
  await exec(['nsenter', `--net=${file}`, 'ip', '-batch', '-'], { input: batch.join('\n') + '\n', timeoutMs: 10_000 });
}

/** Runs `ip -batch` (lines) in the daemon's own netns. */
export async function ipBatch(batch: string[], allowFailure = false): Promise<string> {
  if (!batch.length) return '';
  // -force keeps going after a failed line, so cleanup removes what it can.
  const argv = allowFailure ? ['ip', '-force', '-batch', '-'] : ['ip', '-batch', '-'];
  const r = await exec(argv, { input: batch.join('\n') + '\n', timeoutMs: 10_000, allowFailure });
  return r.stderr;
}

/** Unpins and deletes a netns file; a missing or unmounted file is fine. */
export async function removeNetns(file: string): Promise<void> {
  try {
    await umount(file, { timeoutMs: 10_000 });
  } catch (e) {
    if (!(e instanceof ExecError)) throw e;
    throw new EngineError('INTERNAL', `cannot unmount network namespace ${file}: ${e.stderr.trim()}`);
  }
  await fsp.rm(file, { force: true });
}

/** The netns files under `dir` (used to find leftovers on reconcile). */
export async function listNetns(dir: string): Promise<string[]> {
  try {
    return (await fsp.readdir(dir)).filter((f) => !f.startsWith('.'));
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return [];
    throw e;
  }
}
