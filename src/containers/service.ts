import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { EngineError, isEngineError } from '../common/errors.ts';
import { mkdirp } from '../common/fs.ts';
import { newId, randomName } from '../common/ids.ts';
import { KeyedMutex } from '../common/lock.ts';
import { log } from '../common/log.ts';
import { conmonLogOptions, logPolicy } from './logconfig.ts';
import { keepRotatedLogs } from './logrotate.ts';
import type { ImageService } from '../images/service.ts';
import { mountRootfs, unmount } from '../snapshots/mount.ts';
import { type AttachSession, buildSpec, type ExitInfo, type OciRuntime, specToJson } from '../runtime/index.ts';
import { checkJoinedNetworkOptions, commandOf, type CreateRequest, mergeConfig, normalizeHostConfig } from './create.ts';
import { ExecManager } from './exec.ts';
import * as exit from './exit.ts';
import { HealthMonitor } from './health.ts';
import * as lifecycle from './lifecycle.ts';
import { BasicNetworking, type ContainerNetworking, endpointsFromRequest, hostsContent, joinedContainer, type NetworkEndpoint, resolvContent } from './network.ts';
import { hasJoiners, joinNetwork, networkFiles, type RunNetwork } from './netshare.ts';
import { type ContainerDefaults, runSpecOptions } from './runspec.ts';
import { crashPoint } from '../common/crashpoint.ts';

export type { ContainerDefaults } from './runspec.ts';
import { openDirIn } from './scoped.ts';
import { ContainerStore } from './store.ts';
import { checkAllowed } from './transitions.ts';
import { type ContainerRecord, type EndpointConfig, isRunning, ZERO_TIME } from './types.ts';
import { resolveUserIn } from './user.ts';
import { mountInputFrom, type VolumeService } from '../volumes/index.ts';

/** How containers/ reports state changes (the engine forwards them to its event bus). */
export type EventSink = (action: string, rec: ContainerRecord, extra?: Record<string, string>) => void;

export interface ContainerServiceOptions {
  dataRoot: string;
  execRoot: string;
  images: ImageService;
  /** The OCI runtime that runs the containers (runc + conmon in the engine; a fake in unit tests). */
  runtime: OciRuntime;
  /** Named and anonymous volumes, bind and tmpfs mounts. */
  volumes: VolumeService;
  events?: EventSink;
  /** Bridge and user networks (none and host are handled here). */
  networking?: ContainerNetworking;
  /** Parent cgroup (cgroupfs path) of every container: <cgroupParent>/<id>. */
  cgroupParent?: string;
  defaults?: ContainerDefaults;
}

/**
 * Containers: records, the lifecycle state machine and its side effects
 * (rootfs mount, runtime, network, events). Operations on one container are
 * serialized by a per-container mutex; exits are handled by a monitor per
 * running container that does not take that mutex, so stop() can hold it
 * while it waits for the exit.
 *
 * This class is the facade and holds the state; create, start and attach
 * live here, exit handling in exit.ts, stop/kill/restart/pause/remove/
 * rename/wait in lifecycle.ts (functions over the service, like ops.ts).
 */
export class ContainerService {
  readonly store: ContainerStore;
  readonly driver: OciRuntime;
  readonly images: ImageService;
  readonly execRoot: string;
  readonly networking: ContainerNetworking;
  readonly cgroupParent: string;
  /** The daemon's default ulimits and pids limit, applied at each start as dockerd does. */
  readonly defaults: ContainerDefaults;
  readonly volumes: VolumeService;
  readonly mutex = new KeyedMutex();
  /** exit:<id> (code) and removed:<id> (code) notifications for wait(). */
  readonly bus = new EventEmitter().setMaxListeners(0);
  private readonly publish: EventSink;
  /** Resolves once the container's exit has been handled. */
  readonly monitors = new Map<string, Promise<void>>();
  private readonly mounted = new Set<string>();
  private readonly pending = new Map<string, ((s: AttachSession | undefined) => void)[]>();
  /** Network settings of the current run, for inspect. */
  readonly networks = new Map<string, Record<string, NetworkEndpoint>>();
  private readonly closing = new AbortController();
  /** Containers whose restart by policy is scheduled (exited, not yet started again). */
  readonly restartPending = new Set<string>();
  readonly execs: ExecManager;
  readonly health: HealthMonitor;

