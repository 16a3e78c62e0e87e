import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { EngineError } from '../common/errors.ts';
import { diskUsage, mkdirp } from '../common/fs.ts';
import { RootLock } from '../common/lock.ts';
import { log } from '../common/log.ts';
import type { Digest } from '../oci/digest.ts';
import type { ImageConfig } from '../oci/types.ts';
import { createLayerImage } from '../images/import.ts';
import { type PullOptions, pullImage } from '../images/pull.ts';
import { type PushOptions, pushImage } from '../images/push.ts';
import { type AuthConfig, login, RegistryHosts, type RegistryHostsOptions } from '../registry/index.ts';
import { type LoadResult, loadArchive } from '../images/load.ts';
import { saveImages } from '../images/save.ts';
import { type RemoveResult, ImageService } from '../images/service.ts';
import type { ImageRecord } from '../images/store.ts';
import { type CreateNetworkOptions, type EndpointOptions, NetworkManager, type NetworkFilters, type NetworkManagerOptions } from '../network/index.ts';
import { type ContainerDefaults, ContainerService } from '../containers/service.ts';
import { type OciRuntime, RuntimeDriver, runcAdvisories, runcVersion } from '../runtime/index.ts';
import { type VolumeService, volumeService } from '../volumes/index.ts';
import type { ExecManager } from '../containers/exec.ts';
import { reconcile } from '../containers/reconcile.ts';
import { cloneContainer, type CloneOptions, type CloneResult, frozenUsage, type FrozenUsage, reconcileClones } from '../containers/clone.ts';
import { BridgeNetworking, EngineContainerNetworks } from './netattach.ts';
import { type ContainerRecord, isRunning } from '../containers/types.ts';
import type { CreateRequest } from '../containers/create.ts';
import type { ExecConfig, ExecRecord } from '../containers/exec.ts';
import { changes, commit, exportRootfs, getArchive, putArchive, statPath } from '../containers/files.ts';
import { containerLogs } from '../containers/logs.ts';
import { prune as pruneContainers, top, update } from '../containers/ops.ts';
import { listContainers } from '../containers/query.ts';
import { sampleStats, type StatsSample } from '../containers/stats.ts';
import { type ContainerView, containerView } from '../containers/view.ts';
import type { AttachSession, ExecSession } from '../runtime/index.ts';
import type { CreateVolumeOptions, VolumeFilters, VolumeRecord, VolumeUsage } from '../volumes/index.ts';
import type { NetworkRecord, EndpointRecord } from '../network/index.ts';
import type { EngineEvent, EventFilter } from './events.ts';
import { EventBus } from './events.ts';
import { filterImages, type Filters } from './filters.ts';
import { Builder } from '../build/builder.ts';
import { frontend } from '../build/frontend.ts';
import type { BuildOutput, BuildRequest, BuildResult } from '../build/types.ts';
import { PoolManager, type PoolStatus, type TakenContainer } from './pools.ts';

export interface EngineOptions {
  /** Persistent state (default /var/lib/keel). */
  dataRoot?: string;
  /** Runtime state: sockets, runc root, conmon dirs (default /run/keel). */
  execRoot?: string;
  /** Registry endpoints, mirrors, insecure registries, timeouts. */
  registries?: RegistryHostsOptions;
  /** Default bridge, address pool, iptables chain and device prefixes (tests run daemons side by side with these). */
  network?: Partial<Omit<NetworkManagerOptions, 'dataDir' | 'runDir' | 'netnsDir'>>;
  /** Parent cgroup (cgroupfs path) of every container (default /keel). */
  cgroupParent?: string;
  /** The OCI runtime (default: runc under conmon, with its state under execRoot); tests pass a fake. */
  runtime?: OciRuntime;
  /** Log driver and options of containers that name none (daemon.json log-driver/log-opts, dockerd's LogConfig shape). */
  defaultLogConfig?: { Type: string; Config: Record<string, string> };
  /** Limits of containers that set none themselves (daemon.json default-ulimits, default-pids-limit). */
  containerDefaults?: ContainerDefaults;
  /** Bounds on what one layer and one image may unpack to (daemon --max-layer-size/--max-image-size). */
  imageLimits?: { maxLayerBytes?: number; maxImageBytes?: number };
}

