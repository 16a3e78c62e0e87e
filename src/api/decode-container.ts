/**
 * Docker's POST /containers/create body (API 1.41: Config fields at the top
 * level, HostConfig, NetworkingConfig) decoded into keel's ContainerSpec.
 *
 * What is checked here is the wire format: shapes and types, with dockerd's
 * messages where clients see them (the docker CLI, dockerode,
 * docker-compose and testcontainers assert some). What depends on the image,
 * on other objects or on what keel supports is checked at create
 * (containers/create.ts, containers/record.ts, volumes/mounts.ts).
 *
 * Like dockerd, which decodes the body into its HostConfig struct, HostConfig
 * keys that are not docker's are dropped; docker's keys that keel does not
 * act on are kept verbatim (ContainerSpec.inspectOnly) so inspect shows them.
 */
import { invalid } from '../common/errors.ts';
import { parseHealthConfig } from '../containers/health.ts';
import { parseRestartPolicy } from '../containers/create.ts';
import type {
  ContainerSpec,
  DeviceSpec,
  EndpointSpec,
  HealthcheckSpec,
  MountOption,
  MountRequest,
  PortBindingSpec,
  ResourcesSpec,
  UlimitSpec,
  UpdateSpec,
} from '../containers/spec.ts';

const MAX_ARGS = 4096;
const MAX_ENV = 4096;
const MAX_LABELS = 4096;
const MAX_ENTRIES = 1000;
const MAX_ENDPOINTS = 64;
const MAX_LEN = 4096;

/** HostConfig fields (moby api/types/container HostConfig and Resources) keel stores for inspect only. */
const INSPECT_ONLY_KEYS = [
  'ContainerIDFile',
  'Cgroup',
  'StorageOpt',
  'Runtime',
  'Isolation',
  'MaskedPaths',
  'ReadonlyPaths',
  'BlkioWeightDevice',
  'BlkioDeviceReadBps',
  'BlkioDeviceWriteBps',
  'BlkioDeviceReadIOps',
  'BlkioDeviceWriteIOps',
  'CpuRealtimePeriod',
  'CpuRealtimeRuntime',
  'DeviceCgroupRules',
  'DeviceRequests',
  'KernelMemory',
  'KernelMemoryTCP',
  'CpuCount',
  'CpuPercent',
  'IOMaximumIOps',
  'IOMaximumBandwidth',
];

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => !!v && typeof v === 'object' && !Array.isArray(v);
const given = (v: unknown): boolean => v !== undefined && v !== null;

/** A list of strings; a lone string is a list of one (docker's StrSlice). */
function strArray(v: unknown, what: string, max = MAX_ARGS): string[] | null {
  if (!given(v)) return null;
  if (typeof v === 'string') return [v];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw invalid(`${what} must be a list of strings`);
  if (v.length > max) throw invalid(`${what} has more than ${max} entries`);
  return v as string[];
}

/** A list that may be null (kept null, so inspect shows what was sent); undefined when absent. */
function nullableStrings(v: unknown, what: string): string[] | null | undefined {
  return v === undefined ? undefined : strArray(v, what);
}

function num(v: unknown, what: string): number | undefined {
  if (!given(v)) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw invalid(`${what} must be a number`);
  return n;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);

function stringMap(v: unknown, what: string, max = MAX_ENTRIES): Record<string, string> {
  if (!isObj(v)) throw invalid(`${what} must be an object of strings`);
  const entries = Object.entries(v);
  if (entries.length > max) throw invalid(what === 'Labels' ? `more than ${max} labels` : `${what} has more than ${max} entries`);
  return Object.fromEntries(entries.map(([k, x]) => [k, String(x)]));
}

/**
 * Decodes a create body; `name` is the ?name= query parameter, `version` the
 * API version the client speaks: as dockerd, a client older than 1.40 gets
 * the IPC mode that was the default then (shareable), so that its
 * `--ipc container:` joiners keep working.
 */
