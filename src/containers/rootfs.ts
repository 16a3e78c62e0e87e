import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { mkdirp } from '../common/fs.ts';
import type { Mount } from '../oci/mount.ts';
import * as kernel from '../snapshots/mount.ts';

/** Turns a snapshot's mounts into a mounted tree and back (snapshots/mount.ts; a fake in unit tests). */
export interface Mounter {
  mount(mounts: Mount[], target: string, o?: { volatile?: boolean }): Promise<void>;
  unmount(target: string): Promise<void>;
}

/** The kernel's mounts (root). */
export const kernelMounter: Mounter = { mount: kernel.mountRootfs, unmount: kernel.unmount };

/**
 * The run directories under the exec root and the rootfs mounted in each:
 * which container's rootfs is mounted (learned again from mountinfo after a
 * daemon restart), mounting it from its snapshot and unmounting it.
 */
export class RootfsKeeper {
  private readonly mounted = new Set<string>();
  /** Containers whose /dev/shm is a tmpfs mounted here (IPC mode shareable), for others to join. */
  private readonly shm = new Set<string>();
  private readonly base: string;
  private readonly snapshotMounts: (id: string) => Promise<Mount[]>;
  private readonly mounter: Mounter;

  constructor(execRoot: string, snapshotMounts: (id: string) => Promise<Mount[]>, mounter: Mounter = kernelMounter) {
    this.base = path.join(execRoot, 'containers');
    this.snapshotMounts = snapshotMounts;
    this.mounter = mounter;
  }

  runDir(id: string): string {
    return path.join(this.base, id);
  }

  path(id: string): string {
    return path.join(this.runDir(id), 'rootfs');
  }

  /** Mounts the rootfs (no-op when it is); `volatile` for a run whose rootfs is thrown away after it (--rm). */
  async mount(id: string, o: { volatile?: boolean } = {}): Promise<void> {
    if (this.mounted.has(id)) return;
    await mkdirp(this.path(id), 0o700);
    await this.mounter.mount(await this.snapshotMounts(id), this.path(id), o);
    this.mounted.add(id);
  }

  /**
   * The /dev/shm of a shareable IPC namespace: a tmpfs in the run directory,
   * as dockerd makes one, that the container and the containers joining its
   * IPC namespace bind-mount (a tmpfs mounted inside the container's own
   * mount namespace could not be bind-mounted from outside it).
   */
  shmDir(id: string): string {
    return path.join(this.runDir(id), 'shm');
  }

  async mountShm(id: string, sizeBytes: number): Promise<string> {
    const dir = this.shmDir(id);
    if (this.shm.has(id)) return dir;
    await mkdirp(dir, 0o700);
    const options = ['nosuid', 'nodev', 'noexec', 'mode=1777', `size=${Math.floor(sizeBytes)}`];
    await this.mounter.mount([{ type: 'tmpfs', source: 'shm', destination: '/', options }], dir);
    this.shm.add(id);
    return dir;
  }

  hasShm(id: string): boolean {
    return this.shm.has(id);
  }

  /** Unmounts the rootfs, and the shareable /dev/shm (joiners keep theirs: a bind mount in their own mount namespace). */
  async unmount(id: string): Promise<void> {
    // Both are tried: a /dev/shm that fails to unmount must not keep the rootfs mounted (and the reverse).
    const done = await Promise.allSettled([
      this.shm.has(id) && this.mounter.unmount(this.shmDir(id)).then(() => void this.shm.delete(id)),
      this.mounted.has(id) && this.mounter.unmount(this.path(id)).then(() => void this.mounted.delete(id)),
    ]);
    const failed = done.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  isMounted(id: string): boolean {
    return this.mounted.has(id);
  }

  /** Deletes the run directory (after its rootfs is unmounted). */
  removeRunDir(id: string): Promise<void> {
    return fsp.rm(this.runDir(id), { recursive: true, force: true });
  }

  /** IDs that have a run directory. */
  async runDirs(): Promise<string[]> {
    return fsp.readdir(this.base).catch(() => [] as string[]);
  }

  /** Re-learns which rootfs are mounted (after a daemon restart). */
  learnMounts(): void {
    const prefix = this.base + '/';
    let text = '';
    try {
      text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
    } catch {
      return;
    }
    for (const line of text.split('\n')) {
      const mp = line.split(' ')[4];
      if (!mp?.startsWith(prefix)) continue;
      const [id, leaf, more] = mp.slice(prefix.length).split('/');
      if (!/^[a-f0-9]{64}$/.test(id ?? '') || more !== undefined) continue;
      if (leaf === 'rootfs') this.mounted.add(id!);
      else if (leaf === 'shm') this.shm.add(id!);
    }
  }
}
