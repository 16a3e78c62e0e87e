import { PassThrough } from 'node:stream';
import { applyLayerOffThread } from '../archive/offthread.ts';
import { EngineError, isEngineError } from '../common/errors.ts';
import { KeyedMutex } from '../common/lock.ts';
import { type Digest, sha256 } from '../oci/digest.ts';
import type { BlobWriter } from '../content/store.ts';
import { isIndexType, isLayerType, isManifestType, layerCompression } from '../oci/mediatypes.ts';
import { familiarName, formatReference, type ImageReference, parseReference, repositoryName } from '../oci/reference.ts';
import {
  type Descriptor,
  hostPlatform,
  type ImageConfig,
  type Index,
  type Manifest,
  MAX_DOCUMENT_SIZE,
  parseImageConfig,
  parseImageDocument,
  type Platform,
  platformMatches,
} from '../oci/types.ts';
import { downloadBlob } from '../registry/blobs.ts';
import { RepositoryClient } from '../registry/client.ts';
import type { AuthConfig } from '../registry/credentials.ts';
import type { RegistryHosts } from '../registry/hosts.ts';
import { layerStatus, type ProgressMessage, progressMessage, shortId, throttled } from '../registry/progress.ts';
import { chainIds } from '../snapshots/overlay.ts';
import type { ImageService } from './service.ts';
import type { ImageRecord } from './store.ts';

export type { ProgressMessage } from '../registry/progress.ts';

export interface PullOptions {
  platform?: Platform;
  allTags?: boolean;
  auth?: AuthConfig;
  signal?: AbortSignal;
  onProgress?: (m: ProgressMessage) => void;
}

/** One download per blob digest per image service: two pulls sharing a layer share its ingest. */
const locks = new WeakMap<ImageService, KeyedMutex>();
function lockFor(images: ImageService): KeyedMutex {
  let m = locks.get(images);
  if (!m) locks.set(images, (m = new KeyedMutex()));
  return m;
}

/**
 * docker pull. Everything that can fail before bytes move (bad reference,
 * unknown repo or tag, auth, a hostile manifest or config, no matching
 * platform) throws before the first progress message, so the API can still
 * answer with an HTTP error status. Layers then download in parallel, each
 * streamed through decompression straight into its snapshot directory (on a
 * worker thread per layer, archive/offthread.ts) while the compressed bytes
 * go to the content store; a layer is committed only
 * once its blob digest and its diff_id both check out, and the image is
 * registered only when every layer is in place. Garbage collection waits
 * until then (ImageService.lease).
 */
export function pullImage(images: ImageService, registries: RegistryHosts, ref: string, opts: PullOptions = {}): Promise<ImageRecord> {
  return images.lease(() => pullLeased(images, registries, ref, opts));
}

async function pullLeased(images: ImageService, registries: RegistryHosts, ref: string, opts: PullOptions): Promise<ImageRecord> {
  const parsed = parseReference(ref, { defaultTag: !opts.allTags });
  if (!opts.allTags) return pullOne(images, registries, parsed, opts, false);
  if (parsed.tag || parsed.digest) throw new EngineError('INVALID_ARGUMENT', "tag can't be used with --all-tags/-a");
  const auth = await registries.authFor(parsed.domain, opts.auth);
  const client = new RepositoryClient(registries, registries.endpoint(parsed.domain), parsed.path, auth, ['pull']);
  const tags = (await client.listTags(opts.signal)).sort();
  if (!tags.length) throw new EngineError('NOT_FOUND', `repository ${familiarName(parsed)} has no tags`);
  let last: ImageRecord | undefined;
  let newer = false;
  for (const tag of tags) {
    const before = images.store.lookupName(formatReference({ ...parsed, tag }));
    last = await pullOne(images, registries, { ...parsed, tag }, { ...opts, auth }, true);
    if (before !== last.id) newer = true;
  }
  opts.onProgress?.({ status: `Status: ${newer ? 'Downloaded newer image' : 'Image is up to date'} for ${familiarName(parsed)}` });
  return last!;
}

