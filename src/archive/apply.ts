/**
 * Applying a tar to a directory: image layers (unpack, `docker load`,
 * import) and plain copies (`docker cp` into a container, `keel cp` out).
 *
 * The archive is untrusted, and so may be the destination tree (a container's
 * rootfs, a bind-mount source a host user owns). Guarantees:
 * - nothing is written, chmod'ed, chown'ed, touched or unlinked outside dest,
 *   whatever runs beside us: dest is pinned by a descriptor and every name is
 *   resolved by the kernel inside it (rootdir.ts, openat2 RESOLVE_IN_ROOT);
 *   every change is an *at or f* call on a descriptor, and the final name is
 *   never followed (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW, linkat without follow);
 * - names or hardlink targets whose `..` climbs above the root, whiteouts that
 *   escape or name `.`/`..`, corrupt/truncated data, oversized PAX headers,
 *   and archives past the byte/entry limits refuse the whole layer with an
 *   INVALID_ARGUMENT naming the entry (the caller deletes the temp dir);
 * - block/char devices in the archive are skipped; only keel makes the 0:0
 *   whiteout devices; xattrs are applied only for security.capability and user.*;
 * - removals (whiteouts, a directory replaced by a file) never cross a mount.
 *
 * A copy (`copy` option) is not a layer, as in docker: `.wh.*` names are
 * ordinary files, nothing is deleted for an opaque directory, a non-directory
 * never replaces a directory, noOverwriteDirNonDir also keeps a directory
 * from replacing a non-directory, and `.` does not change dest itself.
 *
 * Writes use sync calls driven by a synchronous tar parser (no promise per
 * entry); the event loop still turns between input chunks. Pulls run this on
 * a worker thread per layer (offthread.ts). There is no separate fast path
 * for keel's own fresh snapshot dirs: the descriptor-based apply measured no
 * slower than the string-based one it replaced (a cached parent fd, one
 * O_EXCL create per entry and EEXIST handling replace the per-component
 * lstats, and mknodat replaces a tar exec for whiteouts and FIFOs). A
 * debootstrap minbase bookworm rootfs (160 MB tar, 6763 entries) into tmpfs
 * on this 2-core VM, CPU time (user+sys) medians of 5 paired rounds:
 * 484 ms against 536 ms for the string-based code (~330 MB/s); wall time at
 * low load 0.40-0.50 s for both.
 * keel's own parser is used because npm's tar parsers mangle binary PAX
 * xattr values (file capabilities) and cannot cap PAX headers with an error.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { EngineError, invalid } from '../common/errors.ts';
import {
  close,
  fdPath,
  fsetxattr,
  fstat,
  isDir,
  lchownat,
  linkat,
  lstatat,
  lutimesat,
  mkdirat,
  mknodat,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_NONBLOCK,
  O_RDONLY,
  O_WRONLY,
  openChild,
  openIn,
  S_IFCHR,
  S_IFIFO,
  symlinkat,
  O_NOFOLLOW,
} from '../common/openat2.ts';
import type { Digest } from '../oci/digest.ts';
import { decompressChunks } from './compress.ts';
import { TarParser, type TarSink } from './parser.ts';
import { cleanEntryPath } from './resolve.ts';
import { removeAt, RootDir, unlinkHere } from './rootdir.ts';
import type { TarHeader } from './tarformat.ts';

export interface ApplyOptions {
  compression?: 'none' | 'gzip' | 'zstd' | 'auto'; // 'auto' sniffs magic bytes (default)
  maxUncompressedBytes?: number; // default 64 GiB: total tar stream bytes; over it -> refuse (decompression bomb)
  maxEntries?: number; // default 2_000_000
  signal?: AbortSignal;
  /** When true (default), OCI whiteouts are converted to overlayfs form (char dev 0:0 / opaque xattr). */
  overlayWhiteouts?: boolean;
  /**
   * A plain copy (docker cp), not a layer: see the file comment. noLchown
   * keeps the extracting user as owner even as root, like the docker CLI's
   * extraction for `docker cp` out of a container (archive.TarOptions.NoLchown).
   */
  copy?: { noOverwriteDirNonDir?: boolean; noLchown?: boolean };
  /** Maps each entry name (and hardlink target) before it is applied; null skips the entry. */
  rename?: (name: string) => string | null;
  /** When false, `.wh.` names are plain files (a build context is not a layer). Default true. */
  whiteouts?: boolean;
}

export interface ApplyResult {
  diffId: Digest;
  size: number /* uncompressed tar bytes */;
  entries: number;
}

/** Where to apply: a path keel trusts (its store, the user's own directory) or a pinned directory fd (borrowed, not closed). */
export type ApplyTarget = string | { fd: number };

