/**
 * Applying a layer tar to a directory (image unpack, `docker load`, import).
 *
 * The archive is untrusted. Guarantees:
 * - nothing is written, chmod'ed, chown'ed, touched or unlinked outside dest:
 *   all paths go through ScopedRoot (resolve.ts), the final component is never
 *   followed (O_NOFOLLOW, lchown, lutimes, lsetxattr, unlink);
 * - names or hardlink targets whose `..` climbs above the root, whiteouts that
 *   escape or name `.`/`..`, corrupt/truncated data, oversized PAX headers,
 *   and archives past the byte/entry limits refuse the whole layer with an
 *   INVALID_ARGUMENT naming the entry (the caller deletes the temp dir);
 * - block/char devices in the layer are skipped; only keel makes the 0:0
 *   whiteout devices; xattrs are applied only for security.capability and user.*.
 *
 * Writes use sync fs calls driven by a synchronous tar parser (no promise per
 * entry); the event loop still turns between input chunks. Pulls run this on
 * a worker thread per layer (offthread.ts), so those sync calls never block
 * the daemon's event loop and layers apply in parallel. Measured on this
 * 2-core VM, a debootstrap minbase bookworm rootfs (204 MB, 6768 entries) into
 * tmpfs: 0.98 s for the .tar (GNU tar -x: 0.24 s, but no digest; with
 * sha256sum: 1.7 s) and 1.30 s for the .tar.gz (tar -xzf: 2.2 s). Parsing
 * alone is ~0.3 s with keel's parser, tar-stream or node-tar alike; keel's
 * own parser is used because both npm parsers mangle binary PAX xattr values
 * (file capabilities) and cannot cap PAX headers at 1 MiB with an error.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { setAttributeSync } from '@napi-rs/xattr';
import { EngineError, invalid } from '../common/errors.ts';
import type { Digest } from '../oci/digest.ts';
import { decompressChunks } from './compress.ts';
import { TarParser, type TarSink } from './parser.ts';
import { cleanEntryPath, join, ScopedRoot } from './resolve.ts';
import { createSpecialNodes, type SpecialNode } from './special.ts';
import type { TarHeader } from './tarformat.ts';

export interface ApplyOptions {
  compression?: 'none' | 'gzip' | 'zstd' | 'auto'; // 'auto' sniffs magic bytes (default)
  maxUncompressedBytes?: number; // default 64 GiB: total tar stream bytes; over it -> refuse (decompression bomb)
  maxEntries?: number; // default 2_000_000
  signal?: AbortSignal;
  /** When true (default), OCI whiteouts are converted to overlayfs form (char dev 0:0 / opaque xattr). */
  overlayWhiteouts?: boolean;
}

export interface ApplyResult {
  diffId: Digest;
  size: number /* uncompressed tar bytes */;
  entries: number;
}

export const DEFAULT_MAX_BYTES = 64 * 1024 ** 3;
export const DEFAULT_MAX_ENTRIES = 2_000_000;
export const MAX_PAX_BYTES = 1024 * 1024;
/** Extended headers of one layer together: a PAX path for each of 500,000 long-named files fits. */
export const MAX_PAX_BYTES_PER_LAYER = 256 * 1024 * 1024;

const WH = '.wh.';
const OPAQUE = '.wh..wh..opq';
const O_NOFOLLOW = fs.constants.O_NOFOLLOW;
const CREATE_FLAGS = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | O_NOFOLLOW;

/** Applies a (possibly compressed) layer tar stream to `dest` (an existing, empty-or-partial dir inside keel's store). */
export async function applyLayer(dest: string, source: Readable | AsyncIterable<Uint8Array>, opts: ApplyOptions = {}): Promise<ApplyResult> {
  const maxBytes = opts.maxUncompressedBytes ?? DEFAULT_MAX_BYTES;
  const root = fs.realpathSync(dest);
  if (!fs.statSync(root).isDirectory()) throw invalid(`layer destination ${dest} is not a directory`);
  const applier = new Applier(root, opts.overlayWhiteouts ?? true, opts.maxEntries ?? DEFAULT_MAX_ENTRIES);
  const parser = new TarParser(applier, { maxMetaBytes: MAX_PAX_BYTES, maxMetaBytesPerEntry: MAX_PAX_BYTES, maxMetaBytesTotal: MAX_PAX_BYTES_PER_LAYER, maxBytes });
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
    await applier.finish(opts.signal);
  } finally {
    applier.closeOpenFile();
  }
  return { diffId: `sha256:${hash.digest('hex')}`, size, entries: parser.entries };
}

const isRoot = process.getuid?.() === 0;

