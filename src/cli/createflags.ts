/**
 * The flags of `create` and `run` and the containers/create request they
 * become: Config + HostConfig + NetworkingConfig shaped exactly as the
 * docker CLI sends them (see shared/reference/docker-api-1.41/run-*.log),
 * so the daemon sees the same request from either CLI.
 */
import { type Command, Option } from 'commander';
import { collect } from './context.ts';
import {
  envValue,
  FlagError,
  keyValues,
  parseAddHost,
  parseCpus,
  parseDevice,
  parseDuration,
  parseInteger,
  parseMemory,
  parseMemorySwap,
  parseMount,
  parsePublish,
  parseRestart,
  parseSecurityOpts,
  parseTmpfs,
  parseUlimit,
  parseVolumes,
  readEnvFile,
} from './opts.ts';

/** What commander hands us for create/run (camelCased flag names). */
export type CreateFlags = Record<string, unknown> & {
  env: string[];
  envFile: string[];
  label: string[];
  labelFile: string[];
  publish: string[];
  expose: string[];
  volume: string[];
  mount: string[];
  tmpfs: string[];
  addHost: string[];
  dns: string[];
  dnsSearch: string[];
  dnsOption: string[];
  capAdd: string[];
  capDrop: string[];
  securityOpt: string[];
  device: string[];
  sysctl: string[];
  ulimit: string[];
  volumesFrom: string[];
  networkAlias: string[];
  groupAdd: string[];
  logOpt: string[];
  link: string[];
  attach: string[];
  storageOpt: string[];
};

