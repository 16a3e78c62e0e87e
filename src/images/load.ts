import path from 'node:path';
import { once } from 'node:events';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';
import { EngineError } from '../common/errors.ts';
import { applyLayer } from '../archive/apply.ts';
import { decompress } from '../archive/compress.ts';
import { type Digest, parseDigest, sha256 } from '../oci/digest.ts';
import { isIndexType, MediaType } from '../oci/mediatypes.ts';
import { familiarName, formatReference, parseReference } from '../oci/reference.ts';
import { type Descriptor, hostPlatform, type Index, parseImageDocument, platformMatches } from '../oci/types.ts';
import { loadLegacyArchive } from './load-legacy.ts';
import type { ImageService, PreApplied } from './service.ts';
import type { ImageRecord } from './store.ts';

/** Files up to this size are kept in memory while reading an archive; larger ones go to the content store. */
const SMALL_FILE = 1 << 20;
/** Bound on all small files of one archive held in memory. */
const MAX_SMALL_TOTAL = 64 << 20;
const MAX_ENTRIES = 100_000;

type Entry = { kind: 'mem'; data: Buffer; digest: Digest } | { kind: 'blob'; digest: Digest; size: number };
export type ArchiveEntry = Entry;

export interface LoadResult {
  /** What docker prints: `Loaded image: name:tag` or `Loaded image ID: sha256:…`. */
  messages: string[];
  images: ImageRecord[];
}

/**
 * Loads a `docker save` archive (manifest.json; also skopeo's
 * docker-archive) or an OCI image layout archive (index.json), possibly
 * compressed. Archive entries are read once: small ones into memory, large
 * ones (layers) into the content store and, at the same time, unpacked into
 * scratch dirs that register adopts when their diff_id is the config's.
 * Nothing is registered unless the whole image checks out.
 */
export async function loadArchive(images: ImageService, source: Readable, opts: { signal?: AbortSignal } = {}): Promise<LoadResult> {
  const state = { stray: false };
  try {
    return await images.lease(() => loadLeased(images, source, opts, state));
  } catch (e) {
    state.stray = true;
    throw e;
  } finally {
    // Blobs of a failed load, or of members no image used, are referenced by nothing: collect them now.
    if (state.stray) await images.gc().catch(() => {});
  }
}