export const DEFAULT_MAX_BYTES = 64 * 1024 ** 3;
export const DEFAULT_MAX_ENTRIES = 2_000_000;
export const MAX_PAX_BYTES = 1024 * 1024;
/** Extended headers of one layer together: a PAX path for each of 500,000 long-named files fits. */
export const MAX_PAX_BYTES_PER_LAYER = 256 * 1024 * 1024;

const WH = '.wh.';
const OPAQUE = '.wh..wh..opq';
const DIR = O_RDONLY | O_DIRECTORY;

/** Applies a (possibly compressed) tar stream to `dest`. */
export async function applyLayer(dest: ApplyTarget, source: Readable | AsyncIterable<Uint8Array>, opts: ApplyOptions = {}): Promise<ApplyResult> {
  const maxBytes = opts.maxUncompressedBytes ?? DEFAULT_MAX_BYTES;
  let root: RootDir;
  try {
    root = new RootDir(dest);
  } catch (e) {
    throw invalid(`layer destination ${typeof dest === 'string' ? dest : 'directory'} is not a directory: ${(e as Error).message}`);
  }
  const applier = new Applier(root, opts);
  const parser = new TarParser(applier, {
    maxMetaBytes: MAX_PAX_BYTES,
    maxMetaBytesPerEntry: MAX_PAX_BYTES,
    maxMetaBytesTotal: MAX_PAX_BYTES_PER_LAYER,
    maxBytes,
  });
  const hash = createHash('sha256');
  let size = 0;
  const cancelled = () => new EngineError('CANCELLED', 'layer apply was cancelled');
  try {
    for await (const chunk of decompressChunks(source as AsyncIterable<Uint8Array>, opts.compression ?? 'auto')) {
      if (opts.signal?.aborted) throw cancelled();
      size += chunk.length;
      if (size > maxBytes) throw invalid(`layer is larger than ${maxBytes} bytes uncompressed: refusing it (decompression bomb?)`);
      hash.update(chunk);
      // Bytes after the end-of-archive marker still count for the diff_id.
      if (!parser.done) parser.write(chunk);
    }
    parser.finish();
    if (opts.signal?.aborted) throw cancelled();
    applier.finish();
  } finally {
    applier.closeOpenFile();
    root.close();
  }
  return { diffId: `sha256:${hash.digest('hex')}`, size, entries: parser.entries };
}

const isRoot = process.getuid?.() === 0;
const code = (e: unknown) => (e as NodeJS.ErrnoException).code;

/** Errors from the filesystem while applying an entry name it; bad-layer errnos are INVALID_ARGUMENT. */
function wrap(e: unknown, name: string, copy: boolean): EngineError {
  if (e instanceof EngineError) return copy ? new EngineError(e.code, e.message.replace(/^layer entry /, 'archive entry '), { cause: e.cause }) : e;
  const c = code(e) ?? '';
  const why = c === 'EXDEV' || c === 'EBUSY' ? 'a mount point is in the way (nothing is removed across a mount)' : (e as Error).message;
  const msg = `cannot ${copy ? 'extract archive' : 'apply layer'} entry ${JSON.stringify(name)}: ${why}`;
  const bad = ['ENOENT', 'EEXIST', 'ENOTDIR', 'EISDIR', 'ELOOP', 'ENAMETOOLONG', 'EINVAL', 'ENOTEMPTY', 'EXDEV', 'EMLINK', 'EBUSY'];
  return new EngineError(bad.includes(c) ? 'INVALID_ARGUMENT' : 'INTERNAL', msg, { cause: e });
}

class Applier implements TarSink {
  private readonly root: RootDir;
  private readonly overlay: boolean;
  private readonly copy: { noOverwriteDirNonDir?: boolean; noLchown?: boolean } | undefined;
  private readonly whiteouts: boolean;
  private readonly rename: ((name: string) => string | null) | undefined;
  private readonly maxEntries: number;
  private entries = 0;
  private file: { fd: number; h: TarHeader } | null = null;
  /** Directory mtimes, set last (creating children changes them), by lexical path. */
  private readonly dirTimes = new Map<string, number>();
  /** Flat-tree layers only: what this layer made, as `<parent dev:ino>/<name>`, so an opaque dir keeps it. */
  private readonly made: Set<string> | null;

  constructor(root: RootDir, o: ApplyOptions) {
    this.root = root;
    this.overlay = o.overlayWhiteouts ?? true;
    this.copy = o.copy;
    this.whiteouts = o.whiteouts ?? true;
    this.rename = o.rename;
    this.maxEntries = o.maxEntries ?? DEFAULT_MAX_ENTRIES;
    this.made = !this.overlay && !this.copy ? new Set() : null;
  }

