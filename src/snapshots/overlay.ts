import fsp from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { EngineError, errnoCode } from '../common/errors.ts';
import { exec } from '../common/exec.ts';
import { fsyncDir, mkdirp, readJsonIfExists, writeJsonAtomic } from '../common/fs.ts';
import { type Digest, digestHex, parseDigest, sha256 } from '../oci/digest.ts';
import { crashPoint } from '../common/crashpoint.ts';
import { FrozenStore } from './frozen.ts';
import { MOUNT_DATA_MAX } from './mount.ts';
import type { LayerMeta, LayerSnapshotter, Mount } from './types.ts';

export type { LayerMeta, Mount };
// (mount.ts applies the mounts; unmount is re-exported for the callers that imported it from here.)
export { unmount } from './mount.ts';

/**
 * The overlay snapshotter. Committed layers live read-only in
 * `layers/<chain-id hex>/diff` (one directory per chain ID, shared by every
 * image that has it); active snapshots (a container's or a build step's
 * writable layer) live in `active/<key>/{upper,work}`. Layer directories
 * appear by an atomic rename only when complete, so a crash never leaves a
 * half-unpacked layer visible.
 */
export class Snapshotter implements LayerSnapshotter {
  readonly root: string;
  readonly layersDir: string;
  readonly activeDir: string;
  /** Short links to layer dirs (`l/<16 hex of the chain ID>`), for mounts too deep to name layers/ in full. */
  readonly linksDir: string;
  private readonly tmpDir: string;
  /** Containers' upper dirs frozen into read-only layers for clones (frozen.ts, clones.ts). */
  readonly frozen: FrozenStore;

  constructor(root: string) {
    this.root = root;
    this.layersDir = path.join(root, 'layers');
    this.activeDir = path.join(root, 'active');
    this.linksDir = path.join(root, 'l');
    this.tmpDir = path.join(root, 'tmp');
    this.frozen = new FrozenStore(path.join(root, 'frozen'));
  }

  async init(): Promise<void> {
    await mkdirp(this.layersDir);
    await mkdirp(this.activeDir);
    await mkdirp(this.linksDir);
    await mkdirp(this.tmpDir);
    await this.frozen.init();
    await this.frozen.rollForward((r) => adoptFrozen(this, r.owner, r.id));
    // Anything in tmp/ is an unpack a crash interrupted.
    for (const n of await fsp.readdir(this.tmpDir)) await fsp.rm(path.join(this.tmpDir, n), { recursive: true, force: true });
  }

  layerDir(chainId: Digest): string {
    return path.join(this.layersDir, digestHex(parseDigest(chainId)), 'diff');
  }

  async hasLayer(chainId: Digest): Promise<boolean> {
    return (await this.layerMeta(chainId)) !== undefined;
  }

  async layerMeta(chainId: Digest): Promise<LayerMeta | undefined> {
    return readJsonIfExists<LayerMeta>(path.join(this.layersDir, digestHex(parseDigest(chainId)), 'layer.json'));
  }

