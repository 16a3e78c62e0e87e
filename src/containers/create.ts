import path from 'node:path';
import { invalid } from '../common/errors.ts';
import { normalizeLogConfig } from './logconfig.ts';
import { NAME_PATTERN } from '../common/ids.ts';
import type { ContainerConfig as ImageRunConfig } from '../oci/types.ts';
import { mergeHealthConfig, parseHealthConfig } from './health.ts';
import { joinedContainer } from './network.ts';
import type { ContainerConfig, EndpointConfig, HostConfig, RestartPolicy } from './types.ts';

/** What POST /containers/create carries: Config fields at the top, plus HostConfig. */
export interface CreateRequest extends Partial<Omit<ContainerConfig, 'Env'>> {
  Env?: string[] | null;
  HostConfig?: Partial<HostConfig> | null;
  NetworkingConfig?: unknown;
}

const MAX_ARGS = 4096;
const MAX_ENV = 4096;
const MAX_LABELS = 4096;

function strArray(v: unknown, what: string, max = MAX_ARGS): string[] | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') return [v];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw invalid(`${what} must be a list of strings`);
  if (v.length > max) throw invalid(`${what} has more than ${max} entries`);
  return v as string[];
}

function envKey(e: string): string {
  const i = e.indexOf('=');
  return i < 0 ? e : e.slice(0, i);
}

/** Image env, then the request's, a later key replacing an earlier one (docker's merge). */
export function mergeEnv(image: string[] | undefined, req: string[] | null | undefined): string[] {
  const out: string[] = [];
  const idx = new Map<string, number>();
  for (const e of [...(image ?? []), ...(req ?? [])]) {
    if (e.includes('\0')) throw invalid('environment variables cannot contain NUL bytes');
    const k = envKey(e);
    if (!k) throw invalid(`invalid environment variable: ${e}`);
    const at = idx.get(k);
    if (at === undefined) idx.set(k, out.push(e) - 1);
    else out[at] = e;
  }
  return out;
}

/** Refuses `..` in a container path (image WorkingDir, Volumes); returns it cleaned. */
export function checkContainerPath(p: string, what: string): string {
  if (!p.startsWith('/')) throw invalid(`the ${what} '${p}' is invalid, it needs to be an absolute path`);
  if (p.split('/').includes('..')) throw invalid(`the ${what} '${p}' is invalid: it must not contain '..'`);
  if (p.includes('\0')) throw invalid(`the ${what} contains a NUL byte`);
  return path.posix.normalize(p);
}

export function parseRestartPolicy(p: Partial<RestartPolicy> | undefined | null, autoRemove: boolean): RestartPolicy {
  const name = (p?.Name ?? '') as RestartPolicy['Name'];
  const max = Number(p?.MaximumRetryCount ?? 0);
  if (!['', 'no', 'always', 'unless-stopped', 'on-failure'].includes(name)) throw invalid(`invalid restart policy '${name}'`);
  if (!Number.isInteger(max) || max < 0) throw invalid('maximum retry count cannot be negative');
  if (max > 0 && name !== 'on-failure') throw invalid(`maximum retry count cannot be used with restart policy '${name}'`);
  if (autoRemove && name !== '' && name !== 'no') throw invalid(`can't create 'AutoRemove' container with restart policy`);
  return { Name: name, MaximumRetryCount: max };
}

const num = (v: unknown, what: string, dflt = 0): number => {
  if (v === undefined || v === null) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n)) throw invalid(`${what} must be a number`);
  return n;
};

/** Fills HostConfig with docker's defaults and checks the fields keel acts on. */
/**
 * The fields of docker's HostConfig (API 1.41, moby api/types/container
 * HostConfig and Resources). dockerd decodes the request into that struct,
 * so other keys are dropped and never stored nor shown by inspect; keel does
 * the same instead of keeping whatever a request body carries.
 */