export function decodeCreateContainer(body: unknown, name?: string, version?: number): ContainerSpec {
  if (!isObj(body)) throw invalid('config cannot be empty in order to create a container');
  if (!body.Image || typeof body.Image !== 'string') throw invalid('no image given: say which image to create the container from');
  const hc: Obj = isObj(body.HostConfig) ? body.HostConfig : {};
  const spec: ContainerSpec = { image: body.Image, ...(name ? { name } : {}) };
  decodeHost(hc, spec);
  if (version !== undefined && version < 1.4 && !spec.ipcMode) spec.ipcMode = 'shareable';
  decodeConfig(body, spec);
  const eps = isObj(body.NetworkingConfig) ? body.NetworkingConfig.EndpointsConfig : undefined;
  if (isObj(eps)) spec.endpoints = decodeEndpoints(eps);
  return spec;
}

function decodeConfig(b: Obj, spec: ContainerSpec): void {
  const set = <K extends keyof ContainerSpec>(k: K, v: ContainerSpec[K] | undefined) => {
    if (v !== undefined) spec[k] = v;
  };
  set('hostname', str(b.Hostname));
  set('domainname', typeof b.Domainname === 'string' ? b.Domainname : undefined);
  set('user', str(b.User));
  set('workingDir', str(b.WorkingDir));
  for (const k of ['AttachStdin', 'AttachStdout', 'AttachStderr', 'Tty', 'OpenStdin', 'StdinOnce'] as const) {
    if (b[k]) spec[(k[0]!.toLowerCase() + k.slice(1)) as 'tty'] = true;
  }
  set('entrypoint', strArray(b.Entrypoint, 'Entrypoint') ?? undefined);
  set('cmd', strArray(b.Cmd, 'Cmd') ?? undefined);
  set('env', strArray(b.Env, 'Env', MAX_ENV) ?? undefined);
  if (isObj(b.Labels)) set('labels', stringMap(b.Labels, 'Labels', MAX_LABELS));
  if (given(b.ExposedPorts)) set('exposedPorts', keysOf(b.ExposedPorts, 'ExposedPorts'));
  if (given(b.Volumes)) set('volumes', keysOf(b.Volumes, 'Volumes'));
  set('stopSignal', str(b.StopSignal));
  set('stopTimeout', num(b.StopTimeout, 'StopTimeout'));
  set('macAddress', str(b.MacAddress));
  const h = parseHealthConfig(b.Healthcheck, true);
  if (h) {
    const hs: HealthcheckSpec = {};
    if (h.Test) hs.test = h.Test;
    if (h.Interval) hs.interval = h.Interval;
    if (h.Timeout) hs.timeout = h.Timeout;
    if (h.StartPeriod) hs.startPeriod = h.StartPeriod;
    if (h.StartInterval) hs.startInterval = h.StartInterval;
    if (h.Retries) hs.retries = h.Retries;
    spec.healthcheck = hs;
  }
}

function keysOf(v: unknown, what: string): string[] {
  if (!isObj(v)) throw invalid(`${what} must be an object`);
  const keys = Object.keys(v);
  if (keys.length > MAX_ENTRIES) throw invalid(`${what} has more than ${MAX_ENTRIES} entries`);
  return keys;
}

