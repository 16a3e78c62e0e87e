/**
 * A container that is a clone, or that was cloned, keeps its changes
 * relative to its image in several overlay upper dirs: the frozen layers it
 * stacks (frozen.ts, bottom first) and its own upper. commit and diff need
 * them as one upper dir, the one a container that was never cloned would
 * have: mergeUppers builds it in a scratch directory of the snapshotter (same
 * filesystem), applying the layers bottom first with overlay's rules, and
 * costs one hard link per file, never a copy of the data.
 *
 * The rules, for each name a layer holds, over what the layers below made:
 * - a whiteout (char 0:0, or an empty file marked trusted.overlay.whiteout)
 *   removes what is there, and stays as a whiteout only when the image may
 *   have the name (a file added in one layer and deleted in a later one is
 *   no change at all);
 * - a directory marked opaque replaces what is there; an unmarked one merges
 *   with a directory below, takes its owner, mode, mtime and portable xattrs,
 *   and replaces anything else (then it is opaque: what the image has under
 *   that name was hidden by the non-directory);
 * - anything else replaces what is there, as a hard link to the layer's inode.
 *
 * The layers are walked by descriptors (openat2 without following symlinks):
 * the container may have written any name or symlink into its upper dir.
 * The result is read-only by convention: its files are the layers' inodes.
 */
import fs from 'node:fs';
import {
  close,
  fdPath,
  fgetxattr,
  flistxattr,
  fsetxattr,
  lchownat,
  linkat,
  lstatat,
  lutimesat,
  mkdirat,
  mknodat,
  O_DIRECTORY,
  O_RDONLY,
  openChild,
  S_IFCHR,
  S_IFDIR,
  S_IFMT,
  S_IFREG,
  type Stat,
} from '../common/openat2.ts';
import type { Snapshotter } from './overlay.ts';

const OPAQUE = 'trusted.overlay.opaque';
const WHITEOUT_XATTR = 'trusted.overlay.whiteout';

const gone = (e: unknown) => ['ENOENT', 'ENOTDIR'].includes((e as NodeJS.ErrnoException).code ?? '');

function isWhiteout(dirFd: number, name: string, st: Stat): boolean {
  const type = st.mode & S_IFMT;
  if (type === S_IFCHR) return st.rdevMajor === 0 && st.rdevMinor === 0;
  if (type !== S_IFREG || st.size !== 0) return false;
  let fd = -1;
  try {
    fd = openChild(dirFd, name, O_RDONLY | fs.constants.O_NONBLOCK);
    return flistxattr(fd).includes(WHITEOUT_XATTR);
  } catch {
    return false;
  } finally {
    if (fd >= 0) close(fd);
  }
}

function isOpaque(dirFd: number): boolean {
  const v = fgetxattr(dirFd, OPAQUE);
  return v !== undefined && v.toString() === 'y';
}

function tryLstat(dirFd: number, name: string): Stat | undefined {
  try {
    return lstatat(dirFd, name);
  } catch (e) {
    if (gone(e)) return undefined;
    throw e;
  }
}

/** Removes a name from a directory of the merged tree (ours: nobody else writes there). */
function removeEntry(dirFd: number, name: string): void {
  fs.rmSync(`${fdPath(dirFd)}/${name}`, { recursive: true, force: true });
}

/** The owner, mode, mtime and layer-portable xattrs of `src` (a layer's directory) on `dst` (ours). */
function copyDirMeta(srcFd: number, st: Stat, parentFd: number, name: string, dstFd: number): void {
  lchownat(parentFd, name, st.uid, st.gid);
  fs.fchmodSync(dstFd, st.mode & 0o7777);
  for (const x of flistxattr(srcFd)) {
    if (x !== 'security.capability' && !x.startsWith('user.')) continue;
    const v = fgetxattr(srcFd, x);
    if (v) fsetxattr(dstFd, x, v);
  }
}

export interface MergeOptions {
  /** Whether the image (the layers under all of these) may have the path (relative, no leading slash). */
  imageHas: (rel: string) => boolean;
}

/**
 * Applies the upper dirs `layers` (bottom first) into the empty directory
 * `dest` (see the top of this file). Names that vanish while a layer is
 * walked (a running container's upper) are skipped.
 */
