import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { EngineError, conflict, errnoCode, isEngineError } from '../common/errors.ts';
import { mkdirp } from '../common/fs.ts';
import { newId, randomName } from '../common/ids.ts';
import { KeyedMutex } from '../common/lock.ts';
import { log } from '../common/log.ts';
import type { ImageService } from '../images/service.ts';
import { unmount } from '../snapshots/overlay.ts';
import { type AttachSession, buildSpec, type ExitInfo, RuntimeDriver, signalNumber, specToJson } from '../runtime/index.ts';
import { commandOf, type CreateRequest, mergeConfig, normalizeHostConfig } from './create.ts';
import { BasicNetworking, type ContainerNetworking, endpointsFromRequest, hostsContent, resolvContent } from './network.ts';
import { shouldRestart, restartDelayMs } from './restart.ts';
import { runSpecOptions } from './runspec.ts';
import { openDirIn } from './scoped.ts';
import { ContainerStore } from './store.ts';
import { type ContainerRecord, type EndpointConfig, isRunning, ZERO_TIME } from './types.ts';
import { resolveUserIn } from './user.ts';
import { mountInputFrom, type VolumeService, volumeService } from '../volumes/index.ts';

/** How containers/ reports state changes (the engine forwards them to its event bus). */
export type EventSink = (action: string, rec: ContainerRecord, extra?: Record<string, string>) => void;

export interface ContainerServiceOptions {
  dataRoot: string;
  execRoot: string;
  images: ImageService;
  events?: EventSink;
  /** Bridge and user networks (none and host are handled here). */
  networking?: ContainerNetworking;
  runcPath?: string;
  conmonPath?: string;
  /** Parent cgroup (cgroupfs path) of every container: <cgroupParent>/<id>. */
  cgroupParent?: string;
}

/**
 * Containers: records, the lifecycle state machine and its side effects
 * (rootfs mount, runtime, network, events). Operations on one container are
 * serialized by a per-container mutex; exits are handled by a monitor per
 * running container that does not take that mutex, so stop() can hold it
 * while it waits for the exit.
 */
export class ContainerService {
  readonly store: ContainerStore;
  readonly driver: RuntimeDriver;
  readonly images: ImageService;
  readonly execRoot: string;
  readonly networking: ContainerNetworking;
  readonly cgroupParent: string;
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
  readonly networks = new Map<string, Record<string, Record<string, unknown>>>();
  private readonly closing = new AbortController();