function decodeHost(h: Obj, spec: ContainerSpec): void {
  const mounts: MountRequest[] = [];
  for (const s of strArray(h.Binds, 'Binds') ?? []) mounts.push({ kind: 'volume-flag', spec: s });
  const autoRemove = !!h.AutoRemove;
  const restart = parseRestartPolicy(isObj(h.RestartPolicy) ? h.RestartPolicy : undefined, autoRemove);
  if (restart.Name || restart.MaximumRetryCount) spec.restartPolicy = { name: restart.Name, maximumRetryCount: restart.MaximumRetryCount };
  if (autoRemove) spec.autoRemove = true;
  if (typeof h.NetworkMode === 'string' && h.NetworkMode) spec.networkMode = h.NetworkMode;
  const lists = { capAdd: 'CapAdd', capDrop: 'CapDrop', securityOpt: 'SecurityOpt', extraHosts: 'ExtraHosts', links: 'Links', groupAdd: 'GroupAdd' } as const;
  for (const [k, wire] of Object.entries(lists)) {
    const v = nullableStrings(h[wire], wire);
    if (v !== undefined) spec[k as keyof typeof lists] = v;
  }
  for (const [k, wire] of [
    ['dns', 'Dns'],
    ['dnsSearch', 'DnsSearch'],
    ['dnsOptions', 'DnsOptions'],
  ] as const) {
    const v = strArray(h[wire], wire);
    if (v) spec[k] = v;
  }
  if (h.Privileged) spec.privileged = true;
  if (h.ReadonlyRootfs) spec.readonlyRootfs = true;
  if (given(h.PublishAllPorts)) spec.publishAllPorts = !!h.PublishAllPorts;
  if (h.Init !== undefined) spec.init = h.Init === null ? null : !!h.Init;
  for (const [k, wire] of [
    ['pidMode', 'PidMode'],
    ['ipcMode', 'IpcMode'],
    ['utsMode', 'UTSMode'],
    ['usernsMode', 'UsernsMode'],
    ['volumeDriver', 'VolumeDriver'],
    ['cgroupParent', 'CgroupParent'],
    ['cgroupnsMode', 'CgroupnsMode'],
  ] as const) {
    if (given(h[wire]) && typeof h[wire] !== 'string') throw invalid(`${wire} must be a string`);
    if (typeof h[wire] === 'string') spec[k] = h[wire];
  }
  const oom = num(h.OomScoreAdj, 'OomScoreAdj');
  if (oom !== undefined) spec.oomScoreAdj = oom;
  if (h.Sysctls !== undefined) spec.sysctls = h.Sysctls === null ? null : stringMap(h.Sysctls, 'Sysctls');
  if (Array.isArray(h.ConsoleSize) && h.ConsoleSize.length === 2) spec.consoleSize = [Number(h.ConsoleSize[0]) || 0, Number(h.ConsoleSize[1]) || 0];
  if (h.PortBindings !== undefined) spec.portBindings = decodePortBindings(h.PortBindings);
  const vf = nullableStrings(h.VolumesFrom, 'VolumesFrom');
  if (vf !== undefined) spec.volumesFrom = vf;
  if (isObj(h.LogConfig)) {
    const lc = h.LogConfig;
    spec.logConfig = {
      ...(typeof lc.Type === 'string' ? { type: lc.Type } : {}),
      ...(given(lc.Config) ? { config: stringMap(lc.Config, 'LogConfig.Config') } : {}),
    };
  }
  spec.resources = decodeResources(h);
  if (given(h.Mounts)) {
    if (!Array.isArray(h.Mounts)) throw invalid('Mounts must be a list');
    if (h.Mounts.length > MAX_ENTRIES) throw invalid(`too many mounts (over ${MAX_ENTRIES})`);
    for (const m of h.Mounts) mounts.push({ kind: 'mount', mount: decodeMount(m) });
  }
  if (given(h.Tmpfs)) {
    if (typeof h.Tmpfs !== 'object') throw invalid('tmpfs mount points must be absolute paths');
    if (!isObj(h.Tmpfs) || Object.values(h.Tmpfs).some((o) => typeof o !== 'string')) throw invalid('Tmpfs must be an object of mount point → options');
    for (const [target, options] of Object.entries(h.Tmpfs)) mounts.push({ kind: 'tmpfs-flag', target, options: options as string });
  }
  if (mounts.length) spec.mounts = mounts;
  const extra = Object.fromEntries(INSPECT_ONLY_KEYS.filter((k) => k in h).map((k) => [k, h[k]]));
  if (Object.keys(extra).length) spec.inspectOnly = extra;
}