/** Adds docker's create/run flags (run adds -d, --rm, --sig-proxy, --detach-keys on top). */
export function addCreateFlags(c: Command): Command {
  const list = (flags: string, desc: string) => c.option(flags, desc, collect, []);
  c.helpOption('--help', 'print usage');
  list('-a, --attach <stream>', 'attach to STDIN, STDOUT or STDERR');
  c.option('-i, --interactive', 'keep STDIN open even if not attached');
  c.option('-t, --tty', 'allocate a pseudo-TTY');
  c.option('--name <string>', 'assign a name to the container');
  list('-e, --env <list>', 'set environment variables');
  list('--env-file <file>', 'read in a file of environment variables');
  c.option('-w, --workdir <string>', 'working directory inside the container');
  c.option('-u, --user <string>', 'username or UID (format: <name|uid>[:<group|gid>])');
  c.option('--entrypoint <string>', 'overwrite the default ENTRYPOINT of the image');
  c.option('-h, --hostname <string>', 'container host name');
  c.option('--domainname <string>', 'container NIS domain name');
  list('-l, --label <list>', 'set meta data on a container');
  list('--label-file <file>', 'read in a line delimited file of labels');
  c.option('--read-only', "mount the container's root filesystem as read only");
  c.option('--init', 'run an init inside the container that forwards signals and reaps processes');
  c.option('--restart <policy>', 'restart policy to apply when a container exits (no, always, unless-stopped, on-failure[:max-retries])', 'no');
  c.option('--stop-signal <signal>', 'signal to stop the container');
  c.option('--stop-timeout <int>', 'timeout (in seconds) to stop a container');
  list('--tmpfs <tmpfs>', 'mount a tmpfs directory');
  // commander names the value after the last long flag: --network, as buildCreate reads it.
  c.option('--net, --network <network>', 'connect a container to a network');
  list('--network-alias <list>', 'add network-scoped alias for the container');
  c.option('--ip <address>', 'IPv4 address (e.g., 172.30.100.104)');
  c.option('--mac-address <string>', 'container MAC address (e.g., 92:d0:c6:0a:29:33)');
  list('-p, --publish <list>', "publish a container's port(s) to the host");
  c.option('-P, --publish-all', 'publish all exposed ports to random ports');
  list('--expose <list>', 'expose a port or a range of ports');
  list('-v, --volume <list>', 'bind mount a volume');
  list('--mount <mount>', 'attach a filesystem mount to the container');
  list('--volumes-from <list>', 'mount volumes from the specified container(s)');
  list('--add-host <list>', 'add a custom host-to-IP mapping (host:ip)');
  list('--dns <list>', 'set custom DNS servers');
  list('--dns-search <list>', 'set custom DNS search domains');
  list('--dns-option <list>', 'set DNS options');
  list('--link <list>', 'add link to another container');
  c.option('-m, --memory <bytes>', 'memory limit');
  c.option('--memory-swap <bytes>', "swap limit equal to memory plus swap: '-1' to enable unlimited swap");
  c.option('--memory-reservation <bytes>', 'memory soft limit');
  c.option('--memory-swappiness <int>', 'tune container memory swappiness (0 to 100)', '-1');
  c.option('--cpus <decimal>', 'number of CPUs');
  c.option('-c, --cpu-shares <int>', 'CPU shares (relative weight)');
  c.option('--cpu-period <int>', 'limit CPU CFS (Completely Fair Scheduler) period');
  c.option('--cpu-quota <int>', 'limit CPU CFS (Completely Fair Scheduler) quota');
  c.option('--cpuset-cpus <string>', 'CPUs in which to allow execution (0-3, 0,1)');
  c.option('--cpuset-mems <string>', 'MEMs in which to allow execution (0-3, 0,1)');
  c.option('--blkio-weight <uint16>', 'block IO (relative weight), between 10 and 1000, or 0 to disable');
  c.option('--pids-limit <int>', 'tune container pids limit (set -1 for unlimited)');
  c.option('--oom-kill-disable', 'disable OOM Killer');
  c.option('--oom-score-adj <int>', "tune host's OOM preferences (-1000 to 1000)");
  c.option('--shm-size <bytes>', 'size of /dev/shm');
  list('--cap-add <list>', 'add Linux capabilities');
  list('--cap-drop <list>', 'drop Linux capabilities');
  c.option('--privileged', 'give extended privileges to this container');
  list('--security-opt <list>', 'security options');
  list('--device <list>', 'add a host device to the container');
  list('--sysctl <map>', 'sysctl options');
  list('--ulimit <ulimit>', 'ulimit options');
  list('--group-add <list>', 'add additional groups to join');
  list('--storage-opt <list>', 'storage driver options for the container');
  c.option('--ipc <string>', 'IPC mode to use');
  c.option('--pid <string>', 'PID namespace to use');
  c.option('--uts <string>', 'UTS namespace to use');
  c.option('--userns <string>', 'user namespace to use');
  c.option('--cgroupns <string>', 'cgroup namespace to use (host|private)');
  c.option('--cgroup-parent <string>', 'optional parent cgroup for the container');
  c.option('--log-driver <string>', 'logging driver for the container');
  list('--log-opt <list>', 'log driver options');
  c.option('--cidfile <file>', 'write the container ID to the file');
  c.option('--platform <string>', 'set platform if server is multi-platform capable');
  c.addOption(new Option('--pull <policy>', 'pull image before running').choices(['always', 'missing', 'never']).default('missing'));
  c.option('-q, --quiet', 'suppress the pull output');
  c.option('--health-cmd <string>', 'command to run to check health');
  c.option('--health-interval <duration>', 'time between running the check (ms|s|m|h)');
  c.option('--health-timeout <duration>', 'maximum time to allow one check to run (ms|s|m|h)');
  c.option('--health-start-period <duration>', 'start period for the container to initialize before starting health-retries countdown (ms|s|m|h)');
  c.option('--health-start-interval <duration>', 'time between running the check during the start period (ms|s|m|h)');
  c.option('--health-retries <int>', 'consecutive failures needed to report unhealthy');
  c.option('--no-healthcheck', 'disable any container-specified HEALTHCHECK');
  return c;
}

