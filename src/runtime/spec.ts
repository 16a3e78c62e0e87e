import fs from 'node:fs';
import path from 'node:path';
import { invalid } from '../common/errors.ts';
import { resolveCaps } from './caps.ts';
import {
  bindMount,
  clampRlimits,
  DEFAULT_MASKED_PATHS,
  DEFAULT_READONLY_PATHS,
  defaultDeviceRules,
  defaultMounts,
  hostDevices,
  RLIM_INFINITY,
  validateSysctls,
} from './defaults.ts';
import { defaultSeccomp, loadProfile, parseProfile, resolveProfile } from './seccomp.ts';
import type { Mount, Namespace, Resources, Rlimit, Seccomp, Spec } from './spec-types.ts';

/** 'private': a fresh namespace; 'host': share the host's; {path}: join an existing one (e.g. /run/netns/x). */
export type NamespaceMode = 'private' | 'host' | { path: string };

export interface ResourceOptions {
  /** Bytes; 0 or absent = unlimited. */
  memory?: number;
  /** Memory+swap in bytes (docker's --memory-swap); -1 = unlimited swap. Default with memory: 2×memory. */
  memorySwap?: number;
  memoryReservation?: number;
  memorySwappiness?: number;
  /** Number of CPUs (--cpus 1.5): becomes quota/period. */
  cpus?: number;
  cpuQuota?: number;
  cpuPeriod?: number;
  cpuShares?: number;
  cpusetCpus?: string;
  cpusetMems?: string;
  /** > 0 limits the number of tasks; 0, -1 or absent = unlimited. */
  pidsLimit?: number;
  oomKillDisable?: boolean;
  blkioWeight?: number;
}

export type SeccompOption = 'default' | 'unconfined' | { profileFile: string } | { profileJson: string };

export interface RuntimeSpecOptions {
  args: string[];
  env?: string[];
  cwd?: string;
  user?: { uid: number; gid: number; additionalGids?: number[]; umask?: number };
  tty?: boolean;
  consoleSize?: { height: number; width: number };
  hostname?: string;
  /** Absolute path of the root filesystem (a mounted overlay, or any directory). */
  rootfs: string;
  readonlyRootfs?: boolean;
  /** Extra mounts (binds, tmpfs, ...) in OCI form; see bindMount/tmpfsMount. One at a default's destination replaces it. */
  mounts?: Mount[];
  /** Each namespace private unless said otherwise, except the cgroup namespace: the host's unless 'private'. */
  namespaces?: { network?: NamespaceMode; pid?: NamespaceMode; ipc?: NamespaceMode; uts?: NamespaceMode; cgroup?: 'host' | 'private' };
  /** No /dev/shm at all (docker's IPC mode none). */
  noShm?: boolean;
  /** cgroupfs path such as /keel/<id> (absolute, not systemd slice notation). */
  cgroupsPath?: string;
  resources?: ResourceOptions;
  capAdd?: string[];
  capDrop?: string[];
  privileged?: boolean;
  noNewPrivileges?: boolean;
  seccomp?: SeccompOption;
  /** Turns off masked and read-only /proc paths (docker's systempaths=unconfined). */
  unmaskPaths?: boolean;
  sysctls?: Record<string, string>;
  /** Clamped to the hard limits this process inherited (raising them fails here). */
  rlimits?: Rlimit[];
  /** Run a static init as pid 1 (docker's --init). true = Debian tini-static. */
  init?: boolean | string;
  /** Size of /dev/shm in bytes (default 64 MiB). */
  shmSize?: number;
  /** Host devices to expose (--device /dev/fuse:/dev/fuse:rwm). */
  devices?: { hostPath: string; containerPath?: string; permissions?: string }[];
  oomScoreAdj?: number;
  annotations?: Record<string, string>;
}

/** Docker's --init is tini; Debian's `tini` package ships a static build that works in any rootfs. */
export const DEFAULT_INIT_BINARY = '/usr/bin/tini-static';
/** Where docker puts it inside the container. */
export const INIT_PATH_IN_CONTAINER = '/sbin/docker-init';
export const DEFAULT_PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * A process's environment from the entries it was given (a container's or an
 * exec's): one without '=' unsets its variable, as in dockerd
 * (ReplaceOrAppendEnvValues; runc refuses one), and PATH has a default.
 */
