/**
 * Writing layer tars: diffLayer turns an overlay upperdir into an OCI layer
 * (whiteouts and opaque dirs translated back to `.wh.` names), tarDirectory
 * archives a plain tree (export, cp, save of a rootfs).
 *
 * Output is deterministic for a given tree: names sorted bytewise, PAX only
 * where ustar cannot hold a field, hardlinks detected by inode. The upperdir
 * must come from a mount without metacopy/redirect_dir (keel's snapshotter
 * does not enable them): those store file data or renames in lower layers.
 */
import fs from 'node:fs';
import { Readable } from 'node:stream';
import { invalid } from '../common/errors.ts';
import {
  close,
  fdPath,
  fgetxattr,
  flistxattr,
  fstat,
  O_DIRECTORY,
  O_PATH,
  O_RDONLY,
  openChild,
  openIn,
  readlinkat,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  type Stat,
} from '../common/openat2.ts';
import { cleanEntryPath, join } from './resolve.ts';
import { RootDir } from './rootdir.ts';
import { BLOCK, encodeHeader, padding, type EntryType, type TarHeader } from './tarformat.ts';

const CHUNK = 256 * 1024;
const SMALL_FILE = 64 * 1024;
// Reopening an O_PATH descriptor: the same inode, checked before, and never a FIFO or device.
const O_READ = fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY;

/** Writes an uncompressed layer tar of an overlay upperdir: overlay whiteouts (char 0:0, xattr trusted.overlay.whiteout) become `.wh.<name>`, opaque dirs (trusted.overlay.opaque=y) get `.wh..wh..opq`. */
export function diffLayer(upperDir: string | { fd: number }, opts: { clampMtime?: number } = {}): Readable {
  return Readable.from(writeTree(upperDir, [''], { overlay: true, clampMtime: opts.clampMtime }), { objectMode: false });
}

/** A tar of a whole directory tree (for export, cp, save of rootfs); paths relative to root, no whiteout logic. */
export function tarDirectory(root: string | { fd: number }, opts: { include?: string[]; rename?: (p: string) => string } = {}): Readable {
  return Readable.from(writeTree(root, opts.include ?? [''], { overlay: false, rename: opts.rename }), { objectMode: false });
}

interface WalkOpts {
  overlay: boolean;
  /** Reproducible layers (SOURCE_DATE_EPOCH): no mtime later than this (seconds). */
  clampMtime?: number;
  rename?: (p: string) => string;
}

/** Collects small buffers into larger chunks so the stream is not per-header. */
class Out {
  private parts: Buffer[] = [];
  private len = 0;
  push(b: Buffer): void {
    this.parts.push(b);
    this.len += b.length;
  }
  get full(): boolean {
    return this.len >= CHUNK;
  }
  take(): Buffer {
    const b = Buffer.concat(this.parts, this.len);
    this.parts = [];
    this.len = 0;
    return b;
  }
}

const TYPES = new Map<number, EntryType>([
  [S_IFREG, 'file'],
  [S_IFDIR, 'dir'],
  [S_IFLNK, 'symlink'],
  [S_IFCHR, 'char'],
  [S_IFBLK, 'block'],
  [S_IFIFO, 'fifo'],
]);
/** Sockets are not archived. */
const typeOf = (st: Stat): EntryType | null => TYPES.get(st.mode & S_IFMT) ?? null;

/** xattrs that travel in layers: file capabilities and user.* (never trusted.* or other security.*). */
function portableXattrs(fd: number, names: string[]): Map<string, Buffer> | undefined {
  let out: Map<string, Buffer> | undefined;
  for (const n of names) {
    if (n !== 'security.capability' && !n.startsWith('user.')) continue;
    const v = fgetxattr(fd, n);
    if (v) (out ??= new Map()).set(n, v);
  }
  return out;
}

const gone = (e: unknown) => ['ENOENT', 'ENOTDIR'].includes((e as NodeJS.ErrnoException).code ?? '');

/**
 * The walk. Every name is opened relative to its parent's descriptor with
 * O_PATH|O_NOFOLLOW (no symlink followed, and O_PATH never runs a device's
 * open or waits on a FIFO), its type is taken from that descriptor, and only
 * a regular file or a directory is reopened for reading, through the
 * descriptor itself (/proc/self/fd/N names exactly that inode). So a
 * directory swapped for a symlink to the host, or a FIFO or device swapped
 * in, can neither pull a file from outside into the tar nor block the walk.
 */