/** docker's flag names for error messages (`"-m, --memory" flag`). */
const flagNames: Record<string, string> = {
  memory: '-m, --memory',
  memorySwap: '--memory-swap',
  memoryReservation: '--memory-reservation',
  cpus: '--cpus',
  cpuShares: '-c, --cpu-shares',
  publish: '-p, --publish',
  volume: '-v, --volume',
  mount: '--mount',
  ulimit: '--ulimit',
  envFile: '--env-file',
  labelFile: '--label-file',
  restart: '--restart',
  device: '--device',
  addHost: '--add-host',
  tmpfs: '--tmpfs',
  pidsLimit: '--pids-limit',
  stopTimeout: '--stop-timeout',
  shmSize: '--shm-size',
  securityOpt: '--security-opt',
  env: '-e, --env',
  label: '-l, --label',
  expose: '--expose',
  sysctl: '--sysctl',
  healthInterval: '--health-interval',
  healthTimeout: '--health-timeout',
  healthStartPeriod: '--health-start-period',
  healthStartInterval: '--health-start-interval',
  healthRetries: '--health-retries',
  memorySwappiness: '--memory-swappiness',
  cpuPeriod: '--cpu-period',
  cpuQuota: '--cpu-quota',
  blkioWeight: '--blkio-weight',
  oomScoreAdj: '--oom-score-adj',
};

/** Runs a parser on a flag's value, turning its FlagError into docker's message. */
function flag<T>(o: CreateFlags, key: string, parse: (v: string) => T): T | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  const run = (s: string) => {
    try {
      return parse(s);
    } catch (e) {
      if (e instanceof FlagError) throw new FlagError(`invalid argument "${s}" for "${flagNames[key] ?? `--${key}`}" flag: ${e.message}`);
      throw e;
    }
  };
  return run(String(v));
}

function each<T>(o: CreateFlags, key: keyof CreateFlags & string, parse: (v: string) => T): T[] {
  return (o[key] as string[]).map((s) => flag({ [key]: s } as CreateFlags, key, parse)!);
}

export interface CreateRequest {
  name?: string;
  platform?: string;
  body: Record<string, unknown>;
}

