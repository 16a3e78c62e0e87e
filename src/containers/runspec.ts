import { invalid } from '../common/errors.ts';
import { bindMount, tmpfsMount, type Mount, type NamespaceMode, type RuntimeSpecOptions, type SeccompOption } from '../runtime/index.ts';
import type { NetworkFiles } from './netshare.ts';
import type { RunNamespaces } from './nsjoin.ts';
import type { ContainerRecord } from './types.ts';
import type { ResolvedUser } from './user.ts';

export interface RunInputs {
  rootfs: string;
  user: ResolvedUser;
  cwd: string;
  netns: NamespaceMode;
  /** Files bind-mounted over /etc/{hosts,hostname,resolv.conf}; one missing is not mounted (see netshare.ts). */
  files: Partial<NetworkFiles>;
  cgroupsPath: string;
  /** The IPC and PID namespaces of this start (nsjoin.ts runNamespaces); none: each its own, or the host's. */
  namespaces?: RunNamespaces;
  /** Volume, bind and tmpfs mounts from volumes/ setupContainerMounts, in order. */
  mounts?: Mount[];
  defaults?: ContainerDefaults;
}

/**
 * The daemon's defaults (dockerd's default-ulimits and default-pids-limit):
 * a container's own ulimit of the same name wins, and a PidsLimit of its own
 * (negative: unlimited) wins over the default; unset (null or 0) takes it.
 */
export interface ContainerDefaults {
  ulimits?: { Name: string; Soft: number; Hard: number }[];
  pidsLimit?: number;
}

/** Docker's `--tmpfs /run:rw,size=64m` options → an OCI tmpfs mount. */
export function tmpfsFromOptions(dest: string, opts: string): Mount {
  const options = opts ? opts.split(',').filter(Boolean) : [];
  for (const o of options) if (!/^[a-z_]+(=[A-Za-z0-9.:_-]+)?$/.test(o)) throw invalid(`invalid tmpfs option "${o}" for ${dest}`);
  const m = tmpfsMount(dest, {});
  m.options = [...new Set(['nosuid', 'nodev', 'noexec', ...options])];
  if (options.includes('exec')) m.options = m.options.filter((o) => o !== 'noexec');
  return m;
}

function seccompOf(opts: string[]): { seccomp?: SeccompOption; noNewPrivileges: boolean; unmaskPaths: boolean } {
  let seccomp: SeccompOption | undefined;
  let nnp = false;
  let unmask = false;
  for (const o of opts) {
    const i = o.search(/[=:]/);
    const k = i < 0 ? o : o.slice(0, i);
    const v = i < 0 ? '' : o.slice(i + 1);
    if (k === 'no-new-privileges') nnp = v === '' || v === 'true';
    else if (k === 'seccomp') seccomp = v === 'unconfined' ? 'unconfined' : v.trimStart().startsWith('{') ? { profileJson: v } : { profileFile: v };
    else if (k === 'systempaths' && v === 'unconfined') unmask = true;
    else if (k === 'apparmor' || k === 'label')
      continue; // no LSM on these hosts; accepted like dockerd without them
    else throw invalid(`invalid --security-opt: ${o}`);
  }
  return { seccomp, noNewPrivileges: nnp, unmaskPaths: unmask };
}

function nsMode(mode: string, what: string): NamespaceMode {
  if (mode === '' || mode === 'private') return 'private';
  if (mode === 'host') return 'host';
  throw invalid(`${what} mode "${mode}" is not supported (use host or private)`);
}

/** A bind of another /dev/shm (the host's, or a shareable IPC namespace's tmpfs), with the options of the tmpfs it replaces. */
function shmBind(source: string): Mount {
  return { destination: '/dev/shm', type: 'bind', source, options: ['rbind', 'rprivate', 'nosuid', 'nodev', 'noexec'] };
}

