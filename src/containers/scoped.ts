/**
 * Race-free path resolution inside a container's root filesystem.
 *
 * Node has no openat(2), but `/proc/self/fd/<dirfd>/<name>` resolves `name`
 * relative to the directory the fd holds, whatever has happened to the path
 * since: it is openat in all but name. So we walk one component at a time
 * from an fd on the root, each step opened with O_NOFOLLOW; a symlink met on
 * the way is read through the same fd-relative path and expanded as if the
 * root were `/` (absolute targets restart at the root, `..` stops there).
 * A process in the container that swaps a directory for a symlink between
 * two steps only changes which in-root directory we reach, never gets us out.
 */
import fs from 'node:fs';
import { EngineError, errnoCode, invalid } from '../common/errors.ts';

const MAX_LINKS = 40;
const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW, O_PATH } = fs.constants as typeof fs.constants & { O_PATH?: number };
const DIR_FLAGS = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;

export const fdPath = (fd: number, name?: string) => (name === undefined ? `/proc/self/fd/${fd}` : `/proc/self/fd/${fd}/${name}`);

export interface Resolved {
  /** An open fd on the parent directory (close it). */
  dirFd: number;
  /** Final component ('' for the root itself). */
  name: string;
  /** The path inside the root, cleaned (for messages and archive names). */
  clean: string;
}

function split(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.');
}

/**
 * Resolves `p` inside `root` to (parent dir fd, final name). With
 * followFinal, a final symlink is expanded too (scoped); a missing final
 * component is fine (the caller may create it); a missing parent is NOT_FOUND.
 */
export function resolveIn(root: string, p: string, opts: { followFinal?: boolean } = {}): Resolved {
  const rootFd = fs.openSync(root, DIR_FLAGS);
  const stack: number[] = [rootFd];
  const names: string[] = [];
  const queue = split(p);
  let links = 0;
  const top = () => stack[stack.length - 1]!;
  try {
    while (queue.length) {
      const c = queue.shift()!;
      if (c === '..') {
        if (stack.length > 1) {
          fs.closeSync(stack.pop()!);
          names.pop();
        }
        continue;
      }
      const last = queue.length === 0;
      let st: fs.Stats | undefined;
      try {
        st = fs.lstatSync(fdPath(top(), c));
      } catch (e) {
        if (errnoCode(e) !== 'ENOENT') throw e;
        if (last) return { dirFd: detachTop(stack), name: c, clean: '/' + [...names, c].join('/') };
        throw new EngineError('NOT_FOUND', `Could not find the file ${'/' + [...names, c, ...queue].join('/')} in container`);
      }
      if (st.isSymbolicLink() && (!last || opts.followFinal)) {
        if (++links > MAX_LINKS) throw invalid(`too many levels of symbolic links in ${p}`);
        const target = fs.readlinkSync(fdPath(top(), c), 'utf8');
        if (target.startsWith('/')) {
          while (stack.length > 1) fs.closeSync(stack.pop()!);
          names.length = 0;
        }
        queue.unshift(...split(target));
        continue;
      }
      if (last) return { dirFd: detachTop(stack), name: c, clean: '/' + [...names, c].join('/') };
      if (!st.isDirectory()) throw invalid(`${'/' + [...names, c].join('/')} is not a directory`);
      let fd: number;
      try {
        fd = fs.openSync(fdPath(top(), c), DIR_FLAGS);
      } catch (e) {
        // Swapped for a symlink or removed since the lstat: look again.
        if (errnoCode(e) === 'ELOOP' || errnoCode(e) === 'ENOTDIR' || errnoCode(e) === 'ENOENT') {
          queue.unshift(c);
          if (++links > MAX_LINKS) throw invalid(`${p} keeps changing while it is resolved`);
          continue;
        }
        throw e;
      }
      stack.push(fd);
      names.push(c);
    }
    // p named the root (or resolved to it).
    return { dirFd: detachTop(stack), name: '', clean: '/' + names.join('/') };
  } finally {
    for (const fd of stack) fs.closeSync(fd);
  }
}

/** Removes the top fd from the stack (so finally does not close it) and returns it. */
function detachTop(stack: number[]): number {
  return stack.pop()!;
}

/** Reads a whole regular file inside root (symlinks followed, scoped); undefined if absent. */
export function readFileIn(root: string, p: string, max = 4 << 20): Buffer | undefined {
  let r: Resolved;
  try {
    r = resolveIn(root, p, { followFinal: true });
  } catch (e) {
    if (e instanceof EngineError && e.code === 'NOT_FOUND') return undefined;
    throw e;
  }
  try {
    let fd: number;
    try {
      fd = fs.openSync(fdPath(r.dirFd, r.name), O_RDONLY | O_NOFOLLOW | fs.constants.O_NONBLOCK);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return undefined;
      throw e;
    }
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw invalid(`${p} in the container is not a regular file`);
      if (st.size > max) throw invalid(`${p} in the container is over ${max} bytes`);
      const buf = Buffer.alloc(st.size);
      const n = fs.readSync(fd, buf, 0, st.size, 0);
      return buf.subarray(0, n);
    } finally {
      fs.closeSync(fd);
    }
  } finally {
    fs.closeSync(r.dirFd);
  }
}

/** lstat (or stat with follow) of a path inside root; undefined if absent. */
export function statIn(root: string, p: string, follow = false): { stat: fs.Stats; clean: string; linkTarget: string } | undefined {
  let r: Resolved;
  try {
    r = resolveIn(root, p, { followFinal: follow });
  } catch (e) {
    if (e instanceof EngineError && e.code === 'NOT_FOUND') return undefined;
    throw e;
  }
  try {
    const st = r.name === '' ? fs.fstatSync(r.dirFd) : fs.lstatSync(fdPath(r.dirFd, r.name));
    const linkTarget = st.isSymbolicLink() ? fs.readlinkSync(fdPath(r.dirFd, r.name), 'utf8') : '';
    return { stat: st, clean: r.clean, linkTarget };
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw e;
  } finally {
    fs.closeSync(r.dirFd);
  }
}

/**
 * An fd-pinned directory inside root, as a path (/proc/self/fd/N) that the
 * archive code can use as its own root; close() releases it.
 */
export function openDirIn(root: string, p: string, opts: { create?: boolean } = {}): { path: string; clean: string; close(): void } {
  const r = resolveIn(root, p, { followFinal: true });
  let fd = r.dirFd;
  if (r.name !== '') {
    try {
      if (opts.create) {
        try {
          fs.mkdirSync(fdPath(r.dirFd, r.name), 0o755);
        } catch (e) {
          if (errnoCode(e) !== 'EEXIST') throw e;
        }
      }
      fd = fs.openSync(fdPath(r.dirFd, r.name), DIR_FLAGS);
    } catch (e) {
      const c = errnoCode(e);
      if (c === 'ENOENT') throw new EngineError('NOT_FOUND', `Could not find the file ${r.clean} in container`);
      if (c === 'ENOTDIR' || c === 'ELOOP') throw invalid(`${r.clean} in the container is not a directory`);
      throw e;
    } finally {
      fs.closeSync(r.dirFd);
    }
  }
  void O_PATH;
  let closed = false;
  return {
    path: fdPath(fd),
    clean: r.clean,
    close: () => {
      if (!closed) fs.closeSync(fd);
      closed = true;
    },
  };
}
