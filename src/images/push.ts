import { type Readable, Transform } from 'node:stream';
import { EngineError, isEngineError } from '../common/errors.ts';
import type { Digest } from '../oci/digest.ts';
import { familiarName, formatReference, parseReference, repositoryName, type ImageReference } from '../oci/reference.ts';
import { type Descriptor, parseImageConfig } from '../oci/types.ts';
import { RepositoryClient } from '../registry/client.ts';
import type { AuthConfig } from '../registry/credentials.ts';
import type { RegistryHosts } from '../registry/hosts.ts';
import { layerStatus, type ProgressMessage, progressMessage, shortId, throttled } from '../registry/progress.ts';
import type { ImageService } from './service.ts';
import type { ImageRecord } from './store.ts';

export interface PushOptions {
  allTags?: boolean;
  auth?: AuthConfig;
  signal?: AbortSignal;
  onProgress?: (m: ProgressMessage) => void;
}

/**
 * docker push: for each tag, every layer blob is checked (HEAD), mounted
 * from another repository of the same registry that keel knows holds it, or
 * uploaded (one streamed PUT, or PATCH chunks when configured); then the
 * config, then the manifest exactly as stored, so its digest is the one the
 * image was pulled or built with. Local-only failures (no such tag) throw
 * before the first progress message.
 */
export function pushImage(images: ImageService, registries: RegistryHosts, ref: string, opts: PushOptions = {}): Promise<void> {
  return images.lease(() => pushLeased(images, registries, ref, opts));
}

/** pushImage's work; garbage collection waits, so no blob it reads goes under it (ImageService.lease). */
async function pushLeased(images: ImageService, registries: RegistryHosts, ref: string, opts: PushOptions): Promise<void> {
  const parsed = parseReference(ref, { defaultTag: !opts.allTags });
  if (opts.allTags && parsed.tag) throw new EngineError('INVALID_ARGUMENT', "tag can't be used with --all-tags/-a");
  if (parsed.digest) throw new EngineError('INVALID_ARGUMENT', `cannot push a digest reference (${ref}): push a tag`);
  const repo = repositoryName(parsed);
  let tags: { tag: string; rec: ImageRecord }[];
  if (opts.allTags) {
    tags = images.store
      .list()
      .flatMap((rec) =>
        images.store
          .namesOf(rec.id)
          .filter((n) => n.startsWith(`${repo}:`))
          .map((n) => ({ tag: n.slice(repo.length + 1), rec })),
      )
      .sort((a, b) => a.tag.localeCompare(b.tag));
    if (!tags.length) throw new EngineError('NOT_FOUND', `An image does not exist locally with the tag: ${familiarName(parsed)}`);
  } else {
    const id = images.store.lookupName(formatReference(parsed));
    const rec = id && images.store.get(id);
    if (!rec) throw new EngineError('NOT_FOUND', `An image does not exist locally with the tag: ${familiarName(parsed)}`);
    tags = [{ tag: parsed.tag!, rec }];
  }
  const auth = await registries.authFor(parsed.domain, opts.auth);
  const client = new RepositoryClient(registries, registries.endpoint(parsed.domain), parsed.path, auth, ['pull', 'push']);
  const emit = opts.onProgress ?? (() => {});
  emit({ status: `The push refers to repository [${repo}]` });
  for (const { tag, rec } of tags) await pushTag(images, registries, client, parsed, tag, rec, opts, emit);
}

async function pushTag(
  images: ImageService,
  registries: RegistryHosts,
  client: RepositoryClient,
  ref: ImageReference,
  tag: string,
  rec: ImageRecord,
  opts: PushOptions,
  emit: (m: ProgressMessage) => void,
): Promise<void> {
  const configBytes = await images.content.read(rec.id);
  const config = parseImageConfig(configBytes);
  const manifestBytes = await images.content.read(rec.manifest.digest);
  const layers = rec.layers.map((d, i) => ({ desc: d, id: shortId(config.rootfs.diff_ids[i] ?? d.digest) }));
  for (let i = 0; i < layers.length; i++) {
    await images.ensureLayerBlob(rec, i, opts.signal).catch((e: unknown) => {
      if (!isEngineError(e, 'NOT_FOUND')) throw e;
      throw new EngineError(
        'NOT_FOUND',
        `layer blob ${layers[i]!.desc.digest} of ${familiarName({ ...ref, tag })} is not in the content store, so it cannot be pushed`,
      );
    });
  }
  // docker lists layers top-down.
  const order = [...layers].reverse();
  const seen = new Set<string>();
  const unique = order.filter((l) => !seen.has(l.desc.digest) && seen.add(l.desc.digest));
  unique.forEach((l) => emit(layerStatus('Preparing', l.id)));
  const limit = Math.max(1, registries.opts.maxConcurrentUploads);
  unique.slice(limit).forEach((l) => emit(layerStatus('Waiting', l.id)));
  let next = 0;
  let firstError: unknown;
  const ac = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, ac.signal]) : ac.signal;
  const worker = async () => {
    while (next < unique.length && !signal.aborted) {
      const l = unique[next++]!;
      try {
        await pushLayer(images, registries, client, ref, l.desc, l.id, signal, emit);
      } catch (e) {
        firstError ??= e;
        ac.abort(e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, unique.length) }, worker));
  if (firstError) throw firstError;
  if (opts.signal?.aborted) throw new EngineError('CANCELLED', 'push was cancelled');
  const configDesc: Descriptor = { mediaType: 'application/octet-stream', digest: rec.id, size: configBytes.length };
  if (!(await client.blobExists(configDesc, signal))) await uploadBlob(client, configDesc, () => configBytes, undefined, signal);
  const digest = await client.putManifest(tag, manifestBytes, rec.manifest.mediaType, signal);
  emit({ status: `${tag}: digest: ${digest} size: ${manifestBytes.length}` });
  emit({ progressDetail: {}, aux: { Tag: tag, Digest: digest, Size: manifestBytes.length } });
  // Like docker, the image now also answers to repo@digest.
  await images.store.tag(rec.id, `${repositoryName(ref)}@${digest}`);
}