  entry(h: TarHeader): void {
    if (++this.entries > this.maxEntries) throw invalid(`layer has more than ${this.maxEntries} entries: refusing it`);
    try {
      this.apply(h);
    } catch (e) {
      throw wrap(e, h.name, !!this.copy);
    }
  }

  data(chunk: Buffer): void {
    const f = this.file;
    if (!f) return;
    try {
      let off = 0;
      while (off < chunk.length) off += fs.writeSync(f.fd, chunk, off, chunk.length - off);
    } catch (e) {
      throw wrap(e, f.h.name, !!this.copy);
    }
  }

  end(): void {
    const f = this.file;
    if (!f) return;
    this.file = null;
    try {
      this.meta(f.fd, f.h);
      fs.futimesSync(f.fd, f.h.mtime, f.h.mtime);
    } catch (e) {
      throw wrap(e, f.h.name, !!this.copy);
    } finally {
      fs.closeSync(f.fd);
    }
  }

  closeOpenFile(): void {
    if (this.file) fs.closeSync(this.file.fd);
    this.file = null;
  }

  private mapName(name: string): string | null {
    return this.rename ? this.rename(name) : name;
  }

  private apply(h: TarHeader): void {
    if (h.uid > 0xfffffffe || h.gid > 0xfffffffe) throw invalid(`layer entry ${JSON.stringify(h.name)} has an invalid owner ${h.uid}:${h.gid}`);
    const mapped = this.mapName(h.name);
    if (mapped === null) return;
    const comps = cleanEntryPath(mapped);
    if (comps.length === 0) {
      if (h.type !== 'dir') throw invalid(`layer entry ${JSON.stringify(h.name)} names the root but is not a directory`);
      if (this.copy) return; // docker cp leaves the destination directory itself alone
      this.meta(this.root.fd, h);
      this.dirTimes.set('', h.mtime);
      return;
    }
    const base = comps[comps.length - 1]!;
    const parentComps = comps.slice(0, -1);
    if (!this.copy && this.whiteouts && base.startsWith(WH)) return this.whiteout(h, parentComps, base);
    const pfd = this.root.dir(parentComps, true, h.name)!;
    if (h.type === 'char' || h.type === 'block') return; // never create devices from an archive
    if (this.made) {
      const st = fstat(pfd);
      this.made.add(`${st.dev}:${st.ino}/${base}`);
    }
    switch (h.type) {
      case 'dir':
        return this.mkdir(pfd, base, comps.join('/'), h);
      case 'link':
        return this.hardlink(h, parentComps, base);
      case 'file':
        this.file = { fd: this.create(pfd, base, () => openChild(pfd, base, O_WRONLY | O_CREAT | O_EXCL, { mode: 0o600 })), h };
        return;
      case 'symlink':
        if (h.linkname === '') throw invalid(`symlink ${JSON.stringify(h.name)} has an empty target`);
        this.create(pfd, base, () => symlinkat(h.linkname, pfd, base));
        if (isRoot && !this.copy?.noLchown) lchownat(pfd, base, h.uid, h.gid);
        lutimesat(pfd, base, h.mtime);
        return;
      case 'fifo': {
        this.create(pfd, base, () => mknodat(pfd, base, S_IFIFO | 0o600));
        // Opened read-only and non-blocking, a FIFO never waits for a writer; its metadata is set on the fd.
        const fd = openChild(pfd, base, O_RDONLY | O_NONBLOCK);
        try {
          this.meta(fd, h);
          fs.futimesSync(fd, h.mtime, h.mtime);
        } finally {
          close(fd);
        }
        return;
      }
    }
  }

  /**
   * Runs make() (which creates `base` in pfd and fails with EEXIST if it
   * exists), clearing what is in the way first. In a layer anything in the
   * way goes (a directory with all it holds); in a copy a directory stays.
   */
  private create<T>(pfd: number, base: string, make: () => T, keep: number[] = []): T {
    try {
      return make();
    } catch (e) {
      if (code(e) !== 'EEXIST') throw e;
    }
    const old = lstatat(pfd, base);
    if (this.copy && isDir(old)) throw invalid(`cannot overwrite directory ${JSON.stringify(base)} with a non-directory`);
    removeAt(pfd, base);
    this.root.invalidate(pfd, ...keep);
    return make();
  }

