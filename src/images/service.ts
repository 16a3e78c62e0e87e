import fsp from 'node:fs/promises';
import path from 'node:path';
import { EngineError } from '../common/errors.ts';
import { KeyedMutex, SharedLock } from '../common/lock.ts';
import { ContentStore } from '../content/store.ts';
import { applyLayer, DEFAULT_MAX_BYTES } from '../archive/apply.ts';
import { diffLayer } from '../archive/diff.ts';
import type { Digest } from '../oci/digest.ts';
import { layerCompression, MediaType } from '../oci/mediatypes.ts';
import { formatReference, parseReference } from '../oci/reference.ts';
import { type Descriptor, type ImageConfig, type Manifest, parseImageConfig } from '../oci/types.ts';
import { chainIds, type Snapshotter } from '../snapshots/overlay.ts';
import { type ImageRecord, ImageStore } from './store.ts';

export interface RegisterOptions {
  config: Buffer;
  /** Layer blobs (already in the content store), aligned with the config's diff_ids. */
  layers: Descriptor[];
  /** The manifest to keep; when absent keel writes an OCI manifest for the image. */
  manifest?: { descriptor: Descriptor; bytes: Buffer };
  /** Normalized names to point at the image. */
  names?: string[];
  parent?: Digest;
  signal?: AbortSignal;
  /** Layers already unpacked into scratch dirs, by blob digest (see load); adopted when their diff_id matches. */
  preApplied?: Map<Digest, PreApplied>;
}

/** A layer blob unpacked into a snapshotter scratch dir before its chain ID was known. */
export interface PreApplied {
  dir: string;
  diffId: Digest;
  size: number;
}

export interface RemoveResult {
  untagged: string[];
  deleted: Digest[];
}

/**
 * Images: content store + unpacked layers + metadata. Everything that makes
 * an image (pull, load, import, commit, build) ends in `register`, which
 * unpacks missing layers and writes the record last.
 */
/** Default bound on all layers of one image together, uncompressed. */
export const DEFAULT_MAX_IMAGE_BYTES = 256 * 1024 ** 3;

export class ImageService {
  readonly content: ContentStore;
  readonly snapshots: Snapshotter;
  readonly store: ImageStore;
  private readonly unpackMutex = new KeyedMutex();
  private readonly gcLock = new SharedLock();
  /** Uncompressed bytes one layer, and all layers of one image, may unpack to (a pull, load, import or commit over them fails). */
  readonly limits: { maxLayerBytes: number; maxImageBytes: number };

  /** `snapshots` is the composition root's (Engine): it also holds the containers' writable layers. */
  constructor(dataRoot: string, snapshots: Snapshotter, limits: { maxLayerBytes?: number; maxImageBytes?: number } = {}) {
    this.limits = { maxLayerBytes: limits.maxLayerBytes ?? DEFAULT_MAX_BYTES, maxImageBytes: limits.maxImageBytes ?? DEFAULT_MAX_IMAGE_BYTES };
    this.content = new ContentStore(path.join(dataRoot, 'content'));
    this.snapshots = snapshots;
    this.store = new ImageStore(path.join(dataRoot, 'images'));
  }

  async init(): Promise<void> {
    await this.content.init();
    await this.snapshots.init();
    await this.store.init();
    await this.content.cleanIngests();
  }

  async config(rec: ImageRecord): Promise<ImageConfig> {
    return parseImageConfig(await this.content.read(rec.id));
  }

  /** Unpacks a layer blob once per chain ID (concurrent callers share the work). */
  async unpackLayer(
    blob: Descriptor,
    diffId: Digest,
    chainId: Digest,
    parent: Digest | null,
    signal?: AbortSignal,
    preApplied?: Map<Digest, PreApplied>,
  ): Promise<number> {
    return this.unpackMutex.run(chainId, async () => {
      const meta = await this.snapshots.createLayer({ chainId, diffId, parent }, async (dir) => {
        // A layer diff does not depend on its parents, so a tree unpacked before the chain was known is the same tree.
        const pre = preApplied?.get(blob.digest);
        if (pre && pre.diffId === diffId) {
          preApplied!.delete(blob.digest);
          await fsp.rmdir(dir);
          await fsp.rename(pre.dir, dir);
          await this.snapshots.discardScratch(pre.dir);
          return { diffId: pre.diffId, size: pre.size };
        }
        const compression = layerCompression(blob.mediaType) ?? 'auto';
        const r = await applyLayer(dir, this.content.openRead(blob.digest), {
          compression: compression === 'none' ? 'auto' : compression,
          signal,
          maxUncompressedBytes: this.limits.maxLayerBytes,
        });
        return { diffId: r.diffId, size: r.size };
      });
      return meta.size;
    });
  }