export function processEnv(entries: readonly string[]): string[] {
  const env = entries.filter((e) => e.includes('='));
  if (!env.some((e) => e.startsWith('PATH='))) env.unshift(DEFAULT_PATH_ENV);
  return env;
}

const nsMode = (m: NamespaceMode | undefined): NamespaceMode => m ?? 'private';
const isHost = (m: NamespaceMode | undefined) => m === 'host';

function namespaces(o: RuntimeSpecOptions): Namespace[] {
  const out: Namespace[] = [{ type: 'mount' }];
  const add = (type: Namespace['type'], m: NamespaceMode | undefined) => {
    const mode = nsMode(m);
    if (mode === 'host') return;
    if (mode === 'private') out.push({ type });
    else {
      if (!path.isAbsolute(mode.path)) throw invalid(`${type} namespace path must be absolute: ${mode.path}`);
      out.push({ type, path: mode.path });
    }
  };
  add('pid', o.namespaces?.pid);
  add('ipc', o.namespaces?.ipc);
  add('uts', o.namespaces?.uts);
  add('network', o.namespaces?.network);
  if (o.namespaces?.cgroup === 'private') out.push({ type: 'cgroup' });
  return out;
}

function resources(o: RuntimeSpecOptions, privileged: boolean): Resources {
  const r = o.resources ?? {};
  const res: Resources = { devices: privileged ? [{ allow: true, access: 'rwm' }] : defaultDeviceRules() };
  const nonneg = (v: number | undefined, what: string) => {
    if (v !== undefined && (!Number.isFinite(v) || v < 0)) throw invalid(`${what} must be a non-negative number`);
  };
  nonneg(r.memory, 'memory');
  nonneg(r.memoryReservation, 'memory reservation');
  nonneg(r.cpus, 'cpus');
  nonneg(r.cpuShares, 'cpu shares');
  const mem: NonNullable<Resources['memory']> = {};
  if (r.memory) {
    if (r.memory < 6 * 1024 * 1024) throw invalid('minimum memory limit allowed is 6MB');
    mem.limit = r.memory;
    if (swapAccounting()) {
      if (r.memorySwap === -1) mem.swap = -1;
      else if (r.memorySwap !== undefined && r.memorySwap > 0) {
        if (r.memorySwap < r.memory) throw invalid('memory-swap must be at least as large as memory (it is memory plus swap)');
        mem.swap = r.memorySwap;
      } else mem.swap = r.memory * 2;
    }
  } else if (r.memorySwap !== undefined && r.memorySwap > 0) {
    throw invalid('memory-swap needs a memory limit too');
  }
  if (r.memoryReservation) mem.reservation = r.memoryReservation;
  if (r.memorySwappiness !== undefined && r.memorySwappiness >= 0) {
    if (r.memorySwappiness > 100) throw invalid('memory swappiness must be between 0 and 100');
    mem.swappiness = r.memorySwappiness;
  }
  if (r.oomKillDisable) mem.disableOOMKiller = true;
  if (Object.keys(mem).length) res.memory = mem;

  const cpu: NonNullable<Resources['cpu']> = {};
  if (r.cpus) {
    if (r.cpuQuota || r.cpuPeriod) throw invalid('cpus conflicts with cpu quota/period: give one or the other');
    cpu.period = 100000;
    cpu.quota = Math.round(r.cpus * 100000);
    if (cpu.quota < 1000) throw invalid('cpus must be at least 0.01');
  } else {
    if (r.cpuQuota) cpu.quota = r.cpuQuota;
    if (r.cpuPeriod) cpu.period = r.cpuPeriod;
  }
  if (r.cpuShares) cpu.shares = r.cpuShares;
  if (r.cpusetCpus) {
    if (!/^[0-9,\-]+$/.test(r.cpusetCpus)) throw invalid(`invalid cpuset "${r.cpusetCpus}": use a list such as 0-2,4`);
    cpu.cpus = r.cpusetCpus;
  }
  if (r.cpusetMems) cpu.mems = r.cpusetMems;
  if (Object.keys(cpu).length) res.cpu = cpu;
  if (r.pidsLimit !== undefined && r.pidsLimit > 0) res.pids = { limit: Math.floor(r.pidsLimit) };
  if (r.blkioWeight) res.blockIO = { weight: r.blkioWeight };
  return res;
}

