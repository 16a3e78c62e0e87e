/**
 * ContainerSpec: keel's own description of a container to create, the one
 * input of ContainerService.create and Engine.createContainer.
 *
 * Front ends decode their wire formats into it (api/decode-container.ts
 * for Docker's POST /containers/create body; in-process callers such as the
 * builder build one directly): the domain never sees a request body. Values
 * are typed and already shaped (lists are lists, numbers are numbers); what
 * depends on the image or on other objects (the image config merge, names,
 * the container a network mode joins, volume names) is checked at create.
 *
 * An optional field left undefined means "not asked for": the image's value
 * or docker's default applies. Some list and map fields also take null, as
 * docker's API does, so that inspect shows back what the client sent.
 */
import type { HealthConfig } from './health.ts';

/** `--mount` (HostConfig.Mounts[]). Sub-objects are kept when given, even empty: docker refuses some per type. */
export interface MountOption {
  type: 'bind' | 'volume' | 'tmpfs';
  /** Bind: host path. Volume: volume name (none: an anonymous volume). */
  source?: string;
  target: string;
  readOnly?: boolean;
  consistency?: string;
  bind?: { propagation?: string; nonRecursive?: boolean };
  volume?: { noCopy?: boolean; labels?: Record<string, string> | null; driver?: { name?: string; options?: Record<string, string> | null } | null };
  tmpfs?: { sizeBytes?: number; mode?: number };
}

/**
 * One mount request. `-v` keeps docker's `source:target:mode` text: its
 * grammar (bind or named volume, modes, the volume driver) is the volume
 * layer's to parse, at create, with the image's volumes and --volumes-from.
 */
export type MountRequest =
  { kind: 'volume-flag'; spec: string } | { kind: 'mount'; mount: MountOption } | { kind: 'tmpfs-flag'; target: string; options: string };

export interface PortBindingSpec {
  hostIp?: string;
  hostPort?: string;
}

/** What the container asks of one network it joins at create. */
export interface EndpointSpec {
  aliases?: string[];
  ipv4Address?: string;
  macAddress?: string;
}

export interface RestartPolicySpec {
  name: '' | 'no' | 'always' | 'unless-stopped' | 'on-failure';
  maximumRetryCount: number;
}

export interface UlimitSpec {
  name: string;
  soft: number;
  hard: number;
}

export interface DeviceSpec {
  pathOnHost: string;
  pathInContainer: string;
  cgroupPermissions: string;
}

/** Resource limits; 0 (or undefined) is "no limit", as in docker. */
export interface ResourcesSpec {
  memory?: number;
  memorySwap?: number;
  memoryReservation?: number;
  memorySwappiness?: number | null;
  nanoCpus?: number;
  cpuShares?: number;
  cpuPeriod?: number;
  cpuQuota?: number;
  cpusetCpus?: string;
  cpusetMems?: string;
  pidsLimit?: number | null;
  oomKillDisable?: boolean | null;
  blkioWeight?: number;
  /** Bytes of /dev/shm (64 MiB when 0 or undefined). */
  shmSize?: number;
  ulimits?: UlimitSpec[];
  devices?: DeviceSpec[];
}

/** Durations in nanoseconds. `test` ['NONE'] turns off the image's check. */
export interface HealthcheckSpec {
  test?: string[];
  interval?: number;
  timeout?: number;
  startPeriod?: number;
  startInterval?: number;
  retries?: number;
}