  /**
   * Makes sure a layer's blob is in the content store. A build step's layer
   * is registered from its tree alone (see build/image.ts: its tar is hashed,
   * not stored), so push and save make the tar again from the unpacked layer
   * (diffLayer is deterministic for a tree, and a committed layer's tree
   * never changes) and store it, verified against the layer's digest.
   */
  async ensureLayerBlob(rec: ImageRecord, i: number, signal?: AbortSignal): Promise<void> {
    const desc = rec.layers[i]!;
    if (await this.content.has(desc.digest)) return;
    const chain = rec.chainIds[i]!;
    await this.lease(() =>
      this.unpackMutex.run(`blob ${desc.digest}`, async () => {
        if (await this.content.has(desc.digest)) return;
        if (layerCompression(desc.mediaType) !== 'none' || !(await this.snapshots.hasLayer(chain))) {
          throw new EngineError('NOT_FOUND', `layer blob ${desc.digest} is not in the content store`);
        }
        await this.content.putStream(diffLayer(this.snapshots.layerDir(chain)), { digest: desc.digest, size: desc.size }, signal);
      }),
    );
  }

  /**
   * Runs `fn` with garbage collection held off. Everything that adds
   * references (a pull, load, import or commit until its image is
   * registered, a container create until its snapshot exists) holds one:
   * before its record is written, nothing else says its blobs and layers
   * are wanted, and gc would delete them under it.
   */
  lease<T>(fn: () => Promise<T>): Promise<T> {
    return this.gcLock.withShared(fn);
  }

  /** Registers an image whose config and layer blobs are in the content store. */
  async register(opts: RegisterOptions): Promise<ImageRecord> {
    const config = parseImageConfig(opts.config);
    const diffIds = config.rootfs.diff_ids;
    if (diffIds.length !== opts.layers.length) {
      throw new EngineError('INVALID_ARGUMENT', `image config lists ${diffIds.length} layers (diff_ids) but the manifest has ${opts.layers.length}`);
    }
    const configDigest = await this.content.put(opts.config);
    const chain = chainIds(diffIds);
    let size = 0;
    for (let i = 0; i < chain.length; i++) {
      const d = opts.layers[i]!.digest;
      if (!opts.preApplied?.has(d) && !(await this.content.has(d)) && !(await this.snapshots.hasLayer(chain[i]!))) {
        throw new EngineError('NOT_FOUND', `layer ${opts.layers[i]!.digest} is missing from the content store`);
      }
      size += await this.unpackLayer(opts.layers[i]!, diffIds[i]!, chain[i]!, i ? chain[i - 1]! : null, opts.signal, opts.preApplied);
      if (size > this.limits.maxImageBytes) {
        throw new EngineError(
          'INVALID_ARGUMENT',
          `image is larger than the ${this.limits.maxImageBytes}-byte limit uncompressed (its first ${i + 1} layers are ${size} bytes): refusing it`,
        );
      }
    }
    const manifest = opts.manifest ?? (await this.writeManifest(opts.config, configDigest, opts.layers));
    if (opts.manifest) await this.content.put(opts.manifest.bytes, { digest: opts.manifest.descriptor.digest });
    const rec: ImageRecord = {
      id: configDigest,
      manifest: manifest.descriptor,
      layers: opts.layers,
      chainIds: chain,
      size,
      stored: new Date().toISOString(),
      ...(opts.parent ? { parent: opts.parent } : {}),
    };
    await this.store.put(rec, opts.names ?? []);
    return rec;
  }