/** Builds the create request; `detach` is run -d (create never attaches stdin). */
export function buildCreate(
  image: string,
  cmd: string[],
  o: CreateFlags,
  detach: boolean,
  autoRemove: boolean,
  consoleSize: [number, number] | undefined,
): CreateRequest {
  const attach = o.attach.map((s) => s.toLowerCase());
  for (const a of attach)
    if (!['stdin', 'stdout', 'stderr'].includes(a))
      throw new FlagError(`invalid argument "${a}" for "-a, --attach" flag: valid streams are STDIN, STDOUT and STDERR`);
  if (detach && attach.length) throw new FlagError('conflicting options: cannot specify both --attach and --detach');
  const stdin = attach.length ? attach.includes('stdin') : !!o.interactive && !detach;
  const stdout = attach.length ? attach.includes('stdout') : !detach;
  const stderr = attach.length ? attach.includes('stderr') : !detach;
  const env = [...o.envFile.flatMap((f) => flag({ envFile: f } as unknown as CreateFlags, 'envFile', (v) => readEnvFile(v))!), ...each(o, 'env', envValue)];
  const labels = {
    ...keyValues(o.labelFile.flatMap((f) => flag({ labelFile: f } as unknown as CreateFlags, 'labelFile', (v) => readEnvFile(v, false))!)),
    ...keyValues(o.label),
  };
  const { exposed, bindings } = (() => {
    try {
      return parsePublish(o.publish, o.expose);
    } catch (e) {
      if (e instanceof FlagError) throw new FlagError(`invalid argument "${o.publish.join(',')}" for "-p, --publish" flag: ${e.message}`);
      throw e;
    }
  })();
  const vols = parseVolumes(o.volume);
  const mounts = each(o, 'mount', parseMount);
  const network = (o.network as string | undefined) ?? 'default';
  const health = healthcheck(o);
  const stopTimeout = flag(o, 'stopTimeout', parseInteger);
  const config: Record<string, unknown> = {
    Hostname: o.hostname ?? '',
    Domainname: o.domainname ?? '',
    User: o.user ?? '',
    AttachStdin: stdin,
    AttachStdout: stdout,
    AttachStderr: stderr,
    ...(Object.keys(exposed).length ? { ExposedPorts: exposed } : {}),
    Tty: !!o.tty,
    OpenStdin: !!o.interactive,
    StdinOnce: !!o.interactive && stdin,
    Env: env.length ? env : null,
    Cmd: cmd.length ? cmd : null,
    ...(health ? { Healthcheck: health } : {}),
    Image: image,
    Volumes: vols.volumes,
    WorkingDir: o.workdir ?? '',
    Entrypoint: o.entrypoint === undefined ? null : o.entrypoint === '' ? [''] : [o.entrypoint],
    ...(o.macAddress ? { MacAddress: o.macAddress } : {}),
    OnBuild: null,
    Labels: labels,
    ...(o.stopSignal ? { StopSignal: o.stopSignal } : {}),
    ...(stopTimeout !== undefined ? { StopTimeout: stopTimeout } : {}),
  };
  const tmpfs = each(o, 'tmpfs', (v) => parseTmpfs([v]));
  const sysctls = keyValues(o.sysctl);
  const storage = keyValues(o.storageOpt);
  const hostConfig: Record<string, unknown> = {
    Binds: vols.binds.length ? vols.binds : null,
    ContainerIDFile: o.cidfile ?? '',
    LogConfig: { Type: o.logDriver ?? '', Config: keyValues(o.logOpt) },
    NetworkMode: network,
    PortBindings: bindings,
    RestartPolicy: flag(o, 'restart', parseRestart),
    AutoRemove: autoRemove,
    VolumeDriver: '',
    VolumesFrom: o.volumesFrom.length ? o.volumesFrom : null,
    ConsoleSize: o.tty && consoleSize ? consoleSize : [0, 0],
    CapAdd: o.capAdd.length ? o.capAdd.map(capName) : null,
    CapDrop: o.capDrop.length ? o.capDrop.map(capName) : null,
    CgroupnsMode: o.cgroupns ?? '',
    Dns: o.dns,
    DnsOptions: o.dnsOption,
    DnsSearch: o.dnsSearch,
    ExtraHosts: o.addHost.length ? each(o, 'addHost', parseAddHost) : null,
    GroupAdd: o.groupAdd.length ? o.groupAdd : null,
    IpcMode: o.ipc ?? '',
    Cgroup: '',
    Links: o.link.length ? o.link : null,
    OomScoreAdj: flag(o, 'oomScoreAdj', parseInteger) ?? 0,
    PidMode: o.pid ?? '',
    Privileged: !!o.privileged,
    PublishAllPorts: !!o.publishAll,
    ReadonlyRootfs: !!o.readOnly,
    SecurityOpt: o.securityOpt.length ? each(o, 'securityOpt', (v) => parseSecurityOpts([v])[0]!) : null,
    ...(Object.keys(storage).length ? { StorageOpt: storage } : {}),
    ...(tmpfs.length ? { Tmpfs: Object.assign({}, ...tmpfs) } : {}),
    UTSMode: o.uts ?? '',
    UsernsMode: o.userns ?? '',
    ShmSize: flag(o, 'shmSize', parseMemory) ?? 0,
    ...(Object.keys(sysctls).length ? { Sysctls: sysctls } : {}),
    Isolation: '',
    CpuShares: flag(o, 'cpuShares', parseInteger) ?? 0,
    Memory: flag(o, 'memory', parseMemory) ?? 0,
    NanoCpus: flag(o, 'cpus', parseCpus) ?? 0,
    CgroupParent: o.cgroupParent ?? '',
    BlkioWeight: flag(o, 'blkioWeight', parseInteger) ?? 0,
    BlkioWeightDevice: [],
    BlkioDeviceReadBps: [],
    BlkioDeviceWriteBps: [],
    BlkioDeviceReadIOps: [],
    BlkioDeviceWriteIOps: [],
    CpuPeriod: flag(o, 'cpuPeriod', parseInteger) ?? 0,
    CpuQuota: flag(o, 'cpuQuota', parseInteger) ?? 0,
    CpuRealtimePeriod: 0,
    CpuRealtimeRuntime: 0,
    CpusetCpus: o.cpusetCpus ?? '',
    CpusetMems: o.cpusetMems ?? '',
    Devices: each(o, 'device', parseDevice),
    DeviceCgroupRules: null,
    DeviceRequests: null,
    MemoryReservation: flag(o, 'memoryReservation', parseMemory) ?? 0,
    MemorySwap: flag(o, 'memorySwap', parseMemorySwap) ?? 0,
    MemorySwappiness: flag(o, 'memorySwappiness', parseInteger) ?? -1,
    OomKillDisable: !!o.oomKillDisable,
    PidsLimit: flag(o, 'pidsLimit', parseInteger) ?? null,
    Ulimits: each(o, 'ulimit', parseUlimit),
    ...(o.init ? { Init: true } : {}),
    ...(mounts.length ? { Mounts: mounts } : {}),
    CpuCount: 0,
    CpuPercent: 0,
    IOMaximumIOps: 0,
    IOMaximumBandwidth: 0,
    MaskedPaths: null,
    ReadonlyPaths: null,
  };
  const endpoint = {
    IPAMConfig: o.ip ? { IPv4Address: o.ip } : null,
    Links: null,
    Aliases: o.networkAlias.length ? o.networkAlias : null,
    MacAddress: (o.macAddress as string) ?? '',
    DriverOpts: null,
    NetworkID: '',
    EndpointID: '',
    Gateway: '',
    IPAddress: '',
    IPPrefixLen: 0,
    IPv6Gateway: '',
    GlobalIPv6Address: '',
    GlobalIPv6PrefixLen: 0,
  };
  const custom = o.ip || o.networkAlias.length || o.macAddress;
  const endpoints = network === 'default' || custom ? { [network]: endpoint } : {};
  if (o.networkAlias.length && (['default', 'bridge', 'host', 'none'].includes(network) || network.startsWith('container:')))
    throw new FlagError('network-scoped aliases are only supported for user-defined networks');
  return {
    name: o.name as string | undefined,
    platform: o.platform as string | undefined,
    body: { ...config, HostConfig: hostConfig, NetworkingConfig: { EndpointsConfig: endpoints } },
  };
}

