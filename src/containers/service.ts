import fsp from 'node:fs/promises';
import path from 'node:path';
import { EngineError, isEngineError } from '../common/errors.ts';
import { mkdirp } from '../common/fs.ts';
import { newId, randomName } from '../common/ids.ts';
import { KeyedMutex } from '../common/lock.ts';
import { log } from '../common/log.ts';
import { Phases } from '../common/phases.ts';
import { conmonLogOptions, logPolicy } from './logconfig.ts';
import { keepRotatedLogs } from './logrotate.ts';
import type { ImageService } from '../images/service.ts';
import { type AttachSession, buildSpec, type ExitInfo, type OciRuntime, specToJson } from '../runtime/index.ts';
import { checkJoinedNetworkOptions, commandOf, mergeConfig } from './create.ts';
import { endpointsOf, hostConfigOf } from './record.ts';
import type { ContainerSpec } from './spec.ts';
import { ExecManager } from './exec.ts';
import * as exit from './exit.ts';
import { HealthMonitor } from './health.ts';
import * as lifecycle from './lifecycle.ts';
import { type ContainerNetworking, joinedContainer } from './network.ts';
import { type ContainerOps, type ContainerParts, type EventSink, startCgroupPath } from './parts.ts';
import { resolveJoinedNamespaces, runNamespaces } from './nsjoin.ts';
import { reconcile } from './reconcile.ts';
import { RestartManager } from './restart.ts';
import { type Mounter, RootfsKeeper } from './rootfs.ts';
import type { RunNetwork } from './netshare.ts';
import { RunNetworks } from './runnet.ts';
import { type ContainerDefaults, runSpecOptions } from './runspec.ts';
import { crashPoint } from '../common/crashpoint.ts';

export type { ContainerDefaults } from './runspec.ts';
import { openDirIn } from './scoped.ts';
import { ContainerStore } from './store.ts';
import { checkAllowed } from './transitions.ts';
import { type ContainerRecord, ZERO_TIME } from './types.ts';
import { resolveUserIn } from './user.ts';
import { mountInputFrom, type VolumeService } from '../volumes/index.ts';
import { ExitWatcher } from './watcher.ts';

export type { EventSink } from './parts.ts';

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
  /** Mounts snapshots as rootfs (default: the kernel's; unit tests pass a fake). */
  mounter?: Mounter;
}

/**
 * Containers: create, start and attach, and the facade over the rest
 * (stop/kill/restart/pause/remove/rename/wait in lifecycle.ts, exit
 * handling in exit.ts). The state lives in owned pieces with narrow jobs
 * (parts.ts): the record store, the rootfs keeper, the exit watcher, the
 * restart manager, the run networks; the free functions take those pieces,
 * not the service. Operations on one container are serialized by a
 * per-container mutex; exits are handled by a monitor per running container
 * that does not take that mutex, so stop() can hold it while it waits for
 * the exit.
 */
export class ContainerService implements ContainerOps {
  readonly parts: ContainerParts;
  /** The records (parts.store). */
  readonly store: ContainerStore;
  /** Exec instances (parts.execs). */
  readonly execs: ExecManager;
  private readonly pending = new Map<string, ((s: AttachSession | undefined) => void)[]>();

  constructor(o: ContainerServiceOptions) {
    const store = new ContainerStore(path.join(o.dataRoot, 'containers'));
    const exits = new ExitWatcher();
    const base = {
      store,
      runtime: o.runtime,
      rootfs: new RootfsKeeper(o.execRoot, (id) => o.images.snapshots.mounts(id), o.mounter),
      exits,
      restarts: new RestartManager(),
      nets: new RunNetworks(store, o.networking),
      images: o.images,
      volumes: o.volumes,
      mutex: new KeyedMutex(),
      event: o.events ?? (() => {}),
      defaults: o.defaults ?? {},
      cgroupParent: o.cgroupParent ?? '/keel',
    };
    const execs = new ExecManager(base);
    const health = new HealthMonitor({ ...base, execs });
    this.parts = Object.freeze({ ...base, execs, health });
    this.store = store;
    this.execs = execs;
  }

  find(ref: string): ContainerRecord {
    return this.store.find(ref);
  }