function decodeResources(h: Obj): ResourcesSpec {
  const r: ResourcesSpec = {};
  for (const [k, wire] of [
    ['memory', 'Memory'],
    ['memorySwap', 'MemorySwap'],
    ['memoryReservation', 'MemoryReservation'],
    ['nanoCpus', 'NanoCpus'],
    ['cpuShares', 'CpuShares'],
    ['cpuPeriod', 'CpuPeriod'],
    ['cpuQuota', 'CpuQuota'],
    ['shmSize', 'ShmSize'],
    ['blkioWeight', 'BlkioWeight'],
  ] as const) {
    const n = num(h[wire], wire);
    if (n !== undefined) r[k] = n;
  }
  if (typeof h.CpusetCpus === 'string') r.cpusetCpus = h.CpusetCpus;
  if (typeof h.CpusetMems === 'string') r.cpusetMems = h.CpusetMems;
  if (h.PidsLimit !== undefined) r.pidsLimit = h.PidsLimit === null ? null : num(h.PidsLimit, 'PidsLimit');
  if (h.MemorySwappiness !== undefined) r.memorySwappiness = h.MemorySwappiness === null ? null : num(h.MemorySwappiness, 'MemorySwappiness');
  if (h.OomKillDisable !== undefined) r.oomKillDisable = h.OomKillDisable === null ? null : !!h.OomKillDisable;
  if (Array.isArray(h.Ulimits)) r.ulimits = h.Ulimits.slice(0, MAX_ENTRIES).map(decodeUlimit);
  if (Array.isArray(h.Devices)) r.devices = h.Devices.slice(0, MAX_ENTRIES).map(decodeDevice);
  return r;
}

export function decodeUlimit(u: unknown): UlimitSpec {
  if (!isObj(u) || typeof u.Name !== 'string') throw invalid('Ulimits must be a list of {Name, Soft, Hard}');
  return { name: u.Name, soft: num(u.Soft, 'Ulimit Soft') ?? 0, hard: num(u.Hard, 'Ulimit Hard') ?? 0 };
}

function decodeDevice(d: unknown): DeviceSpec {
  if (!isObj(d)) throw invalid('Devices must be a list of {PathOnHost, PathInContainer, CgroupPermissions}');
  const s = (v: unknown) => (typeof v === 'string' ? v : '');
  return { pathOnHost: s(d.PathOnHost), pathInContainer: s(d.PathInContainer), cgroupPermissions: s(d.CgroupPermissions) };
}

function decodePortBindings(v: unknown): Record<string, PortBindingSpec[] | null> | null {
  if (v === null) return null;
  if (!isObj(v)) throw invalid('PortBindings must be an object of port → bindings');
  const entries = Object.entries(v);
  if (entries.length > MAX_ENTRIES) throw invalid(`PortBindings has more than ${MAX_ENTRIES} entries`);
  const one = (b: unknown): PortBindingSpec => {
    if (!isObj(b)) throw invalid('a port binding must be an object {HostIp, HostPort}');
    const out: PortBindingSpec = {};
    if (given(b.HostIp)) out.hostIp = String(b.HostIp);
    if (given(b.HostPort)) out.hostPort = String(b.HostPort);
    return out;
  };
  return Object.fromEntries(
    entries.map(([port, list]) => {
      if (list !== null && !Array.isArray(list)) throw invalid(`PortBindings for ${port} must be a list`);
      return [port, list && list.slice(0, MAX_ENTRIES).map(one)];
    }),
  );
}