const HOST_CONFIG_KEYS = new Set([
  'Binds',
  'ContainerIDFile',
  'LogConfig',
  'NetworkMode',
  'PortBindings',
  'RestartPolicy',
  'AutoRemove',
  'VolumeDriver',
  'VolumesFrom',
  'Mounts',
  'CapAdd',
  'CapDrop',
  'CgroupnsMode',
  'Dns',
  'DnsOptions',
  'DnsSearch',
  'ExtraHosts',
  'GroupAdd',
  'IpcMode',
  'Cgroup',
  'Links',
  'OomScoreAdj',
  'PidMode',
  'Privileged',
  'PublishAllPorts',
  'ReadonlyRootfs',
  'SecurityOpt',
  'StorageOpt',
  'Tmpfs',
  'UTSMode',
  'UsernsMode',
  'ShmSize',
  'Sysctls',
  'Runtime',
  'ConsoleSize',
  'Isolation',
  'MaskedPaths',
  'ReadonlyPaths',
  'Init',
  // Resources
  'CpuShares',
  'Memory',
  'CgroupParent',
  'BlkioWeight',
  'BlkioWeightDevice',
  'BlkioDeviceReadBps',
  'BlkioDeviceWriteBps',
  'BlkioDeviceReadIOps',
  'BlkioDeviceWriteIOps',
  'CpuPeriod',
  'CpuQuota',
  'CpuRealtimePeriod',
  'CpuRealtimeRuntime',
  'CpusetCpus',
  'CpusetMems',
  'Devices',
  'DeviceCgroupRules',
  'DeviceRequests',
  'KernelMemory',
  'KernelMemoryTCP',
  'MemoryReservation',
  'MemorySwap',
  'MemorySwappiness',
  'NanoCpus',
  'OomKillDisable',
  'PidsLimit',
  'Ulimits',
  'CpuCount',
  'CpuPercent',
  'IOMaximumIOps',
  'IOMaximumBandwidth',
]);

