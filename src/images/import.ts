import type { Readable } from 'node:stream';
import { decompress } from '../archive/compress.ts';
import { EngineError } from '../common/errors.ts';
import type { Digest } from '../oci/digest.ts';
import { MediaType } from '../oci/mediatypes.ts';
import { formatReference, parseReference } from '../oci/reference.ts';
import { type ContainerConfig, hostPlatform, type ImageConfig } from '../oci/types.ts';
import { applyChanges } from './changes.ts';
import type { ImageService } from './service.ts';
import type { ImageRecord } from './store.ts';

export interface NewLayerImageOptions {
  /** The layer as a tar stream (compressed or not). */
  layer: Readable;
  /** Image to build on (commit); none for import. */
  base?: ImageRecord;
  /** Config to start from (commit: the container's); default the base image's. */
  config?: ContainerConfig;
  changes?: string[];
  comment?: string;
  author?: string;
  createdBy?: string;
  /** Name to tag the new image with. */
  ref?: string;
  signal?: AbortSignal;
}

/**
 * Makes an image of a base image plus one new layer: `docker import` (no
 * base) and `docker commit` (the container's upper dir as the layer). The
 * layer is stored uncompressed, so its blob digest is its diff_id.
 */
export function createLayerImage(images: ImageService, opts: NewLayerImageOptions): Promise<ImageRecord> {
  return images.lease(() => createLeased(images, opts));
}

/** createLayerImage's work, with garbage collection held off (ImageService.lease). */
async function createLeased(images: ImageService, opts: NewLayerImageOptions): Promise<ImageRecord> {
  const name = opts.ref ? formatReference(parseReference(opts.ref)) : undefined;
  if (name && parseReference(opts.ref!).digest) throw new EngineError('INVALID_ARGUMENT', `refusing to tag with a digest reference: ${opts.ref}`);
  const baseConfig: ImageConfig | undefined = opts.base ? await images.config(opts.base) : undefined;
  let runConfig = opts.config ?? baseConfig?.config ?? {};
  if (opts.changes?.length) runConfig = applyChanges(runConfig, opts.changes);
  // The same bound as any layer: a decompression bomb fails here instead of filling the disk.
  const diffId: Digest = await images.content.putStream(decompress(opts.layer, 'auto'), { maxSize: images.limits.maxLayerBytes }, opts.signal);
  const size = await images.content.size(diffId);
  const now = new Date().toISOString();
  const platform = hostPlatform();
  const config: ImageConfig = {
    architecture: baseConfig?.architecture ?? platform.architecture,
    os: baseConfig?.os ?? platform.os,
    created: now,
    ...(opts.author ? { author: opts.author } : {}),
    ...(opts.comment ? { comment: opts.comment } : {}),
    config: runConfig,
    rootfs: { type: 'layers', diff_ids: [...(baseConfig?.rootfs.diff_ids ?? []), diffId] },
    history: [
      ...(baseConfig?.history ?? []),
      { created: now, created_by: opts.createdBy ?? '', ...(opts.comment ? { comment: opts.comment } : {}), ...(opts.author ? { author: opts.author } : {}) },
    ],
  };
  const layers = [...(opts.base?.layers ?? []), { mediaType: MediaType.OciLayer, digest: diffId, size }];
  return images.register({
    config: Buffer.from(JSON.stringify(config)),
    layers,
    names: name ? [name] : [],
    parent: opts.base?.id,
    signal: opts.signal,
  });
}
