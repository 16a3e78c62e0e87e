/**
 * Race-free path resolution inside a container's root filesystem.
 *
 * The rootfs is opened once and every path a client names is resolved by
 * the kernel from that descriptor (openat2 RESOLVE_IN_ROOT |
 * RESOLVE_NO_MAGICLINKS, common/openat2.ts): symlinks are expanded as if the
 * rootfs were `/`, `..` stops there, and a process in the container that
 * swaps a directory for a symlink meanwhile only changes which in-root
 * directory is reached, never gets us out. What is handed on is a
 * descriptor (a parent directory, a directory to archive or to extract
 * into), never a path string to be resolved again later.
 */
import fs from 'node:fs';
import { EngineError, errnoCode, invalid } from '../common/errors.ts';
import {
  close,
  fdPath,
  fstat,
  isDir,
  isFile,
  isSymlink,
  lstatat,
  mkdirat,
  O_DIRECTORY,
  O_NOCTTY,
  O_NONBLOCK,
  O_PATH,
  O_RDONLY,
  openIn,
  readlinkat,
  type Stat,
} from '../common/openat2.ts';

const DIR = O_RDONLY | O_DIRECTORY;

/** The components of p, cleaned lexically: `.` dropped, `..` stops at the root. */
function clean(p: string): string[] {
  const out: string[] = [];
  for (const c of p.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') out.pop();
    else out.push(c);
  }
  return out;
}

/**
 * Where fd is, as a path inside the root (for names and messages only: the
 * kernel's own record of the path it resolved, so symlinks are expanded).
 */
function inRootPath(rootFd: number, fd: number, fallback: string): string {
  try {
    const root = fs.readlinkSync(fdPath(rootFd));
    const here = fs.readlinkSync(fdPath(fd));
    if (here === root) return '/';
    if (here.startsWith(root === '/' ? '/' : root + '/')) return root === '/' ? here : here.slice(root.length);
  } catch {
    // fall back to the lexical path
  }
  return fallback;
}

const notFound = (p: string) => new EngineError('NOT_FOUND', `Could not find the file ${p} in container`);