/** Errors from the filesystem while applying an entry name it; bad-layer errnos are INVALID_ARGUMENT. */
function wrap(e: unknown, name: string): EngineError {
  if (e instanceof EngineError) return e;
  const code = (e as NodeJS.ErrnoException).code ?? '';
  const msg = `cannot apply layer entry ${JSON.stringify(name)}: ${(e as Error).message}`;
  const bad = ['ENOENT', 'EEXIST', 'ENOTDIR', 'EISDIR', 'ELOOP', 'ENAMETOOLONG', 'EINVAL', 'ENOTEMPTY', 'EXDEV', 'EMLINK'];
  return new EngineError(bad.includes(code) ? 'INVALID_ARGUMENT' : 'INTERNAL', msg, { cause: e });
}

class Applier implements TarSink {
  private readonly fs: ScopedRoot;
  private readonly overlay: boolean;
  private readonly maxEntries: number;
  private entries = 0;
  private file: { fd: number; h: TarHeader; rel: string } | null = null;
  private readonly dirTimes = new Map<string, number>();
  private readonly pending = new Map<string, SpecialNode>();

  constructor(root: string, overlay: boolean, maxEntries: number) {
    this.fs = new ScopedRoot(root);
    this.overlay = overlay;
    this.maxEntries = maxEntries;
  }

  entry(h: TarHeader): void {
    if (++this.entries > this.maxEntries) throw invalid(`layer has more than ${this.maxEntries} entries: refusing it`);
    try {
      this.apply(h);
    } catch (e) {
      throw wrap(e, h.name);
    }
  }

  data(chunk: Buffer): void {
    const f = this.file;
    if (!f) return;
    try {
      let off = 0;
      while (off < chunk.length) off += fs.writeSync(f.fd, chunk, off, chunk.length - off);
    } catch (e) {
      throw wrap(e, f.h.name);
    }
  }

  end(): void {
    const f = this.file;
    if (!f) return;
    this.file = null;
    try {
      if (isRoot) fs.fchownSync(f.fd, f.h.uid, f.h.gid);
      // After chown: chown clears setuid/setgid bits.
      fs.fchmodSync(f.fd, f.h.mode);
      this.xattrs(f.rel, f.h);
      fs.futimesSync(f.fd, f.h.mtime, f.h.mtime);
    } catch (e) {
      throw wrap(e, f.h.name);
    } finally {
      fs.closeSync(f.fd);
    }
  }

  closeOpenFile(): void {
    if (this.file) fs.closeSync(this.file.fd);
    this.file = null;
  }

  private apply(h: TarHeader): void {
    if (h.uid > 0xfffffffe || h.gid > 0xfffffffe) throw invalid(`layer entry ${JSON.stringify(h.name)} has an invalid owner ${h.uid}:${h.gid}`);
    const comps = cleanEntryPath(h.name);
    if (comps.length === 0) {
      if (h.type !== 'dir') throw invalid(`layer entry ${JSON.stringify(h.name)} names the root but is not a directory`);
      return this.dirMeta('', h);
    }
    const base = comps[comps.length - 1]!;
    if (base.startsWith(WH)) return this.whiteout(h, comps.slice(0, -1), base);
    const parent = this.fs.resolveDir(comps.slice(0, -1), true, h.name)!;
    const rel = join(parent, base);
    this.pending.delete(rel); // a later entry wins over a pending whiteout/FIFO of the same name
    const old = this.fs.lstat(rel, parent);
    if (h.type === 'dir') {
      if (old && !old.isDirectory()) this.fs.remove(rel, old);
      if (!old || !old.isDirectory()) fs.mkdirSync(this.fs.abs(rel), 0o700);
      this.fs.addDir(rel, !old || !old.isDirectory());
      return this.dirMeta(rel, h);
    }
    if (h.type === 'char' || h.type === 'block') return; // never create devices from a layer
    if (h.type === 'link') return this.hardlink(h, rel, old);
    if (old) this.fs.remove(rel, old);
    const abs = this.fs.abs(rel);
    this.fs.created.add(rel);
    if (h.type === 'file') {
      this.file = { fd: fs.openSync(abs, CREATE_FLAGS, 0o600), h, rel };
    } else if (h.type === 'symlink') {
      if (h.linkname === '') throw invalid(`symlink ${JSON.stringify(h.name)} has an empty target`);
      fs.symlinkSync(h.linkname, abs);
      if (isRoot) fs.lchownSync(abs, h.uid, h.gid);
      fs.lutimesSync(abs, h.mtime, h.mtime);
    } else if (h.type === 'fifo') {
      this.pending.set(rel, { rel, kind: 'fifo', mode: h.mode, uid: h.uid, gid: h.gid, mtime: h.mtime });
    }
  }

