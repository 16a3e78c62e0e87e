/**
 * The pieces ContainerService owns, each with a narrow job, and what the
 * free functions of containers/ (lifecycle, exit, reconcile, files, ops,
 * clone, logs, view) take instead of the service: each names the pieces it
 * uses with a Pick of ContainerParts.
 */
import path from 'node:path';
import type { KeyedMutex } from '../common/lock.ts';
import type { ImageService } from '../images/service.ts';
import type { OciRuntime } from '../runtime/index.ts';
import type { VolumeService } from '../volumes/index.ts';
import type { ExecManager } from './exec.ts';
import type { HealthMonitor } from './health.ts';
import type { RestartManager } from './restart.ts';
import type { RootfsKeeper } from './rootfs.ts';
import type { RunNetworks } from './runnet.ts';
import type { ContainerDefaults } from './runspec.ts';
import type { ContainerStore } from './store.ts';
import type { ContainerRecord } from './types.ts';
import type { ExitWatcher } from './watcher.ts';

/** How containers/ reports state changes (the engine forwards them to its event bus). */
export type EventSink = (action: string, rec: ContainerRecord, extra?: Record<string, string>) => void;

export interface ContainerParts {
  /** The records, in memory and on disk. */
  readonly store: ContainerStore;
  /** Runs the containers' processes (runc + conmon; a fake in unit tests). */
  readonly runtime: OciRuntime;
  /** Run directories and rootfs mounts. */
  readonly rootfs: RootfsKeeper;
  /** Exit monitors, exit/removal notifications, shutdown. */
  readonly exits: ExitWatcher;
  /** Restarts by policy that are scheduled. */
  readonly restarts: RestartManager;
  /** The network of each run. */
  readonly nets: RunNetworks;
  /** Images and their snapshots (the containers' writable layers). */
  readonly images: ImageService;
  readonly volumes: VolumeService;
  /** Serializes the operations on one container (by ID). */
  readonly mutex: KeyedMutex;
  readonly health: HealthMonitor;
  readonly execs: ExecManager;
  readonly event: EventSink;
  /** The daemon's default ulimits and pids limit, applied at each start as dockerd does. */
  readonly defaults: ContainerDefaults;
  /** Parent cgroup (cgroupfs path) of every container: <cgroupParent>/<id>. */
  readonly cgroupParent: string;
}

/** The service's own operations that exit handling and reconcile call back into. */
export interface ContainerOps {
  /** Mounts, configures and starts the process (caller holds the mutex). */
  run(rec: ContainerRecord): Promise<void>;
  start(ref: string): Promise<void>;
  remove(ref: string, opts?: { force?: boolean; volumes?: boolean }): Promise<void>;
  /** Watches a running container until it exits. */
  monitor(rec: ContainerRecord): void;
}

export function cgroupPath(p: Pick<ContainerParts, 'cgroupParent'>, id: string): string {
  return `${p.cgroupParent}/${id}`;
}

/**
 * Where the container's cgroup goes at its next start: under its own
 * CgroupParent (a relative one under the root, where dockerd's runc puts it)
 * or the daemon's.
 */
export function startCgroupPath(p: Pick<ContainerParts, 'cgroupParent'>, rec: ContainerRecord): string {
  const own = rec.hostConfig.CgroupParent;
  return typeof own === 'string' && own ? path.posix.join('/', own, rec.id) : cgroupPath(p, rec.id);
}

/** Where the container's cgroup is (made at its last start): stats and top read it. */
export function containerCgroupPath(p: Pick<ContainerParts, 'cgroupParent'>, rec: ContainerRecord): string {
  return rec.cgroupsPath ?? cgroupPath(p, rec.id);
}