/** docker 28 sends capabilities as CAP_XXX ("ALL" stays as is). */
function capName(c: string): string {
  const u = c.toUpperCase();
  return u === 'ALL' || u.startsWith('CAP_') ? u : `CAP_${u}`;
}

/** The docker CLI's health flags: a zero value is no setting; negative ones are refused here, the rest by the daemon. */
function healthcheck(o: CreateFlags): Record<string, unknown> | undefined {
  const dur = (k: string) => flag(o, k, parseDuration) ?? 0;
  const cmd = (o.healthCmd as string | undefined) ?? '';
  const values = {
    interval: dur('healthInterval'),
    timeout: dur('healthTimeout'),
    retries: flag(o, 'healthRetries', parseInteger) ?? 0,
    'start-period': dur('healthStartPeriod'),
    'start-interval': dur('healthStartInterval'),
  };
  const any = cmd !== '' || Object.values(values).some((v) => v !== 0);
  if (o.healthcheck === false) {
    if (any) throw new FlagError('--no-healthcheck conflicts with --health-* options');
    return { Test: ['NONE'] };
  }
  if (!any) return undefined;
  for (const [k, v] of Object.entries(values)) if (v < 0) throw new FlagError(`--health-${k} cannot be negative`);
  return {
    Test: cmd ? ['CMD-SHELL', cmd] : null,
    Interval: values.interval,
    Timeout: values.timeout,
    StartPeriod: values['start-period'],
    StartInterval: values['start-interval'],
    Retries: values.retries,
  };
}
