import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { mkdirp } from '../common/fs.ts';
import { RootLock } from '../common/lock.ts';
import { log } from '../common/log.ts';
import type { Digest } from '../oci/digest.ts';
import type { PullOptions } from '../images/pull.ts';
import type { PushOptions } from '../images/push.ts';
import { type AuthConfig, RegistryHosts, type RegistryHostsOptions } from '../registry/index.ts';
import type { LoadResult } from '../images/load.ts';
import { type RemoveResult, ImageService } from '../images/service.ts';
import type { ImageRecord } from '../images/store.ts';
import { Snapshotter } from '../snapshots/overlay.ts';
import { type CreateNetworkOptions, type EndpointOptions, NetworkManager, type NetworkFilters, type NetworkManagerOptions } from '../network/index.ts';
import { type ContainerDefaults, ContainerService } from '../containers/service.ts';
import { type OciRuntime, RuntimeDriver, runcAdvisories, runcVersion } from '../runtime/index.ts';
import { type VolumeService, volumeService } from '../volumes/index.ts';
import type { ExecManager } from '../containers/exec.ts';
import { type CloneOptions, type CloneResult, type FrozenUsage, reconcileClones } from '../containers/clone.ts';
import { BridgeNetworking, EngineContainerNetworks } from './netattach.ts';
import { type ContainerRecord, isRunning } from '../containers/types.ts';
import type { ContainerSpec } from '../containers/spec.ts';
import type { ExecConfig, ExecRecord } from '../containers/exec.ts';
import type { StatsSample } from '../containers/stats.ts';
import type { ContainerView } from '../containers/view.ts';
import type { AttachSession, ExecSession } from '../runtime/index.ts';
import type { CreateVolumeOptions, VolumeFilters, VolumeRecord, VolumeUsage } from '../volumes/index.ts';
import type { NetworkRecord, EndpointRecord } from '../network/index.ts';
import type { EngineEvent, EventFilter } from './events.ts';
import { EventBus } from './events.ts';
import type { Filters } from './filters.ts';
import { Builder } from '../build/builder.ts';
import { frontend } from '../build/frontend.ts';
import type { BuildOutput, BuildRequest, BuildResult } from '../build/types.ts';
import { EngineContainers } from './containers.ts';
import { EngineImages, type ImageView } from './images.ts';
import { type ContainerNetworks, EngineNetworks } from './networks.ts';
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

export type { ImageView } from './images.ts';
export type { ContainerNetworks } from './networks.ts';

