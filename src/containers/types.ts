/**
 * The container record: one plain JSON document per container at
 * <data-root>/containers/<id>/config.json. Field names of `config` and
 * `hostConfig` are Docker's (Config / HostConfig of the Engine API), so the
 * API layer shows them as they are and clients get back what they sent.
 */
import type { Digest } from '../oci/digest.ts';
import type { ResolvedMount } from '../volumes/index.ts';
import type { HealthConfig, HealthState } from './health.ts';

export type ContainerStatus = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';

export interface ContainerConfig {
  Hostname: string;
  Domainname: string;
  User: string;
  AttachStdin: boolean;
  AttachStdout: boolean;
  AttachStderr: boolean;
  ExposedPorts?: Record<string, object>;
  Tty: boolean;
  OpenStdin: boolean;
  StdinOnce: boolean;
  Env: string[];
  Cmd: string[] | null;
  Image: string;
  Volumes: Record<string, object> | null;
  WorkingDir: string;
  Entrypoint: string[] | null;
  OnBuild: string[] | null;
  Labels: Record<string, string>;
  StopSignal?: string;
  StopTimeout?: number;
  Healthcheck?: HealthConfig;
}

export interface RestartPolicy {
  Name: '' | 'no' | 'always' | 'unless-stopped' | 'on-failure';
  MaximumRetryCount: number;
}

export interface Ulimit {
  Name: string;
  Soft: number;
  Hard: number;
}

export interface DeviceMapping {
  PathOnHost: string;
  PathInContainer: string;
  CgroupPermissions: string;
}

/** The HostConfig fields keel acts on; unknown fields from the request are kept as they came. */
export interface HostConfig {
  Binds: string[] | null;
  NetworkMode: string;
  RestartPolicy: RestartPolicy;
  AutoRemove: boolean;
  CapAdd: string[] | null;
  CapDrop: string[] | null;
  Privileged: boolean;
  ReadonlyRootfs: boolean;
  SecurityOpt: string[] | null;
  Init?: boolean | null;
  Tmpfs?: Record<string, string>;
  Devices: DeviceMapping[];
  Sysctls?: Record<string, string>;
  Ulimits: Ulimit[];
  Memory: number;
  MemorySwap: number;
  MemoryReservation: number;
  MemorySwappiness?: number | null;
  NanoCpus: number;
  CpuShares: number;
  CpuPeriod: number;
  CpuQuota: number;
  CpusetCpus: string;
  CpusetMems: string;
  PidsLimit?: number | null;
  OomKillDisable?: boolean | null;
  OomScoreAdj: number;
  ShmSize: number;
  PidMode: string;
  IpcMode: string;
  UTSMode: string;
  /** The container's own parent cgroup ('' or absent: the daemon's). */
  CgroupParent?: string;
  /** 'host' or 'private' (absent in records from before it was honoured: host). */
  CgroupnsMode?: string;
  ExtraHosts: string[] | null;
  Dns: string[];
  DnsSearch: string[];
  DnsOptions: string[];
  ConsoleSize?: [number, number];
  [k: string]: unknown;
}

export interface ContainerState {
  Status: ContainerStatus;
  Pid: number;
  ExitCode: number;
  Error: string;
  StartedAt: string;
  FinishedAt: string;
  OOMKilled: boolean;
  /** Only for containers with a health check, once started (health.ts). */
  Health?: HealthState;
}

/** NetworkingConfig.EndpointsConfig entry: what a container asks of one network. */
export interface EndpointConfig {
  Aliases?: string[] | null;
  IPAMConfig?: { IPv4Address?: string } | null;
  MacAddress?: string;
}

export interface ContainerRecord {
  id: string;
  /** Without docker's leading slash. */
  name: string;
  created: string;
  imageId: Digest;
  /** Path and Args as docker shows them: entrypoint + cmd, first element split off. */
  path: string;
  args: string[];
  config: ContainerConfig;
  hostConfig: HostConfig;
  state: ContainerState;
  restartCount: number;
  /** Set by an explicit stop/kill, so unless-stopped / always don't bring it back. */
  manuallyStopped: boolean;
  hasBeenStarted: boolean;
  /**
   * Networks the container joins when it starts, by network name, with their
   * endpoint settings (create's NetworkingConfig.EndpointsConfig, then
   * network connect/disconnect). Absent: just HostConfig.NetworkMode.
   */
  endpoints?: Record<string, EndpointConfig>;
  /** Volumes, binds and tmpfs mounts resolved at create (volumes/ prepareContainerMounts). */
  mounts?: ResolvedMount[];
  /**
   * Network mode container:<id>: the container whose network namespace and
   * /etc/{hosts,hostname,resolv.conf} this one used at its last start (the
   * end of a chain c → b → a is a). Inspect shows that container's file paths,
   * and that container's network teardown spares the namespace's other users.
   */
  networkOwner?: string;
  /**
   * The cgroupfs path of the container's cgroup at its last start (its own
   * CgroupParent or the daemon's parent at that time): stats, top and the
   * cleanup look there, whatever the daemon's parent is now. Absent in
   * records from before it was kept: <daemon parent>/<id>.
   */
  cgroupsPath?: string;
}

/** docker's EndpointSettings input: what the user asked for on one network. */
export interface EndpointConfig {
  Aliases?: string[] | null;
  IPAMConfig?: { IPv4Address?: string } | null;
  MacAddress?: string;
}

export const ZERO_TIME = '0001-01-01T00:00:00Z';

export function isRunning(r: ContainerRecord): boolean {
  return r.state.Status === 'running' || r.state.Status === 'paused' || r.state.Status === 'restarting';
}
