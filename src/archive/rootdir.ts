/**
 * A directory tree reached only through a pinned descriptor: the ground all
 * archive work stands on (apply.ts writes, diff.ts reads).
 *
 * The root is opened once; every later name is resolved by the kernel from
 * that descriptor with openat2 RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
 * (common/openat2.ts), and every change is an *at call on the descriptor of
 * the parent directory with a single final name that is never followed. A
 * process that swaps a directory for a symlink to `/` between two of our
 * calls only changes which in-root directory the next resolution reaches:
 * the kernel refuses anything outside. (The string-based resolver this
 * replaced checked components with lstat and used the path later; one
 * renameat2 swap loop put 39,872 of 40,000 entries of a layer outside.)
 *
 * Parent descriptors are cached by the entry's lexical parent path, a few at
 * a time (LRU), because consecutive tar entries mostly share a directory.
 * Caching an fd is safe where caching a checked path string was not: the fd
 * holds the directory itself, which was inside the root when the kernel
 * resolved it and cannot be swapped for a symlink. Nothing can move it out of
 * a container's rootfs either (rename(2) does not cross mounts). A host user
 * who owns a bind-mount source could move a directory elsewhere on that
 * filesystem, but only to where they can write themselves, which gives them
 * nothing the bind source did not. The cache is dropped whenever the apply
 * itself removes anything, so it always names what a fresh resolution would.
 */
import fs from 'node:fs';
import { invalid } from '../common/errors.ts';
import { close, fdPath, fstat, isDir, isSymlink, lstatat, mkdirat, O_DIRECTORY, O_RDONLY, openChild, openIn, readlinkat, unlinkat } from '../common/openat2.ts';

const CACHE = 8;
const MAX_SYMLINKS = 255;
const DIR = O_RDONLY | O_DIRECTORY;

const code = (e: unknown) => (e as NodeJS.ErrnoException).code;

export class RootDir {
  readonly fd: number;
  private readonly owned: boolean;
  private readonly cache = new Map<string, number>();

