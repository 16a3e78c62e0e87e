/**
 * What compose needs from an engine, and nothing more. compose/ talks to
 * this interface only, never to the layers below the engine facade, so the
 * same code runs in `keel compose` (an adapter over the Docker API client,
 * cli/compose-backend.ts) and could run in-process over the Engine.
 *
 * Specs are typed and close to the Docker API's own shapes (their field
 * names are Docker's, so an adapter is a rename, not a translation); ids
 * and names are interchangeable where Docker's are. Errors are EngineErrors:
 * a missing object is NOT_FOUND.
 */
import type { Readable } from 'node:stream';

export type ContainerState = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';

export interface PortSummary {
  ip?: string;
  privatePort: number;
  publicPort?: number;
  type: string;
}

export interface ContainerSummary {
  id: string;
  /** Without the leading slash. */
  name: string;
  image: string;
  imageId: string;
  command: string;
  created: number;
  state: ContainerState;
  status: string;
  labels: Record<string, string>;
  ports: PortSummary[];
  /** The ids of the networks it is connected to (when the engine lists them). */
  networkIds?: string[];
  /** The named volumes it mounts (when the engine lists them): what a recreated container inherits. */
  mounts?: { name: string; destination: string; rw: boolean }[];
}

export interface ContainerDetails extends ContainerSummary {
  running: boolean;
  exitCode: number;
  health?: 'starting' | 'healthy' | 'unhealthy' | 'none';
  tty: boolean;
  networks: Record<string, { ipAddress?: string; aliases?: string[] }>;
}

export interface MountSpec {
  Type: 'bind' | 'volume' | 'tmpfs';
  Source?: string;
  Target: string;
  ReadOnly?: boolean;
  BindOptions?: { Propagation?: string };
  VolumeOptions?: { NoCopy?: boolean };
  TmpfsOptions?: { SizeBytes?: number; Mode?: number };
}

export interface EndpointSpec {
  aliases?: string[];
  ipv4Address?: string;
  ipv6Address?: string;
  macAddress?: string;
}

/** A container to create: Docker's Config and HostConfig fields that compose sets. */
export interface ContainerSpec {
  name: string;
  image: string;
  labels: Record<string, string>;
  env: string[];
  cmd?: string[] | null;
  entrypoint?: string[] | null;
  workingDir?: string;
  user?: string;
  hostname?: string;
  domainname?: string;
  tty?: boolean;
  openStdin?: boolean;
  stopSignal?: string;
  /** Seconds. */
  stopTimeout?: number;
  /** Durations in nanoseconds, as the Docker API takes them. */
  healthcheck?: { Test?: string[]; Interval?: number; Timeout?: number; Retries?: number; StartPeriod?: number; StartInterval?: number };
  exposedPorts: string[];
  host: {
    Binds?: string[];
    Mounts?: MountSpec[];
    Tmpfs?: Record<string, string>;
    PortBindings?: Record<string, { HostIp: string; HostPort: string }[]>;
    RestartPolicy?: { Name: string; MaximumRetryCount: number };
    NetworkMode?: string;
    Privileged?: boolean;
    ReadonlyRootfs?: boolean;
    Init?: boolean;
    CapAdd?: string[];
    CapDrop?: string[];
    Dns?: string[];
    DnsSearch?: string[];
    DnsOptions?: string[];
    ExtraHosts?: string[];
    Memory?: number;
    MemoryReservation?: number;
    MemorySwap?: number;
    NanoCpus?: number;
    CpuShares?: number;
    CpusetCpus?: string;
    PidsLimit?: number;
    ShmSize?: number;
    Sysctls?: Record<string, string>;
    Ulimits?: { Name: string; Soft: number; Hard: number }[];
    LogConfig?: { Type: string; Config: Record<string, string> };
    SecurityOpt?: string[];
    GroupAdd?: string[];
    IpcMode?: string;
    PidMode?: string;
    UsernsMode?: string;
    OomScoreAdj?: number;
    Devices?: { PathOnHost: string; PathInContainer: string; CgroupPermissions: string }[];
    VolumesFrom?: string[];
    CgroupParent?: string;
    CgroupnsMode?: string;
    CpuPeriod?: number;
    CpuQuota?: number;
    CpuRealtimePeriod?: number;
    CpuRealtimeRuntime?: number;
    MemorySwappiness?: number;
    OomKillDisable?: boolean;
    UTSMode?: string;
    DeviceCgroupRules?: string[];
    BlkioWeight?: number;
  };
  /** The network joined at create (the others are connected before start). */
  network?: { name: string; endpoint: EndpointSpec };
}

export interface NetworkSummary {
  id: string;
  name: string;
  driver: string;
  labels: Record<string, string>;
}

export interface NetworkSpec {
  name: string;
  driver?: string;
  internal?: boolean;
  attachable?: boolean;
  enableIPv6?: boolean;
  options?: Record<string, string>;
  ipam?: {
    Driver?: string;
    Config?: { Subnet?: string; Gateway?: string; IPRange?: string; AuxiliaryAddresses?: Record<string, string> }[];
    Options?: Record<string, string>;
  };
  labels: Record<string, string>;
}

export interface VolumeSummary {
  name: string;
  driver: string;
  labels: Record<string, string>;
}

export interface VolumeSpec {
  name: string;
  driver?: string;
  driverOpts?: Record<string, string>;
  labels: Record<string, string>;
}

