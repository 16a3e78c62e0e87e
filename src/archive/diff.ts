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
import { getAttributeSync, listAttributesSync } from '@napi-rs/xattr';
import { invalid } from '../common/errors.ts';
import { cleanEntryPath, join, ScopedRoot } from './resolve.ts';
import { BLOCK, encodeHeader, padding, type EntryType, type TarHeader } from './tarformat.ts';

const CHUNK = 256 * 1024;
const SMALL_FILE = 64 * 1024;
const O_READ = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW;

/** Writes an uncompressed layer tar of an overlay upperdir: overlay whiteouts (char 0:0, xattr trusted.overlay.whiteout) become `.wh.<name>`, opaque dirs (trusted.overlay.opaque=y) get `.wh..wh..opq`. */
export function diffLayer(upperDir: string, opts: { clampMtime?: number } = {}): Readable {
  return Readable.from(writeTree(upperDir, [''], { overlay: true, clampMtime: opts.clampMtime }), { objectMode: false });
}

/** A tar of a whole directory tree (for export, cp, save of rootfs); paths relative to root, no whiteout logic. */
export function tarDirectory(root: string, opts: { include?: string[]; rename?: (p: string) => string } = {}): Readable {
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

function typeOf(st: fs.Stats): EntryType | null {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return null; // sockets are not archived
}

function listXattrs(abs: string): string[] {
  try {
    return listAttributesSync(abs);
  } catch {
    return []; // filesystems without xattr support
  }
}

/** xattrs that travel in layers: file capabilities and user.* (never trusted.* or other security.*). */
function portableXattrs(abs: string, names: string[]): Map<string, Buffer> | undefined {
  let out: Map<string, Buffer> | undefined;
  for (const n of names) {
    if (n !== 'security.capability' && !n.startsWith('user.')) continue;
    const v = getAttributeSync(abs, n);
    if (v) (out ??= new Map()).set(n, v);
  }
  return out;
}

async function* writeTree(root: string, include: string[], o: WalkOpts): AsyncGenerator<Buffer> {
  const sroot = new ScopedRoot(fs.realpathSync(root));
  const out = new Out();
  const links = new Map<string, string>();
  const name = (rel: string) => (o.rename ? o.rename(rel) : rel);

  const header = (rel: string, st: fs.Stats, type: EntryType, extra: Partial<TarHeader> = {}): TarHeader => ({
    name: name(rel) + (type === 'dir' ? '/' : ''),
    type,
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    size: 0,
    mtime: o.clampMtime !== undefined ? Math.min(Math.floor(st.mtimeMs / 1000), o.clampMtime) : Math.floor(st.mtimeMs / 1000),
    linkname: '',
    devmajor: 0,
    devminor: 0,
    ...extra,
  });

  async function* file(abs: string, h: TarHeader): AsyncGenerator<Buffer> {
    out.push(encodeHeader(h));
    const fd = fs.openSync(abs, O_READ);
    try {
      let left = h.size;
      const buf = Buffer.allocUnsafe(Math.min(Math.max(h.size, 1), 1024 * 1024));
      while (left > 0) {
        const n = h.size <= SMALL_FILE
          ? fs.readSync(fd, buf, 0, Math.min(buf.length, left), null)
          : await new Promise<number>((res, rej) => fs.read(fd, buf, 0, Math.min(buf.length, left), null, (e, b) => (e ? rej(e) : res(b))));
        if (n === 0) break; // the file shrank while archived: pad with zeros below
        out.push(Buffer.from(buf.subarray(0, n)));
        left -= n;
        if (out.full) yield out.take();
      }
      if (left > 0) out.push(Buffer.alloc(left));
    } finally {
      fs.closeSync(fd);
    }
    out.push(Buffer.alloc(padding(h.size)));
  }

  async function* entry(rel: string, st: fs.Stats): AsyncGenerator<Buffer> {
    const abs = sroot.abs(rel);
    const type = typeOf(st);
    if (type === null) return;
    const base = rel.slice(rel.lastIndexOf('/') + 1);
    const parent = rel.slice(0, Math.max(0, rel.lastIndexOf('/')));
    const xnames = type === 'symlink' ? [] : listXattrs(abs);
    if (o.overlay) {
      const isWhiteout = (type === 'char' && st.rdev === 0) || (type === 'file' && st.size === 0 && xnames.includes('trusted.overlay.whiteout'));
      if (isWhiteout) {
        out.push(encodeHeader(header(join(parent, '.wh.' + base), st, 'file', { mode: 0o600, uid: 0, gid: 0 })));
        return;
      }
      if (base.startsWith('.wh.')) throw invalid(`cannot commit ${JSON.stringify('/' + rel)}: names starting with .wh. are reserved for whiteouts`);
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
      const h = header(rel, st, type, { xattrs: portableXattrs(abs, xnames) });
      if (type === 'file') {
        h.size = st.size;
        yield* file(abs, h);
      } else {
        if (type === 'symlink') h.linkname = fs.readlinkSync(abs, 'utf8');
        if (type === 'char' || type === 'block') {
          h.devmajor = Number((BigInt(st.rdev) >> 8n) & 0xfffn);
          h.devminor = Number((BigInt(st.rdev) & 0xffn) | ((BigInt(st.rdev) >> 12n) & 0xfff00n));
        }
        out.push(encodeHeader(h));
      }
      if (out.full) yield out.take();
    }
    if (type !== 'dir') return;
    if (o.overlay && rel !== '' && xnames.includes('trusted.overlay.opaque')) {
      const v = getAttributeSync(abs, 'trusted.overlay.opaque');
      if (v && v.toString() === 'y') out.push(encodeHeader(header(join(rel, '.wh..wh..opq'), st, 'file', { mode: 0o600, uid: 0, gid: 0 })));
    }
    const names = fs.readdirSync(abs).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const n of names) {
      const crel = join(rel, n);
      let cst: fs.Stats;
      try {
        cst = fs.lstatSync(sroot.abs(crel));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // removed while archived
        throw e;
      }
      yield* entry(crel, cst);
    }
  }

  for (const inc of include) {
    // Included paths are resolved like layer entries: parents scoped to root, the last component not followed.
    const comps = cleanEntryPath(inc, 'path');
    const parent = comps.length === 0 ? '' : sroot.resolveDir(comps.slice(0, -1), false, inc);
    if (parent === null) throw invalid(`path ${JSON.stringify(inc)} does not exist`);
    const rel = comps.length === 0 ? '' : join(parent, comps[comps.length - 1]!);
    const st = sroot.lstat(rel);
    if (!st) throw invalid(`path ${JSON.stringify(inc)} does not exist`);
    yield* entry(rel, st);
  }
  out.push(Buffer.alloc(BLOCK * 2));
  yield out.take();
}
