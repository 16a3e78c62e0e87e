import type { Digest } from '../oci/digest.ts';
import { EngineError } from '../common/errors.ts';
import { diskUsage } from '../common/fs.ts';
import type { ImageService } from '../images/service.ts';
import { cloneContainer, type CloneOptions, type CloneResult, frozenUsage, type FrozenUsage } from '../containers/clone.ts';
import { changes, commit, exportRootfs, getArchive, putArchive, statPath } from '../containers/files.ts';
import { containerLogs } from '../containers/logs.ts';
import { prune as pruneContainers, top, update } from '../containers/ops.ts';
import { containerCgroupPath, type ContainerParts } from '../containers/parts.ts';
import { listContainers } from '../containers/query.ts';
import type { ContainerService } from '../containers/service.ts';
import { sampleStats, type StatsSample } from '../containers/stats.ts';
import { type ContainerRecord, isRunning } from '../containers/types.ts';
import { type ContainerView, containerView, shownStatus } from '../containers/view.ts';
import type { AttachSession } from '../runtime/index.ts';
import type { EventBus } from './events.ts';
import type { Filters } from './filters.ts';

/** A function's parameters after the first (the pieces the facade passes itself). */
type Rest<F> = F extends (first: never, ...rest: infer R) => unknown ? R : never;

/**
 * The engine's container operations that are more than one call of the
 * ContainerService (whose lifecycle methods the Engine calls itself): the
 * free functions of containers/ given the service's pieces, and the views
 * front ends show.
 */
export class EngineContainers {
  private readonly containers: ContainerService;
  private readonly parts: ContainerParts;
  private readonly images: ImageService;
  private readonly events: EventBus;

  constructor(o: { containers: ContainerService; images: ImageService; events: EventBus }) {
    this.containers = o.containers;
    this.parts = o.containers.parts;
    this.images = o.images;
    this.events = o.events;
  }

  /** Chain IDs that containers still need even if their image is gone. */
  layersInUse(): Digest[] {
    const out = new Set<Digest>();
    for (const c of this.containers.store.list()) for (const l of this.images.store.get(c.imageId)?.chainIds ?? []) out.add(l);
    return [...out];
  }

  /** Which container uses an image, if any (docker refuses rmi then). */
  imageUser(id: Digest): string | undefined {
    return this.containers.store.list().find((c) => c.imageId === id)?.id;
  }

  /** How many containers use an image. */
  containersUsing(id: Digest): number {
    return this.containers.store.list().filter((c) => c.imageId === id).length;
  }

  // ---- containers ---------------------------------------------------------

  /** The container's record (read it, don't change it); NOT_FOUND "No such container: <ref>". */
  container(ref: string): ContainerRecord {
    return this.containers.find(ref);
  }

  containerExists(id: string): boolean {
    return !!this.containers.store.get(id);
  }

  /** docker ps: records with what it shows of them. */
  listContainers(opts: { all?: boolean; limit?: number; filters?: Filters } = {}): ContainerView[] {
    const recs = listContainers(this.containers.store.list(), {
      all: opts.all,
      limit: opts.limit,
      filters: opts.filters ?? {},
      resolveImage: (ref) => this.images.store.tryResolve(ref)?.id,
      find: (ref) => this.containers.find(ref),
      statusOf: (r) => shownStatus(this.parts, r),
    });
    return recs.map((c) => containerView(this.parts, c));
  }

  inspectContainer(ref: string): ContainerView & { execIds: string[] } {
    const c = this.containers.find(ref);
    return { ...containerView(this.parts, c), execIds: this.containers.execs.idsOf(c.id) };
  }

  /** The container's writable layer, and that plus its image. */
  async containerSizes(r: ContainerRecord): Promise<{ rw: number; rootFs: number }> {
    // 0 when the upper dir is gone (removed meanwhile): as docker, sizes are best effort.
    const rw = await diskUsage(this.containers.upperDir(r.id)).catch(() => 0);
    return { rw, rootFs: rw + (this.images.store.get(r.imageId)?.size ?? 0) };
  }