export interface ImageSummary {
  id: string;
  repoTags: string[];
  size: number;
  created: number;
  /** When a name was last put on it (a pull, a build, a tag): Docker's Metadata.LastTagTime, in ms; what refresh pull policies go by. */
  lastTagTime?: number;
  /** The image's VOLUME paths (Config.Volumes). */
  volumes?: string[];
}

export interface BuildSpec {
  /** An absolute directory (the build context). */
  context: string;
  dockerfile?: string;
  dockerfileInline?: string;
  args?: Record<string, string>;
  target?: string;
  labels?: Record<string, string>;
  tags: string[];
  noCache?: boolean;
  pull?: boolean;
  cacheFrom?: string[];
  network?: string;
  shmSize?: number;
  extraHosts?: string[];
}

/** A progress line from pull or build: a status for an id, or a stream of text. */
export interface Progress {
  id?: string;
  status?: string;
  stream?: string;
}

export interface LogChunk {
  stream: 'stdout' | 'stderr';
  data: Buffer;
}

export interface ExecSpec {
  cmd: string[];
  tty: boolean;
  interactive: boolean;
  user?: string;
  workingDir?: string;
  env?: string[];
  privileged?: boolean;
  detach?: boolean;
}

export interface EngineEvent {
  /** Unix nanoseconds. */
  timeNano: number;
  type: string;
  action: string;
  id: string;
  attributes: Record<string, string>;
}

export interface ComposeBackend {
  /** Containers carrying every `key=value` label (all states). */
  listContainers(labels: string[], opts?: { all?: boolean }): Promise<ContainerSummary[]>;
  inspectContainer(id: string): Promise<ContainerDetails>;
  createContainer(spec: ContainerSpec): Promise<string>;
  connectNetwork(network: string, container: string, endpoint: EndpointSpec): Promise<void>;
  startContainer(id: string): Promise<void>;
  /** timeout in seconds (the container's own stop timeout when undefined). Stopping a stopped container is no error. */
  stopContainer(id: string, timeout?: number): Promise<void>;
  restartContainer(id: string, timeout?: number): Promise<void>;
  killContainer(id: string, signal?: string): Promise<void>;
  pauseContainer(id: string): Promise<void>;
  unpauseContainer(id: string): Promise<void>;
  removeContainer(id: string, opts?: { force?: boolean; volumes?: boolean }): Promise<void>;
  renameContainer(id: string, name: string): Promise<void>;
  /** Waits for the container to stop; its exit code. */
  waitContainer(id: string, signal?: AbortSignal): Promise<number>;
  logs(id: string, opts: { follow?: boolean; tail?: string; timestamps?: boolean; since?: string }, signal?: AbortSignal): AsyncIterable<LogChunk>;
  top(id: string): Promise<{ titles: string[]; processes: string[][] }>;
  /**
   * Extracts a tar stream into a directory of the container (PUT archive,
   * what `docker cp` uses): a plain copy, missing parent directories made.
   */
  copyToContainer(id: string, dir: string, tar: Readable): Promise<void>;
  /** Runs a command in the container, relayed to this process's stdio; its exit code. */
  exec(id: string, spec: ExecSpec): Promise<number>;
  /**
   * Runs a command in the container without a terminal or stdin, keeping
   * the last `limit` bytes of its stdout and of its stderr (a lifecycle
   * hook: its output goes into the error when it fails); its exit code.
   */
  execOutput(
    id: string,
    spec: Omit<ExecSpec, 'tty' | 'interactive' | 'detach'>,
    limit: number,
    onOutput?: (chunk: Buffer, stream: 1 | 2) => void,
  ): Promise<{ exitCode: number; stdout: string; stderr: string }>;
  /** Attaches this process's stdio to a created container, starts it, relays until it ends (run). */
  runAttached(id: string, opts: { tty: boolean; interactive: boolean }): Promise<number>;

  listNetworks(labels: string[]): Promise<NetworkSummary[]>;
  /** undefined when there is no such network. */
  inspectNetwork(name: string): Promise<NetworkSummary | undefined>;
  createNetwork(spec: NetworkSpec): Promise<string>;
  removeNetwork(id: string): Promise<void>;

  listVolumes(labels: string[]): Promise<VolumeSummary[]>;
  inspectVolume(name: string): Promise<VolumeSummary | undefined>;
  createVolume(spec: VolumeSpec): Promise<void>;
  removeVolume(name: string): Promise<void>;

  /** undefined when there is no such image. */
  inspectImage(ref: string): Promise<ImageSummary | undefined>;
  /** platform: "os/arch[/variant]", the service's `platform:`. */
  pullImage(ref: string, onProgress: (p: Progress) => void, signal?: AbortSignal, platform?: string): Promise<void>;
  pushImage(ref: string, onProgress: (p: Progress) => void, signal?: AbortSignal): Promise<void>;
  removeImage(ref: string): Promise<void>;
  /** The engine's events for objects carrying every `key=value` label, until signal aborts; from `since` (unix seconds) on when given, past ones first. */
  events(labels: string[], signal?: AbortSignal, since?: number): AsyncIterable<EngineEvent>;
  /** Builds an image; may throw UNAVAILABLE when the engine cannot build. Returns the image id. */
  build(spec: BuildSpec, onProgress: (p: Progress) => void, signal?: AbortSignal): Promise<string>;
}

/** Reads a stream to its end (a helper adapters share). */
export async function drain(r: Readable): Promise<void> {
  for await (const _ of r);
}
