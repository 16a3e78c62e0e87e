/**
 * Two runc commands done in-process, in the one case where each is plain:
 * signalling a container's live init process (runc kill), and deleting a
 * container whose init is gone (runc delete). Each runc is a Go process of
 * ~20 ms CPU here, and stopping a container ran both: a `compose down` of
 * ten containers started twenty of them. Everything else (the process is not
 * plainly alive or plainly gone, a shared pid namespace, hooks, a cgroup
 * that will not go) returns false, and the caller runs runc, which decides
 * and says why, as before.
 *
 * Both read runc's state file (<root>/<id>/state.json), as runc does; the
 * init process is identified by its pid AND its start time (field 22 of
 * /proc/<pid>/stat), as runc does, so a pid reused by another process is
 * never signalled.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { errnoCode } from '../common/errors.ts';
import { procStat } from '../common/proc.ts';

/** The fields of runc 1.x's state.json used here. */
interface StateFile {
  init_process_pid?: number;
  init_process_start?: number;
  cgroup_paths?: Record<string, string>;
  config?: {
    namespaces?: { type: string; path?: string }[] | null;
    Hooks?: Record<string, unknown[] | null> | null;
  };
}

/** A container's state file holds its whole config: tens of KB. Larger is not runc's. */
const MAX_STATE_BYTES = 4 << 20;

async function readState(root: string, id: string): Promise<StateFile | undefined> {
  try {
    const file = path.join(root, id, 'state.json');
    const fh = await fsp.open(file, 'r');
    try {
      const { size } = await fh.stat();
      if (size > MAX_STATE_BYTES) return undefined;
      return JSON.parse(await fh.readFile('utf8')) as StateFile;
    } finally {
      await fh.close();
    }
  } catch {
    return undefined;
  }
}

type InitStatus = 'alive' | 'gone' | 'unknown';

function initStatus(st: StateFile): InitStatus {
  const pid = st.init_process_pid;
  if (!Number.isInteger(pid) || pid! <= 0 || !Number.isInteger(st.init_process_start)) return 'unknown';
  const stat = procStat(pid!);
  // another process under that pid now: ours is gone
  if (!stat || Number(stat[19]) !== st.init_process_start) return 'gone';
  return stat[0] === 'Z' || stat[0] === 'X' ? 'gone' : 'alive';
}

/** Sends `signal` to the container's init process when it is alive; false otherwise (ask runc). */
export async function signalInit(root: string, id: string, signal: number): Promise<boolean> {
  if (!Number.isInteger(signal) || signal < 1 || signal > 64) return false;
  const st = await readState(root, id);
  if (!st || initStatus(st) !== 'alive') return false;
  try {
    process.kill(st.init_process_pid!, signal);
    return true;
  } catch (e) {
    if (errnoCode(e) === 'ESRCH') return false;
    throw e;
  }
}

/**
 * Deletes a container whose init process is gone, as runc delete does:
 * its cgroups, then its state directory. Its own pid namespace guarantees
 * nothing of it runs any more (the kernel ends every process in it with
 * its init), so there is nothing to kill first; poststop hooks would have
 * to run (keel sets none): with any, runc does it.
 */
export async function deleteStopped(root: string, id: string): Promise<boolean> {
  const st = await readState(root, id);
  if (!st || initStatus(st) !== 'gone') return false;
  const ns = st.config?.namespaces ?? [];
  if (!ns.some((n) => n.type === 'NEWPID' && !n.path)) return false;
  if (Object.values(st.config?.Hooks ?? {}).some((h) => h?.length)) return false;
  for (const p of Object.values(st.cgroup_paths ?? {})) {
    if (!(await removeCgroupTree(p))) return false;
  }
  await fsp.rm(path.join(root, id), { recursive: true, force: true });
  return true;
}

/** rmdir of a cgroup and the cgroups below it (deepest first); false when one stays (busy). */
async function removeCgroupTree(dir: string): Promise<boolean> {
  if (!dir.startsWith('/sys/fs/cgroup/') || dir.split('/').includes('..')) return false;
  let entries: fs.Dirent[];
  try {
    entries = await fsp.readdir(dir, { withFileTypes: true });
  } catch (e) {
    return errnoCode(e) === 'ENOENT';
  }
  for (const e of entries) if (e.isDirectory() && !(await removeCgroupTree(path.join(dir, e.name)))) return false;
  // the last processes of a pid namespace may take a moment to leave their cgroup
  for (let i = 0; ; i++) {
    try {
      await fsp.rmdir(dir);
      return true;
    } catch (e) {
      const code = errnoCode(e);
      if (code === 'ENOENT') return true;
      if (code !== 'EBUSY' || i === 4) return false;
      await new Promise((r) => setTimeout(r, 10 << i));
    }
  }
}