/** An image with what docker shows of it. */
export interface ImageView {
  record: ImageRecord;
  config: ImageConfig;
  repoTags: string[];
  repoDigests: string[];
  /** Containers using the image. */
  containers: number;
}

export const VERSION = '0.1.0';

/** A function's parameters after the first (the service the engine passes itself). */
type Rest<F> = F extends (first: never, ...rest: infer R) => unknown ? R : never;

/**
 * What network connect/disconnect need from the containers layer. A running
 * container is changed at once (NetworkManager.connect/disconnect); a created
 * or stopped one only has its record changed, and the network is attached
 * when it starts.
 */
export interface ContainerNetworks {
  /** Resolves a container reference; throws NOT_FOUND "No such container: <ref>". */
  find(ref: string): { id: string; name: string };
  /** Adds the network (by name) with its aliases/ip to the container. */
  connect(id: string, ep: EndpointOptions): Promise<void>;
  disconnect(id: string, network: string, force: boolean): Promise<void>;
}

/**
 * The composition root: one Engine owns one state root (exclusive lock) and
 * exposes the operations front ends call. The daemon serves it over the
 * Docker API; a program may embed it directly.
 */
export class Engine implements AsyncDisposable {
  readonly dataRoot: string;
  readonly execRoot: string;
  readonly images: ImageService;
  readonly registries: RegistryHosts;
  readonly networks: NetworkManager;
  /** The containers layer's side of network connect/disconnect; set where the engine builds its container service. */
  containerNetworking?: ContainerNetworks;
  readonly events = new EventBus();
  readonly started = new Date();
  readonly containers: ContainerService;
  readonly execs: ExecManager;
  /** Named and anonymous volumes (the containers layer mounts them). */
  readonly volumes: VolumeService;
  readonly runtime: OciRuntime;
  /** Dockerfile builds (src/build): cache, builds in flight, prune. */
  readonly builder: Builder;
  /** Problems with this host's setup, shown by `docker info` (e.g. a runc with known escapes). */
  readonly warnings: string[] = [];
  /** The daemon's default log driver for containers that name none (undefined: keel's built-in default). */
  readonly defaultLogConfig?: { Type: string; Config: Record<string, string> };
  private lock?: RootLock;
  private closed = false;

  constructor(opts: EngineOptions = {}) {
    this.dataRoot = path.resolve(opts.dataRoot ?? '/var/lib/keel');
    this.execRoot = path.resolve(opts.execRoot ?? '/run/keel');
    this.images = new ImageService(this.dataRoot, opts.imageLimits);
    this.registries = new RegistryHosts(opts.registries);
    this.defaultLogConfig = opts.defaultLogConfig;
    this.networks = new NetworkManager({
      dataDir: path.join(this.dataRoot, 'network'), runDir: path.join(this.execRoot, 'network'), netnsDir: path.join(this.execRoot, 'netns'),
      ...opts.network,
    });
    this.volumes = volumeService(this.dataRoot);
    this.volumes.setEventSink((action, name, attrs) => this.events.publish('volume', action, name, attrs));
    this.runtime = opts.runtime ?? new RuntimeDriver({ runcRoot: path.join(this.execRoot, 'runc'), stateDir: path.join(this.execRoot, 'conmon') });
    this.containers = new ContainerService({
      dataRoot: this.dataRoot,
      execRoot: this.execRoot,
      images: this.images,
      runtime: this.runtime,
      volumes: this.volumes,
      cgroupParent: opts.cgroupParent,
      defaults: opts.containerDefaults,
      networking: new BridgeNetworking(this.networks, (action, id, attrs) => this.events.publish('network', action, id, attrs)),
      events: (action, rec, extra) => {
        this.events.publish('container', action, rec.id, { ...rec.config.Labels, image: rec.config.Image, name: rec.name, ...extra });
        if (action === 'destroy') this.execs.forgetContainer(rec.id);
      },
    });
    this.execs = this.containers.execs;
    this.containerNetworking = new EngineContainerNetworks(this.networks, this.containers);
    this.builder = new Builder({
      dataRoot: this.dataRoot, images: this.images, containers: this.containers, frontend,
      pull: (ref, o) => this.pullImage(ref, o),
      tag: (id, ref) => this.tagImage(id, ref),
    });
    this.pools = new PoolManager(this);
  }