/** loadArchive's work, with garbage collection held off (ImageService.lease). */
async function loadLeased(images: ImageService, source: Readable, opts: { signal?: AbortSignal }, state: { stray: boolean }): Promise<LoadResult> {
  const maxLayer = images.limits.maxLayerBytes;
  const stored = new Set<Digest>();
  const files = new Map<string, Entry>();
  const preApplied = new Map<Digest, PreApplied>();
  const links = new Map<string, string>();
  let small = 0;
  let count = 0;
  const extract = tarStream.extract();
  const reading = (async () => {
    for await (const entry of extract) {
      if (++count > MAX_ENTRIES) throw new EngineError('INVALID_ARGUMENT', `archive has more than ${MAX_ENTRIES} entries`);
      const h = entry.header;
      const name = archivePath(h.name);
      if (h.type === 'symlink' && name && h.linkname) {
        links.set(name, archivePath(path.posix.join(path.posix.dirname(name), h.linkname)) ?? '');
      } else if (h.type === 'file' && name) {
        const size = h.size ?? 0;
        if (size > maxLayer)
          throw new EngineError('INVALID_ARGUMENT', `archive member ${JSON.stringify(name)} is ${size} bytes, over the ${maxLayer}-byte layer limit`);
        if (size <= SMALL_FILE) {
          small += size;
          if (small > MAX_SMALL_TOTAL) throw new EngineError('INVALID_ARGUMENT', 'archive has too much metadata (small files over 64 MiB)');
          const chunks: Buffer[] = [];
          for await (const c of entry) chunks.push(c as Buffer);
          const data = Buffer.concat(chunks);
          files.set(name, { kind: 'mem', data, digest: sha256(data) });
          continue;
        }
        // Unpacked while read only when a manifest read before it names it: a member no image uses is
        // never unpacked (a hostile archive could carry any amount of it). Others unpack at register.
        if (layersNamedBy(files)?.has(name)) {
          const { digest, applied } = await storeAndUnpack(images, entry as AsyncIterable<Uint8Array>, size, opts.signal);
          files.set(name, { kind: 'blob', digest, size });
          if (applied) preApplied.set(digest, applied);
        } else {
          files.set(name, { kind: 'blob', digest: await images.content.putStream(entry as unknown as Readable, { size }, opts.signal), size });
        }
        stored.add(files.get(name)!.digest as Digest);
        continue;
      }
      entry.resume();
    }
  })();
  try {
    await Promise.all([pipeline(decompress(source, 'auto'), extract as unknown as NodeJS.WritableStream, { signal: opts.signal }), reading]);
  } catch (e) {
    extract.destroy();
    await reading.catch(() => {}); // the reader's error (if any) is the one thrown below
    for (const p of preApplied.values()) await images.snapshots.discardScratch(p.dir);
    if (e instanceof EngineError) throw e;
    throw new EngineError('INVALID_ARGUMENT', `invalid image archive: ${(e as Error).message}`, { cause: e });
  }
  const lookup = (name: string): Entry | undefined => {
    let n: string | undefined = archivePath(name);
    for (let i = 0; n && i < 8; i++) {
      const f = files.get(n);
      if (f) return f;
      n = links.get(n);
    }
    return undefined;
  };
  try {
    let res: LoadResult;
    if (files.has('manifest.json')) res = await loadDockerArchive(images, lookup, preApplied, opts.signal);
    else if (files.has('index.json')) res = await loadOciLayout(images, lookup, preApplied, opts.signal);
    else if (files.has('repositories')) {
      const helpers = {
        bytesOf: (e: Entry, max?: number) => bytesOf(images, e, max),
        asBlob: (e: Entry, t: string) => asBlob(images, e, t),
        layerType: (e: Entry) => layerType(images, e),
      };
      res = await loadLegacyArchive(images, lookup, preApplied, helpers, opts.signal);
    } else
      throw new EngineError(
        'INVALID_ARGUMENT',
        'invalid image archive: neither manifest.json (docker save), index.json (OCI layout) nor repositories (legacy docker save) found',
      );
    const used = new Set(res.images.flatMap((r) => [r.id, r.manifest.digest, ...r.layers.map((l) => l.digest)]));
    state.stray = [...stored].some((d) => !used.has(d));
    return res;
  } finally {
    // Trees of layers that were present already, or did not match a diff_id.
    for (const p of preApplied.values()) await images.snapshots.discardScratch(p.dir);
  }
}

/**
 * Stores a large archive member as a blob and, at the same time, unpacks it
 * as a layer into a scratch dir: archive members this size are layers, and
 * unpacking while reading saves a second pass over the blob. A member that
 * is not a valid layer just yields no tree (the register step then unpacks
 * from the blob and reports the real error).
 */
async function storeAndUnpack(
  images: ImageService,
  entry: AsyncIterable<Uint8Array>,
  size: number,
  signal?: AbortSignal,
): Promise<{ digest: Digest; applied?: PreApplied }> {
  const toStore = new PassThrough();
  const toApply = new PassThrough();
  const scratch = await images.snapshots.scratchDir();
  let applyFailed = false;
  const applying = applyLayer(scratch, toApply, { compression: 'auto', signal, maxUncompressedBytes: images.limits.maxLayerBytes }).catch(() => {
    applyFailed = true;
    toApply.resume(); // keep draining so the blob still gets stored
    return undefined;
  });
  const feeding = (async () => {
    try {
      for await (const chunk of entry) {
        toStore.write(chunk);
        if (!applyFailed) toApply.write(chunk);
        // writableNeedDrain, not write()'s result: one side may drain while we wait on the other.
        if (toStore.writableNeedDrain) await once(toStore, 'drain');
        if (!applyFailed && toApply.writableNeedDrain) await Promise.race([once(toApply, 'drain'), applying]);
      }
      toStore.end();
      toApply.end();
    } catch (e) {
      toStore.destroy(e as Error);
      toApply.destroy(e as Error);
    }
  })();
  try {
    const [digest, , applied] = await Promise.all([images.content.putStream(toStore, { size }, signal), feeding, applying]);
    if (applied) return { digest, applied: { dir: scratch, diffId: applied.diffId, size: applied.size } };
    await images.snapshots.discardScratch(scratch);
    return { digest };
  } catch (e) {
    await images.snapshots.discardScratch(scratch);
    throw e;
  }
}