async function* writeTree(root: string | { fd: number }, include: string[], o: WalkOpts): AsyncGenerator<Buffer> {
  const rootDir = new RootDir(root);
  const out = new Out();
  const links = new Map<string, string>();
  const name = (rel: string) => (o.rename ? o.rename(rel) : rel);

  const header = (rel: string, st: Stat, type: EntryType, extra: Partial<TarHeader> = {}): TarHeader => ({
    name: name(rel) + (type === 'dir' ? '/' : ''),
    type,
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    size: 0,
    mtime: o.clampMtime !== undefined ? Math.min(st.mtime, o.clampMtime) : st.mtime,
    linkname: '',
    devmajor: 0,
    devminor: 0,
    ...extra,
  });

  async function* file(fd: number, h: TarHeader): AsyncGenerator<Buffer> {
    out.push(encodeHeader(h));
    let left = h.size;
    const buf = Buffer.allocUnsafe(Math.min(Math.max(h.size, 1), 1024 * 1024));
    while (left > 0) {
      const n =
        h.size <= SMALL_FILE
          ? fs.readSync(fd, buf, 0, Math.min(buf.length, left), null)
          : await new Promise<number>((res, rej) => fs.read(fd, buf, 0, Math.min(buf.length, left), null, (e, b) => (e ? rej(e) : res(b))));
      if (n === 0) break; // the file shrank while archived: pad with zeros below
      out.push(Buffer.from(buf.subarray(0, n)));
      left -= n;
      if (out.full) yield out.take();
    }
    if (left > 0) out.push(Buffer.alloc(left));
    out.push(Buffer.alloc(padding(h.size)));
  }

  /** One entry: `name` in the directory `dirFd` ('' and rootDir.fd for the root itself), archived as `rel`. */
  async function* entry(dirFd: number, base: string, rel: string): AsyncGenerator<Buffer> {
    let pfd: number;
    try {
      pfd = openChild(dirFd, base === '' ? '.' : base, O_PATH);
    } catch (e) {
      if (gone(e)) return; // removed while archived
      throw e;
    }
    let rfd = -1;
    try {
      const st = fstat(pfd);
      const type = typeOf(st);
      if (type === null) return;
      if (type === 'file' || type === 'dir') rfd = fs.openSync(fdPath(pfd), O_READ | (type === 'dir' ? O_DIRECTORY : 0));
      const xnames = rfd >= 0 ? flistxattr(rfd) : [];
      const parent = rel.slice(0, Math.max(0, rel.lastIndexOf('/')));
      const bname = rel.slice(rel.lastIndexOf('/') + 1);
      if (o.overlay) {
        const isWhiteout =
          (type === 'char' && st.rdevMajor === 0 && st.rdevMinor === 0) || (type === 'file' && st.size === 0 && xnames.includes('trusted.overlay.whiteout'));
        if (isWhiteout) {
          out.push(encodeHeader(header(join(parent, '.wh.' + bname), st, 'file', { mode: 0o600, uid: 0, gid: 0 })));
          return;
        }
        if (bname.startsWith('.wh.')) throw invalid(`cannot commit ${JSON.stringify('/' + rel)}: names starting with .wh. are reserved for whiteouts`);
      }
      if (rel !== '') {
        const key = `${st.dev}:${st.ino}`;
        if (type !== 'dir' && st.nlink > 1) {
          const first = links.get(key);
          if (first !== undefined) {
            out.push(encodeHeader(header(rel, st, 'link', { linkname: name(first) })));
            return;
          }
          links.set(key, rel);
        }
        const h = header(rel, st, type, { xattrs: rfd >= 0 ? portableXattrs(rfd, xnames) : undefined });
        if (type === 'file') {
          h.size = st.size;
          yield* file(rfd, h);
        } else {
          if (type === 'symlink') h.linkname = readlinkat(pfd, '');
          if (type === 'char' || type === 'block') {
            h.devmajor = st.rdevMajor;
            h.devminor = st.rdevMinor;
          }
          out.push(encodeHeader(h));
        }
        if (out.full) yield out.take();
      }
      if (type !== 'dir') return;
      if (o.overlay && rel !== '' && xnames.includes('trusted.overlay.opaque')) {
        const v = fgetxattr(rfd, 'trusted.overlay.opaque');
        if (v && v.toString() === 'y') out.push(encodeHeader(header(join(rel, '.wh..wh..opq'), st, 'file', { mode: 0o600, uid: 0, gid: 0 })));
      }
      const names = fs.readdirSync(fdPath(rfd)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      for (const n of names) yield* entry(rfd, n, join(rel, n));
    } finally {
      if (rfd >= 0) fs.closeSync(rfd);
      close(pfd);
    }
  }

  try {
    for (const inc of include) {
      // Included paths are resolved like layer entries: parents inside the root (kernel-scoped), the last component not followed.
      const comps = cleanEntryPath(inc, 'path');
      if (comps.length === 0) {
        yield* entry(rootDir.fd, '', '');
        continue;
      }
      let pfd: number;
      try {
        pfd = openIn(rootDir.fd, comps.slice(0, -1).join('/'), O_RDONLY | O_DIRECTORY);
      } catch (e) {
        if (gone(e)) throw invalid(`path ${JSON.stringify(inc)} does not exist`);
        throw e;
      }
      try {
        const base = comps[comps.length - 1]!;
        let exists = true;
        try {
          close(openChild(pfd, base, O_PATH));
        } catch (e) {
          if (!gone(e)) throw e;
          exists = false;
        }
        if (!exists) throw invalid(`path ${JSON.stringify(inc)} does not exist`);
        yield* entry(pfd, base, comps.join('/'));
      } finally {
        close(pfd);
      }
    }
    out.push(Buffer.alloc(BLOCK * 2));
    yield out.take();
  } finally {
    rootDir.close();
  }
}