  /** docker build: runs the Dockerfile of the context, streaming docker's build messages to `out`. */
  build(req: BuildRequest & { buildId?: string }, out: BuildOutput): Promise<BuildResult> {
    return this.builder.build(req, out);
  }

  /** Warm pools of clones (pools.ts). */
  readonly pools: PoolManager;

  async open(): Promise<void> {
    await mkdirp(this.dataRoot, 0o700);
    await fsp.chmod(this.dataRoot, 0o700);
    await mkdirp(this.execRoot, 0o700);
    this.lock = RootLock.acquire(path.join(this.dataRoot, 'keel.lock'), `state root ${this.dataRoot}`);
    try {
      await this.images.init();
      await this.containers.store.load();
      const gc = await this.images.gc(this.layersInUse());
      if (gc.layers || gc.blobs) log.info('removed unreferenced data left by an interrupted operation', gc);
      await this.networks.init();
      const rc = await reconcile(this.containers);
      if (rc.exited || rc.stale) log.info('containers that stopped while keel was down', rc);
      const cr = await reconcileClones(this.containers);
      if (cr.removed || cr.freed) log.info('removed clones a crash cut short and unused frozen layers', cr);
      await this.pools.init();
      // Sandboxes, leases and netns of containers that are gone (daemon crash, host reboot) are released.
      const nr = await this.networks.reconcile(this.containers.store.list().filter(isRunning).map((c) => c.id));
      if (nr.sandboxes || nr.leases || nr.netns) log.info('released network resources of containers that are gone', nr);
      await this.builder.init();
      await this.checkRunc();
    } catch (e) {
      this.lock.release();
      throw e;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.pools.close();
    this.containers.close();
    await this.networks.shutdown().catch((e) => log.warn('network shutdown failed', { error: String(e) }));
    this.networks.close();
    this.lock?.release();
    this.lock = undefined;
  }

  /** `await using engine = new Engine(...)`: closes it when the scope ends. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Warns, once at startup, about a runc with known container-escape vulnerabilities. */
  private async checkRunc(): Promise<void> {
    try {
      for (const a of runcAdvisories(await runcVersion())) {
        this.warnings.push(`WARNING: ${a.message}`);
        log.warn(a.message, { cve: a.cve });
      }
    } catch (e) {
      this.warnings.push(`WARNING: cannot check the runc version: ${(e as Error).message}`);
    }
  }

  /** Chain IDs that containers still need even if their image is gone. */
  private layersInUse(): Digest[] {
    const out = new Set<Digest>();
    for (const c of this.containers.store.list()) for (const l of this.images.store.get(c.imageId)?.chainIds ?? []) out.add(l);
    return [...out];
  }

  /** Which container uses an image, if any (docker refuses rmi then). */
  imageUser(id: Digest): string | undefined {
    return this.containers.store.list().find((c) => c.imageId === id)?.id;
  }

  private containersUsing(id: Digest): number {
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
    });
    return recs.map((c) => containerView(this.containers, c));
  }

  inspectContainer(ref: string): ContainerView & { execIds: string[] } {
    const c = this.containers.find(ref);
    return { ...containerView(this.containers, c), execIds: this.execs.idsOf(c.id) };
  }

  /** The container's writable layer, and that plus its image. */
  async containerSizes(r: ContainerRecord): Promise<{ rw: number; rootFs: number }> {
    // 0 when the upper dir is gone (removed meanwhile): as docker, sizes are best effort.
    const rw = await diskUsage(this.images.snapshots.upperDir(r.id)).catch(() => 0);
    return { rw, rootFs: rw + (this.images.store.get(r.imageId)?.size ?? 0) };
  }

  /** docker shows the name the container was created with while it still points at the same image. */
  containerImageName(r: ContainerRecord): string {
    const cur = this.images.store.tryResolve(r.config.Image);
    return cur && cur.id === r.imageId ? r.config.Image : r.imageId;
  }

  createContainer(req: CreateRequest, name?: string): Promise<{ id: string; warnings: string[] }> {
    return this.containers.create(req, name);
  }

  startContainer(ref: string): Promise<void> {
    return this.containers.start(ref);
  }

  stopContainer(ref: string, timeout?: number): Promise<void> {
    return this.containers.stop(ref, timeout);
  }

  restartContainer(ref: string, timeout?: number): Promise<void> {
    return this.containers.restart(ref, timeout);
  }

  killContainer(ref: string, signal?: string): Promise<void> {
    return this.containers.kill(ref, signal);
  }

  pauseContainer(ref: string): Promise<void> {
    return this.containers.pause(ref);
  }

  unpauseContainer(ref: string): Promise<void> {
    return this.containers.unpause(ref);
  }

  renameContainer(ref: string, name: string): Promise<void> {
    return this.containers.rename(ref, name);
  }

  removeContainer(ref: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    return this.containers.remove(ref, opts);
  }

  /** keel's clones of a container (containers/clone.ts). */
  cloneContainer(ref: string, opts: CloneOptions = {}): Promise<CloneResult> {
    return cloneContainer(this.containers, ref, opts);
  }

  createPool(o: { name: string; from: string; size: number; ready?: string }): Promise<PoolStatus> {
    return this.pools.create(o);
  }

  listPools(): PoolStatus[] {
    return this.pools.list();
  }

  takeFromPool(name: string, o: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<TakenContainer> {
    return this.pools.take(name, o);
  }

  removePool(name: string): Promise<void> {
    return this.pools.remove(name);
  }

  /** Docker's wait conditions (not-running, next-exit, removed); resolves with the exit code. */
  waitContainer(ref: string, condition: string, signal?: AbortSignal): Promise<number> {
    return this.containers.wait(ref, condition, signal);
  }

  /** Window size of a running container's TTY (no-op without one). */
  async resizeContainer(ref: string, size: { height: number; width: number }): Promise<void> {
    const c = this.containers.find(ref);
    if (c.state.Status !== 'running' && c.state.Status !== 'paused') throw new EngineError('CONFLICT', `Container ${c.id} is not running`);
    if (c.config.Tty) await this.containers.driver.resize(c.id, size);
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
    this.containers.event('attach', rec);
    return session;
  }

  containerLogs(...a: Rest<typeof containerLogs>): ReturnType<typeof containerLogs> {
    return containerLogs(this.containers, ...a);
  }

  /** `container prune`: stopped containers matching the filters. */
  async pruneContainers(filters: Filters = {}): Promise<{ deleted: string[]; reclaimed: number }> {
    const out = await pruneContainers(this.containers, filters);
    this.events.publish('container', 'prune', '', { reclaimed: String(out.reclaimed) });
    return out;
  }

  /** One sample of the container's cgroup counters (zeros once it has stopped). */
  containerStats(r: ContainerRecord): StatsSample {
    return sampleStats(this.containers.cgroupPath(r.id), isRunning(r) ? r.state.Pid : 0);
  }

  statContainerPath(...a: Rest<typeof statPath>): ReturnType<typeof statPath> {
    return statPath(this.containers, ...a);
  }

  getContainerArchive(...a: Rest<typeof getArchive>): ReturnType<typeof getArchive> {
    return getArchive(this.containers, ...a);
  }

  putContainerArchive(...a: Rest<typeof putArchive>): ReturnType<typeof putArchive> {
    return putArchive(this.containers, ...a);
  }

  exportContainer(...a: Rest<typeof exportRootfs>): ReturnType<typeof exportRootfs> {
    return exportRootfs(this.containers, ...a);
  }

  containerChanges(...a: Rest<typeof changes>): ReturnType<typeof changes> {
    return changes(this.containers, ...a);
  }

  commitContainer(...a: Rest<typeof commit>): ReturnType<typeof commit> {
    return commit(this.containers, ...a);
  }

  topContainer(...a: Rest<typeof top>): ReturnType<typeof top> {
    return top(this.containers, ...a);
  }

  updateContainer(...a: Rest<typeof update>): ReturnType<typeof update> {
    return update(this.containers, ...a);
  }

  // ---- exec ---------------------------------------------------------------

  createExec(containerRef: string, config: ExecConfig): ExecRecord {
    return this.execs.create(containerRef, config);
  }

  /** The exec instance (read it, don't change it); NOT_FOUND when unknown. */
  exec(id: string): ExecRecord {
    return this.execs.get(id);
  }

  startExec(id: string, opts: { detach?: boolean; tty?: boolean; consoleSize?: { height: number; width: number } }): Promise<ExecSession> {
    return this.execs.start(id, opts);
  }

  resizeExec(id: string, size: { height: number; width: number }): void {
    this.execs.resize(id, size);
  }

  // ---- volumes ------------------------------------------------------------

  listVolumes(filters: VolumeFilters = {}): Promise<VolumeRecord[]> {
    return this.volumes.list(filters);
  }

  createVolume(name: string | undefined, opts: CreateVolumeOptions = {}): Promise<VolumeRecord> {
    return this.volumes.create(name, opts);
  }

  inspectVolume(name: string): Promise<VolumeRecord> {
    return this.volumes.inspect(name);
  }

  removeVolume(name: string, opts: { force?: boolean } = {}): Promise<void> {
    return this.volumes.remove(name, opts);
  }

  pruneVolumes(filters: VolumeFilters = {}): Promise<{ deleted: string[]; reclaimed: number }> {
    return this.volumes.prune(filters);
  }

  volumeUsage(): Promise<VolumeUsage[]> {
    return this.volumes.usage();
  }

  /** The host folder of a named volume's data. */
  volumeMountpoint(name: string): string {
    return this.volumes.mountpoint(name);
  }

  // ---- events -------------------------------------------------------------

  /** Events still in memory that match the filter (docker events --since). */
  pastEvents(f: EventFilter): EngineEvent[] {
    return this.events.past(f);
  }

  /** Calls `fn` with every new event matching the filter; returns the unsubscribe. */
  subscribeEvents(f: EventFilter, fn: (e: EngineEvent) => void): () => void {
    return this.events.subscribe(f, fn);
  }

  // ---- images -------------------------------------------------------------

  async imageView(rec: ImageRecord): Promise<ImageView> {
    return {
      record: rec,
      config: await this.images.config(rec),
      repoTags: this.images.store.repoTags(rec.id),
      repoDigests: this.images.store.repoDigests(rec.id),
      containers: this.containersUsing(rec.id),
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
    const res = await this.images.remove(ref, { ...opts, inUse: (id) => this.imageUser(id) });
    for (const n of res.untagged) this.events.publish('image', 'untag', this.images.store.lookupName(n) ?? res.deleted[0] ?? n, { name: n });
    for (const d of res.deleted) this.events.publish('image', 'delete', d, { name: d });
    return res;
  }

  /** `image prune`: dangling images (or all unused with `all`). */
  async pruneImages(opts: { all?: boolean; filters?: Filters } = {}): Promise<{ deleted: RemoveResult; reclaimed: number }> {
    const deleted: RemoveResult = { untagged: [], deleted: [] };
    let reclaimed = 0;
    // Rounds: removing an image makes its (build step) parent dangling, which the next round removes.
    for (let removed = -1; removed !== deleted.deleted.length; ) {
      removed = deleted.deleted.length;
      for (const v of await this.listImages({ filters: opts.filters })) {
        if (v.containers > 0 || this.imageUser(v.record.id)) continue;
        if (!opts.all && v.repoTags.length > 0) continue;
        const names = this.images.store.namesOf(v.record.id);
        await this.images.store.delete(v.record.id);
        deleted.untagged.push(...names);
        deleted.deleted.push(v.record.id);
        this.events.publish('image', 'delete', v.record.id, { name: v.record.id });
      }
    }
    if (deleted.deleted.length) reclaimed = (await this.images.gc(this.layersInUse())).bytes;
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

  // ---- networks -----------------------------------------------------------

  async createNetwork(o: CreateNetworkOptions): Promise<{ Id: string; Warning: string }> {
    const out = await this.networks.createNetwork(o);
    this.events.publish('network', 'create', out.Id, { name: o.Name, type: o.Driver || 'bridge' });
    return out;
  }

  async removeNetwork(ref: string): Promise<void> {
    const n = this.networks.store.get(ref);
    await this.networks.removeNetwork(n.Id);
    this.events.publish('network', 'destroy', n.Id, { name: n.Name, type: n.Driver });
  }

  listNetworks(filters: NetworkFilters = {}): NetworkRecord[] {
    return this.networks.listNetworks(filters);
  }

  inspectNetwork(ref: string): { network: NetworkRecord; endpoints: EndpointRecord[] } {
    return this.networks.inspect(ref);
  }

  /** `network prune`: user networks without endpoints; returns their names. */
  async pruneNetworks(filters: NetworkFilters = {}): Promise<string[]> {
    const before = new Map(this.networks.store.list().map((n) => [n.Name, n]));
    const gone = await this.networks.prune(filters);
    for (const name of gone) this.events.publish('network', 'destroy', before.get(name)?.Id ?? name, { name, type: 'bridge' });
    this.events.publish('network', 'prune', '', { reclaimed: '0' });
    return gone;
  }

  /**
   * `network connect`: a running container gets the endpoint now; a created
   * one keeps it in its record and gets it at start (docker-compose v1 does
   * disconnect + connect between create and start).
   */
  async connectNetwork(netRef: string, containerRef: string, ep: Omit<EndpointOptions, 'network'>): Promise<void> {
    const n = this.networks.store.get(netRef);
    const c = this.containerNetworks().find(containerRef);
    await this.containerNetworks().connect(c.id, { ...ep, network: n.Name });
    this.events.publish('network', 'connect', n.Id, { container: c.id, name: n.Name, type: n.Driver });
  }

  async disconnectNetwork(netRef: string, containerRef: string, force = false): Promise<void> {
    const n = this.networks.store.get(netRef);
    const c = this.containerNetworks().find(containerRef);
    await this.containerNetworks().disconnect(c.id, n.Name, force);
    this.events.publish('network', 'disconnect', n.Id, { container: c.id, name: n.Name, type: n.Driver });
  }

  private containerNetworks(): ContainerNetworks {
    if (!this.containerNetworking) throw new EngineError('UNAVAILABLE', 'containers are not available in this engine');
    return this.containerNetworking;
  }

  // ---- system -------------------------------------------------------------

  async systemDf(): Promise<{ images: (ImageView & { sharedSize: number })[]; layersSize: number; containers: { record: ContainerRecord; view: ContainerView; sizeRw: number }[] }> {
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
    const containers = [];
    for (const c of this.containers.store.list()) containers.push({ record: c, view: containerView(this.containers, c), sizeRw: await diskUsage(this.images.snapshots.upperDir(c.id)).catch(() => 0) });
    return { images, layersSize, containers };
  }

  /** Frozen layers of clones (keel's addition to system df). */
  frozenUsage(): Promise<FrozenUsage[]> {
    return frozenUsage(this.containers);
  }

  info(): { images: number; containers: { total: number; running: number; paused: number; stopped: number }; hostname: string } {
    return {
      images: this.images.store.list().length,
      containers: (() => {
        const all = this.containers.store.list();
        const paused = all.filter((c) => c.state.Status === 'paused').length;
        const running = all.filter((c) => isRunning(c)).length - paused;
        return { total: all.length, running, paused, stopped: all.length - running - paused };
      })(),
      hostname: os.hostname(),
    };
  }
}
