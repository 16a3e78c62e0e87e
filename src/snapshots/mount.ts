import os from 'node:os';
import path from 'node:path';
import { EngineError, ExecError } from '../common/errors.ts';
import { exec } from '../common/exec.ts';
import { umount } from '../common/umount.ts';
import type { Mount } from '../oci/mount.ts';

/**
 * The kernel copies mount(2)'s data (the option string) into one page: 4096
 * bytes with its NUL. Kept a little under it for the `volatile` mountRootfs may add.
 */
export const MOUNT_DATA_MAX = 4096 - 32;

/**
 * Mounts a snapshot's mounts (snapshotter.mounts()) under `target`, which
 * must exist: the one place snapshots become kernel mounts. `volatile`
 * (overlay, kernel 5.10+) drops every fsync and syncfs the container makes,
 * and the sync of the whole upper filesystem at unmount, for a rootfs thrown
 * away after one run (`run --rm`, as podman does). Such an upper can never
 * be mounted again: overlay refuses it.
 */
export async function mountRootfs(mounts: Mount[], target: string, o: { volatile?: boolean } = {}): Promise<void> {
  for (const m of mounts) {
    if (!m.type || !m.source) throw new EngineError('INTERNAL', `snapshot mount at ${m.destination} has no type or source`);
    const extra = m.type === 'overlay' && o.volatile && volatileSupported() ? ['volatile'] : [];
    const opts = [...(m.options ?? []), ...extra].join(',');
    if (opts.length > MOUNT_DATA_MAX) throw new EngineError('INVALID_ARGUMENT', `image has too many layers to mount (${opts.length}-byte overlay options)`);
    // Private: mounts made under it on the host (cp's view of volumes) must not propagate into the container.
    await exec(['mount', '--make-private', '-t', m.type, m.source, ...(opts ? ['-o', opts] : []), path.join(target, m.destination)]);
  }
}

export async function unmount(target: string): Promise<void> {
  try {
    await umount(target);
  } catch (e) {
    // Busy: detach it now, the kernel frees it when the last user leaves.
    if (!(e instanceof ExecError)) throw e;
    await exec(['umount', '-l', target]);
  }
}

/** overlay's `volatile` mount option exists from Linux 5.10 on. */
function volatileSupported(): boolean {
  const [major = 0, minor = 0] = os
    .release()
    .split('.')
    .map((x) => parseInt(x, 10) || 0);
  return major > 5 || (major === 5 && minor >= 10);
}