/** The runtime options for a container's main process. */
export function runSpecOptions(rec: ContainerRecord, inp: RunInputs): RuntimeSpecOptions {
  const h = rec.hostConfig;
  const c = rec.config;
  const argv = [...(c.Entrypoint ?? []), ...(c.Cmd ?? [])];
  const env = [...c.Env];
  if (!env.some((e) => e.startsWith('HOSTNAME='))) env.unshift(`HOSTNAME=${c.Hostname}`);
  if (!env.some((e) => e.startsWith('HOME='))) env.push(`HOME=${inp.user.home || '/'}`);
  const hostNet = inp.netns === 'host';
  const etc: Array<[string | undefined, string]> = [
    [inp.files.resolv, '/etc/resolv.conf'],
    [inp.files.hostname, '/etc/hostname'],
    [inp.files.hosts, '/etc/hosts'],
  ];
  const mounts: Mount[] = etc.filter((e): e is [string, string] => !!e[0]).map(([src, dst]) => bindMount(src, dst, { recursive: false }));
  // Without a start's namespaces (create's check of the options), a container:<ref> mode stands for a private one.
  const ns = inp.namespaces ?? { ipc: h.IpcMode === 'host' ? 'host' : 'private', pid: h.PidMode === 'host' ? 'host' : 'private' };
  if (typeof ns.shm === 'string') mounts.push(shmBind(ns.shm)); // before the user's mounts: a volume at /dev/shm wins, as in dockerd
  mounts.push(...(inp.mounts ?? []));
  const sec = seccompOf(h.SecurityOpt ?? []);
  const swappiness = h.MemorySwappiness;
  const o: RuntimeSpecOptions = {
    args: argv,
    env,
    cwd: inp.cwd,
    user: { uid: inp.user.uid, gid: inp.user.gid, additionalGids: inp.user.additionalGids },
    tty: c.Tty,
    hostname: hostNet || h.UTSMode === 'host' ? undefined : c.Hostname,
    rootfs: inp.rootfs,
    readonlyRootfs: h.ReadonlyRootfs,
    mounts,
    namespaces: {
      network: inp.netns,
      pid: ns.pid,
      ipc: ns.ipc,
      uts: nsMode(h.UTSMode, 'uts'),
      cgroup: h.CgroupnsMode === 'private' ? 'private' : 'host',
    },
    noShm: ns.shm === false,
    cgroupsPath: inp.cgroupsPath,
    resources: {
      memory: h.Memory || undefined,
      memorySwap: h.MemorySwap || undefined,
      memoryReservation: h.MemoryReservation || undefined,
      memorySwappiness: swappiness !== null && swappiness !== undefined && swappiness >= 0 ? swappiness : undefined,
      cpus: h.NanoCpus ? h.NanoCpus / 1e9 : undefined,
      cpuQuota: h.CpuQuota || undefined,
      cpuPeriod: h.CpuPeriod || undefined,
      cpuShares: h.CpuShares || undefined,
      cpusetCpus: h.CpusetCpus || undefined,
      cpusetMems: h.CpusetMems || undefined,
      pidsLimit: h.PidsLimit ? h.PidsLimit : inp.defaults?.pidsLimit,
      oomKillDisable: !!h.OomKillDisable,
      blkioWeight: typeof h.BlkioWeight === 'number' && h.BlkioWeight ? h.BlkioWeight : undefined,
    },
    capAdd: h.CapAdd ?? undefined,
    capDrop: h.CapDrop ?? undefined,
    privileged: h.Privileged,
    noNewPrivileges: sec.noNewPrivileges,
    seccomp: sec.seccomp,
    unmaskPaths: sec.unmaskPaths,
    sysctls: h.Sysctls && Object.keys(h.Sysctls).length ? h.Sysctls : undefined,
    rlimits: [...h.Ulimits, ...(inp.defaults?.ulimits ?? []).filter((d) => !h.Ulimits.some((u) => u.Name === d.Name))].map((u) => ({
      type: u.Name.startsWith('RLIMIT_') ? u.Name : `RLIMIT_${u.Name.toUpperCase()}`,
      soft: Number(u.Soft),
      hard: Number(u.Hard),
    })),
    init: h.Init ? true : undefined,
    shmSize: h.ShmSize,
    devices: h.Devices.map((d) => ({ hostPath: d.PathOnHost, containerPath: d.PathInContainer || undefined, permissions: d.CgroupPermissions || undefined })),
    oomScoreAdj: h.OomScoreAdj || undefined,
  };
  const cs = h.ConsoleSize;
  if (c.Tty && Array.isArray(cs) && cs[0] > 0 && cs[1] > 0) o.consoleSize = { height: cs[0], width: cs[1] };
  return o;
}