/** Runs fn with the rootfs pinned by a descriptor. */
function withRoot<T>(root: string, fn: (rootFd: number) => T): T {
  const fd = fs.openSync(root, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    return fn(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export interface Resolved {
  /** An open directory fd on the parent (close it). */
  dirFd: number;
  /** Final component ('' for the root itself: dirFd is then the root). */
  name: string;
  /** The path inside the root, cleaned lexically (for messages and archive names). */
  clean: string;
}

/**
 * Resolves the parent of `p` inside the root pinned by `rootFd`, to (parent
 * fd, final name); the final name is not followed. A missing parent is NOT_FOUND.
 */
export function resolveAt(rootFd: number, p: string): Resolved {
  const comps = clean(p);
  const name = comps.pop() ?? '';
  const cleanPath = '/' + [...comps, name].filter(Boolean).join('/');
  try {
    return { dirFd: openIn(rootFd, comps.join('/'), DIR), name, clean: cleanPath };
  } catch (e) {
    const c = errnoCode(e);
    if (c === 'ENOENT') throw notFound(cleanPath);
    if (c === 'ENOTDIR') throw invalid(`a parent of ${cleanPath} in the container is not a directory`);
    if (c === 'ELOOP') throw invalid(`too many levels of symbolic links in ${cleanPath}`);
    throw e;
  }
}

/** Reads a whole regular file inside root (symlinks followed, scoped); undefined if absent. Never opens a FIFO or device for reading. */
export function readFileIn(root: string, p: string, max = 4 << 20): Buffer | undefined {
  return withRoot(root, (rootFd) => {
    let fd: number;
    try {
      fd = openIn(rootFd, clean(p).join('/'), O_RDONLY | O_NONBLOCK | O_NOCTTY);
    } catch (e) {
      if (['ENOENT', 'ENOTDIR', 'ELOOP', 'EISDIR'].includes(errnoCode(e) ?? '')) return undefined;
      throw e;
    }
    try {
      const st = fstat(fd);
      if (!isFile(st)) throw invalid(`${p} in the container is not a regular file`);
      if (st.size > max) throw invalid(`${p} in the container is over ${max} bytes`);
      const buf = Buffer.alloc(st.size);
      const n = st.size === 0 ? 0 : fs.readSync(fd, buf, 0, st.size, 0);
      return buf.subarray(0, n);
    } finally {
      close(fd);
    }
  });
}

export interface PathInfo {
  stat: Stat;
  clean: string;
  linkTarget: string;
}

/** lstat (or, with follow, stat) of a path inside the root pinned by rootFd; undefined if absent. */
export function statAt(rootFd: number, p: string, follow = false): PathInfo | undefined {
  if (follow) {
    let fd: number;
    try {
      fd = openIn(rootFd, clean(p).join('/'), O_PATH);
    } catch (e) {
      if (['ENOENT', 'ENOTDIR'].includes(errnoCode(e) ?? '')) return undefined;
      throw e;
    }
    try {
      return { stat: fstat(fd), clean: inRootPath(rootFd, fd, '/' + clean(p).join('/')), linkTarget: '' };
    } finally {
      close(fd);
    }
  }
  let r: Resolved;
  try {
    r = resolveAt(rootFd, p);
  } catch (e) {
    if (e instanceof EngineError && e.code === 'NOT_FOUND') return undefined;
    throw e;
  }
  try {
    for (let tries = 0; ; tries++) {
      try {
        const st = r.name === '' ? fstat(r.dirFd) : lstatat(r.dirFd, r.name);
        return { stat: st, clean: r.clean, linkTarget: isSymlink(st) ? readlinkat(r.dirFd, r.name) : '' };
      } catch (e) {
        if (errnoCode(e) === 'ENOENT') return undefined;
        // EINVAL: the symlink was swapped for something else between lstat and readlink (a host user racing a bind source); look again.
        if (errnoCode(e) === 'EINVAL' && tries < 8) continue;
        throw e;
      }
    }
  } finally {
    close(r.dirFd);
  }
}

/** statAt on a root path. */
export function statIn(root: string, p: string, follow = false): PathInfo | undefined {
  return withRoot(root, (fd) => statAt(fd, p, follow));
}

/**
 * Opens the directory `p` (symlinks followed, scoped) inside the root pinned
 * by rootFd, creating it (and missing parents, 0755) with create.
 */
export function openDirAt(rootFd: number, p: string, opts: { create?: boolean } = {}): number {
  const comps = clean(p);
  const shown = '/' + comps.join('/');
  for (let i = 0; ; i++) {
    try {
      return openIn(rootFd, comps.join('/'), DIR);
    } catch (e) {
      const c = errnoCode(e);
      if (c === 'ENOENT' && opts.create && i < 40) {
        mkdirsAt(rootFd, comps, 0);
        continue;
      }
      if (c === 'ENOENT') throw notFound(shown);
      if (c === 'ENOTDIR' || c === 'ELOOP') throw invalid(`${shown} in the container is not a directory`);
      throw e;
    }
  }
}

/** Makes the first missing directory of comps (resolved from the root each time, so links stay scoped). */
function mkdirsAt(rootFd: number, comps: string[], depth: number): void {
  if (depth > 40) throw invalid(`too many levels of symbolic links in /${comps.join('/')}`);
  for (let i = 1; i <= comps.length; i++) {
    let fd: number;
    try {
      fd = openIn(rootFd, comps.slice(0, i).join('/'), DIR);
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') throw e;
      const parent = openIn(rootFd, comps.slice(0, i - 1).join('/'), DIR);
      try {
        mkdirat(parent, comps[i - 1]!, 0o755);
      } catch (e2) {
        // A dangling symlink in the way: the next openIn follows it and its target gets created instead.
        if (errnoCode(e2) !== 'EEXIST') throw e2;
        const st = lstatat(parent, comps[i - 1]!);
        if (isSymlink(st)) {
          const target = readlinkat(parent, comps[i - 1]!);
          const base = target.startsWith('/') ? [] : comps.slice(0, i - 1);
          mkdirsAt(rootFd, clean([...base, target].join('/')), depth + 1);
        } else if (!isDir(st)) throw invalid(`/${comps.slice(0, i).join('/')} in the container is not a directory`);
      } finally {
        close(parent);
      }
      return;
    }
    close(fd);
  }
}

/** An fd-pinned directory inside root; close() releases it. */
export function openDirIn(root: string, p: string, opts: { create?: boolean } = {}): { fd: number; clean: string; close(): void } {
  let shown = '';
  const fd = withRoot(root, (rootFd) => {
    const d = openDirAt(rootFd, p, opts);
    shown = inRootPath(rootFd, d, '/' + clean(p).join('/'));
    return d;
  });
  let closed = false;
  return {
    fd,
    clean: shown,
    close: () => {
      if (!closed) close(fd);
      closed = true;
    },
  };
}