  constructor(o: ContainerServiceOptions) {
    this.store = new ContainerStore(path.join(o.dataRoot, 'containers'));
    this.execRoot = o.execRoot;
    this.images = o.images;
    this.driver = o.runtime;
    this.publish = o.events ?? (() => {});
    this.networking = new BasicNetworking(o.networking);
    this.cgroupParent = o.cgroupParent ?? '/keel';
    this.defaults = o.defaults ?? {};
    this.volumes = o.volumes;
    this.execs = new ExecManager(this);
    this.health = new HealthMonitor(this);
  }

  runDir(id: string): string {
    return path.join(this.execRoot, 'containers', id);
  }
  rootfs(id: string): string {
    return path.join(this.runDir(id), 'rootfs');
  }
  logPath(id: string): string {
    return path.join(this.store.containerDir(id), 'container.log');
  }
  cgroupPath(id: string): string {
    return `${this.cgroupParent}/${id}`;
  }
  get shuttingDown(): boolean {
    return this.closing.signal.aborted;
  }
  /** Aborted by close(): monitors stop waiting. */
  get closeSignal(): AbortSignal {
    return this.closing.signal;
  }

  event(action: string, rec: ContainerRecord, extra: Record<string, string> = {}): void {
    this.publish(action, rec, extra);
  }

  find(ref: string): ContainerRecord {
    return this.store.find(ref);
  }

  /** Stops watching containers; they keep running under their conmon. */
  close(): void {
    this.closing.abort();
    this.health.close();
  }

  // ---- create ---------------------------------------------------------------

  /** Creates a container; image garbage collection waits until its snapshot exists (ImageService.lease). */
  create(req: CreateRequest, name?: string): Promise<{ id: string; warnings: string[] }> {
    return this.images.lease(() => this.createLeased(req, name));
  }