  /** The container's writable layer. */
  upperDir(id: string): string {
    return this.parts.images.snapshots.upperDir(id);
  }

  /** Stops watching containers; they keep running under their conmon. */
  close(): void {
    this.parts.exits.close();
    this.parts.health.close();
  }

  // ---- create ---------------------------------------------------------------

  /** Creates a container; image garbage collection waits until its snapshot exists (ImageService.lease). */
  create(spec: ContainerSpec): Promise<{ id: string; warnings: string[] }> {
    return this.parts.images.lease(() => this.createLeased(spec));
  }

  private async createLeased(spec: ContainerSpec): Promise<{ id: string; warnings: string[] }> {
    const name = spec.name;
    if (!spec.image) throw new EngineError('INVALID_ARGUMENT', 'no image given: say which image to create the container from');
    const image = this.parts.images.store.resolve(spec.image);
    const imageConfig = await this.parts.images.config(image);
    const id = newId();
    const hostConfig = hostConfigOf(spec);
    checkJoinedNetworkOptions(spec, hostConfig);
    resolveJoinedNamespaces(this.parts.store, hostConfig);
    // dockerd names the joined container by ID, so a rename keeps the link; an unknown one is an error at start.
    const joined = joinedContainer(hostConfig.NetworkMode);
    const joinedRec = joined ? this.parts.store.tryFind(joined) : undefined;
    if (joinedRec) hostConfig.NetworkMode = `container:${joinedRec.id}`;
    const config = mergeConfig(spec, imageConfig.config, id);
    if (name !== undefined && name !== '') this.parts.store.checkName(name.replace(/^\//, ''));
    let finalName = name ? name.replace(/^\//, '') : randomName();
    for (let i = 0; !name && this.parts.store.tryFind(finalName) && i < 20; i++) finalName = `${randomName()}${i > 5 ? i : ''}`;
    const { path: p, args } = commandOf(config);
    const now = new Date().toISOString();
    const rec: ContainerRecord = {
      id,
      name: finalName,
      created: now,
      imageId: image.id,
      path: p,
      args,
      config,
      hostConfig,
      state: { Status: 'created', Pid: 0, ExitCode: 0, Error: '', StartedAt: ZERO_TIME, FinishedAt: ZERO_TIME, OOMKilled: false },
      restartCount: 0,
      manuallyStopped: false,
      hasBeenStarted: false,
      endpoints: endpointsOf(spec, hostConfig.NetworkMode),
    };
    // Check everything the runtime spec would refuse now, so a bad flag is a 400 on create, not on start.
    buildSpec(
      runSpecOptions(rec, {
        rootfs: '/',
        user: { uid: 0, gid: 0, additionalGids: [], home: '/' },
        cwd: '/',
        netns: 'private',
        files: { hosts: '/etc/hosts', hostname: '/etc/hostname', resolv: '/etc/resolv.conf' },
        cgroupsPath: startCgroupPath(this.parts, rec),
        defaults: this.parts.defaults,
      }),
    );
    rec.mounts = await this.parts.volumes.prepareContainerMounts(
      id,
      mountInputFrom(hostConfig, config.Volumes, (c) => this.find(c).mounts ?? []),
    );
    try {
      await this.parts.images.snapshots.prepare(id, image.chainIds);
      await this.populateVolumes(rec);
      await this.parts.store.add(rec);
    } catch (e) {
      // Undoing a failed create: its own error is the one to report; reconcile sweeps a snapshot without a record.
      await this.parts.rootfs.unmount(id).catch(() => {});
      await this.parts.images.snapshots.remove(id).catch(() => {});
      await this.parts.volumes.releaseContainerMounts(id, rec.mounts, { removeAnonymous: true }).catch(() => {});
      throw e;
    }
    this.parts.event('create', rec);
    return { id, warnings: [] };
  }

  /** docker's copy-up, once, at create: later starts find copyData cleared. */
  private async populateVolumes(rec: ContainerRecord): Promise<void> {
    const mounts = (rec.mounts ?? []).filter((m) => m.type === 'volume' && m.copyData);
    if (!mounts.length) return;
    await this.parts.rootfs.mount(rec.id);
    try {
      await this.parts.volumes.populateContainerMounts(rec.id, this.parts.rootfs.path(rec.id), mounts);
    } finally {
      await this.parts.rootfs.unmount(rec.id);
    }
    for (const m of mounts) m.copyData = false;
  }

  // ---- start ----------------------------------------------------------------

  async start(ref: string): Promise<void> {
    const rec = this.find(ref);
    await this.parts.mutex.run(rec.id, async () => {
      if (!this.parts.store.get(rec.id)) throw new EngineError('NOT_FOUND', `No such container: ${ref}`);
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
    const rd = this.parts.rootfs.runDir(id);
    const rootfs = this.parts.rootfs.path(id);
    let created = false;
    let net: Promise<RunNetwork> | undefined;
    const ph = new Phases();
    try {
      // The network (namespace, veth, NAT: programs to run) does not need the rootfs: it is made meanwhile.
      net = this.parts.nets.attach(rec);
      net.catch(() => {}); // awaited below, or settled before the undo when a rootfs step fails first
      await mkdirp(rootfs, 0o700);
      await this.parts.rootfs.mount(id, { volatile: rec.hostConfig.AutoRemove });
      ph.mark('rootfs');
      const volumeMounts = await this.parts.volumes.setupContainerMounts(id, rootfs, rec.mounts ?? []);
      ph.mark('volumes');
      const user = resolveUserIn(rootfs, rec.config.User, (rec.hostConfig.GroupAdd as string[] | null) ?? []);
      let cwd = '/';
      if (rec.config.WorkingDir) {
        const d = openDirIn(rootfs, rec.config.WorkingDir, { create: true });
        cwd = d.clean;
        d.close();
      }
      ph.mark('user');
      const namespaces = await runNamespaces(this.parts.store, this.parts.rootfs, rec);
      rec.cgroupsPath = startCgroupPath(this.parts, rec);
      const { namespace, files } = await net;
      ph.mark('network');
      crashPoint('after-network-attach');
      const spec = buildSpec(
        runSpecOptions(rec, {
          rootfs,
          user,
          cwd,
          netns: namespace,
          files,
          cgroupsPath: rec.cgroupsPath,
          namespaces,
          mounts: volumeMounts,
          defaults: this.parts.defaults,
        }),
      );
      // Rewritten at every start, so no fsync: a crash just means the next start writes it again.
      await fsp.writeFile(path.join(rd, 'config.json'), specToJson(spec), { mode: 0o600 });
      ph.mark('spec');
      const c = rec.config;
      // StdinOnce closes stdin when the attached client leaves, but only without a
      // TTY: with one, a client leaving (detach keys) is not an EOF (as in dockerd).
      const leaveStdinOpen = c.OpenStdin && (!c.StdinOnce || c.Tty);
      const { pid } = await this.parts.runtime.create(id, rd, {
        tty: c.Tty,
        stdin: c.OpenStdin,
        leaveStdinOpen,
        name: rec.name,
        ...conmonLogOptions(rec.hostConfig, this.parts.store.logPath(id)),
      });
      created = true;
      ph.mark('create');
      crashPoint('after-runc-create');
      await this.connectPending(id);
      await this.parts.runtime.start(id);
      ph.mark('start');
      crashPoint('after-runc-start');
      rec.state = { ...rec.state, Status: 'running', Pid: pid, ExitCode: 0, Error: '', StartedAt: new Date().toISOString(), OOMKilled: false };
    } catch (e) {
      this.failPending(id);
      if (created) await this.parts.runtime.delete(id, { force: true }).catch((e2) => log.warn('cleanup after failed start', { id, error: String(e2) }));
      // Undoing a failed start: its own error is the one to report; reconcile sweeps what stays behind.
      // detach tolerates missing pieces, so it also undoes an attach that failed halfway.
      if (net)
        await net
          .then(
            () => this.parts.nets.detach(rec),
            () => this.parts.nets.detach(rec),
          )
          .catch(() => {});
      await this.parts.volumes.teardownContainerMounts(id, rec.mounts ?? []).catch(() => {});
      await this.parts.rootfs.unmount(id).catch(() => {});
      rec.state.Error = e instanceof Error ? e.message : String(e);
      if (isEngineError(e, 'COMMAND_NOT_FOUND')) rec.state.ExitCode = 127;
      else if (isEngineError(e, 'CANNOT_EXECUTE')) rec.state.ExitCode = 126;
      else rec.state.ExitCode = 128;
      if (rec.hasBeenStarted) rec.state.Status = 'exited';
      await this.parts.store.save(rec).catch(() => {}); // the state is in memory; the next save writes it
      throw e;
    }
    rec.hasBeenStarted = true;
    this.parts.health.start(rec);
    // Without a restart policy, no fsync: a daemon kill -9 keeps the page cache, and after a power failure
    // nothing runs any more (the record then says what it said before this start: a stopped container either
    // way). With one, this run must be on disk: it decides whether the container comes back at boot.
    const policy = rec.hostConfig.RestartPolicy?.Name;
    await this.parts.store.save(rec, { durable: !!policy && policy !== 'no' });
    ph.mark('save');
    this.parts.event('start', rec);
    this.monitor(rec);
    ph.log('start', { id: id.slice(0, 12) });
  }

  // ---- attach before start --------------------------------------------------

  /**
   * A stdio connection to the container: now if it runs, at its next start
   * if it is created (the session is connected before the process runs, so
   * no output is missed), undefined if it has exited.
   */
  async attach(rec: ContainerRecord): Promise<AttachSession | undefined> {
    if (rec.state.Status === 'running' || rec.state.Status === 'paused') return this.parts.runtime.attach(rec.id);
    if (rec.state.Status !== 'created' && !(rec.state.Status === 'exited' && this.parts.restarts.isPending(rec.id))) return undefined;
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
    await Promise.all(
      list.map(async (cb) => {
        try {
          cb(await this.parts.runtime.attach(id));
        } catch (e) {
          log.warn('attach at start failed', { id, error: String(e) });
          cb(undefined);
        }
      }),
    );
  }

  /** Answers pending attaches with undefined (start failed, or the container was removed). */
  failPending(id: string): void {
    const list = this.pending.get(id);
    this.pending.delete(id);
    for (const cb of list ?? []) cb(undefined);
  }

  // ---- exit handling (exit.ts) ----------------------------------------------

  /** Watches a running container until it exits (exit.ts), and keeps the log files conmon rotates away meanwhile (max-file). */
  monitor(rec: ContainerRecord): void {
    exit.monitor(this.parts, this, rec);
    this.parts.exits.onceExited(rec.id, keepRotatedLogs(this.parts.store.logPath(rec.id), logPolicy(rec.hostConfig)));
  }

  /** Records an exit and releases what the run held: runtime state, network, mount. */
  finalizeExit(rec: ContainerRecord, info: ExitInfo): Promise<void> {
    return exit.finalizeExit(this.parts, rec, info);
  }

  // ---- stop, kill, restart, pause, remove, rename, wait (lifecycle.ts) ------

  /** Sends the stop signal, then SIGKILL after `timeout` seconds (-1: wait forever). */
  stop(ref: string, timeout?: number): Promise<void> {
    return lifecycle.stop(this.parts, ref, timeout);
  }

  kill(ref: string, sig = 'KILL'): Promise<void> {
    return lifecycle.kill(this.parts, ref, sig);
  }

  restart(ref: string, timeout?: number): Promise<void> {
    return lifecycle.restart(this.parts, this, ref, timeout);
  }

  pause(ref: string): Promise<void> {
    return lifecycle.pause(this.parts, ref);
  }

  unpause(ref: string): Promise<void> {
    return lifecycle.unpause(this.parts, ref);
  }

  remove(ref: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    return lifecycle.remove(this.parts, ref, opts, (id) => this.failPending(id));
  }

  rename(ref: string, newName: string): Promise<void> {
    return lifecycle.rename(this.parts, ref, newName);
  }

  /**
   * Docker's wait conditions: not-running (now if stopped), next-exit,
   * removed. Resolves with the exit code.
   */
  wait(ref: string, condition: string, signal?: AbortSignal): Promise<number> {
    return lifecycle.wait(this.parts, ref, condition, signal);
  }

  /** Brings the records in line with reality when the daemon starts (reconcile.ts). */
  reconcile(): Promise<{ running: number; exited: number; stale: number }> {
    return reconcile(this.parts, this);
  }
}
