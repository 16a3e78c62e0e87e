import type { Readable } from 'node:stream';
import type { Digest } from '../oci/digest.ts';
import type { ImageConfig } from '../oci/types.ts';
import { createLayerImage } from '../images/import.ts';
import { type LoadResult, loadArchive } from '../images/load.ts';
import { type PullOptions, pullImage } from '../images/pull.ts';
import { type PushOptions, pushImage } from '../images/push.ts';
import { saveImages } from '../images/save.ts';
import type { ImageService, RemoveResult } from '../images/service.ts';
import type { ImageRecord } from '../images/store.ts';
import { type AuthConfig, login, type RegistryHosts } from '../registry/index.ts';
import type { EventBus } from './events.ts';
import { filterImages, type Filters } from './filters.ts';

/** An image with what docker shows of it. */
export interface ImageView {
  record: ImageRecord;
  config: ImageConfig;
  repoTags: string[];
  repoDigests: string[];
  /** Containers using the image. */
  containers: number;
}

/** What the image operations ask of the containers (docker refuses rmi of an image in use). */
export interface ImageUsers {
  imageUser(id: Digest): string | undefined;
  containersUsing(id: Digest): number;
  layersInUse(): Digest[];
}

/** The engine's image operations (Engine delegates to this); each publishes its event. */
export class EngineImages {
  private readonly images: ImageService;
  private readonly registries: RegistryHosts;
  private readonly events: EventBus;
  private readonly users: ImageUsers;

  constructor(o: { images: ImageService; registries: RegistryHosts; events: EventBus; users: ImageUsers }) {
    this.images = o.images;
    this.registries = o.registries;
    this.events = o.events;
    this.users = o.users;
  }

  async imageView(rec: ImageRecord): Promise<ImageView> {
    return {
      record: rec,
      config: await this.images.config(rec),
      repoTags: this.images.store.repoTags(rec.id),
      repoDigests: this.images.store.repoDigests(rec.id),
      containers: this.users.containersUsing(rec.id),
    };
  }

  async inspectImage(ref: string): Promise<ImageView> {
    return this.imageView(this.images.store.resolve(ref));
  }

  async listImages(opts: { all?: boolean; filters?: Filters } = {}): Promise<ImageView[]> {
    let views = await Promise.all(this.images.store.list().map((r) => this.imageView(r)));
    // Like docker, untagged parents of other images (a build's intermediate steps) show only with --all.
    if (!opts.all) {
      const parents = new Set(views.map((v) => v.record.parent).filter(Boolean));
      views = views.filter((v) => v.repoTags.length > 0 || !parents.has(v.record.id));
    }
    return filterImages(views, opts.filters ?? {}, (ref) => this.images.store.tryResolve(ref));
  }

  async tagImage(source: string, target: string): Promise<void> {
    const rec = this.images.store.resolve(source);
    await this.images.tag(source, target);
    this.events.publish('image', 'tag', rec.id, { name: target });
  }

  async removeImage(ref: string, opts: { force?: boolean; noPrune?: boolean } = {}): Promise<RemoveResult> {
    const res = await this.images.remove(ref, { ...opts, inUse: (id) => this.users.imageUser(id) });
    for (const n of res.untagged) this.events.publish('image', 'untag', this.images.store.lookupName(n) ?? res.deleted[0] ?? n, { name: n });
    for (const d of res.deleted) this.events.publish('image', 'delete', d, { name: d });
    return res;
  }

  /** `image prune`: dangling images (or all unused with `all`). */
  async pruneImages(opts: { all?: boolean; filters?: Filters } = {}): Promise<{ deleted: RemoveResult; reclaimed: number }> {
    const deleted: RemoveResult = { untagged: [], deleted: [] };
    let reclaimed = 0;
    // Rounds: removing an image makes its (build step) parent dangling, which the next round removes.
    for (let removed = -1; removed !== deleted.deleted.length;) {
      removed = deleted.deleted.length;
      for (const v of await this.listImages({ filters: opts.filters })) {
        if (v.containers > 0 || this.users.imageUser(v.record.id)) continue;
        if (!opts.all && v.repoTags.length > 0) continue;
        const names = this.images.store.namesOf(v.record.id);
        await this.images.store.delete(v.record.id);
        deleted.untagged.push(...names);
        deleted.deleted.push(v.record.id);
        this.events.publish('image', 'delete', v.record.id, { name: v.record.id });
      }
    }
    if (deleted.deleted.length) reclaimed = (await this.images.gc(this.users.layersInUse())).bytes;
    this.events.publish('image', 'prune', '', { reclaimed: String(reclaimed) });
    return { deleted, reclaimed };
  }

