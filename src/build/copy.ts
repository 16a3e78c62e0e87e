/**
 * COPY and ADD into a mounted rootfs (the step's overlay snapshot), with
 * docker's rules: several sources need a destination ending in `/`; a
 * directory source copies its contents; a file onto a `/`-ending or
 * existing directory lands inside it; --chown/--chmod apply to what is
 * copied (and to directories the copy creates); ADD extracts local tar
 * archives with the layer guards. Destination paths resolve through the
 * rootfs's own symlinks but never out of it (archive/resolve.ts).
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import { applyLayer } from '../archive/apply.ts';
import { ScopedRoot } from '../archive/resolve.ts';
import { invalid } from '../common/errors.ts';
import { external } from './context.ts';
import type { PlanEntry } from './sources.ts';
import type { ModeFn } from './chmod.ts';

export interface Owner {
  uid: number;
  gid: number;
}

/** Where the copy writes: the destination resolved against the rootfs, created as needed. */
export interface CopyTarget {
  rootfs: string;
  /** Absolute path in the image. */
  dest: string;
  /** The destination is a directory (ends with `/`, several sources, or a directory source). */
  destIsDir: boolean;
  owner?: Owner;
  chmod?: ModeFn;
}

const WRITE = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW;

/** Whether `p` (absolute, in the image) is a directory in the rootfs (symlinks followed, scoped). */
export function isDirIn(rootfs: string, p: string): boolean {
  const sr = new ScopedRoot(rootfs);
  try {
    const comps = p.split('/').filter(Boolean);
    const parent = sr.resolveDir(comps, false, p);
    return parent !== null;
  } catch {
    return false;
  }
}

export class Copier {
  private readonly sr: ScopedRoot;
  private readonly t: CopyTarget;

  constructor(t: CopyTarget) {
    this.t = t;
    this.sr = new ScopedRoot(fs.realpathSync(t.rootfs));
  }

  /** Resolves a path under the destination to a real parent dir (created) + name, inside the rootfs. */
  private place(rel: string): { parentAbs: string; name: string; relInRoot: string } {
    const full = path.posix.join(this.t.dest, rel);
    const comps = full.split('/').filter(Boolean);
    if (!comps.length) return { parentAbs: this.sr.root, name: '', relInRoot: '' };
    const parent = this.mkdirs(comps.slice(0, -1), full);
    const name = comps[comps.length - 1]!;
    return { parentAbs: this.sr.abs(parent), name, relInRoot: parent ? `${parent}/${name}` : name };
  }

  /** mkdir -p inside the rootfs; new directories get the copy's owner (as BuildKit does). */
  private mkdirs(comps: string[], what: string): string {
    // A path already verified as a real directory resolves to itself: no walk, nothing to create.
    const lexical = comps.join('/');
    if (this.sr.isKnownDir(lexical)) return lexical;
    const before = this.t.owner ? new Set(this.sr.created) : undefined;
    const rel = this.sr.resolveDir(comps, true, what)!;
    if (this.t.owner) for (const c of this.sr.created) if (!before!.has(c)) fs.lchownSync(this.sr.abs(c), this.t.owner.uid, this.t.owner.gid);
    return rel;
  }

  /**
   * Copies the planned entries (each dest relative to the target) in plan
   * order, except that regular files are copied on libuv's thread pool,
   * several at a time, after their directory exists: a COPY of thousands of
   * files spent most of its time in synchronous open/read/write calls through
   * the overlay mount, with the event loop blocked. A plan naming one
   * destination twice (several sources with common names: the last wins) is
   * copied one entry at a time, in order.
   */
  async copyAll(plan: PlanEntry[], o: { signal?: AbortSignal; fileIntoDir?: string } = {}): Promise<void> {
    const fix = (e: PlanEntry) => (o.fileIntoDir !== undefined && e.dest === '' && e.type === 'file' ? { ...e, dest: o.fileIntoDir } : e);
    const dests = new Set<string>();
    if (plan.some((e) => dests.size === dests.add(fix(e).dest).size)) {
      for (const e of plan) {
        o.signal?.throwIfAborted();
        this.copyOne(fix(e));
      }
      return;
    }
    const running = new Set<Promise<void>>();
    let failed: unknown;
    for (const e0 of plan) {
      if (failed !== undefined) break;
      o.signal?.throwIfAborted();
      const e = fix(e0);
      const job = this.prepare(e);
      if (!job) continue;
      const p = copyFileAsync(job).then(
        () => void running.delete(p),
        (err: unknown) => {
          running.delete(p);
          failed ??= err;
        },
      );
      running.add(p);
      if (running.size >= PARALLEL_COPIES) await Promise.race(running);
    }
    await Promise.all(running);
    if (failed !== undefined) throw failed;
  }

  copyOne(e: PlanEntry): void {
    const job = this.prepare(e);
    if (job) copyFileSync(job);
  }

