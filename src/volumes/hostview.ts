/**
 * A container's mounts as seen from the host, for `docker cp` (archive
 * get/put/stat): docker bind-mounts the container's volumes, binds and
 * network files (hosts, hostname, resolv.conf) under its rootfs for the
 * length of the operation, so a path inside a volume reads and writes the
 * volume instead of what the volume hides in the image — the usual way to
 * fill a volume is `docker create -v vol:/data ...; docker cp . c:/data`.
 *
 * Destinations are resolved by the kernel from a pinned rootfs descriptor
 * (openIn: RESOLVE_IN_ROOT) to an O_PATH fd, missing components created one
 * at a time by descriptor (archive/rootdir.ts), and the bind is attached onto
 * that fd (common/mountfd.ts: open_tree + move_mount), never onto a path
 * string resolved again. Freezing the container is not enough: with nested
 * mounts (`-v /home/u/x:/data -v vol:/data/sub`) the host user owning
 * /home/u/x can swap `sub` for a symlink to /etc at any moment, and a
 * path-based `mount --bind vol <rootfs>/data/sub` would follow it and mount
 * the volume over the host's /etc. Resolved in root, the symlink can only
 * lead to another directory of the container.
 *
 * Bind *sources* stay path strings: they are host paths the container's
 * creator chose (docker follows them too). tmpfs mounts live only in a
 * running container's own mount namespace and are left out, as docker
 * leaves them out. The rootfs mount is private (snapshots/), so these binds
 * never propagate into the running container.
 */
import fs from 'node:fs';
import { invalid } from '../common/errors.ts';
import { log } from '../common/log.ts';
import {
  close, fdPath, isSymlink, lstatat, mkdirat, O_CREAT, O_EXCL, O_PATH, O_WRONLY, openChild, openIn, readlinkat,
} from '../common/openat2.ts';
import { MNT_DETACH, moveMount, openTree, setReadonly, umount2 } from '../common/mountfd.ts';
import { RootDir } from '../archive/rootdir.ts';
import { cleanEntryPath } from '../archive/resolve.ts';

export interface HostViewMount {
  /** Host path: a directory (volume, bind) or a file (bind of a file, hosts, ...). */
  source: string;
  /** Path inside the container. */
  destination: string;
  readonly: boolean;
}

const MAX_SYMLINKS = 255;
const code = (e: unknown) => (e as NodeJS.ErrnoException).code;

/** Mounts each source at its destination under rootfs; returns the undo (deepest first). */
export async function mountHostView(rootfs: string, mounts: HostViewMount[]): Promise<() => Promise<void>> {
  // Each entry is the O_PATH fd of a mount point we mounted on: it pins that very directory.
  const done: { fd: number; destination: string }[] = [];
  const undo = async () => {
    for (const m of done.splice(0).reverse()) {
      // Unmounted through the pinned mount point, never a path string: a swap
      // of a parent for a symlink after mounting cannot make umount (which
      // follows symlinks in a path) take down some other mount. umount of
      // /proc/self/fd/N goes, like umount of a path, to the topmost mount on
      // that directory: with two cp views of one container at once, each
      // takes one off the stack, and both end up gone whatever order they
      // finish in (unmounting through the fd of our own mount instead would
      // fail once the other view's umount took it, and leave one behind). Our
      // fd may sit on the mount below another view's, so EBUSY falls back to
      // a lazy unmount, as unmount() in mount.ts does.
      try {
        try {
          umount2(fdPath(m.fd), 0);
        } catch (e) {
          if (code(e) !== 'EBUSY') throw e;
          umount2(fdPath(m.fd), MNT_DETACH);
        }
      } catch (e) {
        log.warn('cp: unmounting a volume view failed', { destination: m.destination, error: String(e) });
      } finally {
        close(m.fd);
      }
    }
  };
  // Parents before children, so a bind inside a volume lands on top of it.
  const ordered = [...mounts].sort((a, b) => depth(a.destination) - depth(b.destination));
  const root = new RootDir(rootfs);
  try {
    for (const m of ordered) {
      let st: fs.Stats;
      try {
        st = fs.statSync(m.source);
      } catch {
        continue; // a bind source removed meanwhile: the container shows an empty mount point
      }
      const target = resolveTarget(root, m.destination, !st.isDirectory());
      try {
        const tree = openTree(m.source);
        try {
          if (m.readonly) setReadonly(tree);
          moveMount(tree, target);
        } finally {
          close(tree);
        }
      } catch (e) {
        close(target);
        throw e;
      }
      done.push({ fd: target, destination: m.destination });
    }
  } catch (e) {
    await undo();
    throw e;
  } finally {
    root.close();
  }
  return undo;
}

/**
 * An O_PATH fd of `dest` inside the root, made if missing (a directory, or an
 * empty file for a file bind). Symlinks on the way are followed inside the
 * root, a dangling one at the end gets its in-root target created, as the
 * path-based resolver did.
 */
function resolveTarget(root: RootDir, dest: string, asFile: boolean): number {
  let comps = cleanEntryPath(dest, 'mount destination');
  for (let links = 0; ; links++) {
    if (links > MAX_SYMLINKS) throw invalid(`too many levels of symbolic links resolving mount destination ${JSON.stringify(dest)}`);
    try {
      return openIn(root.fd, comps.join('/'), O_PATH);
    } catch (e) {
      if (code(e) !== 'ENOENT') throw e;
    }
    if (comps.length === 0) throw invalid(`cannot mount on ${JSON.stringify(dest)} in the container`);
    let parent: number | null;
    try {
      parent = root.dir(comps.slice(0, -1), true, dest);
    } catch (e) {
      throw invalid(`cannot mount on ${JSON.stringify(dest)} in the container: ${(e as Error).message.replace(/^layer entry "[^"]*": /, '')}`);
    }
    const last = comps[comps.length - 1]!;
    try {
      if (asFile) close(openChild(parent!, last, O_WRONLY | O_CREAT | O_EXCL, { mode: 0o755 }));
      else mkdirat(parent!, last, 0o755);
      continue; // open what was made on the next turn
    } catch (e) {
      if (code(e) !== 'EEXIST' && code(e) !== 'ELOOP') throw e;
    }
    // It exists yet did not open: a dangling symlink. Expand it as if the rootfs were '/'.
    // Someone may swap it between our calls: whatever it turned into, look again (bounded by links).
    let link: string;
    try {
      if (!isSymlink(lstatat(parent!, last))) continue;
      link = readlinkat(parent!, last);
    } catch (e) {
      if (code(e) === 'EINVAL' || code(e) === 'ENOENT') continue;
      throw e;
    }
    const stack = link.startsWith('/') ? [] : comps.slice(0, -1);
    for (const c of link.split('/')) {
      if (c === '' || c === '.') continue;
      if (c === '..') stack.pop();
      else stack.push(c);
    }
    comps = stack;
  }
}

function depth(p: string): number {
  return p.split('/').filter(Boolean).length;
}