export interface ContainerSpec {
  /** Image reference or ID. */
  image: string;
  /** With or without docker's leading slash; none: a random name. */
  name?: string;
  hostname?: string;
  domainname?: string;
  user?: string;
  /** undefined or empty: the image's Cmd (unless an entrypoint is given). */
  cmd?: string[];
  /** undefined: the image's. Given, it drops the image's Cmd; [''] resets it to none. */
  entrypoint?: string[];
  env?: string[];
  labels?: Record<string, string>;
  workingDir?: string;
  attachStdin?: boolean;
  attachStdout?: boolean;
  attachStderr?: boolean;
  tty?: boolean;
  openStdin?: boolean;
  stdinOnce?: boolean;
  /** "80/tcp"; undefined: only the image's. */
  exposedPorts?: string[];
  /** Anonymous volume targets (Config.Volumes); undefined: only the image's. */
  volumes?: string[];
  stopSignal?: string;
  /** Seconds. */
  stopTimeout?: number;
  healthcheck?: HealthcheckSpec;
  macAddress?: string;

  mounts?: MountRequest[];
  /** `container[:ro|rw]`. */
  volumesFrom?: string[] | null;
  volumeDriver?: string;

  /** 'default' (the default bridge), 'bridge', 'host', 'none', 'container:<ref>' or a network name. */
  networkMode?: string;
  /** By network name, as asked at create ('default' is the default bridge). */
  endpoints?: Record<string, EndpointSpec>;
  /** By "port/proto". */
  portBindings?: Record<string, PortBindingSpec[] | null> | null;
  publishAllPorts?: boolean;
  links?: string[] | null;
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
  extraHosts?: string[] | null;

  restartPolicy?: RestartPolicySpec;
  autoRemove?: boolean;
  resources?: ResourcesSpec;
  logConfig?: { type?: string; config?: Record<string, string> };

  privileged?: boolean;
  readonlyRootfs?: boolean;
  capAdd?: string[] | null;
  capDrop?: string[] | null;
  securityOpt?: string[] | null;
  groupAdd?: string[] | null;
  sysctls?: Record<string, string> | null;
  init?: boolean | null;
  oomScoreAdj?: number;
  /** '' (its own), 'host' or 'container:<name|id>' (checked at create: it must exist; at start: it must run). */
  pidMode?: string;
  /**
   * 'private' (the default), 'shareable' (private, and other containers may
   * join it), 'none' (private, without /dev/shm), 'host' or
   * 'container:<name|id>' (a shareable or host-IPC container's namespace and /dev/shm).
   */
  ipcMode?: string;
  utsMode?: string;
  usernsMode?: string;
  /** cgroupfs path under which this container's cgroup is made, instead of the daemon's parent. */
  cgroupParent?: string;
  /** 'host' (the default on these cgroup v1 hosts, as dockerd's) or 'private'. */
  cgroupnsMode?: string;
  /** [rows, columns] of the TTY at start. */
  consoleSize?: [number, number];

  /**
   * Docker HostConfig fields keel neither acts on nor checks (BlkioDeviceReadBps,
   * DeviceCgroupRules, ...), by their Docker names: kept only so inspect
   * shows them back, as dockerd stores its whole HostConfig.
   */
  inspectOnly?: Record<string, unknown>;
}

/** HealthcheckSpec in the record's (Docker's) field names. */
export function healthConfigOf(h: HealthcheckSpec): HealthConfig {
  const out: HealthConfig = {};
  if (h.test?.length) out.Test = [...h.test];
  if (h.interval) out.Interval = h.interval;
  if (h.timeout) out.Timeout = h.timeout;
  if (h.startPeriod) out.StartPeriod = h.startPeriod;
  if (h.startInterval) out.StartInterval = h.startInterval;
  if (h.retries) out.Retries = h.retries;
  return out;
}

/** `docker update`: the new limits (undefined or 0 leaves one as it is, as in docker) and restart policy. */
export interface UpdateSpec {
  resources: Pick<
    ResourcesSpec,
    'memory' | 'memorySwap' | 'memoryReservation' | 'nanoCpus' | 'cpuShares' | 'cpuPeriod' | 'cpuQuota' | 'cpusetCpus' | 'cpusetMems' | 'pidsLimit'
  >;
  /** Checked against the container (AutoRemove) when applied. */
  restartPolicy?: { name: string; maximumRetryCount: number };
}