export function mergeUppers(layers: string[], dest: string, o: MergeOptions): void {
  const destFd = fs.openSync(dest, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  // Directory mtimes are set once every layer is in: linking into a directory moves its own.
  const mtimes: { rel: string; mtime: number }[] = [];
  try {
    for (const l of layers) {
      const srcFd = fs.openSync(l, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
      try {
        applyDir(srcFd, destFd, '', o, mtimes);
      } finally {
        fs.closeSync(srcFd);
      }
    }
    const latest = new Map(mtimes.map((m) => [m.rel, m.mtime]));
    for (const [rel, mtime] of [...latest].sort((a, b) => b[0].length - a[0].length)) {
      try {
        lutimesat(destFd, rel || '.', mtime);
      } catch (e) {
        if (!gone(e)) throw e; // replaced by a later layer
      }
    }
  } finally {
    fs.closeSync(destFd);
  }
}

function applyDir(srcFd: number, dstFd: number, rel: string, o: MergeOptions, mtimes: { rel: string; mtime: number }[]): void {
  for (const name of fs.readdirSync(fdPath(srcFd))) {
    const r = rel ? `${rel}/${name}` : name;
    const st = tryLstat(srcFd, name);
    if (!st) continue;
    const have = tryLstat(dstFd, name);
    if (isWhiteout(srcFd, name, st)) {
      if (have) removeEntry(dstFd, name);
      if (o.imageHas(r)) mknodat(dstFd, name, S_IFCHR, 0);
      continue;
    }
    if ((st.mode & S_IFMT) !== S_IFDIR) {
      if (have) removeEntry(dstFd, name);
      try {
        linkat(srcFd, name, dstFd, name);
      } catch (e) {
        if (!gone(e)) throw e;
      }
      continue;
    }
    let childSrc: number;
    try {
      childSrc = openChild(srcFd, name, O_RDONLY | O_DIRECTORY);
    } catch (e) {
      if (gone(e) || (e as NodeJS.ErrnoException).code === 'ELOOP') continue; // swapped or removed meanwhile
      throw e;
    }
    try {
      const merges = have !== undefined && (have.mode & S_IFMT) === S_IFDIR && !isOpaque(childSrc);
      if (!merges) {
        if (have) removeEntry(dstFd, name);
        mkdirat(dstFd, name, 0o700);
      }
      const childDst = openChild(dstFd, name, O_RDONLY | O_DIRECTORY);
      try {
        // Opaque: the layer's own mark, or a directory that replaced a non-directory (which hid the image's).
        if (!merges && (have !== undefined || isOpaque(childSrc))) fsetxattr(childDst, OPAQUE, 'y');
        copyDirMeta(childSrc, st, dstFd, name, childDst);
        applyDir(childSrc, childDst, r, o, mtimes);
      } finally {
        close(childDst);
      }
      mtimes.push({ rel: r, mtime: st.mtime });
    } finally {
      close(childSrc);
    }
  }
}

/**
 * The image's answer for a path: whether some layer (top first) holds it and
 * the topmost that does is not a whiteout. Opaque directories are not looked
 * at, so it may say yes where the image has nothing (a needless whiteout in a
 * commit, harmless), never no where it has something.
 */
export function imageLookup(layerDirsTopFirst: string[]): (rel: string) => fs.Stats | undefined {
  return (rel: string) => {
    for (const l of layerDirsTopFirst) {
      let st: fs.Stats;
      try {
        st = fs.lstatSync(`${l}/${rel}`);
      } catch {
        continue;
      }
      return st.isCharacterDevice() && st.rdev === 0 ? undefined : st;
    }
    return undefined;
  };
}

/**
 * The directory holding every change of snapshot `key` relative to its
 * image, as one overlay upper dir: the upper itself for a snapshot without
 * frozen layers, else a merge in a scratch dir, dropped by release().
 */
export async function mergedUpper(s: Snapshotter, key: string): Promise<{ dir: string; release: () => Promise<void> }> {
  const rec = await s.record(key);
  if (!rec?.frozen?.length) return { dir: s.upperDir(key), release: async () => {} };
  const dir = await s.scratchDir();
  try {
    const imageHas = imageLookup([...rec.chain].reverse().map((c) => s.layerDir(c)));
    mergeUppers([...rec.frozen.map((f) => s.frozen.dir(f)), s.upperDir(key)], dir, { imageHas: (r) => imageHas(r) !== undefined });
  } catch (e) {
    await s.discardScratch(dir);
    throw e;
  }
  return { dir, release: () => s.discardScratch(dir) };
}