  /** docker shows the name the container was created with while it still points at the same image. */
  containerImageName(r: ContainerRecord): string {
    const cur = this.images.store.tryResolve(r.config.Image);
    return cur && cur.id === r.imageId ? r.config.Image : r.imageId;
  }

  /** keel's clones of a container (containers/clone.ts). */
  cloneContainer(ref: string, opts: CloneOptions = {}): Promise<CloneResult> {
    return cloneContainer(this.parts, ref, opts);
  }

  /** Window size of a running container's TTY (no-op without one). */
  async resizeContainer(ref: string, size: { height: number; width: number }): Promise<void> {
    const c = this.containers.find(ref);
    if (c.state.Status !== 'running' && c.state.Status !== 'paused') throw new EngineError('CONFLICT', `Container ${c.id} is not running`);
    if (c.config.Tty) await this.parts.runtime.resize(c.id, size);
  }

  /**
   * A stdio connection: now if it runs, at its next start if it is created,
   * undefined if it has exited or the client left (`until` resolved) first.
   */
  async attachContainer(rec: ContainerRecord, until?: Promise<void>): Promise<AttachSession | undefined> {
    let gone = false;
    const session = await Promise.race([this.containers.attach(rec), ...(until ? [until.then(() => void (gone = true))] : [])]);
    if (!session) return undefined;
    if (gone) {
      session.close();
      return undefined;
    }
    this.parts.event('attach', rec);
    return session;
  }

  containerLogs(...a: Rest<typeof containerLogs>): ReturnType<typeof containerLogs> {
    return containerLogs(this.parts, ...a);
  }

  /** `container prune`: stopped containers matching the filters. */
  async pruneContainers(filters: Filters = {}): Promise<{ deleted: string[]; reclaimed: number }> {
    const out = await pruneContainers(this.parts, this.containers, filters);
    this.events.publish('container', 'prune', '', { reclaimed: String(out.reclaimed) });
    return out;
  }

  /** One sample of the container's cgroup counters (zeros once it has stopped). */
  containerStats(r: ContainerRecord): StatsSample {
    return sampleStats(containerCgroupPath(this.parts, r), isRunning(r) ? r.state.Pid : 0);
  }

  statContainerPath(...a: Rest<typeof statPath>): ReturnType<typeof statPath> {
    return statPath(this.parts, ...a);
  }

  getContainerArchive(...a: Rest<typeof getArchive>): ReturnType<typeof getArchive> {
    return getArchive(this.parts, ...a);
  }

  putContainerArchive(...a: Rest<typeof putArchive>): ReturnType<typeof putArchive> {
    return putArchive(this.parts, ...a);
  }

  exportContainer(...a: Rest<typeof exportRootfs>): ReturnType<typeof exportRootfs> {
    return exportRootfs(this.parts, ...a);
  }

  containerChanges(...a: Rest<typeof changes>): ReturnType<typeof changes> {
    return changes(this.parts, ...a);
  }

  commitContainer(...a: Rest<typeof commit>): ReturnType<typeof commit> {
    return commit(this.parts, ...a);
  }

  topContainer(...a: Rest<typeof top>): ReturnType<typeof top> {
    return top(this.parts, ...a);
  }

  updateContainer(...a: Rest<typeof update>): ReturnType<typeof update> {
    return update(this.parts, ...a);
  }

  /** Frozen layers of clones (keel's addition to system df). */
  frozenUsage(): Promise<FrozenUsage[]> {
    return frozenUsage(this.parts);
  }

  /** Every container with what system df shows of it. */
  async usage(): Promise<{ record: ContainerRecord; view: ContainerView; sizeRw: number }[]> {
    const out = [];
    for (const c of this.containers.store.list())
      out.push({ record: c, view: containerView(this.parts, c), sizeRw: await diskUsage(this.containers.upperDir(c.id)).catch(() => 0) });
    return out;
  }

  /** docker info's container counts. */
  counts(): { total: number; running: number; paused: number; stopped: number } {
    const all = this.containers.store.list();
    const paused = all.filter((c) => c.state.Status === 'paused').length;
    const running = all.filter((c) => isRunning(c)).length - paused;
    return { total: all.length, running, paused, stopped: all.length - running - paused };
  }
}