  private async createLeased(req: CreateRequest, name?: string): Promise<{ id: string; warnings: string[] }> {
    if (!req || typeof req !== 'object') throw new EngineError('INVALID_ARGUMENT', 'config cannot be empty in order to create a container');
    if (!req.Image || typeof req.Image !== 'string') throw new EngineError('INVALID_ARGUMENT', 'no image given: say which image to create the container from');
    const image = this.images.store.resolve(req.Image);
    const imageConfig = await this.images.config(image);
    const id = newId();
    const hostConfig = normalizeHostConfig(req.HostConfig);
    checkJoinedNetworkOptions(req, hostConfig);
    // dockerd names the joined container by ID, so a rename keeps the link; an unknown one is an error at start.
    const joined = joinedContainer(hostConfig.NetworkMode);
    const joinedRec = joined ? this.store.tryFind(joined) : undefined;
    if (joinedRec) hostConfig.NetworkMode = `container:${joinedRec.id}`;
    const config = mergeConfig(req, imageConfig.config, id);
    if (name !== undefined && name !== '') this.store.checkName(name.replace(/^\//, ''));
    let finalName = name ? name.replace(/^\//, '') : randomName();
    for (let i = 0; !name && this.store.tryFind(finalName) && i < 20; i++) finalName = `${randomName()}${i > 5 ? i : ''}`;
    const { path: p, args } = commandOf(config);
    const now = new Date().toISOString();
    const rec: ContainerRecord = {
      id, name: finalName, created: now, imageId: image.id, path: p, args, config, hostConfig,
      state: { Status: 'created', Pid: 0, ExitCode: 0, Error: '', StartedAt: ZERO_TIME, FinishedAt: ZERO_TIME, OOMKilled: false },
      restartCount: 0, manuallyStopped: false, hasBeenStarted: false,
      endpoints: endpointsFromRequest(hostConfig.NetworkMode, req.NetworkingConfig),
    };
    const eps = (req.NetworkingConfig as { EndpointsConfig?: Record<string, EndpointConfig | null> } | null | undefined)?.EndpointsConfig;
    const mode = hostConfig.NetworkMode === 'default' ? 'bridge' : hostConfig.NetworkMode;
    if (eps && typeof eps === 'object' && mode !== 'host' && mode !== 'none' && joined === undefined) {
      rec.endpoints = {};
      for (const [k, v] of Object.entries(eps).slice(0, 64)) {
        const e: EndpointConfig = {};
        if (v?.Aliases?.length) e.Aliases = v.Aliases.map(String);
        if (v?.IPAMConfig?.IPv4Address) e.IPAMConfig = { IPv4Address: String(v.IPAMConfig.IPv4Address) };
        if (v?.MacAddress) e.MacAddress = String(v.MacAddress);
        rec.endpoints[k === 'default' ? 'bridge' : k] = e;
      }
      rec.endpoints[mode] ??= {};
    }
    // Check everything the runtime spec would refuse now, so a bad flag is a 400 on create, not on start.
    buildSpec(runSpecOptions(rec, {
      rootfs: '/', user: { uid: 0, gid: 0, additionalGids: [], home: '/' }, cwd: '/', netns: 'private',
      files: { hosts: '/etc/hosts', hostname: '/etc/hostname', resolv: '/etc/resolv.conf' }, cgroupsPath: this.cgroupPath(id), defaults: this.defaults,
    }));
    rec.mounts = await this.volumes.prepareContainerMounts(id, mountInputFrom(hostConfig, config.Volumes, (c) => this.find(c).mounts ?? []));
    try {
      await this.images.snapshots.prepare(id, image.chainIds);
      await this.populateVolumes(rec);
      await this.store.add(rec);
    } catch (e) {
      // Undoing a failed create: its own error is the one to report; reconcile sweeps a snapshot without a record.
      await this.unmount(id).catch(() => {});
      await this.images.snapshots.remove(id).catch(() => {});
      await this.volumes.releaseContainerMounts(id, rec.mounts, { removeAnonymous: true }).catch(() => {});
      throw e;
    }
    this.event('create', rec);
    return { id, warnings: [] };
  }

  /** docker's copy-up, once, at create: later starts find copyData cleared. */
  private async populateVolumes(rec: ContainerRecord): Promise<void> {
    const mounts = (rec.mounts ?? []).filter((m) => m.type === 'volume' && m.copyData);
    if (!mounts.length) return;
    await this.mount(rec.id);
    try {
      await this.volumes.populateContainerMounts(rec.id, this.rootfs(rec.id), mounts);
    } finally {
      await this.unmount(rec.id);
    }
    for (const m of mounts) m.copyData = false;
  }

  // ---- start ----------------------------------------------------------------

  async start(ref: string): Promise<void> {
    const rec = this.find(ref);
    await this.mutex.run(rec.id, async () => {
      if (!this.store.get(rec.id)) throw new EngineError('NOT_FOUND', `No such container: ${ref}`);
      checkAllowed('start', rec, { ref });
      rec.manuallyStopped = false;
      rec.restartCount = 0;
      try {
        await this.run(rec);
      } catch (e) {
        if (rec.hostConfig.AutoRemove) void this.remove(rec.id, { force: true }).catch(() => {}); // the start's error is reported; a failed removal leaves an exited container
        throw e;
      }
    });
  }

  /**
   * Mounts, configures and starts the container's process; on failure undoes
   * all of it. Caller holds the mutex (start, restart, the restart policy).
   */
  async run(rec: ContainerRecord): Promise<void> {
    const id = rec.id;
    const rd = this.runDir(id);
    const rootfs = this.rootfs(id);
    let created = false;
    let netAttached = false;
    try {
      await mkdirp(rootfs, 0o700);
      await this.mount(id, { volatile: rec.hostConfig.AutoRemove });
      const volumeMounts = await this.volumes.setupContainerMounts(id, rootfs, rec.mounts ?? []);
      const user = resolveUserIn(rootfs, rec.config.User, (rec.hostConfig.GroupAdd as string[] | null) ?? []);
      let cwd = '/';
      if (rec.config.WorkingDir) {
        const d = openDirIn(rootfs, rec.config.WorkingDir, { create: true });
        cwd = d.clean;
        d.close();
      }
      // Set first: detach tolerates missing pieces, so it also undoes an attach that failed halfway.
      netAttached = true;
      const { namespace, files } = joinedContainer(rec.hostConfig.NetworkMode) !== undefined ? joinNetwork(this.store, rec) : await this.attachNetwork(rec);
      crashPoint('after-network-attach');
      const spec = buildSpec(runSpecOptions(rec, { rootfs, user, cwd, netns: namespace, files, cgroupsPath: this.cgroupPath(id), mounts: volumeMounts, defaults: this.defaults }));
      // Rewritten at every start, so no fsync: a crash just means the next start writes it again.
      await fsp.writeFile(path.join(rd, 'config.json'), specToJson(spec), { mode: 0o600 });
      const c = rec.config;
      // StdinOnce closes stdin when the attached client leaves, but only without a
      // TTY: with one, a client leaving (detach keys) is not an EOF (as in dockerd).
      const leaveStdinOpen = c.OpenStdin && (!c.StdinOnce || c.Tty);
      const { pid } = await this.driver.create(id, rd, { tty: c.Tty, stdin: c.OpenStdin, leaveStdinOpen, name: rec.name, ...conmonLogOptions(rec.hostConfig, this.logPath(id)) });
      created = true;
      crashPoint('after-runc-create');
      await this.connectPending(id);
      await this.driver.start(id);
      crashPoint('after-runc-start');
      rec.state = { ...rec.state, Status: 'running', Pid: pid, ExitCode: 0, Error: '', StartedAt: new Date().toISOString(), OOMKilled: false };
    } catch (e) {
      this.failPending(id);
      if (created) await this.driver.delete(id, { force: true }).catch((e2) => log.warn('cleanup after failed start', { id, error: String(e2) }));
      // Undoing a failed start: its own error is the one to report; reconcile sweeps what stays behind.
      if (netAttached) await this.detachNetwork(rec).catch(() => {});
      await this.volumes.teardownContainerMounts(id, rec.mounts ?? []).catch(() => {});
      await this.unmount(id).catch(() => {});
      rec.state.Error = e instanceof Error ? e.message : String(e);
      if (isEngineError(e, 'COMMAND_NOT_FOUND')) rec.state.ExitCode = 127;
      else if (isEngineError(e, 'CANNOT_EXECUTE')) rec.state.ExitCode = 126;
      else rec.state.ExitCode = 128;
      if (rec.hasBeenStarted) rec.state.Status = 'exited';
      await this.store.save(rec).catch(() => {}); // the state is in memory; the next save writes it
      throw e;
    }
    rec.hasBeenStarted = true;
    this.health.start(rec);
    await this.store.save(rec);
    this.event('start', rec);
    this.monitor(rec);
  }

  /** The container's own network for a run, and the files that describe it. */
  private async attachNetwork(rec: ContainerRecord): Promise<RunNetwork> {
    const att = await this.networking.attach(rec);
    this.networks.set(rec.id, att.networks);
    const files = networkFiles(this.store.containerDir(rec.id));
    await Promise.all([
      fsp.writeFile(files.hosts, hostsContent(rec, att), { mode: 0o644 }),
      fsp.writeFile(files.hostname, `${rec.config.Hostname}\n`, { mode: 0o644 }),
      fsp.writeFile(files.resolv, resolvContent(rec, att), { mode: 0o644 }),
    ]);
    return { namespace: att.namespace, files };
  }

  /** Releases a run's network. Containers that joined its namespace outlive this run in it. */
  detachNetwork(rec: ContainerRecord): Promise<void> {
    return this.networking.detach(rec, { shared: hasJoiners(this.store, rec.id) });
  }

  /** Mounts the rootfs (no-op when it is); `volatile` for a run whose rootfs is thrown away after it (--rm). */
  async mount(id: string, o: { volatile?: boolean } = {}): Promise<void> {
    if (this.mounted.has(id)) return;
    await mkdirp(this.rootfs(id), 0o700);
    await mountRootfs(await this.images.snapshots.mounts(id), this.rootfs(id), o);
    this.mounted.add(id);
  }

  async unmount(id: string): Promise<void> {
    if (!this.mounted.has(id)) return;
    await unmount(this.rootfs(id));
    this.mounted.delete(id);
  }

  isMounted(id: string): boolean {
    return this.mounted.has(id);
  }

  /** Re-learns which rootfs are mounted (after a daemon restart). */
  learnMounts(): void {
    const prefix = path.join(this.execRoot, 'containers') + '/';
    let text = '';
    try {
      text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
    } catch {
      return;
    }
    for (const line of text.split('\n')) {
      const mp = line.split(' ')[4];
      if (!mp?.startsWith(prefix) || !mp.endsWith('/rootfs')) continue;
      const id = mp.slice(prefix.length, -'/rootfs'.length);
      if (/^[a-f0-9]{64}$/.test(id)) this.mounted.add(id);
    }
  }

  // ---- attach before start --------------------------------------------------

  /**
   * A stdio connection to the container: now if it runs, at its next start
   * if it is created (the session is connected before the process runs, so
   * no output is missed), undefined if it has exited.
   */
  async attach(rec: ContainerRecord): Promise<AttachSession | undefined> {
    if (rec.state.Status === 'running' || rec.state.Status === 'paused') return this.driver.attach(rec.id);
    if (rec.state.Status !== 'created' && !(rec.state.Status === 'exited' && this.restartPending.has(rec.id))) return undefined;
    return new Promise((resolve) => {
      const list = this.pending.get(rec.id) ?? [];
      list.push(resolve);
      this.pending.set(rec.id, list);
    });
  }

  private async connectPending(id: string): Promise<void> {
    const list = this.pending.get(id);
    if (!list) return;
    this.pending.delete(id);
    await Promise.all(list.map(async (cb) => {
      try {
        cb(await this.driver.attach(id));
      } catch (e) {
        log.warn('attach at start failed', { id, error: String(e) });
        cb(undefined);
      }
    }));
  }

  /** Answers pending attaches with undefined (start failed, or the container was removed). */
  failPending(id: string): void {
    const list = this.pending.get(id);
    this.pending.delete(id);
    for (const cb of list ?? []) cb(undefined);
  }

  // ---- exit handling (exit.ts) ----------------------------------------------

  monitor(rec: ContainerRecord): void {
    exit.monitor(this, rec);
    // max-file: keep the files conmon rotates away while the container runs.
    this.bus.once(`exit:${rec.id}`, keepRotatedLogs(this.logPath(rec.id), logPolicy(rec.hostConfig)));
  }

  /** Records an exit and releases what the run held: runtime state, network, mount. */
  finalizeExit(rec: ContainerRecord, info: ExitInfo): Promise<void> {
    return exit.finalizeExit(this, rec, info);
  }

  restartScheduled(id: string): boolean {
    return this.restartPending.has(id);
  }

  // ---- stop, kill, restart, pause, remove, rename, wait (lifecycle.ts) ------

  /** Sends the stop signal, then SIGKILL after `timeout` seconds (-1: wait forever). */
  stop(ref: string, timeout?: number): Promise<void> {
    return lifecycle.stop(this, ref, timeout);
  }

  kill(ref: string, sig = 'KILL'): Promise<void> {
    return lifecycle.kill(this, ref, sig);
  }

  restart(ref: string, timeout?: number): Promise<void> {
    return lifecycle.restart(this, ref, timeout);
  }

  pause(ref: string): Promise<void> {
    return lifecycle.pause(this, ref);
  }

  unpause(ref: string): Promise<void> {
    return lifecycle.unpause(this, ref);
  }

  remove(ref: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    return lifecycle.remove(this, ref, opts);
  }

  rename(ref: string, newName: string): Promise<void> {
    return lifecycle.rename(this, ref, newName);
  }

  /**
   * Docker's wait conditions: not-running (now if stopped), next-exit,
   * removed. Resolves with the exit code.
   */
  wait(ref: string, condition: string, signal?: AbortSignal): Promise<number> {
    return lifecycle.wait(this, ref, condition, signal);
  }
}
