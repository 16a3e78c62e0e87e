/**
 * A container's mounts as seen from the host, for `docker cp` (archive
 * get/put/stat): as docker does, the container's volumes, binds and network
 * files (hosts, hostname, resolv.conf) are mounted over its rootfs for the
 * length of the operation, so a path inside a volume reads and writes the
 * volume instead of what the volume hides in the image — the usual way to
 * fill a volume is `docker create -v vol:/data ...; docker cp . c:/data`.
 *
 * The view is a detached mount tree, reached only through its descriptor:
 * the rootfs is cloned (open_tree), each source is opened once and cloned
 * from that fd, and each clone is attached (move_mount) onto an O_PATH fd of
 * its destination resolved inside the view by descriptor (destination.ts).
 * Nothing is looked up by path string between resolving and mounting, so a
 * directory swapped for a symlink meanwhile (by the container, in the rootfs
 * or a volume; or by a host user who owns a bind source, under which a
 * nested volume is mounted) can only move a mount to another place inside
 * the view. The tree is in no mount table: nothing to unmount, nothing for
 * two views of one container to share or stack on, nothing that propagates
 * into the running container or that a crash leaves behind. Closing its
 * last fd (the view's and any opened under it) frees it all.
 *
 * tmpfs mounts live only in a running container's own mount namespace and
 * are left out, as docker leaves them out.
 */
import fs from 'node:fs';
import { EngineError, invalid } from '../common/errors.ts';
import { cloneTree, moveMount, setReadonly } from '../common/mountfd.ts';
import { close, fstat, isDir, O_DIRECTORY, O_PATH, O_RDONLY, openat2, openIn, RESOLVE_NO_MAGICLINKS, type Stat } from '../common/openat2.ts';
import { openDestination } from './destination.ts';

export interface HostViewMount {
  /** Host path: a directory (volume, bind) or a file (bind of a file, hosts, ...). */
  source: string;
  /**
   * A directory keel owns that holds `source` (a volume's directory in the
   * store, the container's own directory): source is then resolved inside
   * it (RESOLVE_IN_ROOT), never outside. A bind source, a host path its
   * creator chose, is followed as docker follows it; for a running
   * container it must then be the very directory or file the container has
   * mounted (see openHostView).
   */
  sourceRoot?: string;
  /** Path inside the container. */
  destination: string;
  readonly: boolean;
}

export interface HostView {
  /** The view's root directory (the container's `/`): resolve everything from it. */
  readonly fd: number;
  /** Releases the view (idempotent). */
  close(): void;
}

const code = (e: unknown) => (e as NodeJS.ErrnoException).code;

/** Opens (O_PATH) a mount's source; null when it is gone (the container then shows the empty mount point). */
function openSource(m: HostViewMount): number | null {
  try {
    if (!m.sourceRoot) return openat2(-100, m.source, O_PATH, RESOLVE_NO_MAGICLINKS);
    const root = fs.openSync(m.sourceRoot, O_RDONLY | O_DIRECTORY);
    try {
      const rel = m.source.startsWith(m.sourceRoot + '/') ? m.source.slice(m.sourceRoot.length + 1) : null;
      if (rel === null) throw invalid(`mount source ${m.source} is not under ${m.sourceRoot}`);
      return openIn(root, rel, O_PATH);
    } finally {
      fs.closeSync(root);
    }
  } catch (e) {
    if (code(e) === 'ENOENT') return null;
    throw e;
  }
}

/**
 * The container's root with its mounts in place; the caller keeps the
 * container frozen or stopped meanwhile. `containerRoot` (a running
 * container's `/proc/<pid>/root`) is what each bind source is checked
 * against: a host user who owns the parent of a bind source could swap the
 * source for a symlink to a directory of their choosing after the container
 * started, and a view following it would have cp read or write there as
 * root. The source must be the same inode the container reaches at the
 * destination, or cp is refused.
 */
export function openHostView(rootfs: string, mounts: HostViewMount[], opts: { containerRoot?: string } = {}): HostView {
  const rootFd = fs.openSync(rootfs, O_RDONLY | O_DIRECTORY);
  if (mounts.length === 0) return viewOf(rootFd);
  let tree: number;
  try {
    tree = cloneTree(rootFd);
  } finally {
    fs.closeSync(rootFd);
  }
  // The clone is a mount root: reached as O_RDONLY|O_DIRECTORY like the rootfs, for readdir and openat2.
  const view = viewOf(tree);
  let ctrFd = -1;
  try {
    if (opts.containerRoot && mounts.some((m) => !m.sourceRoot)) ctrFd = fs.openSync(opts.containerRoot, O_RDONLY | O_DIRECTORY);
    // Parents before children, so a bind inside a volume lands on top of it.
    for (const m of [...mounts].sort((a, b) => depth(a.destination) - depth(b.destination))) attach(view.fd, m, ctrFd);
  } catch (e) {
    view.close();
    throw e;
  } finally {
    if (ctrFd >= 0) fs.closeSync(ctrFd);
  }
  return view;
}

function viewOf(fd: number): HostView {
  let open = true;
  return {
    fd,
    close: () => {
      if (open) close(fd);
      open = false;
    },
  };
}

/** Refuses a bind source that is not what the running container (its root pinned by ctrFd) has at the destination. */
function checkSameAsContainer(ctrFd: number, m: HostViewMount, src: Stat): void {
  let there: Stat | undefined;
  try {
    const fd = openIn(ctrFd, m.destination, O_PATH);
    try {
      there = fstat(fd);
    } finally {
      close(fd);
    }
  } catch (e) {
    if (!['ENOENT', 'ENOTDIR', 'ELOOP'].includes(code(e) ?? '')) throw e;
  }
  if (there?.dev !== src.dev || there.ino !== src.ino) {
    throw new EngineError(
      'CONFLICT',
      `bind source ${m.source} is no longer what the container has mounted at ${m.destination} (it was replaced after the container started): cp refuses to go through it`,
    );
  }
}

function attach(viewFd: number, m: HostViewMount, ctrFd: number): void {
  const src = openSource(m);
  if (src === null) return;
  try {
    const srcStat = fstat(src);
    if (ctrFd >= 0 && !m.sourceRoot) checkSameAsContainer(ctrFd, m, srcStat);
    const dir = isDir(srcStat);
    const dest = openDestination(viewFd, m.destination, { create: true, asFile: !dir });
    if (!dest) return;
    try {
      if (isDir(dest.stat) !== dir)
        throw invalid(
          `cannot mount ${dir ? 'a directory' : 'a file'} on ${JSON.stringify(m.destination)} in the container: it is ${dir ? 'not a directory' : 'a directory'}`,
        );
      const mnt = cloneTree(src);
      try {
        if (m.readonly) setReadonly(mnt);
        try {
          moveMount(mnt, dest.fd);
        } catch (e) {
          // Kernels before the detached-target support of move_mount refuse a target in a tree in no namespace.
          if (code(e) === 'EINVAL')
            throw new EngineError(
              'INTERNAL',
              `cannot show the container's mounts to cp: this kernel refuses mounts inside a detached mount tree (move_mount: EINVAL); cp of a container with volumes or binds needs a newer kernel`,
            );
          throw e;
        }
      } finally {
        close(mnt);
      }
    } finally {
      close(dest.fd);
    }
  } finally {
    close(src);
  }
}

function depth(p: string): number {
  return p.split('/').filter(Boolean).length;
}