  /** Makes a directory or link entry; for a file, clears its place and says what to copy there. */
  private prepare(e: PlanEntry): FileJob | undefined {
    const { parentAbs, name, relInRoot } = this.place(e.dest);
    const abs = name ? path.join(parentAbs, name) : parentAbs;
    const owner = this.t.owner ?? { uid: 0, gid: 0 };
    const mode = this.t.chmod ? this.t.chmod(e.mode, e.type === 'dir') : e.mode;
    // In a directory this copy made, nothing but the copy's own entries can exist.
    let old = this.sr.lstat(relInRoot, relInRoot.slice(0, Math.max(0, relInRoot.lastIndexOf('/'))));
    if (e.type === 'dir') {
      if (old && !old.isDirectory()) {
        // A symlink to a directory is followed (scoped) rather than replaced, as docker does.
        if (old.isSymbolicLink() && this.sr.resolveDir(relInRoot.split('/'), false, e.dest) !== null) return undefined;
        this.sr.remove(relInRoot, old);
        old = undefined;
      }
      if (!old) fs.mkdirSync(abs, 0o755);
      fs.lchownSync(abs, owner.uid, owner.gid);
      fs.chmodSync(abs, mode);
      this.sr.addDir(relInRoot, !old);
      return undefined;
    }
    if (old?.isDirectory()) throw invalid(`cannot copy to ${path.posix.join(this.t.dest, e.dest)}: it is a directory`);
    if (old) this.sr.remove(relInRoot, old);
    this.sr.created.add(relInRoot);
    if (e.type === 'symlink') {
      fs.symlinkSync(e.linkTarget!, abs);
      fs.lchownSync(abs, owner.uid, owner.gid);
      fs.lutimesSync(abs, e.mtime, e.mtime);
      return undefined;
    }
    return { src: e.abs, dst: abs, owner, mode, mtime: e.mtime };
  }

  /** Writes a file from bytes (heredocs, ADD <url>). */
  writeFile(rel: string, data: Buffer, mode: number, mtime = new Date()): void {
    const { parentAbs, name, relInRoot } = this.place(rel);
    if (!name) throw invalid(`cannot write a file at ${this.t.dest}`);
    const abs = path.join(parentAbs, name);
    let old: fs.Stats | undefined;
    try {
      old = fs.lstatSync(abs);
    } catch {
      old = undefined;
    }
    if (old?.isDirectory()) throw invalid(`cannot copy to ${path.posix.join(this.t.dest, rel)}: it is a directory`);
    if (old) this.sr.remove(relInRoot, old);
    this.sr.created.add(relInRoot);
    const fd = fs.openSync(abs, WRITE, 0o600);
    try {
      fs.writeSync(fd, data);
      const owner = this.t.owner ?? { uid: 0, gid: 0 };
      fs.fchownSync(fd, owner.uid, owner.gid);
      fs.fchmodSync(fd, this.t.chmod ? this.t.chmod(mode, false) : mode);
      fs.futimesSync(fd, mtime, mtime);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** ADD of a local archive: extracted into the destination directory with the layer guards (no whiteouts). */
  async extract(archiveAbs: string, signal?: AbortSignal): Promise<void> {
    const rel = this.mkdirs(this.t.dest.split('/').filter(Boolean), this.t.dest);
    const kind = archiveKind(archiveAbs);
    const input = kind === 'bzip2' || kind === 'xz' ? external(kind, fs.createReadStream(archiveAbs), signal) : fs.createReadStream(archiveAbs);
    await applyLayer(this.sr.abs(rel), input, { whiteouts: false, overlayWhiteouts: false, signal });
  }
}

interface FileJob {
  src: string;
  dst: string;
  owner: Owner;
  mode: number;
  mtime: Date;
}

/** Files copied at once (libuv's pool has 4 threads; a few more keep them busy between calls). */
const PARALLEL_COPIES = 8;

// The destination is new (its place was cleared, O_EXCL) and the source was walked as a regular file
// of the context or of a mounted image, both keel's own. copyFile copies in the kernel (copy_file_range
// or sendfile). chown before chmod: chown clears set-id bits.
function copyFileSync(j: FileJob): void {
  fs.copyFileSync(j.src, j.dst, fs.constants.COPYFILE_EXCL);
  fs.lchownSync(j.dst, j.owner.uid, j.owner.gid);
  fs.chmodSync(j.dst, j.mode);
  fs.utimesSync(j.dst, j.mtime, j.mtime);
}

async function copyFileAsync(j: FileJob): Promise<void> {
  await fsp.copyFile(j.src, j.dst, fs.constants.COPYFILE_EXCL);
  await fsp.lchown(j.dst, j.owner.uid, j.owner.gid);
  await fsp.chmod(j.dst, j.mode);
  await fsp.utimes(j.dst, j.mtime, j.mtime);
}

/** What kind of archive ADD extracts a file as, if any (docker: tar, plain or gzip/bzip2/xz; zstd too). */
export function archiveKind(abs: string): 'tar' | 'gzip' | 'zstd' | 'bzip2' | 'xz' | undefined {
  const fd = fs.openSync(abs, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const b = Buffer.alloc(64 * 1024);
    const n = fs.readSync(fd, b, 0, b.length, 0);
    // A gzip file is extracted only when it holds a tar (docker copies a plain .gz as a file).
    if (n >= 2 && b[0] === 0x1f && b[1] === 0x8b) return isTar(gunzipHead(b.subarray(0, Math.min(n, 4096)))) ? 'gzip' : undefined;
    if (n >= 4 && b[0] === 0x28 && b[1] === 0xb5 && b[2] === 0x2f && b[3] === 0xfd) return 'zstd';
    if (n >= 3 && b[0] === 0x42 && b[1] === 0x5a && b[2] === 0x68) return 'bzip2';
    if (n >= 4 && b[0] === 0xfd && b[1] === 0x37 && b[2] === 0x7a && b[3] === 0x58) return 'xz';
    return isTar(b.subarray(0, n)) ? 'tar' : undefined;
  } finally {
    fs.closeSync(fd);
  }
}

function isTar(b: Buffer): boolean {
  return b.length >= 512 && b.subarray(257, 262).toString('latin1') === 'ustar';
}

function gunzipHead(b: Buffer): Buffer {
  try {
    return zlib.gunzipSync(b, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  } catch {
    return Buffer.alloc(0);
  }
}

export function isArchive(abs: string): boolean {
  return archiveKind(abs) !== undefined;
}