  async listLayers(): Promise<Digest[]> {
    const names = await fsp.readdir(this.layersDir);
    return names.filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => `sha256:${n}` as Digest);
  }

  /**
   * Creates a committed layer: `fill` writes the tree into a fresh directory
   * and returns the layer's diff ID and tar size; the directory is renamed
   * into place only if `fill` succeeds and the diff ID is the expected one.
   * When the layer already exists (another pull won the race) it is kept.
   */
  async createLayer(
    expected: { chainId: Digest; diffId?: Digest; parent: Digest | null },
    fill: (dir: string) => Promise<{ diffId: Digest; size: number }>,
  ): Promise<LayerMeta> {
    const existing = await this.layerMeta(expected.chainId);
    if (existing) return existing;
    const tmp = path.join(this.tmpDir, randomBytes(8).toString('hex'));
    const diff = path.join(tmp, 'diff');
    await fsp.mkdir(diff, { recursive: true, mode: 0o755 });
    try {
      const { diffId, size } = await fill(diff);
      if (expected.diffId && diffId !== expected.diffId) {
        throw new EngineError('INVALID_ARGUMENT', `layer content does not match its diff_id: expected ${expected.diffId}, got ${diffId}`);
      }
      const meta: LayerMeta = { chainId: expected.chainId, diffId, parent: expected.parent, size, created: new Date().toISOString() };
      // The files reach the disk before the layer.json that says they are complete: after a power
      // loss a layer is whole or not there (init() empties tmp/), never a named layer with holes.
      await syncFilesystem(diff);
      await writeJsonAtomic(path.join(tmp, 'layer.json'), meta);
      try {
        await fsp.rename(tmp, path.join(this.layersDir, digestHex(expected.chainId)));
        await fsyncDir(this.layersDir);
      } catch (e) {
        if (errnoCode(e) !== 'ENOTEMPTY' && errnoCode(e) !== 'EEXIST') throw e;
        await fsp.rm(tmp, { recursive: true, force: true });
      }
      return meta;
    } catch (e) {
      await fsp.rm(tmp, { recursive: true, force: true });
      throw e;
    }
  }

  /**
   * A fresh directory under tmp/ to unpack a layer into before its chain ID
   * is known (`docker load` unpacks while it reads the archive); adopt it with
   * createLayer's fill, or drop it with discardScratch. A crash leaves it in
   * tmp/, which init() empties.
   */
  async scratchDir(): Promise<string> {
    const dir = path.join(this.tmpDir, `scratch-${randomBytes(8).toString('hex')}`, 'diff');
    await fsp.mkdir(dir, { recursive: true, mode: 0o755 });
    return dir;
  }

  async discardScratch(dir: string): Promise<void> {
    await fsp.rm(path.dirname(dir), { recursive: true, force: true });
  }

  async removeLayer(chainId: Digest): Promise<void> {
    await this.discard(path.join(this.layersDir, digestHex(parseDigest(chainId))));
    await fsp.rm(this.linkFor(chainId), { force: true });
  }

  /** Renames a directory into tmp/ before deleting it, so a crash mid-delete leaves no half tree in place. */
  private async discard(dir: string): Promise<void> {
    const trash = path.join(this.tmpDir, `rm-${randomBytes(8).toString('hex')}`);
    try {
      await fsp.rename(dir, trash);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return;
      throw e;
    }
    await fsp.rm(trash, { recursive: true, force: true });
  }

  /**
   * Prepares a writable snapshot over `chain` (chain IDs, bottom layer
   * first) and returns the overlay mount for it (mounts()).
   */
  async prepare(key: string, chain: Digest[], frozen: string[] = []): Promise<Mount[]> {
    const dir = this.activeDirFor(key);
    await fsp.mkdir(path.join(dir, 'upper'), { recursive: true, mode: 0o755 });
    await fsp.mkdir(path.join(dir, 'work'), { recursive: true, mode: 0o700 });
    await writeJsonAtomic(path.join(dir, 'snapshot.json'), frozen.length ? { key, chain, frozen } : { key, chain });
    return this.mounts(key);
  }

  async mounts(key: string): Promise<Mount[]> {
    const dir = this.activeDirFor(key);
    const rec = await readJsonIfExists<SnapshotRecord>(path.join(dir, 'snapshot.json'));
    if (!rec) throw new EngineError('NOT_FOUND', `snapshot ${key} does not exist`);
    const top = [...rec.chain].reverse();
    // Frozen layers (clones) sit above the image's, newest first, always named by their absolute dirs.
    const frozen = [...(rec.frozen ?? [])].reverse().map((f) => this.frozen.dir(f));
    const options = (lowers: string[]) => [
      `lowerdir=${[...frozen, ...lowers].join(':')}`,
      `upperdir=${path.join(dir, 'upper')}`,
      `workdir=${path.join(dir, 'work')}`,
    ];
    // overlayfs needs at least one lowerdir; an image with no layers gets an empty one.
    if (!top.length && !frozen.length) {
      await fsp.mkdir(path.join(dir, 'empty'), { recursive: true });
      return [{ destination: '/', type: 'overlay', source: 'overlay', options: options([path.join(dir, 'empty')]) }];
    }
    // Every path absolute, so the mount means the same from any working
    // directory. The kernel takes mount options in one page (MOUNT_DATA_MAX):
    // absolute layers/<64 hex>/diff paths fit ~40 layers, so a deeper image
    // names its layers through short links under l/ (~95 layers under
    // /var/lib/keel; the relative `<hex>/diff` form this replaces, mounted
    // with layers/ as working directory, fit ~55), as docker's overlay2
    // does; the kernel resolves the links when it mounts.
    let opts = options(top.map((c) => this.layerDir(c)));
    if (opts.join(',').length > MOUNT_DATA_MAX) opts = options(await Promise.all(top.map((c) => this.shortLink(c))));
    return [{ destination: '/', type: 'overlay', source: 'overlay', options: opts }];
  }

  private linkFor(chainId: Digest): string {
    return path.join(this.linksDir, digestHex(parseDigest(chainId)).slice(0, 16));
  }

  /** The short link to a layer's dir, made when missing (an absolute target: the link is self-contained too). */
  private async shortLink(chainId: Digest): Promise<string> {
    const link = this.linkFor(chainId);
    const target = this.layerDir(chainId);
    try {
      await fsp.symlink(target, link);
    } catch (e) {
      if (errnoCode(e) !== 'EEXIST') throw e;
      // 64 bits of the chain ID: a clash is not expected, but a link must never point at another layer.
      if ((await fsp.readlink(link)) !== target) throw new EngineError('INTERNAL', `layer link ${link} points elsewhere than ${target}`);
    }
    return link;
  }

  upperDir(key: string): string {
    return path.join(this.activeDirFor(key), 'upper');
  }

  async chainOf(key: string): Promise<Digest[] | undefined> {
    return (await readJsonIfExists<{ chain: Digest[] }>(path.join(this.activeDirFor(key), 'snapshot.json')))?.chain;
  }

  async listActive(): Promise<string[]> {
    return fsp.readdir(this.activeDir);
  }

  async remove(key: string): Promise<void> {
    const rec = await this.record(key).catch(() => undefined);
    await this.discard(this.activeDirFor(key));
    // The last snapshot stacking a frozen layer frees it.
    if (rec?.frozen?.length) await this.frozen.gc(await this.frozenInUse(), rec.frozen);
  }

  async record(key: string): Promise<SnapshotRecord | undefined> {
    return readJsonIfExists<SnapshotRecord>(path.join(this.activeDirFor(key), 'snapshot.json'));
  }

  /** Rewrites a snapshot's record (atomic): clones.ts stacks frozen layers with it. */
  async writeRecord(rec: SnapshotRecord): Promise<void> {
    await writeJsonAtomic(path.join(this.activeDirFor(rec.key), 'snapshot.json'), rec);
  }

  /** Frozen layers some snapshot stacks: the reference count, derived from the records. */
  async frozenInUse(): Promise<Set<string>> {
    const out = new Set<string>();
    for (const k of await this.listActive()) {
      const r = await readJsonIfExists<SnapshotRecord>(path.join(this.activeDir, k, 'snapshot.json')).catch(() => undefined);
      for (const f of r?.frozen ?? []) out.add(f);
    }
    return out;
  }

  private activeDirFor(key: string): string {
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/.test(key)) throw new EngineError('INVALID_ARGUMENT', `invalid snapshot key "${key}"`);
    return path.join(this.activeDir, key);
  }
}

