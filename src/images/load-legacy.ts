/**
 * `docker load` of a legacy (v1) `docker save` archive, as Docker <= 1.9
 * wrote and some tools still do: `repositories` ({repo: {tag: topId}}) and
 * one directory per layer, `<id>/json` (the v1 image JSON, with `parent`)
 * and `<id>/layer.tar`. Each tagged top layer becomes one image: its chain
 * of parents (root first) gives the layers, and the top's JSON the config,
 * converted as moby's MakeConfigFromV1Config does (v1-only keys dropped,
 * rootfs and history added).
 */
import zlib from 'node:zlib';
import { EngineError } from '../common/errors.ts';
import { type Digest, sha256 } from '../oci/digest.ts';
import { MediaType } from '../oci/mediatypes.ts';
import { familiarName, formatReference, parseReference } from '../oci/reference.ts';
import type { Descriptor } from '../oci/types.ts';
import type { ArchiveEntry, LoadResult } from './load.ts';
import type { ImageService, PreApplied } from './service.ts';

const MAX_CHAIN = 128;

interface V1Json {
  id?: string;
  parent?: string;
  created?: string;
  author?: string;
  comment?: string;
  throwaway?: boolean;
  container_config?: { Cmd?: string[] | null };
  [k: string]: unknown;
}

export interface LegacyHelpers {
  bytesOf(e: ArchiveEntry, max?: number): Promise<Buffer>;
  asBlob(e: ArchiveEntry, mediaType: string): Promise<Descriptor>;
  layerType(e: ArchiveEntry): Promise<string>;
}

export async function loadLegacyArchive(
  images: ImageService,
  lookup: (n: string) => ArchiveEntry | undefined,
  preApplied: Map<Digest, PreApplied>,
  h: LegacyHelpers,
  signal?: AbortSignal,
): Promise<LoadResult> {
  let repos: Record<string, Record<string, string>>;
  try {
    repos = JSON.parse((await h.bytesOf(lookup('repositories')!)).toString('utf8'));
    if (!repos || typeof repos !== 'object' || Array.isArray(repos)) throw new Error('not an object');
  } catch (e) {
    throw new EngineError('INVALID_ARGUMENT', `invalid repositories file in legacy archive: ${(e as Error).message}`);
  }
  // One image per top layer, with every name that points at it.
  const tops = new Map<string, string[]>();
  for (const [repo, tags] of Object.entries(repos)) {
    if (!tags || typeof tags !== 'object') throw new EngineError('INVALID_ARGUMENT', `invalid repositories file in legacy archive: ${repo} has no tags`);
    for (const [tag, id] of Object.entries(tags)) {
      if (typeof id !== 'string' || !/^[a-f0-9]{64}$/.test(id))
        throw new EngineError('INVALID_ARGUMENT', `invalid layer id for ${repo}:${tag} in legacy archive`);
      const names = tops.get(id) ?? [];
      names.push(formatReference(parseReference(`${repo}:${tag}`)));
      tops.set(id, names);
    }
  }
  const result: LoadResult = { messages: [], images: [] };
  for (const [top, names] of tops) {
    const chain: { id: string; json: V1Json; raw: Buffer }[] = [];
    for (let id: string | undefined = top; id;) {
      if (chain.length >= MAX_CHAIN || chain.some((c) => c.id === id))
        throw new EngineError('INVALID_ARGUMENT', `legacy archive: the parent chain of ${top} is too long or loops`);
      const j = lookup(`${id}/json`);
      if (!j) throw new EngineError('INVALID_ARGUMENT', `legacy archive is missing ${id}/json`);
      const raw = await h.bytesOf(j);
      let json: V1Json;
      try {
        json = JSON.parse(raw.toString('utf8'));
      } catch (e) {
        throw new EngineError('INVALID_ARGUMENT', `legacy archive: invalid ${id}/json: ${(e as Error).message}`);
      }
      chain.push({ id, json, raw });
      id = typeof json.parent === 'string' && json.parent ? json.parent : undefined;
      if (id !== undefined && !/^[a-f0-9]{64}$/.test(id))
        throw new EngineError('INVALID_ARGUMENT', `legacy archive: invalid parent id in ${chain.at(-1)!.id}/json`);
    }
    chain.reverse();
    const layers: Descriptor[] = [];
    const diffIds: Digest[] = [];
    const history: object[] = [];
    for (const { id, json } of chain) {
      history.push({
        created: json.created ?? '1970-01-01T00:00:00Z',
        ...(json.author ? { author: json.author } : {}),
        created_by: (json.container_config?.Cmd ?? []).join(' '),
        ...(json.comment ? { comment: json.comment } : {}),
        ...(json.throwaway ? { empty_layer: true } : {}),
      });
      if (json.throwaway) continue;
      const e = lookup(`${id}/layer.tar`);
      if (!e) throw new EngineError('INVALID_ARGUMENT', `legacy archive is missing ${id}/layer.tar`);
      const type = await h.layerType(e);
      layers.push(await h.asBlob(e, type));
      diffIds.push(await diffIdOf(e, type, preApplied, h));
    }
    const { id: _id, parent: _p, Size: _s, parent_id: _pi, layer_id: _li, throwaway: _t, ...rest } = chain.at(-1)!.json;
    const config = Buffer.from(JSON.stringify({ ...rest, rootfs: { type: 'layers', diff_ids: diffIds }, history }));
    const rec = await images.register({ config, layers, names, signal, preApplied });
    result.images.push(rec);
    for (const n of names) result.messages.push(`Loaded image: ${familiarName(parseReference(n))}`);
  }
  if (!result.images.length) throw new EngineError('INVALID_ARGUMENT', 'legacy archive names no image in its repositories file');
  return result;
}

/** The layer's uncompressed digest: known from the unpack while reading, or computed for a small member. */
async function diffIdOf(e: ArchiveEntry, type: string, preApplied: Map<Digest, PreApplied>, h: LegacyHelpers): Promise<Digest> {
  const applied = preApplied.get(e.digest);
  if (applied) return applied.diffId;
  if (type === MediaType.DockerLayer) return e.digest;
  if (e.kind === 'mem' && type === MediaType.DockerLayerGzip) {
    try {
      return sha256(zlib.gunzipSync(await h.bytesOf(e), { maxOutputLength: 64 << 20 }));
    } catch (err) {
      throw new EngineError('INVALID_ARGUMENT', `legacy archive: a layer does not decompress: ${(err as Error).message}`);
    }
  }
  throw new EngineError('INVALID_ARGUMENT', 'legacy archive: a compressed layer could not be read');
}