async function pushLayer(
  images: ImageService,
  registries: RegistryHosts,
  client: RepositoryClient,
  ref: ImageReference,
  desc: Descriptor,
  id: string,
  signal: AbortSignal,
  emit: (m: ProgressMessage) => void,
): Promise<void> {
  if (await client.blobExists(desc, signal)) return emit(layerStatus('Layer already exists', id));
  const from = mountSource(images, ref, desc.digest);
  if (from) {
    client.addPullScope(from);
    const r = await client.startUpload(desc.digest, from, signal);
    if (r.mounted) return emit(layerStatus(`Mounted from ${from}`, id));
    // Not mounted (no access, or the blob is gone there): the session the registry opened is used as a plain upload.
    await uploadLayerData(images, registries, client, desc, id, r.location, signal, emit);
  } else await uploadLayerData(images, registries, client, desc, id, undefined, signal, emit);
  emit(layerStatus('Pushed', id));
}

/** Another repository on the same registry that an image keel has came from and that holds this blob. */
function mountSource(images: ImageService, ref: ImageReference, digest: Digest): string | undefined {
  for (const rec of images.store.list()) {
    if (!rec.layers.some((l) => l.digest === digest)) continue;
    for (const n of images.store.namesOf(rec.id)) {
      const r = parseReference(n, { defaultTag: false });
      if (r.domain === ref.domain && r.path !== ref.path) return r.path;
    }
  }
  return undefined;
}

async function uploadLayerData(
  images: ImageService,
  registries: RegistryHosts,
  client: RepositoryClient,
  desc: Descriptor,
  id: string,
  location: URL | undefined,
  signal: AbortSignal,
  emit: (m: ProgressMessage) => void,
): Promise<void> {
  const report = throttled(100, (n) => emit(progressMessage('Pushing', id, n, desc.size)));
  const body = () => {
    let n = 0;
    return images.content.openRead(desc.digest).pipe(
      new Transform({
        transform(c: Buffer, _e, cb) {
          n += c.length;
          report(n);
          cb(null, c);
        },
      }),
    );
  };
  const chunk = registries.opts.uploadChunkSize;
  const chunked = chunk > 0 && desc.size > chunk ? { size: chunk, images } : undefined;
  for (let attempt = 0; ; attempt++) {
    try {
      await uploadBlob(client, desc, body, chunked, signal, location, report);
      report(desc.size, true);
      return;
    } catch (e) {
      location = undefined; // a failed session is not reused
      const transient = isEngineError(e, 'UNAVAILABLE') && !signal.aborted;
      if (!transient || attempt >= registries.opts.retries) throw e;
      await client.backoff(attempt, undefined, signal);
    }
  }
}

/** One upload session: a streamed PUT, or PATCH chunks then an empty PUT. */
async function uploadBlob(
  client: RepositoryClient,
  desc: Descriptor,
  body: () => Buffer | Readable,
  chunked: { size: number; images: ImageService } | undefined,
  signal: AbortSignal,
  location?: URL,
  report?: (n: number, force?: boolean) => void,
): Promise<void> {
  let loc = location;
  if (!loc) {
    const r = await client.startUpload(desc.digest, undefined, signal);
    if (r.mounted) return;
    loc = r.location;
  }
  if (!chunked) return client.finishUpload(loc, desc.digest, body, desc.size, signal);
  let offset = 0;
  let pending: Buffer[] = [];
  let pendingLen = 0;
  const flush = async () => {
    const buf = Buffer.concat(pending, pendingLen);
    pending = [];
    pendingLen = 0;
    loc = await client.uploadChunk(loc!, buf, offset, desc.digest, signal);
    offset += buf.length;
    report?.(offset);
  };
  for await (const c of chunked.images.content.openRead(desc.digest)) {
    let b = c as Buffer;
    while (b.length) {
      const take = Math.min(b.length, chunked.size - pendingLen);
      pending.push(b.subarray(0, take));
      pendingLen += take;
      b = b.subarray(take);
      if (pendingLen === chunked.size) await flush();
    }
  }
  if (pendingLen) await flush();
  await client.finishUpload(loc, desc.digest, undefined, 0, signal);
}