let swapCache: boolean | undefined;
/** Docker ignores --memory-swap where the kernel has no swap accounting; so does keel. */
function swapAccounting(): boolean {
  swapCache ??= fs.existsSync('/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes') || fs.existsSync('/sys/fs/cgroup/cgroup.controllers');
  return swapCache;
}

function seccompFor(opt: SeccompOption | undefined, caps: string[]): Seccomp | undefined {
  if (opt === 'unconfined') return undefined;
  if (opt === undefined || opt === 'default') return defaultSeccomp(caps);
  if ('profileFile' in opt) return resolveProfile(loadProfile(opt.profileFile), { caps });
  return resolveProfile(parseProfile(opt.profileJson), { caps });
}

/** Later mounts at the same destination replace earlier ones; parents mount before children. */
function mergeMounts(defaults: Mount[], extra: Mount[]): Mount[] {
  for (const m of extra) {
    if (!path.isAbsolute(m.destination)) throw invalid(`mount destination must be an absolute path: ${m.destination}`);
    if (m.type === 'bind' && (!m.source || !path.isAbsolute(m.source))) throw invalid(`bind mount source must be an absolute path: ${m.source}`);
  }
  const dests = new Set(extra.map((m) => path.posix.normalize(m.destination)));
  const kept = defaults.filter((m) => !dests.has(m.destination));
  const depth = (m: Mount) => path.posix.normalize(m.destination).split('/').filter(Boolean).length;
  const sorted = extra
    .map((m, i) => ({ m, i }))
    .sort((a, b) => depth(a.m) - depth(b.m) || a.i - b.i)
    .map((x) => x.m);
  return [...kept, ...sorted];
}

/**
 * Builds the OCI runtime spec (config.json) for one container from plain
 * options, with Docker's defaults for everything the options leave out.
 */