  /** docker pull; errors before the first progress message mean nothing moved. */
  async pullImage(ref: string, opts: PullOptions = {}): Promise<ImageRecord> {
    const rec = await pullImage(this.images, this.registries, ref, opts);
    this.events.publish('image', 'pull', ref, { name: ref });
    return rec;
  }

  async pushImage(ref: string, opts: PushOptions = {}): Promise<void> {
    await pushImage(this.images, this.registries, ref, opts);
    this.events.publish('image', 'push', ref, { name: ref });
  }

  async login(auth: AuthConfig & { serveraddress?: string }): Promise<{ status: string; identityToken?: string }> {
    return login(this.registries, auth);
  }

  async importImage(tar: Readable, opts: { ref?: string; changes?: string[]; message?: string; signal?: AbortSignal }): Promise<ImageRecord> {
    const rec = await createLayerImage(this.images, {
      layer: tar,
      changes: opts.changes,
      comment: opts.message || 'Imported from -',
      ref: opts.ref,
      signal: opts.signal,
    });
    this.events.publish('image', 'import', rec.id, { name: rec.id });
    return rec;
  }

  async loadImages(tar: Readable, signal?: AbortSignal): Promise<LoadResult> {
    const res = await loadArchive(this.images, tar, { signal });
    for (const r of res.images) this.events.publish('image', 'load', r.id, { name: r.id });
    return res;
  }

  saveImages(refs: string[], signal?: AbortSignal): Readable {
    const out = saveImages(this.images, refs, signal);
    for (const r of refs) this.events.publish('image', 'save', this.images.store.resolve(r).id, { name: r });
    return out;
  }

  async imageHistory(ref: string): Promise<{ id: string; created: number; createdBy: string; size: number; comment: string; tags: string[] }[]> {
    const rec = this.images.store.resolve(ref);
    const config = await this.images.config(rec);
    const history = config.history?.length ? config.history : config.rootfs.diff_ids.map(() => ({}) as NonNullable<ImageConfig['history']>[number]);
    const out = [];
    let layer = 0;
    for (const h of history) {
      let size = 0;
      if (!h.empty_layer && layer < rec.chainIds.length) {
        size = (await this.images.snapshots.layerMeta(rec.chainIds[layer]!))?.size ?? 0;
        layer++;
      }
      out.push({
        id: '<missing>',
        created: h.created ? Math.floor(Date.parse(h.created) / 1000) : 0,
        createdBy: h.created_by ?? '',
        size,
        comment: h.comment ?? '',
        tags: [] as string[],
      });
    }
    out.reverse();
    if (out[0]) {
      out[0].id = rec.id;
      out[0].tags = this.images.store.repoTags(rec.id);
    }
    return out;
  }

  /** Images with their shared size, and the size of all layers (system df). */
  async usage(): Promise<{ images: (ImageView & { sharedSize: number })[]; layersSize: number }> {
    const views = await this.listImages();
    const useCount = new Map<Digest, number>();
    for (const v of views) for (const c of v.record.chainIds) useCount.set(c, (useCount.get(c) ?? 0) + 1);
    let layersSize = 0;
    for (const c of useCount.keys()) layersSize += (await this.images.snapshots.layerMeta(c))?.size ?? 0;
    const images = [];
    for (const v of views) {
      let shared = 0;
      for (const c of v.record.chainIds) if ((useCount.get(c) ?? 0) > 1) shared += (await this.images.snapshots.layerMeta(c))?.size ?? 0;
      images.push({ ...v, sharedSize: shared });
    }
    return { images, layersSize };
  }
}