  private hardlink(h: TarHeader, rel: string, old: fs.Stats | undefined): void {
    const tcomps = cleanEntryPath(h.linkname, 'hardlink target');
    const what = `hardlink ${JSON.stringify(h.name)} -> ${JSON.stringify(h.linkname)}`;
    if (tcomps.length === 0) throw invalid(`${what} points at the root directory`);
    const tparent = this.fs.resolveDir(tcomps.slice(0, -1), false, h.name);
    const trel = tparent === null ? null : join(tparent, tcomps[tcomps.length - 1]!);
    if (trel === rel) return; // a link to itself changes nothing
    if (trel !== null && this.pending.has(trel)) {
      if (old) this.fs.remove(rel, old);
      this.pending.set(rel, { ...this.pending.get(trel)!, rel, kind: 'link', linkTo: trel });
      return;
    }
    const tst = trel === null ? undefined : this.fs.lstat(trel);
    if (!tst) throw invalid(`${what}: target not found in the layer`);
    if (tst.isDirectory()) throw invalid(`${what}: target is a directory`);
    if (old) this.fs.remove(rel, old);
    // link(2) does not follow a symlink in its source, and both parents are verified.
    fs.linkSync(this.fs.abs(trel!), this.fs.abs(rel));
    this.fs.created.add(rel);
  }

  private dirMeta(rel: string, h: TarHeader): void {
    const abs = this.fs.abs(rel);
    if (isRoot) fs.lchownSync(abs, h.uid, h.gid);
    fs.chmodSync(abs, h.mode); // abs is a verified real directory, so chmod follows nothing
    this.xattrs(rel, h);
    // Directory times are set last: creating children changes them.
    this.dirTimes.delete(rel);
    this.dirTimes.set(rel, h.mtime);
  }

  private whiteout(h: TarHeader, parentComps: string[], base: string): void {
    const parent = this.fs.resolveDir(parentComps, true, h.name)!;
    if (base === OPAQUE) return this.opaque(parent);
    if (base.startsWith(WH + WH)) return; // aufs bookkeeping (.wh..wh.plnk etc.), as dockerd skips it
    const name = base.slice(WH.length);
    if (name === '' || name === '.' || name === '..') throw invalid(`layer whiteout ${JSON.stringify(h.name)} names ${JSON.stringify(name)}`);
    const rel = join(parent, name);
    const old = this.fs.lstat(rel, parent);
    if (old) this.fs.remove(rel, old);
    this.pending.delete(rel);
    if (this.overlay) this.pending.set(rel, { rel, kind: 'whiteout', mode: 0, uid: 0, gid: 0, mtime: h.mtime });
  }

  private opaque(parent: string): void {
    if (this.overlay) {
      setAttributeSync(this.fs.abs(parent), 'trusted.overlay.opaque', 'y');
      return;
    }
    // Applied to a flat tree: drop what lower layers put in the directory, keep this layer's own.
    for (const name of fs.readdirSync(this.fs.abs(parent))) {
      const rel = join(parent, name);
      if (this.fs.created.has(rel)) continue;
      const st = this.fs.lstat(rel);
      if (st) this.fs.remove(rel, st);
      this.pending.delete(rel);
    }
  }

  private xattrs(rel: string, h: TarHeader): void {
    if (!h.xattrs) return;
    for (const [k, v] of h.xattrs) {
      // trusted.* would let a layer forge overlayfs metadata; security.* other than capabilities is host policy.
      if (k !== 'security.capability' && !k.startsWith('user.')) continue;
      try {
        setAttributeSync(this.fs.abs(rel), k, v);
      } catch (e) {
        if (!/not supported|EOPNOTSUPP/i.test(String((e as Error).message))) throw e;
      }
    }
  }

  async finish(signal?: AbortSignal): Promise<void> {
    const nodes: SpecialNode[] = [];
    const made = new Set<string>();
    for (const n of this.pending.values()) {
      const slash = n.rel.lastIndexOf('/');
      const parent = slash < 0 ? '' : n.rel.slice(0, slash);
      // Skip nodes whose directory was removed or replaced later in the layer, or whose name was reused.
      if (!this.fs.isKnownDir(parent) || this.fs.lstat(n.rel) !== undefined) continue;
      if (n.kind === 'link' && !made.has(n.linkTo!)) continue;
      nodes.push(n);
      made.add(n.rel);
    }
    await createSpecialNodes(this.fs.root, nodes, { chown: isRoot, signal });
    for (const [rel, mtime] of this.dirTimes) {
      if (this.fs.isKnownDir(rel)) fs.utimesSync(this.fs.abs(rel), mtime, mtime);
    }
  }
}
