/**
 * The record encoder: a ContainerSpec becomes the HostConfig and endpoints
 * a ContainerRecord stores. The record keeps Docker's field names (inspect
 * shows them, and the runtime spec, networking and volumes read them); this
 * is the one place that writes them at create, with docker's defaults and
 * the checks that hold for any spec, whoever built it.
 */
import { invalid } from '../common/errors.ts';
import { NAME_PATTERN } from '../common/ids.ts';
import { normalizeLogConfig } from './logconfig.ts';
import { joinedContainer } from './network.ts';
import type { ContainerSpec, MountOption } from './spec.ts';
import type { EndpointConfig, HostConfig } from './types.ts';

const MAX_ENDPOINTS = 64;

/** An optional field, present in the record only when the spec gave it (null included). */
const opt = <K extends string, V>(k: K, v: V | undefined): Partial<Record<K, V>> => (v === undefined ? {} : ({ [k]: v } as Record<K, V>));

/** HostConfig.Mounts[] entry (Docker's shape) of a `--mount`. */
export function dockerMount(m: MountOption): Record<string, unknown> {
  const vo = m.volume;
  return {
    Type: m.type,
    ...opt('Source', m.source),
    Target: m.target,
    ...opt('ReadOnly', m.readOnly),
    ...opt('Consistency', m.consistency),
    ...(m.bind ? { BindOptions: { ...opt('Propagation', m.bind.propagation), ...opt('NonRecursive', m.bind.nonRecursive) } } : {}),
    ...(vo
      ? {
          VolumeOptions: {
            ...opt('NoCopy', vo.noCopy),
            ...opt('Labels', vo.labels),
            ...(vo.driver === undefined ? {} : { DriverConfig: vo.driver && { ...opt('Name', vo.driver.name), ...opt('Options', vo.driver.options) } }),
          },
        }
      : {}),
    ...(m.tmpfs ? { TmpfsOptions: { ...opt('SizeBytes', m.tmpfs.sizeBytes), ...opt('Mode', m.tmpfs.mode) } } : {}),
  };
}

/** The record's HostConfig: docker's defaults filled in, the spec's checks made (dockerd's messages). */
export function hostConfigOf(s: ContainerSpec): HostConfig {
  const r = s.resources ?? {};
  const mounts = s.mounts ?? [];
  const binds = mounts.flatMap((m) => (m.kind === 'volume-flag' ? [m.spec] : []));
  const dockerMounts = mounts.flatMap((m) => (m.kind === 'mount' ? [dockerMount(m.mount)] : []));
  const tmpfs = mounts.flatMap((m) => (m.kind === 'tmpfs-flag' ? [[m.target, m.options] as const] : []));
  const restart = s.restartPolicy ?? { name: '', maximumRetryCount: 0 };
  const h: HostConfig = {
    ...s.inspectOnly,
    Binds: binds.length ? binds : null,
    ...(dockerMounts.length ? { Mounts: dockerMounts } : {}),
    ...(tmpfs.length ? { Tmpfs: Object.fromEntries(tmpfs) } : {}),
    ...opt('VolumesFrom', s.volumesFrom),
    ...opt('VolumeDriver', s.volumeDriver),
    NetworkMode: s.networkMode || 'default',
    ...opt(
      'PortBindings',
      s.portBindings &&
        Object.fromEntries(
          Object.entries(s.portBindings).map(([k, v]) => [k, v && v.map((b) => ({ ...opt('HostIp', b.hostIp), ...opt('HostPort', b.hostPort) }))]),
        ),
    ),
    ...opt('PublishAllPorts', s.publishAllPorts),
    ...opt('Links', s.links),
    RestartPolicy: { Name: restart.name, MaximumRetryCount: restart.maximumRetryCount },
    AutoRemove: !!s.autoRemove,
    CapAdd: s.capAdd ?? null,
    CapDrop: s.capDrop ?? null,
    ...opt('GroupAdd', s.groupAdd),
    Privileged: !!s.privileged,
    ReadonlyRootfs: !!s.readonlyRootfs,
    SecurityOpt: s.securityOpt ?? null,
    ...opt('Init', s.init),
    ...opt('Sysctls', s.sysctls ?? undefined),
    ...opt('UsernsMode', s.usernsMode),
    ...opt('ConsoleSize', s.consoleSize),
    Devices: (r.devices ?? []).map((d) => ({ PathOnHost: d.pathOnHost, PathInContainer: d.pathInContainer, CgroupPermissions: d.cgroupPermissions })),
    Ulimits: (r.ulimits ?? []).map((u) => ({ Name: u.name, Soft: u.soft, Hard: u.hard })),
    Memory: r.memory ?? 0,
    MemorySwap: r.memorySwap ?? 0,
    MemoryReservation: r.memoryReservation ?? 0,
    ...opt('MemorySwappiness', r.memorySwappiness),
    NanoCpus: r.nanoCpus ?? 0,
    CpuShares: r.cpuShares ?? 0,
    CpuPeriod: r.cpuPeriod ?? 0,
    CpuQuota: r.cpuQuota ?? 0,
    CpusetCpus: r.cpusetCpus ?? '',
    CpusetMems: r.cpusetMems ?? '',
    ...opt('PidsLimit', r.pidsLimit),
    ...opt('OomKillDisable', r.oomKillDisable),
    ...opt('BlkioWeight', r.blkioWeight),
    OomScoreAdj: s.oomScoreAdj ?? 0,
    ShmSize: r.shmSize || 64 * 1024 * 1024,
    PidMode: s.pidMode ?? '',
    IpcMode: s.ipcMode || 'private',
    UTSMode: s.utsMode ?? '',
    CgroupParent: s.cgroupParent ?? '',
    CgroupnsMode: s.cgroupnsMode || 'host',
    ExtraHosts: s.extraHosts ?? null,
    Dns: s.dns ?? [],
    DnsSearch: s.dnsSearch ?? [],
    DnsOptions: s.dnsOptions ?? [],
    LogConfig: normalizeLogConfig(s.logConfig ? { Type: s.logConfig.type, Config: s.logConfig.config } : undefined),
  };
  if (restart.maximumRetryCount > 0 && restart.name !== 'on-failure') throw invalid(`maximum retry count cannot be used with restart policy '${restart.name}'`);
  if (h.AutoRemove && restart.name !== '' && restart.name !== 'no') throw invalid(`can't create 'AutoRemove' container with restart policy`);
  if (h.Memory < 0 || h.MemoryReservation < 0 || h.NanoCpus < 0 || h.CpuShares < 0) throw invalid('resource limits cannot be negative');
  if (h.NanoCpus && (h.CpuQuota || h.CpuPeriod)) throw invalid('Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set');
  const joined = joinedContainer(h.NetworkMode);
  if (joined === '') throw invalid('Invalid network mode: invalid container format container:<name|id>');
  if (joined !== undefined && !/^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(joined))
    throw invalid(`invalid network mode "${h.NetworkMode}": "${joined}" is not a container name or ID`);
  if (joined === undefined && !['default', 'none', 'host', 'bridge'].includes(h.NetworkMode) && !NAME_PATTERN.test(h.NetworkMode)) {
    throw invalid(`invalid network mode "${h.NetworkMode}"`);
  }
  if (tmpfs.some(([t]) => !t.startsWith('/'))) throw invalid('tmpfs mount points must be absolute paths');
  checkNamespaceModes(h);
  checkUnhonouredOptions(h);
  return h;
}