  private async writeManifest(configBytes: Buffer, configDigest: Digest, layers: Descriptor[]): Promise<{ descriptor: Descriptor; bytes: Buffer }> {
    const m: Manifest = {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: configDigest, size: configBytes.length },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    };
    const bytes = Buffer.from(JSON.stringify(m));
    const digest = await this.content.put(bytes);
    return { descriptor: { mediaType: MediaType.OciManifest, digest, size: bytes.length }, bytes };
  }

  /** Points `target` (any name form) at the image `source` resolves to. */
  async tag(source: string, target: string): Promise<void> {
    const rec = this.store.resolve(source);
    const ref = parseReference(target);
    if (ref.digest) throw new EngineError('INVALID_ARGUMENT', `refusing to create a tag with a digest reference: ${target}`);
    await this.store.tag(rec.id, formatReference(ref));
  }

  /**
   * docker rmi: by name, removes that name (and the image when it was the
   * last); by ID, removes the image and its names, refusing with several
   * repositories unless forced. `inUse` says whether a container uses it.
   *
   * Parents, as dockerd does it: an image other images name as their parent
   * (a build's step images, a commit's base) is never deleted ("cannot be
   * forced - image has dependent child images"; by name it is only untagged),
   * and deleting an image deletes its untagged parents in turn, up to the
   * first one that has a name, another child or a container (`noPrune`
   * keeps them). So `docker rmi` of a built image takes the build's
   * intermediate images with it.
   */
  async remove(ref: string, opts: { force?: boolean; noPrune?: boolean; inUse?: (id: Digest) => string | undefined } = {}): Promise<RemoveResult> {
    const rec = this.store.resolve(ref);
    const names = this.store.namesOf(rec.id);
    const byName = !isIdLike(ref, rec.id) && names.length > 0;
    const result: RemoveResult = { untagged: [], deleted: [] };
    const user = opts.inUse?.(rec.id);
    if (byName) {
      const name = this.nameFor(ref);
      const tags = names.filter((n) => !n.includes('@'));
      if (tags.length > 1 || (name && name.includes('@') && tags.length)) {
        if (name) {
          await this.store.untag(name);
          result.untagged.push(name);
        }
        return result;
      }
    } else {
      if (this.hasChildren(rec.id))
        throw new EngineError('CONFLICT', `conflict: unable to delete ${rec.id.slice(7, 19)} (cannot be forced) - image has dependent child images`);
      if (names.filter((n) => !n.includes('@')).length > 1 && !opts.force) {
        throw new EngineError('CONFLICT', `conflict: unable to delete ${rec.id.slice(7, 19)} (must be forced) - image is referenced in multiple repositories`);
      }
    }
    if (user) {
      if (!opts.force) {
        throw new EngineError(
          'CONFLICT',
          `conflict: unable to ${byName ? `remove repository reference "${ref}"` : `delete ${rec.id.slice(7, 19)}`} (must force) - container ${user.slice(0, 12)} is using its referenced image ${rec.id.slice(7, 19)}`,
        );
      }
      // Forced while in use: docker untags and keeps the (now dangling) image.
      for (const n of names) {
        await this.store.untag(n);
        result.untagged.push(n);
      }
      return result;
    }
    result.untagged.push(...names);
    if (byName && this.hasChildren(rec.id)) {
      // The last name of a parent image: dockerd untags it and keeps it for its children.
      for (const n of names) await this.store.untag(n);
      return result;
    }
    await this.store.delete(rec.id);
    result.deleted.push(rec.id);
    if (!opts.noPrune) {
      for (let p = rec.parent; p;) {
        const parent = this.store.get(p);
        if (!parent || this.store.namesOf(p).length || this.hasChildren(p) || opts.inUse?.(p)) break;
        await this.store.delete(p);
        result.deleted.push(p);
        p = parent.parent;
      }
      await this.gc();
    }
    return result;
  }

  /** Whether another image names this one as its parent. */
  private hasChildren(id: Digest): boolean {
    return this.store.list().some((r) => r.parent === id);
  }

  private nameFor(ref: string): string | undefined {
    try {
      return formatReference(parseReference(ref));
    } catch {
      return undefined;
    }
  }

  /**
   * Removes layers and blobs no image references. `keepLayers` are chain IDs
   * still needed by containers whose images were force-removed.
   */
  async gc(keepLayers: Iterable<Digest> = []): Promise<{ layers: number; blobs: number; bytes: number }> {
    return this.gcLock.withExclusive(() =>
      this.unpackMutex.run('gc', async () => {
        const liveLayers = new Set<Digest>(keepLayers);
        // Containers' snapshots keep their layers even when their image record is gone.
        for (const key of await this.snapshots.listActive()) for (const c of (await this.snapshots.chainOf(key)) ?? []) liveLayers.add(c);
        const liveBlobs = new Set<Digest>();
        for (const rec of this.store.list()) {
          rec.chainIds.forEach((c) => liveLayers.add(c));
          liveBlobs.add(rec.id);
          liveBlobs.add(rec.manifest.digest);
          rec.layers.forEach((l) => liveBlobs.add(l.digest));
        }
        let layers = 0;
        let blobs = 0;
        let bytes = 0;
        for (const c of await this.snapshots.listLayers()) {
          if (liveLayers.has(c)) continue;
          bytes += (await this.snapshots.layerMeta(c))?.size ?? 0;
          await this.snapshots.removeLayer(c);
          layers++;
        }
        for (const b of await this.content.list()) {
          if (liveBlobs.has(b)) continue;
          bytes += await this.content.size(b).catch(() => 0);
          await this.content.delete(b);
          blobs++;
        }
        return { layers, blobs, bytes };
      }),
    );
  }
}

function isIdLike(ref: string, id: Digest): boolean {
  const hex = ref.startsWith('sha256:') ? ref.slice(7) : ref;
  return /^[a-f0-9]+$/.test(hex) && id.slice(7).startsWith(hex);
}