export function normalizeHostConfig(h: Partial<HostConfig> | null | undefined): HostConfig {
  const src: Partial<HostConfig> = Object.fromEntries(Object.entries(h ?? {}).filter(([k]) => HOST_CONFIG_KEYS.has(k)));
  const autoRemove = !!src.AutoRemove;
  const out: HostConfig = {
    ...src,
    Binds: strArray(src.Binds, 'Binds'),
    NetworkMode: typeof src.NetworkMode === 'string' && src.NetworkMode ? src.NetworkMode : 'default',
    RestartPolicy: parseRestartPolicy(src.RestartPolicy, autoRemove),
    AutoRemove: autoRemove,
    CapAdd: strArray(src.CapAdd, 'CapAdd'),
    CapDrop: strArray(src.CapDrop, 'CapDrop'),
    Privileged: !!src.Privileged,
    ReadonlyRootfs: !!src.ReadonlyRootfs,
    SecurityOpt: strArray(src.SecurityOpt, 'SecurityOpt'),
    Devices: Array.isArray(src.Devices) ? src.Devices : [],
    Ulimits: Array.isArray(src.Ulimits) ? src.Ulimits : [],
    Memory: num(src.Memory, 'Memory'),
    MemorySwap: num(src.MemorySwap, 'MemorySwap'),
    MemoryReservation: num(src.MemoryReservation, 'MemoryReservation'),
    NanoCpus: num(src.NanoCpus, 'NanoCpus'),
    CpuShares: num(src.CpuShares, 'CpuShares'),
    CpuPeriod: num(src.CpuPeriod, 'CpuPeriod'),
    CpuQuota: num(src.CpuQuota, 'CpuQuota'),
    CpusetCpus: typeof src.CpusetCpus === 'string' ? src.CpusetCpus : '',
    CpusetMems: typeof src.CpusetMems === 'string' ? src.CpusetMems : '',
    OomScoreAdj: num(src.OomScoreAdj, 'OomScoreAdj'),
    ShmSize: num(src.ShmSize, 'ShmSize') || 64 * 1024 * 1024,
    PidMode: typeof src.PidMode === 'string' ? src.PidMode : '',
    IpcMode: typeof src.IpcMode === 'string' && src.IpcMode ? src.IpcMode : 'private',
    UTSMode: typeof src.UTSMode === 'string' ? src.UTSMode : '',
    ExtraHosts: strArray(src.ExtraHosts, 'ExtraHosts'),
    Dns: strArray(src.Dns, 'Dns') ?? [],
    DnsSearch: strArray(src.DnsSearch, 'DnsSearch') ?? [],
    DnsOptions: strArray(src.DnsOptions, 'DnsOptions') ?? [],
    LogConfig: normalizeLogConfig(src.LogConfig),
  };
  if (out.Memory < 0 || out.MemoryReservation < 0 || out.NanoCpus < 0 || out.CpuShares < 0) throw invalid('resource limits cannot be negative');
  if (out.NanoCpus && (out.CpuQuota || out.CpuPeriod)) throw invalid('Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set');
  const joined = joinedContainer(out.NetworkMode);
  if (joined === '') throw invalid('Invalid network mode: invalid container format container:<name|id>');
  if (joined !== undefined && !/^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(joined))
    throw invalid(`invalid network mode "${out.NetworkMode}": "${joined}" is not a container name or ID`);
  if (joined === undefined && !['default', 'none', 'host', 'bridge'].includes(out.NetworkMode) && !NAME_PATTERN.test(out.NetworkMode)) {
    throw invalid(`invalid network mode "${out.NetworkMode}"`);
  }
  if (src.Tmpfs && (typeof src.Tmpfs !== 'object' || Object.keys(src.Tmpfs).some((k) => !k.startsWith('/'))))
    throw invalid('tmpfs mount points must be absolute paths');
  checkUnhonouredOptions(out);
  return out;
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

const nonEmpty = (v: unknown): boolean => (Array.isArray(v) ? v.length > 0 : !!v && typeof v === 'object' && Object.keys(v).length > 0);

/**
 * Network mode container:<name|id> takes the other container's network as
 * it is: what would configure a network of its own is refused, with
 * dockerd's messages and in its order (runconfig validateNetContainerMode).
 * ExposedPorts is the request's, not the image's: an image's EXPOSE is fine.
 */
export function checkJoinedNetworkOptions(req: CreateRequest, h: HostConfig): void {
  if (joinedContainer(h.NetworkMode) === undefined) return;
  const conflicting = (what: string) => invalid(`conflicting options: ${what}`);
  const endpoints = Object.values(
    (req.NetworkingConfig as { EndpointsConfig?: Record<string, EndpointConfig | null> } | null | undefined)?.EndpointsConfig ?? {},
  );
  if (req.Hostname) throw conflicting('hostname and the network mode');
  if (nonEmpty(h.Links)) throw conflicting("container type network can't be used with links. This would result in undefined behavior");
  if (h.Dns.length) throw conflicting('dns and the network mode');
  if (h.ExtraHosts?.length) throw conflicting('custom host-to-IP mapping and the network mode');
  if ((req as { MacAddress?: unknown }).MacAddress || endpoints.some((e) => e?.MacAddress)) throw conflicting('mac-address and the network mode');
  if (nonEmpty(h.PortBindings) || h.PublishAllPorts) throw conflicting('port publishing and the container type network mode');
  if (nonEmpty(req.ExposedPorts)) throw conflicting('port exposing and the container type network mode');
  if (endpoints.some((e) => e?.Aliases?.length)) throw invalid('network-scoped alias is supported only for containers in user defined networks');
  if (endpoints.some((e) => e?.IPAMConfig?.IPv4Address)) throw invalid('user specified IP address is supported on user defined networks only');
}

/**
 * Docker's create-time merge of the request with the image's config:
 * an Entrypoint in the request drops the image's Cmd; Env merges by key;
 * Labels merge; the rest falls back to the image.
 */
export function mergeConfig(req: CreateRequest, image: ImageRunConfig | undefined, id: string): ContainerConfig {
  const img = image ?? {};
  const entrypointGiven = req.Entrypoint !== undefined && req.Entrypoint !== null;
  let entrypoint = entrypointGiven ? strArray(req.Entrypoint, 'Entrypoint') : (img.Entrypoint ?? null);
  // `--entrypoint ""` resets the image's entrypoint.
  if (entrypoint && entrypoint.length === 1 && entrypoint[0] === '') entrypoint = null;
  let cmd = strArray(req.Cmd, 'Cmd');
  if (!cmd || cmd.length === 0) cmd = entrypointGiven ? null : (img.Cmd ?? null);
  const labels: Record<string, string> = { ...(img.Labels ?? {}) };
  if (req.Labels && typeof req.Labels === 'object') {
    const entries = Object.entries(req.Labels);
    if (entries.length > MAX_LABELS) throw invalid(`more than ${MAX_LABELS} labels`);
    for (const [k, v] of entries) labels[k] = String(v);
  }
  for (const [p] of Object.entries(img.Volumes ?? {})) checkContainerPath(p, 'image volume');
  let workdir = typeof req.WorkingDir === 'string' && req.WorkingDir ? req.WorkingDir : '';
  if (workdir) {
    if (!workdir.startsWith('/')) throw invalid(`the working directory '${workdir}' is invalid, it needs to be an absolute path`);
    workdir = path.posix.normalize(workdir);
  } else if (img.WorkingDir) workdir = checkContainerPath(img.WorkingDir, 'image working directory');
  const user = typeof req.User === 'string' && req.User ? req.User : (img.User ?? '');
  checkUserSyntax(user);
  const env = mergeEnv(img.Env, strArray(req.Env, 'Env', MAX_ENV));
  const stopTimeout = req.StopTimeout === undefined || req.StopTimeout === null ? undefined : num(req.StopTimeout, 'StopTimeout');
  const cfg: ContainerConfig = {
    Hostname: typeof req.Hostname === 'string' && req.Hostname ? req.Hostname : id.slice(0, 12),
    Domainname: typeof req.Domainname === 'string' ? req.Domainname : '',
    User: user,
    AttachStdin: !!req.AttachStdin,
    AttachStdout: !!req.AttachStdout,
    AttachStderr: !!req.AttachStderr,
    ...(img.ExposedPorts || req.ExposedPorts ? { ExposedPorts: { ...(img.ExposedPorts ?? {}), ...(req.ExposedPorts ?? {}) } } : {}),
    Tty: !!req.Tty,
    OpenStdin: !!req.OpenStdin,
    StdinOnce: !!req.StdinOnce,
    Env: env,
    Cmd: cmd,
    Image: String(req.Image ?? ''),
    Volumes: img.Volumes || req.Volumes ? { ...(img.Volumes ?? {}), ...(req.Volumes ?? {}) } : null,
    WorkingDir: workdir,
    Entrypoint: entrypoint,
    OnBuild: null,
    Labels: labels,
  };
  const stopSignal = typeof req.StopSignal === 'string' && req.StopSignal ? req.StopSignal : img.StopSignal;
  if (stopSignal) cfg.StopSignal = stopSignal;
  if (stopTimeout !== undefined) cfg.StopTimeout = stopTimeout;
  const health = mergeHealthConfig(parseHealthConfig(req.Healthcheck, true), parseHealthConfig(img.Healthcheck, false));
  if (health) cfg.Healthcheck = health;
  if (cfg.Hostname.length > 63 || !/^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?$/.test(cfg.Hostname)) throw invalid(`invalid hostname format: ${cfg.Hostname}`);
  const argv = [...(entrypoint ?? []), ...(cmd ?? [])];
  if (argv.length === 0) throw invalid('No command specified');
  return cfg;
}

/** Catches out-of-range numeric ids at create time (names are checked against the image at start). */
export function checkUserSyntax(user: string): void {
  if (!user) return;
  const parts = user.split(':');
  if (parts.length > 2) throw invalid(`invalid user "${user}": use user[:group]`);
  for (const p of parts) {
    if (/^\d+$/.test(p) && Number(p) > 0x7fffffff) throw invalid(`uids and gids must be in range 0-2147483647: ${user}`);
    if (p.includes('\0') || p.includes('\n')) throw invalid(`invalid user "${user}"`);
  }
}

/** Entrypoint + Cmd, split the way inspect shows Path and Args. */
export function commandOf(cfg: ContainerConfig): { path: string; args: string[] } {
  const argv = [...(cfg.Entrypoint ?? []), ...(cfg.Cmd ?? [])];
  return { path: argv[0] ?? '', args: argv.slice(1) };
}
