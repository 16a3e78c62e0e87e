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
    const before = new Set(this.sr.created);
    const rel = this.sr.resolveDir(comps, true, what)!;
    if (this.t.owner) for (const c of this.sr.created) if (!before.has(c)) fs.lchownSync(this.sr.abs(c), this.t.owner.uid, this.t.owner.gid);
    return rel;
  }

  /** Copies the planned entries: each entry's dest is relative to the target. */
  copyAll(plan: PlanEntry[]): void {
    for (const e of plan) this.copyOne(e);
  }

  copyOne(e: PlanEntry): void {
    const { parentAbs, name, relInRoot } = this.place(e.dest);
    const abs = name ? path.join(parentAbs, name) : parentAbs;
    const owner = this.t.owner ?? { uid: 0, gid: 0 };
    const mode = this.t.chmod ? this.t.chmod(e.mode, e.type === 'dir') : e.mode;
    let old: fs.Stats | undefined;
    try {
      old = fs.lstatSync(abs);
    } catch {
      old = undefined;
    }
    if (e.type === 'dir') {
      if (old && !old.isDirectory()) {
        // A symlink to a directory is followed (scoped) rather than replaced, as docker does.
        if (old.isSymbolicLink() && this.sr.resolveDir(relInRoot.split('/'), false, e.dest) !== null) return;
        this.sr.remove(relInRoot, old);
        old = undefined;
      }
      if (!old) fs.mkdirSync(abs, 0o755);
      fs.lchownSync(abs, owner.uid, owner.gid);
      fs.chmodSync(abs, mode);
      this.sr.addDir(relInRoot, !old);
      return;
    }
    if (old?.isDirectory()) throw invalid(`cannot copy to ${path.posix.join(this.t.dest, e.dest)}: it is a directory`);
    if (old) this.sr.remove(relInRoot, old);
    if (e.type === 'symlink') {
      fs.symlinkSync(e.linkTarget!, abs);
      fs.lchownSync(abs, owner.uid, owner.gid);
      fs.lutimesSync(abs, e.mtime, e.mtime);
      return;
    }
    const out = fs.openSync(abs, WRITE, 0o600);
    try {
      const src = fs.openSync(e.abs, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      try {
        copyFd(src, out);
      } finally {
        fs.closeSync(src);
      }
      fs.fchownSync(out, owner.uid, owner.gid);
      fs.fchmodSync(out, mode);
      fs.futimesSync(out, e.mtime, e.mtime);
    } finally {
      fs.closeSync(out);
    }
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

function copyFd(src: number, dst: number): void {
  const buf = Buffer.allocUnsafe(1 << 20);
  let n: number;
  while ((n = fs.readSync(src, buf, 0, buf.length, null)) > 0) {
    let off = 0;
    while (off < n) off += fs.writeSync(dst, buf, off, n - off);
  }
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
