import { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import { EngineError } from '../common/errors.ts';
import { decompress } from '../archive/compress.ts';
import { type Digest, digestHex, sha256 } from '../oci/digest.ts';
import { layerCompression, MediaType } from '../oci/mediatypes.ts';
import { familiarName, familiarRepository, parseReference } from '../oci/reference.ts';
import type { Descriptor, Index, Manifest } from '../oci/types.ts';
import type { ImageService } from './service.ts';
import type { ImageRecord } from './store.ts';

interface Selected {
  rec: ImageRecord;
  /** Normalized names to save with the image (the ones the user named, or all its tags). */
  names: string[];
}

/**
 * `docker save`: one tar holding both a Docker archive (manifest.json,
 * repositories) and an OCI image layout (oci-layout, index.json, blobs/),
 * like docker 25+ writes, so `docker load`, skopeo's `docker-archive:` and
 * `oci-archive:` all read it. Layers are written uncompressed (their digest
 * is then the diff_id), each once however many images share it.
 */
export function saveImages(images: ImageService, refs: string[], signal?: AbortSignal): Readable {
  if (!refs.length) throw new EngineError('INVALID_ARGUMENT', 'docker save needs at least one image');
  const selected = new Map<Digest, Selected>();
  for (const ref of refs) {
    const rec = images.store.resolve(ref);
    const entry = selected.get(rec.id) ?? { rec, names: [] };
    const tagged = images.store.namesOf(rec.id).filter((n) => !n.includes('@'));
    const isId = /^(sha256:)?[a-f0-9]+$/.test(ref) && rec.id.slice(7).startsWith(ref.replace(/^sha256:/, ''));
    if (!isId) {
      const asked = tagged.find((n) => images.store.lookupName(n) === rec.id && sameName(n, ref));
      if (asked && !entry.names.includes(asked)) entry.names.push(asked);
    }
    selected.set(rec.id, entry);
  }
  const pack = tarStream.pack();
  // Garbage collection waits until the archive is written or abandoned (the lease starts now, before
  // this returns, so no removal after the resolve above can delete a blob the archive still needs).
  const write = async () => {
    const written = new Set<string>();
    const manifestJson: { Config: string; RepoTags: string[] | null; Layers: string[] }[] = [];
    const repositories: Record<string, Record<string, string>> = {};
    const index: Index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] };
    const add = async (name: string, data: Buffer) => {
      if (written.has(name)) return;
      written.add(name);
      await new Promise<void>((res, rej) => pack.entry({ name, size: data.length, mode: 0o644, mtime: new Date(0) }, data, (e) => (e ? rej(e) : res())));
    };
    await add('oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
    for (const { rec, names } of selected.values()) {
      const config = await images.content.read(rec.id);
      const cfg = await images.config(rec);
      const layerDescs: Descriptor[] = [];
      for (let i = 0; i < rec.layers.length; i++) {
        const diffId = cfg.rootfs.diff_ids[i]!;
        const meta = await images.snapshots.layerMeta(rec.chainIds[i]!);
        const blob = rec.layers[i]!;
        const name = `blobs/sha256/${digestHex(diffId)}`;
        const plain = layerCompression(blob.mediaType) === 'none';
        const size = plain ? blob.size : meta?.size;
        if (size === undefined) throw new EngineError('INTERNAL', `layer ${diffId} has no recorded size`);
        layerDescs.push({ mediaType: MediaType.OciLayer, digest: diffId, size });
        if (written.has(name)) continue;
        written.add(name);
        await images.ensureLayerBlob(rec, i, signal);
        const src = plain ? images.content.openRead(blob.digest) : decompress(images.content.openRead(blob.digest), layerCompression(blob.mediaType) ?? 'auto');
        await writeEntry(pack, { name, size, mode: 0o644, mtime: new Date(0) }, src, signal);
      }
      await add(`blobs/sha256/${digestHex(rec.id)}`, config);
      const manifest: Manifest = {
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        config: { mediaType: MediaType.OciConfig, digest: rec.id, size: config.length },
        layers: layerDescs,
      };
      const mBytes = Buffer.from(JSON.stringify(manifest));
      const mDigest = sha256(mBytes);
      await add(`blobs/sha256/${digestHex(mDigest)}`, mBytes);
      const tags = names.length ? names : images.store.namesOf(rec.id).filter((n) => !n.includes('@'));
      manifestJson.push({
        Config: `blobs/sha256/${digestHex(rec.id)}`,
        RepoTags: tags.length ? tags.map((n) => familiarName(parseReference(n))) : null,
        Layers: layerDescs.map((l) => `blobs/sha256/${digestHex(l.digest)}`),
      });
      const desc = { mediaType: MediaType.OciManifest, digest: mDigest, size: mBytes.length };
      if (!tags.length) index.manifests.push(desc);
      for (const n of tags) {
        const r = parseReference(n);
        index.manifests.push({ ...desc, annotations: { 'io.containerd.image.name': n, 'org.opencontainers.image.ref.name': r.tag ?? 'latest' } });
        (repositories[familiarRepository(r)] ??= {})[r.tag ?? 'latest'] = digestHex(rec.id);
      }
    }
    await add('index.json', Buffer.from(JSON.stringify(index)));
    await add('manifest.json', Buffer.from(JSON.stringify(manifestJson)));
    if (Object.keys(repositories).length) await add('repositories', Buffer.from(JSON.stringify(repositories)));
    pack.finalize();
  };
  images
    .lease(
      () =>
        new Promise<void>((resolve, reject) => {
          pack.once('close', () => resolve());
          write().then(resolve, reject);
        }),
    )
    .catch((e) => pack.destroy(e));
  return Readable.from(pack);
}

/**
 * Copies `src` into a new tar entry. The pack is destroyed when the client
 * goes away: the entry's sink then errors (ERR_STREAM_PREMATURE_CLOSE), so it
 * gets a listener, a wait for 'drain' also ends on that, and the layer's
 * file is closed on every path.
 */
async function writeEntry(pack: tarStream.Pack, header: Parameters<tarStream.Pack['entry']>[0], src: Readable, signal?: AbortSignal): Promise<void> {
  let sink!: ReturnType<tarStream.Pack['entry']>;
  const sinkDone = new Promise<void>((res, rej) => {
    sink = pack.entry(header, (e) => (e ? rej(e) : res()));
    sink.on('error', rej);
    sink.on('close', () => rej(new EngineError('CANCELLED', 'the archive was closed before the layer was written')));
  });
  sinkDone.catch(() => {}); // awaited below; an early failure must not count as unhandled meanwhile
  try {
    for await (const chunk of src) {
      signal?.throwIfAborted();
      if (!sink.write(chunk)) await Promise.race([new Promise<void>((r) => sink.once('drain', () => r())), sinkDone]);
    }
    sink.end(undefined as never);
    await sinkDone;
  } catch (e) {
    src.destroy();
    sink.destroy();
    throw e;
  }
}

function sameName(normalized: string, ref: string): boolean {
  try {
    const r = parseReference(ref);
    return normalized === `${r.domain}/${r.path}:${r.tag}`;
  } catch {
    return false;
  }
}