export interface SnapshotRecord {
  key: string;
  chain: Digest[];
  /** Frozen layers over the chain, bottom first (clones). */
  frozen?: string[];
}

/**
 * Roll-forward of a freeze a crash cut short (frozen.ts): the snapshot's
 * upper is frozen layer `id` now, so the snapshot lists it and gets a fresh
 * upper (and work) dir. False when the snapshot is gone.
 */
export async function adoptFrozen(s: Snapshotter, key: string, id: string): Promise<boolean> {
  const rec = await s.record(key).catch(() => undefined);
  if (!rec) return false;
  if (rec.frozen?.includes(id)) return true; // adopted before a crash: its fresh upper may hold new writes
  const dir = path.dirname(s.upperDir(key));
  await fsp.mkdir(path.join(dir, 'upper'), { recursive: true, mode: 0o755 });
  await fsp.rm(path.join(dir, 'work'), { recursive: true, force: true });
  await fsp.mkdir(path.join(dir, 'work'), { mode: 0o700 });
  await s.writeRecord({ ...rec, frozen: [...(rec.frozen ?? []), id] });
  return true;
}

/**
 * Freezes a stopped snapshot's upper dir into a frozen layer the snapshot
 * then stacks under a fresh upper (so it keeps working, and the layer never
 * changes under the clones that stack it too). An empty upper adds nothing.
 * Returns the snapshot's frozen layers after it, bottom first. The upper must
 * not be mounted.
 */
export async function freezeSnapshot(s: Snapshotter, key: string): Promise<string[]> {
  const rec = await s.record(key);
  if (!rec) throw new EngineError('NOT_FOUND', `snapshot ${key} does not exist`);
  if ((await fsp.readdir(s.upperDir(key))).length === 0) return rec.frozen ?? [];
  const id = await s.frozen.freeze(s.upperDir(key), key);
  await adoptFrozen(s, key, id);
  crashPoint('freeze-adopted');
  await s.frozen.commit(id);
  return [...(rec.frozen ?? []), id];
}

/** Chain ID of a layer stack (OCI image spec): chain(n) = sha256(chain(n-1) + " " + diff(n)). */
export function chainIds(diffIds: Digest[]): Digest[] {
  const out: Digest[] = [];
  for (const d of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev ? sha256(`${prev} ${d}`) : d);
  }
  return out;
}

/**
 * syncfs(2) of the filesystem holding `dir` (coreutils `sync --file-system`;
 * Node has no syncfs): one call flushes every file a layer apply wrote,
 * where an fsync per file would cost a journal commit each.
 */
export async function syncFilesystem(dir: string): Promise<void> {
  await exec(['sync', '--file-system', dir]);
}