const REF = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/**
 * The IPC, PID and cgroup namespace modes and the cgroup parent, checked at
 * create. dockerd takes an unknown IPC or PID mode at create and fails (or,
 * for PID, ignores it) at start; keel refuses it at once, as it refuses every
 * option it cannot honour. Whether a container:<ref> exists is create's
 * check (nsjoin.ts), whether it runs is start's.
 */
function checkNamespaceModes(h: HostConfig): void {
  const container = (mode: string, what: string) => {
    const ref = joinedContainer(mode);
    if (ref === undefined) return false;
    if (!REF.test(ref)) throw invalid(`Invalid ${what} mode: invalid container format container:<name|id> ("${mode}")`);
    return true;
  };
  if (!['private', 'shareable', 'none', 'host'].includes(h.IpcMode) && !container(h.IpcMode, 'IPC')) throw invalid(`Invalid IPC mode: ${h.IpcMode}`);
  if (!['', 'private', 'host'].includes(h.PidMode) && !container(h.PidMode, 'PID')) throw invalid(`Invalid PID mode: ${h.PidMode}`);
  if (h.CgroupnsMode !== 'host' && h.CgroupnsMode !== 'private') throw invalid(`invalid cgroup namespace mode: ${String(h.CgroupnsMode)}`);
  const parent = h.CgroupParent ?? '';
  if (parent.length > 1024 || /[\0\n]/.test(parent) || parent.split('/').some((p) => p === '..' || p === '.'))
    throw invalid(`invalid cgroup parent "${parent}": give a cgroupfs path such as /mygroup, without . or .. components`);
}

/**
 * Options keel cannot honour are refused at create, not accepted and
 * ignored: a user who asked for an AppArmor profile, an SELinux label or a
 * user namespace must not get a container without it and believe otherwise.
 * What is honoured: apparmor=unconfined and label=disable (keel applies no
 * LSM profile or label), the host user namespace (keel's only one).
 */
function checkUnhonouredOptions(h: HostConfig): void {
  for (const o of h.SecurityOpt ?? []) {
    const i = o.search(/[=:]/);
    const k = i < 0 ? o : o.slice(0, i);
    const v = i < 0 ? '' : o.slice(i + 1);
    if (k === 'apparmor' && v !== 'unconfined')
      throw invalid(`--security-opt ${o}: keel does not apply AppArmor profiles (only apparmor=unconfined is accepted)`);
    if (k === 'label' && v !== 'disable') throw invalid(`--security-opt ${o}: keel does not apply SELinux labels (only label=disable is accepted)`);
  }
  const userns = typeof h.UsernsMode === 'string' ? h.UsernsMode : '';
  if (userns !== '' && userns !== 'host')
    throw invalid(`--userns=${userns}: keel runs containers in the host user namespace only (use --userns=host or leave it unset)`);
}

/**
 * The networks a container joins when it starts, with their endpoint
 * settings: the spec's endpoints, and the network of its mode. None for
 * host, none and container:<ref> (those have no endpoints of their own).
 */
export function endpointsOf(s: ContainerSpec, networkMode: string): Record<string, EndpointConfig> {
  const mode = networkMode === 'default' ? 'bridge' : networkMode;
  if (mode === 'host' || mode === 'none' || joinedContainer(mode) !== undefined) return {};
  const out: Record<string, EndpointConfig> = {};
  for (const [k, v] of Object.entries(s.endpoints ?? {}).slice(0, MAX_ENDPOINTS)) {
    const e: EndpointConfig = {};
    if (v.aliases?.length) e.Aliases = [...v.aliases];
    if (v.ipv4Address) e.IPAMConfig = { IPv4Address: v.ipv4Address };
    if (v.macAddress) e.MacAddress = v.macAddress;
    out[k === 'default' ? 'bridge' : k] = e;
  }
  out[mode] ??= {};
  return out;
}
