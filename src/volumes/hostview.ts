/**
 * A container's mounts as seen from the host, for `docker cp` (archive
 * get/put/stat): docker bind-mounts the container's volumes, binds and
 * network files (hosts, hostname, resolv.conf) under its rootfs for the
 * length of the operation, so a path inside a volume reads and writes the
 * volume instead of what the volume hides in the image — the usual way to
 * fill a volume is `docker create -v vol:/data ...; docker cp . c:/data`.
 *
 * Destinations resolve scoped to the rootfs (resolveDestination); the caller
 * keeps the container frozen or stopped, so nothing in it can swap a
 * directory for a symlink between resolving and mounting. tmpfs mounts live
 * only in a running container's own mount namespace and are left out, as
 * docker leaves them out. The rootfs mount is private (snapshots/), so these
 * binds never propagate into the running container.
 */
import fs from 'node:fs';
import path from 'node:path';
import { log } from '../common/log.ts';
import { exec } from '../common/exec.ts';
import { resolveDestination } from './setup.ts';
import { unmount } from './mount.ts';

export interface HostViewMount {
  /** Host path: a directory (volume, bind) or a file (bind of a file, hosts, ...). */
  source: string;
  /** Path inside the container. */
  destination: string;
  readonly: boolean;
}

/** Mounts each source at its destination under rootfs; returns the undo (deepest first). */
export async function mountHostView(rootfs: string, mounts: HostViewMount[]): Promise<() => Promise<void>> {
  const done: string[] = [];
  const undo = async () => {
    for (const target of done.splice(0).reverse()) await unmount(target).catch((e) => log.warn('cp: unmounting a volume view failed', { target, error: String(e) }));
  };
  // Parents before children, so a bind inside a volume lands on top of it.
  const ordered = [...mounts].sort((a, b) => depth(a.destination) - depth(b.destination));
  try {
    for (const m of ordered) {
      let st: fs.Stats;
      try {
        st = fs.statSync(m.source);
      } catch {
        continue; // a bind source removed meanwhile: the container shows an empty mount point
      }
      const rel = resolveDestination(rootfs, m.destination, { create: true, asFile: !st.isDirectory() });
      const target = rel ? path.join(rootfs, rel) : rootfs;
      await exec(['mount', '--bind', '-o', m.readonly ? 'bind,ro' : 'bind', '--', m.source, target], { timeoutMs: 30_000 });
      done.push(target);
    }
  } catch (e) {
    await undo();
    throw e;
  }
  return undo;
}

function depth(p: string): number {
  return p.split('/').filter(Boolean).length;
}