interface Resolved {
  client: RepositoryClient;
  /** What the tag or digest pointed at (an index for multi-arch images). */
  topDigest: Digest;
  manifest: Manifest;
  manifestDesc: Descriptor;
  manifestBytes: Buffer;
  configBytes: Buffer;
  config: ImageConfig;
}

async function pullOne(images: ImageService, registries: RegistryHosts, ref: ImageReference, opts: PullOptions, quietStatus: boolean): Promise<ImageRecord> {
  const emit = opts.onProgress ?? (() => {});
  const r = await resolve(registries, ref, opts);
  const tagOrDigest = ref.digest ?? ref.tag!;
  const primary = ref.digest ? `${repositoryName(ref)}@${ref.digest}` : formatReference(ref);
  const names = [primary, `${repositoryName(ref)}@${r.manifestDesc.digest}`];
  if (!ref.digest && r.topDigest !== r.manifestDesc.digest) names.push(`${repositoryName(ref)}@${r.topDigest}`);
  const configDigest = sha256(r.configBytes);
  const before = images.store.lookupName(primary);
  const upToDate = before === configDigest && images.store.get(configDigest) !== undefined;

  emit({ status: `Pulling from ${ref.path}`, id: tagOrDigest });
  if (!upToDate) await pullLayers(images, registries, r, opts);
  const rec = await images.register({
    config: r.configBytes,
    layers: r.manifest.layers,
    manifest: { descriptor: r.manifestDesc, bytes: r.manifestBytes },
    names,
    signal: opts.signal,
  });
  emit({ status: `Digest: ${r.topDigest}` });
  if (!quietStatus) emit({ status: `Status: ${upToDate ? 'Image is up to date' : 'Downloaded newer image'} for ${familiarName(ref)}` });
  return rec;
}

/** Finds the manifest and config for the wanted platform, mirrors first. */
async function resolve(registries: RegistryHosts, ref: ImageReference, opts: PullOptions): Promise<Resolved> {
  const endpoints = registries.pullEndpoints(ref.domain);
  const auth = await registries.authFor(ref.domain, opts.auth);
  let lastErr: unknown;
  for (const ep of endpoints) {
    const client = new RepositoryClient(registries, ep, ref.path, ep.mirror ? undefined : auth, ['pull']);
    try {
      return await resolveOn(client, registries, ref, opts);
    } catch (e) {
      lastErr = e;
      // A mirror that fails is skipped; the registry itself has the last word.
      if (!ep.mirror || opts.signal?.aborted) throw e;
    }
  }
  throw lastErr;
}

async function resolveOn(client: RepositoryClient, registries: RegistryHosts, ref: ImageReference, opts: PullOptions): Promise<Resolved> {
  const what = familiarName(ref);
  const want = opts.platform ?? hostPlatform();
  let got = await client.getManifest(ref.digest ?? ref.tag!, what, opts.signal);
  const topDigest = got.digest;
  let doc = parseImageDocument(got.bytes, got.contentType);
  let entry: Descriptor | undefined;
  for (let depth = 0; doc.kind === 'index'; depth++) {
    if (depth >= registries.opts.maxIndexDepth) {
      throw new EngineError('INVALID_ARGUMENT', `image index for ${what} nests indexes deeper than ${registries.opts.maxIndexDepth} levels`);
    }
    entry = pickPlatform(doc.index, want, what);
    got = await client.getManifest(entry.digest, what, opts.signal);
    if (got.digest !== entry.digest) throw new EngineError('INVALID_ARGUMENT', `manifest digest mismatch for ${what}`);
    if (got.bytes.length !== entry.size)
      throw new EngineError('INVALID_ARGUMENT', `size mismatch for manifest ${entry.digest}: index says ${entry.size} bytes, got ${got.bytes.length}`);
    doc = parseImageDocument(got.bytes, entry.mediaType);
    const ct = got.contentType;
    if ((isManifestType(ct) || isIndexType(ct)) && ct !== entry.mediaType) {
      throw new EngineError('INVALID_ARGUMENT', `invalid image manifest: Content-Type ${ct} disagrees with the index entry's mediaType ${entry.mediaType}`);
    }
  }
  const manifest = doc.manifest;
  for (const l of manifest.layers) {
    if (!isLayerType(l.mediaType))
      throw new EngineError('INVALID_ARGUMENT', `invalid image manifest: unsupported layer media type ${JSON.stringify(l.mediaType.slice(0, 100))}`);
  }
  const configBytes = await client.getBlobBytes(manifest.config, MAX_DOCUMENT_SIZE, `image config ${manifest.config.digest}`, opts.signal);
  const config = parseImageConfig(configBytes);
  const cfgPlatform: Platform = { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) };
  if (entry?.platform && !platformMatches(entry.platform, cfgPlatform)) {
    throw new EngineError(
      'INVALID_ARGUMENT',
      `image config for ${what} is ${fmtPlatform(cfgPlatform)} but its index entry says ${fmtPlatform(entry.platform)}`,
    );
  }
  if (!entry && opts.platform && !platformMatches(opts.platform, cfgPlatform)) {
    throw new EngineError(
      'NOT_FOUND',
      `image with reference ${what} was found but does not match the specified platform: wanted ${fmtPlatform(opts.platform)}, actual: ${fmtPlatform(cfgPlatform)}`,
    );
  }
  if (config.rootfs.diff_ids.length !== manifest.layers.length) {
    throw new EngineError(
      'INVALID_ARGUMENT',
      `image config lists ${config.rootfs.diff_ids.length} layers (diff_ids) but the manifest has ${manifest.layers.length}`,
    );
  }
  const manifestDesc: Descriptor = { mediaType: manifest.mediaType!, digest: got.digest, size: got.bytes.length };
  return { client, topDigest, manifest, manifestDesc, manifestBytes: got.bytes, configBytes, config };
}

function fmtPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

function pickPlatform(index: Index, want: Platform, what: string): Descriptor {
  const matches = index.manifests.filter((m) => (isManifestType(m.mediaType) || isIndexType(m.mediaType)) && platformMatches(want, m.platform));
  // Prefer an exact variant match (arm64/v8 over a bare arm64 entry when asked for v8).
  const best = matches.find((m) => (m.platform?.variant ?? '') === (want.variant ?? '')) ?? matches[0];
  if (!best) throw new EngineError('NOT_FOUND', `no matching manifest for ${fmtPlatform(want)} in the manifest list entries (${what})`);
  return best;
}

/** Downloads and unpacks the layers not already present, in parallel. */
async function pullLayers(images: ImageService, registries: RegistryHosts, r: Resolved, opts: PullOptions): Promise<void> {
  const emit = opts.onProgress ?? (() => {});
  const diffIds = r.config.rootfs.diff_ids;
  const chain = chainIds(diffIds);
  const todo: number[] = [];
  const announced = new Set<string>();
  for (let i = 0; i < chain.length; i++) {
    const id = shortId(r.manifest.layers[i]!.digest);
    // The blob too: an image is saved and pushed from its blobs, and gc drops the blob of a layer
    // only a container (not an image) still uses.
    if ((await images.snapshots.hasLayer(chain[i]!)) && (await images.content.has(r.manifest.layers[i]!.digest))) {
      if (!announced.has(id)) emit(layerStatus('Already exists', id));
    } else {
      todo.push(i);
      if (!announced.has(id)) emit(layerStatus('Pulling fs layer', id));
    }
    announced.add(id);
  }
  const limit = Math.max(1, registries.opts.maxConcurrentDownloads);
  todo.slice(limit).forEach((i) => emit(layerStatus('Waiting', shortId(r.manifest.layers[i]!.digest))));
  const ac = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, ac.signal]) : ac.signal;
  let next = 0;
  let firstError: unknown;
  const worker = async () => {
    while (next < todo.length && !signal.aborted) {
      const i = todo[next++]!;
      try {
        await pullLayer(images, r, r.manifest.layers[i]!, diffIds[i]!, chain[i]!, i ? chain[i - 1]! : null, signal, emit);
      } catch (e) {
        firstError ??= e;
        ac.abort(e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, todo.length) }, worker));
  if (firstError) throw firstError;
  if (opts.signal?.aborted) throw new EngineError('CANCELLED', 'pull was cancelled');
}

