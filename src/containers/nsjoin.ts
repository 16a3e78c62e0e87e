/**
 * IPC and PID modes container:<name|id> (`docker run --ipc container:db
 * --pid container:db`): the container's processes join the IPC or PID
 * namespace of another, running container, as dockerd does:
 *
 * - at create the other container must exist, and the mode is recorded with
 *   its full ID (a rename keeps the link; inspect shows the ID);
 * - at start it must be running, and for IPC be joinable: IPC mode
 *   shareable (its /dev/shm is a tmpfs in its run directory, which the
 *   joiner bind-mounts too) or host (the host's namespace and /dev/shm);
 *   dockerd's messages for each;
 * - the namespace is entered by path, /proc/<its init>/ns/{ipc,pid}.
 *
 * A PID namespace ends with its init: stopping the other container kills
 * every process of its joiners (the kernel does it; their monitors record
 * the exit). An IPC namespace and its /dev/shm live as long as any member:
 * the other container may be stopped or removed while its joiners run.
 */
import { EngineError, conflict, invalid } from '../common/errors.ts';
import type { NamespaceMode } from '../runtime/index.ts';
import { joinedContainer } from './network.ts';
import type { RootfsKeeper } from './rootfs.ts';
import type { ContainerStore } from './store.ts';
import { type ContainerRecord, type HostConfig, isRunning } from './types.ts';

/** What a run enters: its IPC and PID namespaces, and the /dev/shm that goes with the IPC one. */
export interface RunNamespaces {
  ipc: NamespaceMode;
  pid: NamespaceMode;
  /** A host directory bind-mounted at /dev/shm; false: no /dev/shm (IPC mode none); undefined: a tmpfs of its own. */
  shm?: string | false;
}

/**
 * At create: container:<ref> modes must name an existing container, recorded
 * by ID (IPC checked first). A 400 as dockerd's, not a 404: on a 404 the
 * docker CLI would go and pull the image.
 */
export function resolveJoinedNamespaces(store: ContainerStore, h: HostConfig): void {
  for (const k of ['IpcMode', 'PidMode'] as const) {
    const ref = joinedContainer(h[k]);
    if (!ref) continue;
    const target = store.tryFind(ref.replace(/^\//, ''));
    if (!target) throw invalid(`No such container: ${ref}`);
    h[k] = `container:${target.id}`;
  }
}

function notRunning(target: ContainerRecord, prefix: string): EngineError | undefined {
  if (target.state.Status === 'restarting') return conflict(`${prefix}Container ${target.id} is restarting, wait until the container is running`);
  if (!isRunning(target) || !target.state.Pid) return conflict(`${prefix}container ${target.id} is not running`);
  return undefined;
}

/**
 * The namespaces `rec` enters at the start about to happen, with dockerd's
 * errors (and its order: IPC, then PID) when a container it joins is gone,
 * stopped or (IPC) not shareable. A shareable container gets its /dev/shm
 * tmpfs mounted here.
 */
export async function runNamespaces(store: ContainerStore, rootfs: RootfsKeeper, rec: ContainerRecord): Promise<RunNamespaces> {
  const ipc = await ipcOf(store, rootfs, rec);
  return { ...ipc, pid: pidOf(store, rec) };
}

async function ipcOf(store: ContainerStore, rootfs: RootfsKeeper, rec: ContainerRecord): Promise<Omit<RunNamespaces, 'pid'>> {
  const h = rec.hostConfig;
  const ref = joinedContainer(h.IpcMode);
  if (ref === undefined) {
    if (h.IpcMode === 'host') return { ipc: 'host', shm: '/dev/shm' };
    if (h.IpcMode === 'none') return { ipc: 'private', shm: false };
    if (h.IpcMode === 'shareable') return { ipc: 'private', shm: await rootfs.mountShm(rec.id, h.ShmSize) };
    return { ipc: 'private' };
  }
  const prefix = `can't join IPC of container ${ref}: `;
  const target = store.tryFind(ref);
  if (!target) throw conflict(`${prefix}No such container: ${ref}`);
  if (target.id === rec.id) throw conflict('cannot join own IPC namespace');
  const err = notRunning(target, prefix);
  if (err) throw err;
  if (target.hostConfig.IpcMode === 'host') return { ipc: 'host', shm: '/dev/shm' };
  if (target.hostConfig.IpcMode !== 'shareable' || !rootfs.hasShm(target.id))
    throw conflict(`${prefix}non-shareable IPC (hint: use IpcMode:shareable for the donor container)`);
  return { ipc: { path: `/proc/${target.state.Pid}/ns/ipc` }, shm: rootfs.shmDir(target.id) };
}

function pidOf(store: ContainerStore, rec: ContainerRecord): NamespaceMode {
  const mode = rec.hostConfig.PidMode;
  const ref = joinedContainer(mode);
  if (ref === undefined) return mode === 'host' ? 'host' : 'private';
  const target = store.tryFind(ref);
  if (!target) throw conflict(`cannot join PID of a non running container: ${ref}: No such container: ${ref}`);
  if (target.id === rec.id) throw conflict('cannot join own PID namespace');
  const err = notRunning(target, '');
  if (err) throw err;
  return target.hostConfig.PidMode === 'host' ? 'host' : { path: `/proc/${target.state.Pid}/ns/pid` };
}