export function buildSpec(o: RuntimeSpecOptions): Spec {
  if (!Array.isArray(o.args) || o.args.length === 0) throw invalid('no command given: the container needs at least one argument to run');
  if (!path.isAbsolute(o.rootfs)) throw invalid(`rootfs must be an absolute path: ${o.rootfs}`);
  const privileged = !!o.privileged;
  const caps = resolveCaps({ capAdd: o.capAdd, capDrop: o.capDrop, privileged });
  const env = processEnv(o.env ?? []);
  if (o.tty && !env.some((e) => e.startsWith('TERM='))) env.push('TERM=xterm');

  const ns = o.namespaces ?? {};
  // An IPC namespace joined from another container is not this one's to tune either.
  if (o.sysctls) validateSysctls(o.sysctls, { hostNet: isHost(ns.network), hostIpc: nsMode(ns.ipc) !== 'private', hostUts: isHost(ns.uts) });
  if (o.hostname && isHost(ns.uts)) throw invalid('a hostname cannot be set with the host UTS namespace');

  const base = defaultMounts({ privileged, shmSize: o.shmSize ?? 64 * 1024 * 1024 });
  const mounts = mergeMounts(o.noShm ? base.filter((m) => m.destination !== '/dev/shm') : base, o.mounts ?? []);
  let args = o.args;
  if (o.init) {
    const bin = typeof o.init === 'string' ? o.init : DEFAULT_INIT_BINARY;
    if (!fs.existsSync(bin)) throw invalid(`init binary ${bin} does not exist (install the Debian package tini)`);
    mounts.push(bindMount(bin, INIT_PATH_IN_CONTAINER, { readonly: true, recursive: false }));
    args = [INIT_PATH_IN_CONTAINER, '--', ...o.args];
  }

  const user = o.user ?? { uid: 0, gid: 0 };
  for (const id of [user.uid, user.gid, ...(user.additionalGids ?? [])]) {
    if (!Number.isInteger(id) || id < 0 || id > 0xfffffffe) throw invalid(`invalid uid/gid ${id}`);
  }
  const spec: Spec = {
    ociVersion: '1.0.2-dev',
    process: {
      terminal: !!o.tty,
      user: {
        uid: user.uid,
        gid: user.gid,
        ...(user.additionalGids?.length ? { additionalGids: user.additionalGids } : {}),
        ...(user.umask !== undefined ? { umask: user.umask } : {}),
      },
      args,
      env,
      cwd: o.cwd || '/',
      capabilities: { bounding: caps, effective: caps, permitted: caps, inheritable: [], ambient: [] },
      noNewPrivileges: !!o.noNewPrivileges,
    },
    root: { path: o.rootfs, readonly: !!o.readonlyRootfs },
    mounts,
    linux: {
      namespaces: namespaces(o),
      resources: resources(o, privileged),
      maskedPaths: privileged || o.unmaskPaths ? [] : [...DEFAULT_MASKED_PATHS],
      readonlyPaths: privileged || o.unmaskPaths ? [] : [...DEFAULT_READONLY_PATHS],
    },
  };
  if (!path.posix.isAbsolute(spec.process.cwd)) throw invalid(`working directory must be absolute: ${spec.process.cwd}`);
  if (o.tty && o.consoleSize) spec.process.consoleSize = o.consoleSize;
  if (o.hostname && !isHost(ns.uts)) spec.hostname = o.hostname;
  if (o.cgroupsPath) {
    if (!o.cgroupsPath.startsWith('/') || o.cgroupsPath.split('/').includes('..'))
      throw invalid(`cgroupsPath must be an absolute cgroupfs path such as /keel/<id>: ${o.cgroupsPath}`);
    spec.linux.cgroupsPath = o.cgroupsPath;
  }
  if (o.rlimits?.length) spec.process.rlimits = clampRlimits(o.rlimits);
  if (o.oomScoreAdj !== undefined) spec.process.oomScoreAdj = o.oomScoreAdj;
  if (o.sysctls && Object.keys(o.sysctls).length) spec.linux.sysctl = { ...o.sysctls };
  const seccomp = privileged ? undefined : seccompFor(o.seccomp, caps);
  if (seccomp) spec.linux.seccomp = seccomp;
  const devices = privileged ? hostDevices() : [];
  for (const d of o.devices ?? []) {
    const found = hostDevices(d.hostPath).length ? hostDevices(d.hostPath) : hostDevices(path.dirname(d.hostPath)).filter((x) => x.path === d.hostPath);
    if (!found.length) throw invalid(`device ${d.hostPath} does not exist or is not a device node`);
    const perms = d.permissions ?? 'rwm';
    if (!/^[rwm]{1,3}$/.test(perms)) throw invalid(`device permissions must be made of r, w and m: ${perms}`);
    for (const f of found) {
      const inCtr = d.containerPath ? path.posix.join(d.containerPath, path.relative(d.hostPath, f.path)) : f.path;
      devices.push({ ...f, path: inCtr });
      if (!privileged) spec.linux.resources!.devices!.push({ allow: true, type: f.type as 'c' | 'b', major: f.major, minor: f.minor, access: perms });
    }
  }
  if (devices.length) spec.linux.devices = devices;
  if (o.annotations) spec.annotations = { ...o.annotations };
  return spec;
}

/**
 * Serializes a spec for runc. RLIM_INFINITY (-1 here) must be written as the
 * exact uint64 2^64-1, which a JS number cannot hold.
 */
export function specToJson(spec: Spec): string {
  const text = JSON.stringify(spec, (key, value) => {
    if ((key === 'hard' || key === 'soft') && value === RLIM_INFINITY) return '__RLIM_INFINITY__';
    return value;
  });
  return text.replace(/"__RLIM_INFINITY__"/g, '18446744073709551615');
}