async function pullLayer(
  images: ImageService,
  r: Resolved,
  desc: Descriptor,
  diffId: Digest,
  chainId: Digest,
  parent: Digest | null,
  signal: AbortSignal,
  emit: (m: ProgressMessage) => void,
): Promise<void> {
  const id = shortId(desc.digest);
  // Foreign (non-distributable) layers are fetched from the registry like any
  // other: their `urls` point at hosts the user never chose to trust.
  await lockFor(images).run(desc.digest, async () => {
    const haveLayer = await images.snapshots.hasLayer(chainId);
    if (haveLayer && (await images.content.has(desc.digest))) return emit(layerStatus('Pull complete', id));
    const report = throttled(100, (n) => emit(progressMessage('Downloading', id, n, desc.size)));
    const finishedDownload = () => {
      emit(layerStatus('Verifying Checksum', id));
      emit(layerStatus('Download complete', id));
    };
    if (!(await images.content.has(desc.digest))) {
      const w = await images.content.writer({ digest: desc.digest, size: desc.size }, { resume: true });
      if (w.offset === 0 && !haveLayer) return streamLayer(images, r, desc, diffId, chainId, parent, w, signal, emit, report, finishedDownload);
      // A partial blob from an earlier pull: its first bytes are on disk, not
      // in a stream, so finish the blob, then unpack it from the store.
      try {
        await downloadBlob(r.client, desc, w, { signal, onBytes: report });
        report(w.offset, true);
        await w.commit();
      } catch (e) {
        await w.abort(!keepPartial(e));
        throw e;
      }
      finishedDownload();
    } else finishedDownload();
    await images.unpackLayer(desc, diffId, chainId, parent, signal);
    emit(progressMessage('Extracting', id, desc.size, desc.size));
    emit(layerStatus('Pull complete', id));
  });
}

/** Network trouble keeps a partial blob for a later resume; bad content does not. */
function keepPartial(e: unknown): boolean {
  return isEngineError(e) && (e.code === 'UNAVAILABLE' || e.code === 'TIMEOUT' || e.code === 'CANCELLED');
}

async function streamLayer(
  images: ImageService,
  r: Resolved,
  desc: Descriptor,
  diffId: Digest,
  chainId: Digest,
  parent: Digest | null,
  w: BlobWriter,
  signal: AbortSignal,
  emit: (m: ProgressMessage) => void,
  report: (n: number, force?: boolean) => void,
  finishedDownload: () => void,
): Promise<void> {
  const id = shortId(desc.digest);
  const compression = layerCompression(desc.mediaType);
  const ac = new AbortController();
  const inner = AbortSignal.any([signal, ac.signal]);
  let first: unknown;
  const failed = (e: unknown) => {
    first ??= e;
    ac.abort(e);
  };
  await images.snapshots.createLayer({ chainId, diffId, parent }, async (dir) => {
    const pass = new PassThrough({ highWaterMark: 4 << 20 });
    const extract = applyLayerOffThread(dir, pass, {
      compression: compression === 'none' || !compression ? 'auto' : compression,
      signal: inner,
      maxUncompressedBytes: images.limits.maxLayerBytes,
    });
    const download = (async () => {
      try {
        await downloadBlob(r.client, desc, w, { signal: inner, sink: pass, sinkDone: extract, onBytes: report });
        report(w.offset, true);
        await w.commit();
        finishedDownload();
        pass.end();
      } catch (e) {
        // Aborted because extraction failed: the blob is suspect, start over next time.
        const bySibling = inner.aborted && !signal.aborted;
        await w.abort(bySibling || !keepPartial(e));
        pass.destroy(e as Error);
        throw e;
      }
    })();
    const [x, d] = await Promise.allSettled([extract.catch((e) => (failed(e), Promise.reject(e))), download.catch((e) => (failed(e), Promise.reject(e)))]);
    if (x.status === 'rejected' || d.status === 'rejected') {
      // The first failure is the cause; the other side only saw the abort.
      throw first;
    }
    emit(progressMessage('Extracting', id, desc.size, desc.size));
    return { diffId: x.value.diffId, size: x.value.size };
  });
  emit(layerStatus('Pull complete', id));
}