/** A HostConfig.Mounts[] entry; its rules per type are volumes/' (parseMountSpec), at create. */
function decodeMount(m: unknown): MountOption {
  if (!isObj(m)) throw invalid('invalid mount: expected an object');
  for (const k of ['Type', 'Source', 'Target', 'Consistency'] as const) {
    if (given(m[k]) && (typeof m[k] !== 'string' || m[k].length > MAX_LEN)) throw invalid(`invalid mount: ${k} must be a string`);
  }
  const type = m.Type;
  if (type !== 'bind' && type !== 'volume' && type !== 'tmpfs')
    throw invalid(`invalid mount config for type ${JSON.stringify(type ?? '')}: mount type unknown`);
  const out: MountOption = { type, target: (m.Target as string | undefined) ?? '' };
  if (given(m.Source)) out.source = m.Source as string;
  if (given(m.ReadOnly)) out.readOnly = !!m.ReadOnly;
  if (given(m.Consistency)) out.consistency = m.Consistency as string;
  const bo = m.BindOptions;
  if (isObj(bo)) {
    out.bind = {};
    if (given(bo.Propagation)) out.bind.propagation = String(bo.Propagation);
    if (given(bo.NonRecursive)) out.bind.nonRecursive = !!bo.NonRecursive;
  }
  const vo = m.VolumeOptions;
  if (isObj(vo)) {
    out.volume = {};
    if (given(vo.NoCopy)) out.volume.noCopy = !!vo.NoCopy;
    if (vo.Labels !== undefined) out.volume.labels = vo.Labels === null ? null : stringMap(vo.Labels, 'VolumeOptions.Labels');
    const dc = vo.DriverConfig;
    if (dc === null) out.volume.driver = null;
    else if (isObj(dc)) {
      out.volume.driver = {};
      if (given(dc.Name)) out.volume.driver.name = String(dc.Name);
      if (dc.Options !== undefined) out.volume.driver.options = dc.Options === null ? null : stringMap(dc.Options, 'DriverConfig.Options');
    }
  }
  const to = m.TmpfsOptions;
  if (isObj(to)) {
    out.tmpfs = {};
    for (const [k, wire, what] of [
      ['sizeBytes', 'SizeBytes', 'size'],
      ['mode', 'Mode', 'mode'],
    ] as const) {
      if (!given(to[wire])) continue;
      if (typeof to[wire] !== 'number') throw invalid(`invalid mount config for type "${type}": invalid tmpfs ${what} ${String(to[wire])}`);
      out.tmpfs[k] = to[wire];
    }
  }
  return out;
}

function decodeEndpoints(eps: Obj): Record<string, EndpointSpec> {
  const out: Record<string, EndpointSpec> = {};
  for (const [k, v] of Object.entries(eps).slice(0, MAX_ENDPOINTS)) {
    const e: EndpointSpec = {};
    if (isObj(v)) {
      const aliases = strArray(v.Aliases, 'Aliases', MAX_ENDPOINTS);
      if (aliases?.length) e.aliases = aliases;
      const ip = isObj(v.IPAMConfig) ? v.IPAMConfig.IPv4Address : undefined;
      if (ip) e.ipv4Address = String(ip);
      if (v.MacAddress) e.macAddress = String(v.MacAddress);
    }
    out[k] = e;
  }
  return out;
}

/** Decodes a POST /containers/{id}/update body (a subset of HostConfig's resources, and RestartPolicy). */
export function decodeUpdateContainer(body: unknown): UpdateSpec {
  if (body === null || body === undefined) return { resources: {} };
  if (!isObj(body)) throw invalid('the update body must be a JSON object');
  const { memory, memorySwap, memoryReservation, nanoCpus, cpuShares, cpuPeriod, cpuQuota, cpusetCpus, cpusetMems, pidsLimit } = decodeResources(body);
  const spec: UpdateSpec = {
    resources: { memory, memorySwap, memoryReservation, nanoCpus, cpuShares, cpuPeriod, cpuQuota, cpusetCpus, cpusetMems, pidsLimit },
  };
  const rp = body.RestartPolicy;
  if (isObj(rp) && rp.Name) {
    if (typeof rp.Name !== 'string') throw invalid('RestartPolicy.Name must be a string');
    spec.restartPolicy = { name: rp.Name, maximumRetryCount: num(rp.MaximumRetryCount, 'RestartPolicy.MaximumRetryCount') ?? 0 };
  }
  return spec;
}