  /** Opens `root` (a trusted path: keel's store or the user's own directory), or borrows a pinned directory fd. */
  constructor(root: string | { fd: number }) {
    if (typeof root === 'string') {
      this.fd = fs.openSync(root, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
      this.owned = true;
    } else {
      this.fd = root.fd;
      this.owned = false;
    }
  }

  close(): void {
    for (const fd of this.cache.values()) close(fd);
    this.cache.clear();
    if (this.owned) close(this.fd);
  }

  /**
   * Forgets the cached directories (after the apply removed something), but
   * those in `keep`: the parents the caller still works in, which a removal
   * of one of their children leaves as they were.
   */
  invalidate(...keep: number[]): void {
    for (const [k, fd] of this.cache) {
      if (keep.includes(fd)) continue;
      close(fd);
      this.cache.delete(k);
    }
  }

  /** Hands a directory fd the caller opened at lexical path `key` to the cache (which then owns it). */
  remember(key: string, fd: number): void {
    const old = this.cache.get(key);
    if (old !== undefined) close(old);
    this.cache.delete(key);
    this.cache.set(key, fd);
    if (this.cache.size > CACHE) {
      const [k, f] = this.cache.entries().next().value!;
      this.cache.delete(k);
      close(f);
    }
  }

  /**
   * The directory at `comps` (symlinks on the way followed inside the root),
   * as an fd the cache owns: valid until the next dir()/remember()/invalidate()
   * beyond CACHE-1 other directories. With create, missing directories are
   * made (0755, like containerd); otherwise a missing one gives null. A
   * component that exists and is not a directory is refused, naming `entry`.
   */
  dir(comps: readonly string[], create: boolean, entry: string): number | null {
    if (comps.length === 0) return this.fd;
    const key = comps.join('/');
    const hit = this.cache.get(key);
    if (hit !== undefined) {
      this.cache.delete(key);
      this.cache.set(key, hit);
      return hit;
    }
    let fd: number;
    try {
      fd = openIn(this.fd, key, DIR);
    } catch (e) {
      if (code(e) === 'ENOENT') {
        if (!create) return null;
        fd = this.makeDirs(comps, entry);
      } else throw this.refuse(e, entry, key);
    }
    this.remember(key, fd);
    return fd;
  }

  private refuse(e: unknown, entry: string, key: string): unknown {
    if (code(e) === 'ENOTDIR') return invalid(`layer entry ${JSON.stringify(entry)}: parent ${JSON.stringify('/' + key)} is not a directory`);
    if (code(e) === 'ELOOP') return invalid(`too many levels of symbolic links resolving layer entry ${JSON.stringify(entry)}`);
    return e;
  }

  /**
   * Walks comps one name at a time from the root, creating what is missing.
   * Each step opens a single name without following it; a symlink met on the
   * way is read on its (pinned) parent and expanded as if the root were `/`,
   * so a dangling in-root link (`lib -> usr/lib` before usr/lib exists) gets
   * its target created inside the root, as the layer means.
   */
  private makeDirs(comps: readonly string[], entry: string): number {
    const stack: number[] = [];
    const top = () => (stack.length ? stack[stack.length - 1]! : this.fd);
    const queue = [...comps];
    let links = 0;
    try {
      while (queue.length) {
        const c = queue.shift()!;
        if (c === '' || c === '.') continue;
        if (c === '..') {
          if (stack.length) close(stack.pop()!);
          continue;
        }
        try {
          stack.push(openChild(top(), c, DIR));
          continue;
        } catch (e) {
          if (++links > MAX_SYMLINKS) throw invalid(`too many levels of symbolic links resolving layer entry ${JSON.stringify(entry)}`);
          if (code(e) === 'ENOENT') {
            try {
              mkdirat(top(), c, 0o755);
            } catch (e2) {
              if (code(e2) !== 'EEXIST') throw e2;
            }
            queue.unshift(c); // open what was just made (or made meanwhile) on the next turn
          } else if (code(e) === 'ELOOP' || code(e) === 'ENOTDIR') {
            // O_NOFOLLOW|O_DIRECTORY on a symlink says ENOTDIR (or ELOOP): look at what it is. Someone may be
            // swapping it meanwhile (a directory again, or gone): then open it again; the link count bounds the tries.
            let target: string;
            try {
              const st = lstatat(top(), c);
              if (isDir(st)) {
                queue.unshift(c);
                continue;
              }
              if (!isSymlink(st)) throw invalid(`layer entry ${JSON.stringify(entry)}: parent ${JSON.stringify('/' + comps.join('/'))} is not a directory`);
              target = readlinkat(top(), c);
            } catch (e2) {
              if (code(e2) !== 'EINVAL' && code(e2) !== 'ENOENT') throw e2;
              queue.unshift(c);
              continue;
            }
            if (target.startsWith('/')) while (stack.length) close(stack.pop()!);
            queue.unshift(...target.split('/'));
          } else throw e;
        }
      }
      return stack.length ? stack.pop()! : openIn(this.fd, '.', DIR);
    } finally {
      for (const fd of stack) close(fd);
    }
  }
}

/**
 * Removes `name` in the directory `dirFd`, a whole tree if it is a
 * directory, by descriptors only: nothing below is followed, and a mount
 * point anywhere in the tree (a bind-mounted volume or file under a rootfs)
 * stops the removal with EXDEV/EBUSY instead of emptying what is mounted
 * there. Returns false if there was nothing.
 */
export function removeAt(dirFd: number, name: string): boolean {
  try {
    unlinkHere(dirFd, name);
    return true;
  } catch (e) {
    if (code(e) === 'ENOENT') return false;
    if (code(e) !== 'EISDIR') throw e;
  }
  const fd = openChild(dirFd, name, DIR, { noXdev: true });
  try {
    for (const child of fs.readdirSync(fdPath(fd))) removeAt(fd, child);
  } finally {
    close(fd);
  }
  unlinkat(dirFd, name, true);
  return true;
}

/**
 * unlinkat that refuses a name something is mounted on (EBUSY). The kernel
 * refuses that itself only for mounts of the caller's own mount namespace;
 * in cp's view (volumes/hostview.ts, a detached tree) the file mounts
 * (/etc/hosts, a file bind) are in no namespace of ours, and unlinking their
 * mount point would detach the mount on that file everywhere, the running
 * container's own included. Directories need no check here: removeAt opens
 * them with RESOLVE_NO_XDEV, which a mount on them stops.
 */
export function unlinkHere(dirFd: number, name: string): void {
  if (lstatat(dirFd, name).mntId !== fstat(dirFd).mntId) {
    throw Object.assign(new Error(`EBUSY: resource busy (a mount is on it), unlinkat '${name}'`), {
      code: 'EBUSY',
      errno: -16,
      syscall: 'unlinkat',
      path: name,
    });
  }
  unlinkat(dirFd, name);
}