  private mkdir(pfd: number, base: string, key: string, h: TarHeader): void {
    try {
      mkdirat(pfd, base, 0o700);
    } catch (e) {
      if (code(e) !== 'EEXIST') throw e;
      try {
        close(openChild(pfd, base, DIR)); // a directory already: merge into it
      } catch (e2) {
        if (code(e2) !== 'ENOTDIR' && code(e2) !== 'ELOOP') throw e2;
        if (this.copy?.noOverwriteDirNonDir) throw invalid(`cannot overwrite non-directory ${JSON.stringify(base)} with a directory`);
        unlinkHere(pfd, base);
        this.root.invalidate(pfd);
        mkdirat(pfd, base, 0o700);
      }
    }
    const fd = openChild(pfd, base, DIR);
    try {
      this.meta(fd, h);
    } catch (e) {
      close(fd);
      throw e;
    }
    this.root.remember(key, fd);
    // Directory times are set last: creating children changes them.
    this.dirTimes.delete(key);
    this.dirTimes.set(key, h.mtime);
  }

  private hardlink(h: TarHeader, parentComps: string[], base: string): void {
    const what = `hardlink ${JSON.stringify(h.name)} -> ${JSON.stringify(h.linkname)}`;
    const mapped = this.mapName(h.linkname);
    if (mapped === null) throw invalid(`${what}: target not found in the archive`);
    const tcomps = cleanEntryPath(mapped, 'hardlink target');
    if (tcomps.length === 0) throw invalid(`${what} points at the root directory`);
    const tbase = tcomps[tcomps.length - 1]!;
    const tpfd = this.root.dir(tcomps.slice(0, -1), false, h.name);
    if (tpfd === null) throw invalid(`${what}: target not found in the layer`);
    // Resolving the target may have evicted the entry's parent from the cache: look it up again (the
    // cache keeps the last CACHE directories, so tpfd stays valid through this second lookup).
    const dfd = this.root.dir(parentComps, true, h.name)!;
    const link = () => linkat(tpfd, tbase, dfd, base);
    try {
      link();
      return;
    } catch (e) {
      const c = code(e);
      if (c === 'ENOENT') throw invalid(`${what}: target not found in the layer`);
      if (c === 'EPERM') throw invalid(`${what}: target is a directory`);
      if (c === 'EXDEV') throw invalid(`${what}: target is on another mount`);
      if (c !== 'EEXIST') throw e;
    }
    const t = lstatat(tpfd, tbase);
    const old = lstatat(dfd, base);
    if (t.ino === old.ino && t.dev === old.dev) return; // a link to itself changes nothing
    this.create(dfd, base, link, [tpfd]);
  }

  /** Owner, mode and xattrs of an entry on its open descriptor. */
  private meta(fd: number, h: TarHeader): void {
    if (isRoot && !this.copy?.noLchown) fs.fchownSync(fd, h.uid, h.gid);
    // After chown: chown clears setuid/setgid bits.
    fs.fchmodSync(fd, h.mode);
    if (!h.xattrs) return;
    for (const [k, v] of h.xattrs) {
      // trusted.* would let a layer forge overlayfs metadata; security.* other than capabilities is host policy.
      if (k !== 'security.capability' && !k.startsWith('user.')) continue;
      try {
        fsetxattr(fd, k, v);
      } catch (e) {
        if (code(e) !== 'ENOTSUP' && code(e) !== 'EOPNOTSUPP') throw e;
      }
    }
  }

  private whiteout(h: TarHeader, parentComps: string[], base: string): void {
    const pfd = this.root.dir(parentComps, true, h.name)!;
    if (base === OPAQUE) return this.opaque(pfd);
    if (base.startsWith(WH + WH)) return; // aufs bookkeeping (.wh..wh.plnk etc.), as dockerd skips it
    const name = base.slice(WH.length);
    if (name === '' || name === '.' || name === '..') throw invalid(`layer whiteout ${JSON.stringify(h.name)} names ${JSON.stringify(name)}`);
    if (removeAt(pfd, name)) this.root.invalidate(pfd);
    // A later entry of the same name replaces the whiteout device (create() clears it).
    if (this.overlay) mknodat(pfd, name, S_IFCHR, 0);
  }

  private opaque(pfd: number): void {
    if (this.overlay) return fsetxattr(pfd, 'trusted.overlay.opaque', 'y');
    // Applied to a flat tree: drop what lower layers put in the directory, keep this layer's own.
    const st = fstat(pfd);
    let removed = false;
    for (const name of fs.readdirSync(fdPath(pfd))) {
      if (this.made!.has(`${st.dev}:${st.ino}/${name}`)) continue;
      removed = removeAt(pfd, name) || removed;
    }
    if (removed) this.root.invalidate(pfd);
  }

  finish(): void {
    for (const [key, mtime] of this.dirTimes) {
      let fd: number;
      try {
        fd = openIn(this.root.fd, key, DIR | O_NOFOLLOW);
      } catch {
        continue; // removed or replaced later in the archive
      }
      try {
        fs.futimesSync(fd, mtime, mtime);
      } finally {
        close(fd);
      }
    }
  }
}