  constructor(o: ContainerServiceOptions) {
    this.store = new ContainerStore(path.join(o.dataRoot, 'containers'));
    this.execRoot = o.execRoot;
    this.images = o.images;
    this.driver = new RuntimeDriver({ runcRoot: path.join(o.execRoot, 'runc'), stateDir: path.join(o.execRoot, 'conmon'), runcPath: o.runcPath, conmonPath: o.conmonPath });
    this.publish = o.events ?? (() => {});
    this.networking = new BasicNetworking(o.networking);
    this.cgroupParent = o.cgroupParent ?? '/keel';
    this.volumes = volumeService(o.dataRoot);
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

  event(action: string, rec: ContainerRecord, extra: Record<string, string> = {}): void {
    this.publish(action, rec, extra);
  }

  find(ref: string): ContainerRecord {
    return this.store.find(ref);
  }

  /** Stops watching containers; they keep running under their conmon. */
  close(): void {
    this.closing.abort();
  }

  // ---- create ---------------------------------------------------------------

  async create(req: CreateRequest, name?: string): Promise<{ id: string; warnings: string[] }> {
    if (!req || typeof req !== 'object') throw new EngineError('INVALID_ARGUMENT', 'config cannot be empty in order to create a container');
    if (!req.Image || typeof req.Image !== 'string') throw new EngineError('INVALID_ARGUMENT', 'no image given: say which image to create the container from');
    const image = this.images.store.resolve(req.Image);
    const imageConfig = await this.images.config(image);
    const id = newId();
    const hostConfig = normalizeHostConfig(req.HostConfig);
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
    if (eps && typeof eps === 'object' && mode !== 'host' && mode !== 'none') {
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
      files: { hosts: '/etc/hosts', hostname: '/etc/hostname', resolv: '/etc/resolv.conf' }, cgroupsPath: this.cgroupPath(id),
    }));
    rec.mounts = await this.volumes.prepareContainerMounts(id, mountInputFrom(hostConfig, config.Volumes, (c) => this.find(c).mounts ?? []));
    try {
      await this.images.snapshots.prepare(id, image.chainIds);
      await this.store.add(rec);
    } catch (e) {
      await this.images.snapshots.remove(id).catch(() => {});
      await this.volumes.releaseContainerMounts(id, rec.mounts, { removeAnonymous: true }).catch(() => {});
      throw e;
    }
    this.event('create', rec);
    return { id, warnings: [] };
  }

  // ---- start ----------------------------------------------------------------

  async start(ref: string): Promise<void> {
    const rec = this.find(ref);
    await this.mutex.run(rec.id, async () => {
      if (!this.store.get(rec.id)) throw new EngineError('NOT_FOUND', `No such container: ${ref}`);
      if (rec.state.Status === 'paused') throw conflict('cannot start a paused container, try unpause instead');
      if (isRunning(rec)) throw new EngineError('NOT_MODIFIED', 'container already started');
      if (rec.state.Status === 'removing') throw conflict(`container ${rec.id} is marked for removal and cannot be started`);
      rec.manuallyStopped = false;
      rec.restartCount = 0;
      try {
        await this.run(rec);
      } catch (e) {
        if (rec.hostConfig.AutoRemove) void this.remove(rec.id, { force: true }).catch(() => {});
        throw e;
      }
    });
  }

  /** Mounts, configures and starts the container's process; on failure undoes all of it. Caller holds the mutex. */
  private async run(rec: ContainerRecord): Promise<void> {
    const id = rec.id;
    const rd = this.runDir(id);
    const rootfs = this.rootfs(id);
    let created = false;
    let netAttached = false;
    try {
      await mkdirp(rootfs, 0o700);
      await this.mount(id);
      const volumeMounts = await this.volumes.setupContainerMounts(id, rootfs, rec.mounts ?? []);
      const user = resolveUserIn(rootfs, rec.config.User, (rec.hostConfig.GroupAdd as string[] | null) ?? []);
      let cwd = '/';
      if (rec.config.WorkingDir) {
        const d = openDirIn(rootfs, rec.config.WorkingDir, { create: true });
        cwd = d.clean;
        d.close();
      }
      const att = await this.networking.attach(rec);
      netAttached = true;
      this.networks.set(id, att.networks);
      const dd = this.store.containerDir(id);
      const files = { hosts: path.join(dd, 'hosts'), hostname: path.join(dd, 'hostname'), resolv: path.join(dd, 'resolv.conf') };
      await Promise.all([
        fsp.writeFile(files.hosts, hostsContent(rec, att), { mode: 0o644 }),
        fsp.writeFile(files.hostname, `${rec.config.Hostname}\n`, { mode: 0o644 }),
        fsp.writeFile(files.resolv, resolvContent(rec, att), { mode: 0o644 }),
      ]);
      const spec = buildSpec(runSpecOptions(rec, { rootfs, user, cwd, netns: att.namespace, files, cgroupsPath: this.cgroupPath(id), mounts: volumeMounts }));
      // Rewritten at every start, so no fsync: a crash just means the next start writes it again.
      await fsp.writeFile(path.join(rd, 'config.json'), specToJson(spec), { mode: 0o600 });
      const c = rec.config;
      const { pid } = await this.driver.create(id, rd, {
        tty: c.Tty, stdin: c.OpenStdin, leaveStdinOpen: c.OpenStdin && !c.StdinOnce, logPath: this.logPath(id), name: rec.name,
      });
      created = true;
      await this.connectPending(id);
      await this.driver.start(id);
      rec.state = { Status: 'running', Pid: pid, ExitCode: 0, Error: '', StartedAt: new Date().toISOString(), FinishedAt: rec.state.FinishedAt, OOMKilled: false };
    } catch (e) {
      this.failPending(id);
      if (created) await this.driver.delete(id, { force: true }).catch((e2) => log.warn('cleanup after failed start', { id, error: String(e2) }));
      if (netAttached) await this.networking.detach(rec).catch(() => {});
      await this.volumes.teardownContainerMounts(id, rec.mounts ?? []).catch(() => {});
      await this.unmount(id).catch(() => {});
      rec.state.Error = e instanceof Error ? e.message : String(e);
      if (isEngineError(e, 'COMMAND_NOT_FOUND')) rec.state.ExitCode = 127;
      else if (isEngineError(e, 'CANNOT_EXECUTE')) rec.state.ExitCode = 126;
      else rec.state.ExitCode = 128;
      if (rec.hasBeenStarted) rec.state.Status = 'exited';
      await this.store.save(rec).catch(() => {});
      throw e;
    }
    rec.hasBeenStarted = true;
    await this.store.save(rec);
    this.event('start', rec);
    this.monitor(rec);
  }

  async mount(id: string): Promise<void> {
    if (this.mounted.has(id)) return;
    await mkdirp(this.rootfs(id), 0o700);
    await this.images.snapshots.mountAt(id, this.rootfs(id));
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

  private failPending(id: string): void {
    const list = this.pending.get(id);
    this.pending.delete(id);
    for (const cb of list ?? []) cb(undefined);
  }

  // ---- exit handling --------------------------------------------------------

  private readonly restartPending = new Set<string>();

  monitor(rec: ContainerRecord): void {
    const p = (async () => {
      let info: ExitInfo;
      try {
        info = await this.driver.wait(rec.id, this.closing.signal);
      } catch (e) {
        if (!this.shuttingDown) log.error('waiting for container failed', { id: rec.id, error: String(e) });
        return;
      }
      if (rec.hostConfig.AutoRemove && !this.shuttingDown) await this.exitAndRemove(rec, info);
      else await this.finalizeExit(rec, info);
    })();
    this.monitors.set(rec.id, p);
    void p.finally(() => {
      if (this.monitors.get(rec.id) === p) this.monitors.delete(rec.id);
      if (!this.shuttingDown && this.store.get(rec.id) && rec.state.Status === 'exited') this.afterExit(rec);
    });
  }

  /** Records an exit and releases what the run held: runtime state, network, mount. */
  async finalizeExit(rec: ContainerRecord, info: ExitInfo): Promise<void> {
    const code = info.recorded && info.exitCode >= 0 ? info.exitCode : 255;
    rec.state = { ...rec.state, Status: 'exited', Pid: 0, ExitCode: code, FinishedAt: info.finishedAt.toISOString(), OOMKilled: info.oomKilled };
    // Independent releases: run them side by side (this is on the `run --rm` critical path).
    await Promise.all([
      this.driver.delete(rec.id, { force: true }).catch((e) => log.warn('runtime cleanup failed', { id: rec.id, error: String(e) })),
      this.networking.detach(rec).catch((e) => log.warn('network detach failed', { id: rec.id, error: String(e) })),
      this.unmount(rec.id).catch((e) => log.warn('unmount failed', { id: rec.id, error: String(e) })),
    ]);
    this.networks.delete(rec.id);
    await this.volumes.teardownContainerMounts(rec.id, rec.mounts ?? []).catch((e) => log.warn('volume teardown failed', { id: rec.id, error: String(e) }));
    if (this.store.get(rec.id)) await this.store.save(rec).catch(() => {});
    if (info.oomKilled) this.event('oom', rec);
    this.event('die', rec, { exitCode: String(code) });
    this.bus.emit(`exit:${rec.id}`, code);
  }

  /**
   * `--rm`: the container is gone for clients as soon as its exit is known
   * (record deleted, die and destroy published, `wait` answered), and its
   * resources are released right after, off the `run --rm` critical path. A
   * crash in between leaves only ID-keyed leftovers with no record, which
   * reconcile's orphan sweep removes at the next start.
   */
  private async exitAndRemove(rec: ContainerRecord, info: ExitInfo): Promise<void> {
    const code = info.recorded && info.exitCode >= 0 ? info.exitCode : 255;
    rec.state = { ...rec.state, Status: 'removing', Pid: 0, ExitCode: code, FinishedAt: info.finishedAt.toISOString(), OOMKilled: info.oomKilled };
    await this.store.remove(rec);
    if (info.oomKilled) this.event('oom', rec);
    this.event('die', rec, { exitCode: String(code) });
    this.bus.emit(`exit:${rec.id}`, code);
    this.event('destroy', rec);
    this.bus.emit(`removed:${rec.id}`, code);
    const warn = (what: string) => (e: unknown) => log.warn(`${what} failed`, { id: rec.id, error: String(e) });
    await Promise.all([
      this.driver.delete(rec.id, { force: true }).catch(warn('runtime cleanup')),
      this.networking.detach(rec).catch(warn('network detach')),
      this.unmount(rec.id).catch(warn('unmount')),
    ]);
    this.networks.delete(rec.id);
    await this.volumes.teardownContainerMounts(rec.id, rec.mounts ?? []).catch(warn('volume teardown'));
    await this.volumes.releaseContainerMounts(rec.id, rec.mounts ?? [], { removeAnonymous: true }).catch(warn('releasing volumes'));
    await Promise.all([this.images.snapshots.remove(rec.id).catch(warn('snapshot removal')), fsp.rm(this.runDir(rec.id), { recursive: true, force: true }).catch(warn('run dir removal'))]);
  }

  /** AutoRemove or the restart policy, once the exit is recorded. */
  private afterExit(rec: ContainerRecord): void {
    if (rec.hostConfig.AutoRemove) {
      void this.remove(rec.id, { force: true }).catch((e) => log.warn('auto-remove failed', { id: rec.id, error: String(e) }));
      return;
    }
    const ctx = { policy: rec.hostConfig.RestartPolicy, exitCode: rec.state.ExitCode, restartCount: rec.restartCount, manuallyStopped: rec.manuallyStopped };
    if (!shouldRestart(ctx)) return;
    this.restartPending.add(rec.id);
    setTimeout(() => {
      void this.mutex.run(rec.id, async () => {
        this.restartPending.delete(rec.id);
        if (!this.store.get(rec.id) || rec.manuallyStopped || isRunning(rec) || this.shuttingDown) return;
        rec.restartCount++;
        await this.run(rec);
      }).catch((e) => log.warn('restart by policy failed', { id: rec.id, error: String(e) }));
    }, restartDelayMs(rec.restartCount)).unref();
  }

  // ---- stop, kill, restart, pause -------------------------------------------

  /** Sends the stop signal, then SIGKILL after `timeout` seconds (-1: wait forever). */
  async stop(ref: string, timeout?: number): Promise<void> {
    const rec = this.find(ref);
    await this.mutex.run(rec.id, async () => {
      if (!isRunning(rec)) {
        if (this.restartPending.delete(rec.id)) rec.manuallyStopped = true;
        throw new EngineError('NOT_MODIFIED', 'container already stopped');
      }
      await this.stopLocked(rec, timeout);
    });
    this.event('stop', rec);
  }

  private async stopLocked(rec: ContainerRecord, timeout?: number): Promise<void> {
    rec.manuallyStopped = true;
    const t = timeout ?? rec.config.StopTimeout ?? 10;
    const sig = rec.config.StopSignal || 'SIGTERM';
    const done = this.monitors.get(rec.id) ?? Promise.resolve();
    this.event('kill', rec, { signal: String(signalNumber(sig)) });
    await this.signal(rec, sig);
    if (t >= 0) {
      const timedOut = await Promise.race([done.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), t * 1000).unref())]);
      if (timedOut) {
        this.event('kill', rec, { signal: '9' });
        await this.signal(rec, 'KILL');
      }
    }
    await done;
  }

  private async signal(rec: ContainerRecord, sig: string | number): Promise<void> {
    try {
      await this.driver.kill(rec.id, sig);
    } catch (e) {
      // Exited meanwhile: the monitor handles it.
      if (!isEngineError(e, 'NOT_FOUND') && !/not running|process already finished|container not running/i.test(String(e))) throw e;
    }
    if (rec.state.Status === 'paused' && (sig === 'KILL' || sig === 9 || sig === 'SIGKILL' || rec.manuallyStopped)) {
      await this.driver.resume(rec.id).catch(() => {});
      rec.state.Status = 'running';
    }
  }

  async kill(ref: string, sig = 'KILL'): Promise<void> {
    const rec = this.find(ref);
    const num = signalNumber(sig);
    await this.mutex.run(rec.id, async () => {
      if (!isRunning(rec)) throw conflict(`Cannot kill container: ${ref}: Container ${rec.id} is not running`);
      if (num === 9) rec.manuallyStopped = true;
      this.event('kill', rec, { signal: String(num) });
      await this.signal(rec, sig);
      if (num === 9) await this.monitors.get(rec.id);
    });
  }

  async restart(ref: string, timeout?: number): Promise<void> {
    const rec = this.find(ref);
    await this.mutex.run(rec.id, async () => {
      if (isRunning(rec)) await this.stopLocked(rec, timeout);
      rec.manuallyStopped = false;
      await this.run(rec);
    });
    this.event('restart', rec);
  }

  async pause(ref: string): Promise<void> {
    const rec = this.find(ref);
    await this.mutex.run(rec.id, async () => {
      if (rec.state.Status === 'paused') throw conflict(`Container ${rec.id} is already paused`);
      if (rec.state.Status !== 'running') throw conflict(`Container ${rec.id} is not running`);
      await this.driver.pause(rec.id);
      rec.state.Status = 'paused';
      await this.store.save(rec);
    });
    this.event('pause', rec);
  }

  async unpause(ref: string): Promise<void> {
    const rec = this.find(ref);
    await this.mutex.run(rec.id, async () => {
      if (rec.state.Status !== 'paused') throw conflict(`Container ${rec.id} is not paused`);
      await this.driver.resume(rec.id);
      rec.state.Status = 'running';
      await this.store.save(rec);
    });
    this.event('unpause', rec);
  }

  // ---- remove, rename, wait -------------------------------------------------

  async remove(ref: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    const rec = this.find(ref);
    let removedMeanwhile = false;
    await this.mutex.run(rec.id, async () => {
      if (!this.store.get(rec.id)) return void (removedMeanwhile = true);
      if (rec.state.Status === 'removing') throw conflict(`removal of container ${rec.id} is already in progress`);
      if (isRunning(rec)) {
        if (!opts.force) throw conflict(`You cannot remove a running container ${rec.id}. Stop the container before attempting removal or force remove`);
        rec.manuallyStopped = true;
        this.event('kill', rec, { signal: '9' });
        await this.signal(rec, 'KILL');
        await this.monitors.get(rec.id);
        // An --rm container removes itself when it exits.
        if (!this.store.get(rec.id)) return void (removedMeanwhile = true);
      }
      this.restartPending.delete(rec.id);
      this.failPending(rec.id);
      rec.state.Status = 'removing';
      if (fs.existsSync(this.driver.containerDir(rec.id))) await this.driver.delete(rec.id, { force: true }).catch(() => {});
      await this.unmount(rec.id);
      await Promise.all([this.images.snapshots.remove(rec.id), fsp.rm(this.runDir(rec.id), { recursive: true, force: true }), this.store.remove(rec)]);
      // `rm -v` and --rm delete anonymous volumes; named ones always stay.
      await this.volumes.releaseContainerMounts(rec.id, rec.mounts ?? [], { removeAnonymous: !!opts.volumes || rec.hostConfig.AutoRemove }).catch((e) => log.warn('releasing volumes failed', { id: rec.id, error: String(e) }));
    });
    if (removedMeanwhile) return;
    this.event('destroy', rec);
    this.bus.emit(`removed:${rec.id}`, rec.state.ExitCode);
  }

  async rename(ref: string, newName: string): Promise<void> {
    const rec = this.find(ref);
    const name = newName.replace(/^\//, '');
    if (!name) throw new EngineError('INVALID_ARGUMENT', 'Neither old nor new names may be empty');
    await this.mutex.run(rec.id, async () => {
      const old = rec.name;
      if (old === name) throw conflict(`Renaming a container with the same name as its current name`);
      await this.store.rename(rec, name);
      this.event('rename', rec, { oldName: `/${old}` });
    });
  }

  /**
   * Docker's wait conditions: not-running (now if stopped), next-exit,
   * removed. Resolves with the exit code.
   */
  wait(ref: string, condition: string, signal?: AbortSignal): Promise<number> {
    const rec = this.find(ref);
    if (!['', 'not-running', 'next-exit', 'removed'].includes(condition)) throw new EngineError('INVALID_ARGUMENT', `invalid condition: "${condition}"`);
    if ((condition === '' || condition === 'not-running') && !isRunning(rec) && !this.restartPending.has(rec.id)) return Promise.resolve(rec.state.ExitCode);
    const ev = condition === 'removed' ? `removed:${rec.id}` : `exit:${rec.id}`;
    return new Promise((resolve, reject) => {
      const on = (code: number) => {
        signal?.removeEventListener('abort', abort);
        resolve(code);
      };
      const abort = () => {
        this.bus.off(ev, on);
        reject(new EngineError('CANCELLED', 'wait cancelled'));
      };
      this.bus.once(ev, on);
      signal?.addEventListener('abort', abort, { once: true });
    });
  }

  restartScheduled(id: string): boolean {
    return this.restartPending.has(id);
  }
}