/** The layer members a manifest.json already read names, or undefined when none was read yet. */
function layersNamedBy(files: Map<string, Entry>): Set<string> | undefined {
  const m = files.get('manifest.json');
  if (m?.kind !== 'mem') return undefined;
  try {
    const list = JSON.parse(m.data.toString('utf8')) as DockerManifestEntry[];
    return new Set(
      list
        .flatMap((e) => (Array.isArray(e?.Layers) ? e.Layers : []))
        .map((l) => (typeof l === 'string' ? archivePath(l) : undefined))
        .filter((l): l is string => !!l),
    );
  } catch {
    return undefined;
  }
}

/** Normalizes an archive member name; undefined for names that climb out or are empty. */
function archivePath(name: string): string | undefined {
  const n = path.posix.normalize(name.replace(/^\/+/, ''));
  if (!n || n === '.' || n.startsWith('../') || n === '..') return undefined;
  return n.replace(/\/$/, '');
}

async function bytesOf(images: ImageService, e: Entry, max = 4 << 20): Promise<Buffer> {
  return e.kind === 'mem' ? e.data : images.content.read(e.digest, max);
}

async function asBlob(images: ImageService, e: Entry, mediaType: string): Promise<Descriptor> {
  if (e.kind === 'mem') {
    await images.content.put(e.data, { digest: e.digest });
    return { mediaType, digest: e.digest, size: e.data.length };
  }
  return { mediaType, digest: e.digest, size: e.size };
}

async function layerType(images: ImageService, e: Entry): Promise<string> {
  const head = e.kind === 'mem' ? e.data.subarray(0, 4) : await readHead(images, e.digest);
  if (head[0] === 0x1f && head[1] === 0x8b) return MediaType.DockerLayerGzip;
  if (head.readUInt32LE(0) === 0xfd2fb528) return MediaType.OciLayerZstd;
  return MediaType.DockerLayer;
}

async function readHead(images: ImageService, d: Digest): Promise<Buffer> {
  for await (const c of images.content.openRead(d)) return Buffer.concat([c as Buffer, Buffer.alloc(4)]).subarray(0, 4);
  return Buffer.alloc(4);
}

interface DockerManifestEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

async function loadDockerArchive(
  images: ImageService,
  lookup: (n: string) => Entry | undefined,
  preApplied: Map<Digest, PreApplied>,
  signal?: AbortSignal,
): Promise<LoadResult> {
  let manifest: DockerManifestEntry[];
  try {
    manifest = JSON.parse((await bytesOf(images, lookup('manifest.json')!)).toString('utf8'));
    if (!Array.isArray(manifest)) throw new Error('not a list');
  } catch (e) {
    throw new EngineError('INVALID_ARGUMENT', `invalid manifest.json in archive: ${(e as Error).message}`);
  }
  const result: LoadResult = { messages: [], images: [] };
  for (const m of manifest) {
    if (typeof m?.Config !== 'string' || !Array.isArray(m.Layers))
      throw new EngineError('INVALID_ARGUMENT', 'invalid manifest.json in archive: entry needs Config and Layers');
    const cfg = lookup(m.Config);
    if (!cfg) throw new EngineError('INVALID_ARGUMENT', `archive is missing the image config ${m.Config}`);
    const layers: Descriptor[] = [];
    for (const l of m.Layers) {
      const e = typeof l === 'string' ? lookup(l) : undefined;
      if (!e) throw new EngineError('INVALID_ARGUMENT', `archive is missing the layer ${String(l)}`);
      layers.push(await asBlob(images, e, await layerType(images, e)));
    }
    const names = (m.RepoTags ?? []).map((t) => formatReference(parseReference(t)));
    const rec = await images.register({ config: await bytesOf(images, cfg), layers, names, signal, preApplied });
    result.images.push(rec);
    if (names.length) for (const n of names) result.messages.push(`Loaded image: ${familiarName(parseReference(n))}`);
    else result.messages.push(`Loaded image ID: ${rec.id}`);
  }
  return result;
}