export const VERSION = '0.1.0';

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
  private readonly c: EngineContainers;
  private readonly i: EngineImages;
  private readonly n: EngineNetworks;
  private lock?: RootLock;
  private closed = false;

  constructor(opts: EngineOptions = {}) {
    this.dataRoot = path.resolve(opts.dataRoot ?? '/var/lib/keel');
    this.execRoot = path.resolve(opts.execRoot ?? '/run/keel');
    this.images = new ImageService(this.dataRoot, new Snapshotter(path.join(this.dataRoot, 'overlay')), opts.imageLimits);
    this.registries = new RegistryHosts(opts.registries);
    this.defaultLogConfig = opts.defaultLogConfig;
    this.networks = new NetworkManager({
      dataDir: path.join(this.dataRoot, 'network'),
      runDir: path.join(this.execRoot, 'network'),
      netnsDir: path.join(this.execRoot, 'netns'),
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
    this.containerNetworking = new EngineContainerNetworks(this.networks, this.containers.parts);
    this.builder = new Builder({
      dataRoot: this.dataRoot,
      images: this.images,
      containers: this.containers,
      frontend,
      pull: (ref, o) => this.pullImage(ref, o),
      tag: (id, ref) => this.tagImage(id, ref),
    });
    this.c = new EngineContainers({ containers: this.containers, images: this.images, events: this.events });
    this.i = new EngineImages({ images: this.images, registries: this.registries, events: this.events, users: this.c });
    this.n = new EngineNetworks({ networks: this.networks, events: this.events, containers: () => this.containerNetworking });
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
      const gc = await this.images.gc(this.c.layersInUse());
      if (gc.layers || gc.blobs) log.info('removed unreferenced data left by an interrupted operation', gc);
      await this.networks.init();
      const rc = await this.containers.reconcile();
      if (rc.exited || rc.stale) log.info('containers that stopped while keel was down', rc);
      const cr = await reconcileClones(this.containers.parts);
      if (cr.removed || cr.freed) log.info('removed clones a crash cut short and unused frozen layers', cr);
      await this.pools.init();
      // Sandboxes, leases and netns of containers that are gone (daemon crash, host reboot) are released.
      const nr = await this.networks.reconcile(
        this.containers.store
          .list()
          .filter(isRunning)
          .map((c) => c.id),
      );
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

  /** Which container uses an image, if any (docker refuses rmi then). */
  imageUser(id: Digest): string | undefined {
    return this.c.imageUser(id);
  }

  // ---- containers ---------------------------------------------------------

  /** The container's record (read it, don't change it); NOT_FOUND "No such container: <ref>". */
  container(ref: string): ContainerRecord {
    return this.c.container(ref);
  }

  containerExists(id: string): boolean {
    return this.c.containerExists(id);
  }

  /** docker ps: records with what it shows of them. */
  listContainers(opts: { all?: boolean; limit?: number; filters?: Filters } = {}): ContainerView[] {
    return this.c.listContainers(opts);
  }

  inspectContainer(ref: string): ContainerView & { execIds: string[] } {
    return this.c.inspectContainer(ref);
  }

  /** The container's writable layer, and that plus its image. */
  containerSizes(r: ContainerRecord): Promise<{ rw: number; rootFs: number }> {
    return this.c.containerSizes(r);
  }

  /** docker shows the name the container was created with while it still points at the same image. */
  containerImageName(r: ContainerRecord): string {
    return this.c.containerImageName(r);
  }

  createContainer(spec: ContainerSpec): Promise<{ id: string; warnings: string[] }> {
    return this.containers.create(spec);
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
    return this.c.cloneContainer(ref, opts);
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
  resizeContainer(ref: string, size: { height: number; width: number }): Promise<void> {
    return this.c.resizeContainer(ref, size);
  }

  /**
   * A stdio connection: now if it runs, at its next start if it is created,
   * undefined if it has exited or the client left (`until` resolved) first.
   */
  attachContainer(rec: ContainerRecord, until?: Promise<void>): Promise<AttachSession | undefined> {
    return this.c.attachContainer(rec, until);
  }

  containerLogs(...a: Parameters<EngineContainers['containerLogs']>): ReturnType<EngineContainers['containerLogs']> {
    return this.c.containerLogs(...a);
  }

  /** `container prune`: stopped containers matching the filters. */
  pruneContainers(filters: Filters = {}): Promise<{ deleted: string[]; reclaimed: number }> {
    return this.c.pruneContainers(filters);
  }

  /** One sample of the container's cgroup counters (zeros once it has stopped). */
  containerStats(r: ContainerRecord): StatsSample {
    return this.c.containerStats(r);
  }

  statContainerPath(...a: Parameters<EngineContainers['statContainerPath']>): ReturnType<EngineContainers['statContainerPath']> {
    return this.c.statContainerPath(...a);
  }

  getContainerArchive(...a: Parameters<EngineContainers['getContainerArchive']>): ReturnType<EngineContainers['getContainerArchive']> {
    return this.c.getContainerArchive(...a);
  }

  putContainerArchive(...a: Parameters<EngineContainers['putContainerArchive']>): ReturnType<EngineContainers['putContainerArchive']> {
    return this.c.putContainerArchive(...a);
  }

  exportContainer(...a: Parameters<EngineContainers['exportContainer']>): ReturnType<EngineContainers['exportContainer']> {
    return this.c.exportContainer(...a);
  }

  containerChanges(...a: Parameters<EngineContainers['containerChanges']>): ReturnType<EngineContainers['containerChanges']> {
    return this.c.containerChanges(...a);
  }

  commitContainer(...a: Parameters<EngineContainers['commitContainer']>): ReturnType<EngineContainers['commitContainer']> {
    return this.c.commitContainer(...a);
  }

  topContainer(...a: Parameters<EngineContainers['topContainer']>): ReturnType<EngineContainers['topContainer']> {
    return this.c.topContainer(...a);
  }

  updateContainer(...a: Parameters<EngineContainers['updateContainer']>): ReturnType<EngineContainers['updateContainer']> {
    return this.c.updateContainer(...a);
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

  imageView(rec: ImageRecord): Promise<ImageView> {
    return this.i.imageView(rec);
  }

  inspectImage(ref: string): Promise<ImageView> {
    return this.i.inspectImage(ref);
  }

  listImages(opts: { all?: boolean; filters?: Filters } = {}): Promise<ImageView[]> {
    return this.i.listImages(opts);
  }

  tagImage(source: string, target: string): Promise<void> {
    return this.i.tagImage(source, target);
  }

  removeImage(ref: string, opts: { force?: boolean; noPrune?: boolean } = {}): Promise<RemoveResult> {
    return this.i.removeImage(ref, opts);
  }

  /** `image prune`: dangling images (or all unused with `all`). */
  pruneImages(opts: { all?: boolean; filters?: Filters } = {}): Promise<{ deleted: RemoveResult; reclaimed: number }> {
    return this.i.pruneImages(opts);
  }

  /** docker pull; errors before the first progress message mean nothing moved. */
  pullImage(ref: string, opts: PullOptions = {}): Promise<ImageRecord> {
    return this.i.pullImage(ref, opts);
  }

  pushImage(ref: string, opts: PushOptions = {}): Promise<void> {
    return this.i.pushImage(ref, opts);
  }

  login(auth: AuthConfig & { serveraddress?: string }): Promise<{ status: string; identityToken?: string }> {
    return this.i.login(auth);
  }

  importImage(tar: Readable, opts: { ref?: string; changes?: string[]; message?: string; signal?: AbortSignal }): Promise<ImageRecord> {
    return this.i.importImage(tar, opts);
  }

  loadImages(tar: Readable, signal?: AbortSignal): Promise<LoadResult> {
    return this.i.loadImages(tar, signal);
  }

  saveImages(refs: string[], signal?: AbortSignal): Readable {
    return this.i.saveImages(refs, signal);
  }

  imageHistory(ref: string): Promise<{ id: string; created: number; createdBy: string; size: number; comment: string; tags: string[] }[]> {
    return this.i.imageHistory(ref);
  }

  // ---- networks -----------------------------------------------------------

  createNetwork(o: CreateNetworkOptions): Promise<{ Id: string; Warning: string }> {
    return this.n.createNetwork(o);
  }

  removeNetwork(ref: string): Promise<void> {
    return this.n.removeNetwork(ref);
  }

  listNetworks(filters: NetworkFilters = {}): NetworkRecord[] {
    return this.n.listNetworks(filters);
  }

  inspectNetwork(ref: string): { network: NetworkRecord; endpoints: EndpointRecord[] } {
    return this.n.inspectNetwork(ref);
  }

  /** `network prune`: user networks without endpoints; returns their names. */
  pruneNetworks(filters: NetworkFilters = {}): Promise<string[]> {
    return this.n.pruneNetworks(filters);
  }

  /**
   * `network connect`: a running container gets the endpoint now; a created
   * one keeps it in its record and gets it at start (docker-compose v1 does
   * disconnect + connect between create and start).
   */
  connectNetwork(netRef: string, containerRef: string, ep: Omit<EndpointOptions, 'network'>): Promise<void> {
    return this.n.connectNetwork(netRef, containerRef, ep);
  }

  disconnectNetwork(netRef: string, containerRef: string, force = false): Promise<void> {
    return this.n.disconnectNetwork(netRef, containerRef, force);
  }

  // ---- system -------------------------------------------------------------

  async systemDf(): Promise<{
    images: (ImageView & { sharedSize: number })[];
    layersSize: number;
    containers: { record: ContainerRecord; view: ContainerView; sizeRw: number }[];
  }> {
    const { images, layersSize } = await this.i.usage();
    return { images, layersSize, containers: await this.c.usage() };
  }

  /** Frozen layers of clones (keel's addition to system df). */
  frozenUsage(): Promise<FrozenUsage[]> {
    return this.c.frozenUsage();
  }

  info(): { images: number; containers: { total: number; running: number; paused: number; stopped: number }; hostname: string } {
    return { images: this.images.store.list().length, containers: this.c.counts(), hostname: os.hostname() };
  }
}
