/**
 * A mount destination inside a root someone else can write (a container's
 * rootfs, a bind-mount source or volume mounted in it), resolved by
 * descriptor: securejoin's semantics (every symlink on the way, the last one
 * included, read as if the root were `/`; `..` stops at the root; missing
 * directories made 0755), but each step opens one name below the pinned
 * parent without following it (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS,
 * O_PATH), and every mkdir is a mkdirat on that parent. A directory swapped
 * for a symlink meanwhile is met as a symlink on its pinned parent and
 * expanded inside the root like any other: nothing outside is ever reached,
 * made or opened. O_PATH never opens what it reaches, so a FIFO or device in
 * the way blocks nothing; as a destination it is refused.
 *
 * What comes back is an O_PATH fd of the destination: the caller mounts onto
 * it (hostview.ts, by move_mount) or, where a path string must be handed on
 * (runc, at start, before anything runs in the rootfs), uses `rel`.
 */
import { invalid } from '../common/errors.ts';
import {
  close,
  fstat,
  isDir,
  isSymlink,
  mkdirat,
  O_CREAT,
  O_EXCL,
  O_NOCTTY,
  O_NONBLOCK,
  O_PATH,
  O_WRONLY,
  openChild,
  openat2,
  readlinkat,
  S_IFBLK,
  S_IFCHR,
  S_IFIFO,
  S_IFMT,
  type Stat,
} from '../common/openat2.ts';
import { cleanEntryPath } from '../archive/resolve.ts';

const MAX_SYMLINKS = 255;
const code = (e: unknown) => (e as NodeJS.ErrnoException).code;

export interface Destination {
  /** O_PATH fd of the destination (close it). */
  fd: number;
  /** Its path inside the root, symlinks expanded ('' for the root itself). */
  rel: string;
  stat: Stat;
}

/**
 * Resolves `dest` inside the directory `rootFd`. With create, what is missing
 * is made: directories, and at the end a directory or, with asFile, an empty
 * file. Without create, a missing component gives null.
 */
export function openDestination(rootFd: number, dest: string, opts: { create: boolean; asFile?: boolean }): Destination | null {
  const refuse = (why: string) => invalid(`cannot mount on ${JSON.stringify(dest)} in the container: ${why}`);
  let queue: string[];
  try {
    queue = cleanEntryPath(dest, 'mount destination');
  } catch {
    throw refuse("it climbs above the root with '..'");
  }
  const stack: { fd: number; name: string }[] = [];
  const top = () => (stack.length ? stack[stack.length - 1]!.fd : rootFd);
  const here = () => '/' + stack.map((s) => s.name).join('/');
  let steps = 0;
  try {
    while (queue.length) {
      // Symlinks expanded and names made again after a racing removal both count: a swap loop cannot keep us here.
      if (++steps > MAX_SYMLINKS + 4096) throw refuse('too many levels of symbolic links');
      const c = queue.shift()!;
      if (c === '' || c === '.') continue;
      if (c === '..') {
        const up = stack.pop();
        if (up) close(up.fd);
        continue;
      }
      const last = queue.length === 0;
      let fd: number;
      try {
        fd = openChild(top(), c, O_PATH);
      } catch (e) {
        if (code(e) !== 'ENOENT') throw e;
        if (!opts.create) return null;
        try {
          if (last && opts.asFile) close(openChild(top(), c, O_WRONLY | O_CREAT | O_EXCL | O_NONBLOCK | O_NOCTTY, { mode: 0o755 }));
          else mkdirat(top(), c, 0o755);
        } catch (e2) {
          if (code(e2) !== 'EEXIST') throw e2; // made (or swapped in) meanwhile: look at it again
        }
        queue.unshift(c);
        continue;
      }
      let st: Stat;
      try {
        st = fstat(fd);
        if (isSymlink(st)) {
          const target = readlinkat(fd, '');
          close(fd);
          fd = -1;
          if (target.startsWith('/')) while (stack.length) close(stack.pop()!.fd);
          queue.unshift(...target.split('/'));
          continue;
        }
        if (!last && !isDir(st)) throw refuse(`${here()}/${c} is not a directory`);
      } catch (e) {
        if (fd >= 0) close(fd);
        throw e;
      }
      stack.push({ fd, name: c });
    }
    const rel = stack.map((s) => s.name).join('/');
    const fd = stack.length ? stack.pop()!.fd : openat2(rootFd, '.', O_PATH, 0);
    const stat = fstat(fd);
    const type = stat.mode & S_IFMT;
    if (type === S_IFIFO || type === S_IFCHR || type === S_IFBLK) {
      close(fd);
      throw refuse('it is a FIFO or a device');
    }
    return { fd, rel, stat };
  } finally {
    for (const s of stack) close(s.fd);
  }
}