async function loadOciLayout(
  images: ImageService,
  lookup: (n: string) => Entry | undefined,
  preApplied: Map<Digest, PreApplied>,
  signal?: AbortSignal,
): Promise<LoadResult> {
  const blob = (d: Digest) => {
    const e = lookup(`blobs/sha256/${parseDigest(d).slice(7)}`);
    if (!e) throw new EngineError('INVALID_ARGUMENT', `OCI archive is missing blob ${d}`);
    if (e.digest !== d) throw new EngineError('INVALID_ARGUMENT', `OCI archive blob ${d} has the wrong content (digest ${e.digest})`);
    return e;
  };
  const doc = parseImageDocument(await bytesOf(images, lookup('index.json')!), MediaType.OciIndex);
  if (doc.kind !== 'index') throw new EngineError('INVALID_ARGUMENT', 'index.json in OCI archive is not an image index');
  const result: LoadResult = { messages: [], images: [] };
  const pick = async (desc: Descriptor, depth: number): Promise<Descriptor | undefined> => {
    if (depth > 4) throw new EngineError('INVALID_ARGUMENT', 'OCI archive: image indexes nested too deeply');
    if (!isIndexType(desc.mediaType)) return desc;
    const inner = parseImageDocument(await bytesOf(images, blob(desc.digest)), desc.mediaType);
    if (inner.kind !== 'index') throw new EngineError('INVALID_ARGUMENT', `OCI archive: ${desc.digest} is not an index`);
    const host = hostPlatform();
    const m =
      (inner.index as Index).manifests.find((x) => !isIndexType(x.mediaType) && platformMatches(host, x.platform)) ??
      (inner.index.manifests.length === 1 ? inner.index.manifests[0] : undefined);
    return m ? pick(m, depth + 1) : undefined;
  };
  for (const top of doc.index.manifests) {
    const desc = await pick(top, 0);
    if (!desc) throw new EngineError('INVALID_ARGUMENT', `OCI archive has no image for ${hostPlatform().os}/${hostPlatform().architecture}`);
    const mBytes = await bytesOf(images, blob(desc.digest));
    const parsed = parseImageDocument(mBytes, desc.mediaType);
    if (parsed.kind !== 'manifest') throw new EngineError('INVALID_ARGUMENT', `OCI archive: ${desc.digest} is not a manifest`);
    const man = parsed.manifest;
    const layers: Descriptor[] = [];
    for (const l of man.layers) layers.push(await asBlob(images, blob(l.digest), l.mediaType));
    const ann = top.annotations ?? {};
    const refName = ann['io.containerd.image.name'] ?? ann['org.opencontainers.image.ref.name'];
    const names: string[] = [];
    if (refName) {
      try {
        names.push(formatReference(parseReference(refName)));
      } catch {
        // A bare tag such as "1.0" names no repository: load untagged, as docker does.
      }
    }
    const rec = await images.register({
      config: await bytesOf(images, blob(man.config.digest)),
      layers,
      manifest: { descriptor: { mediaType: man.mediaType ?? MediaType.OciManifest, digest: desc.digest, size: mBytes.length }, bytes: mBytes },
      names,
      signal,
      preApplied,
    });
    result.images.push(rec);
    result.messages.push(names.length ? `Loaded image: ${familiarName(parseReference(names[0]!))}` : `Loaded image ID: ${rec.id}`);
  }
  return result;
}
