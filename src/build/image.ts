/**
 * A build step's result is an image, as in docker's legacy builder: each
 * step's ` ---> <id>` is an image ID, the cache maps step keys to images,
 * and the next step starts from it. Metadata steps make a new config over
 * the same layers; RUN and COPY add the upper directory of their snapshot
 * as one layer (archive/diff.ts turns the upper dir into a layer tar; the
 * whole tree is never diffed).
 */
import { createHash } from 'node:crypto';
import fsp from 'node:fs/promises';
import { invalid } from '../common/errors.ts';
import { log } from '../common/log.ts';
import { diffLayer } from '../archive/diff.ts';
import type { Digest } from '../oci/digest.ts';
import type { ImageService, PreApplied } from '../images/service.ts';
import type { ImageRecord } from '../images/store.ts';
import { DEFAULT_MAX_BYTES } from '../archive/apply.ts';
import { MediaType } from '../oci/mediatypes.ts';
import type { Descriptor } from '../oci/types.ts';
import { type ContainerConfig, type HistoryEntry, hostPlatform, type ImageConfig } from '../oci/types.ts';

/** The state a stage carries from step to step. */
export interface StepImage {
  /** undefined for `FROM scratch` before its first step. */
  record?: ImageRecord;
  config: ImageConfig;
}

export function scratchImage(): StepImage {
  const p = hostPlatform();
  return { config: { architecture: p.architecture, os: p.os, config: { Env: [DEFAULT_PATH] }, rootfs: { type: 'layers', diff_ids: [] }, history: [] } };
}

/** Docker's default PATH for images without one (what the legacy builder sets on scratch). */
export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Configs by image ID: immutable (the ID is their digest), and read at every step of a no-op rebuild. */
const configs = new WeakMap<ImageService, Map<string, ImageConfig>>();
const MAX_CACHED_CONFIGS = 2000;

export async function stepImageOf(images: ImageService, rec: ImageRecord): Promise<StepImage> {
  let m = configs.get(images);
  if (!m) configs.set(images, (m = new Map()));
  let c = m.get(rec.id);
  if (!c) {
    c = await images.config(rec);
    if (m.size >= MAX_CACHED_CONFIGS) m.delete(m.keys().next().value!);
    m.set(rec.id, c);
  }
  // Callers change copies (structuredClone in applyMeta), never the cached object.
  return { record: rec, config: c };
}

/**
 * Registers the image a step made: `runConfig` as its config, one history
 * entry, and the upper dir (if any) as a new layer.
 */
export async function commitStep(
  images: ImageService,
  parent: StepImage,
  o: {
    runConfig: ContainerConfig;
    createdBy: string;
    upperDir?: string;
    adoptUpper?: boolean;
    signal?: AbortSignal;
    sourceDateEpoch?: number;
    /** A layer that exists already (a --link layer on a new parent), its tree copied into `dir` to adopt. */
    layer?: { desc: Descriptor; diffId: Digest; dir: string };
  },
): Promise<ImageRecord> {
  // SOURCE_DATE_EPOCH: fixed times in config and history, mtimes clamped in the layer, so equal inputs give equal digests.
  const epoch = o.sourceDateEpoch;
  const now = epoch !== undefined ? new Date(epoch * 1000).toISOString().replace('.000Z', 'Z') : new Date().toISOString();
  const base = parent.config;
  const layers = [...(parent.record?.layers ?? [])];
  const diffIds = [...base.rootfs.diff_ids];
  const h: HistoryEntry = { created: now, created_by: o.createdBy };
  let preApplied: Map<Digest, PreApplied> | undefined;
  if (o.upperDir) {
    // An adopted upper dir becomes the layer's tree, which is all keel needs of it until a push or save
    // (ImageService.ensureLayerBlob makes the tar then): its tar is only hashed here. Storing it too
    // wrote and fsynced a second copy of every layer, ~1 s per 50 MB on these disks. A reproducible
    // build (clamped mtimes) stores it: the tree alone would not give that tar again.
    const t0 = performance.now();
    const lazy = o.adoptUpper && epoch === undefined;
    const tar = diffLayer(o.upperDir, { clampMtime: epoch });
    let diffId: Digest;
    let size: number;
    if (lazy) ({ digest: diffId, size } = await hashStream(tar, DEFAULT_MAX_BYTES, o.signal));
    else {
      diffId = await images.content.putStream(tar, { maxSize: DEFAULT_MAX_BYTES }, o.signal);
      size = await images.content.size(diffId);
    }
    log.debug('build layer', { bytes: size, stored: !lazy, ms: Math.round(performance.now() - t0) });
    layers.push({ mediaType: MediaType.OciLayer, digest: diffId, size });
    diffIds.push(diffId);
    if (o.adoptUpper) {
      // The upper dir already is the layer in the snapshotter's form (overlay whiteouts and opaque
      // dirs, as applyLayer writes them): moved into place instead of unpacking the tar again.
      const scratch = await images.snapshots.scratchDir();
      await fsp.rmdir(scratch);
      await fsp.rename(o.upperDir, scratch);
      preApplied = new Map([[diffId, { dir: scratch, diffId, size }]]);
    }
  } else if (o.layer) {
    layers.push(o.layer.desc);
    diffIds.push(o.layer.diffId);
    const scratch = await images.snapshots.scratchDir();
    await fsp.rmdir(scratch);
    await fsp.rename(o.layer.dir, scratch);
    preApplied = new Map([[o.layer.desc.digest, { dir: scratch, diffId: o.layer.diffId, size: o.layer.desc.size }]]);
  } else h.empty_layer = true;
  const config: ImageConfig = {
    architecture: base.architecture,
    os: base.os,
    ...(base.variant ? { variant: base.variant } : {}),
    created: now,
    config: o.runConfig,
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: [...(base.history ?? []), h],
  };
  try {
    return await images.register({ config: Buffer.from(JSON.stringify(config)), layers, parent: parent.record?.id, signal: o.signal, preApplied });
  } finally {
    // Not adopted (the layer existed already, or register failed): drop it.
    for (const p of preApplied?.values() ?? []) await images.snapshots.discardScratch(p.dir);
  }
}

/** sha256 and length of a stream, refused past `max` bytes. */
async function hashStream(src: AsyncIterable<Uint8Array>, max: number, signal?: AbortSignal): Promise<{ digest: Digest; size: number }> {
  const h = createHash('sha256');
  let n = 0;
  for await (const c of src) {
    signal?.throwIfAborted();
    n += c.length;
    if (n > max) throw invalid(`layer is larger than the ${max}-byte limit`);
    h.update(c);
  }
  return { digest: `sha256:${h.digest('hex')}`, size: n };
}
