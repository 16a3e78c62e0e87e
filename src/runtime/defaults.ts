import fs from 'node:fs';
import path from 'node:path';
import { invalid } from '../common/errors.ts';
import type { Device, DeviceRule, Mount, Rlimit } from './spec-types.ts';

/** Docker's masked paths (moby oci/defaults.go, 28.x). */
export const DEFAULT_MASKED_PATHS: readonly string[] = [
  '/proc/asound',
  '/proc/acpi',
  '/proc/interrupts',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
];

/** Docker's read-only paths. */
export const DEFAULT_READONLY_PATHS: readonly string[] = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/**
 * Docker's device cgroup rules: deny everything, allow mknod of any node,
 * then read/write the standard nodes runc creates in /dev, the pty master
 * and slaves, and /dev/net/tun.
 */
export function defaultDeviceRules(): DeviceRule[] {
  const c = (major: number | undefined, minor: number | undefined, access = 'rwm'): DeviceRule => {
    const r: DeviceRule = { allow: true, type: 'c', access };
    if (major !== undefined) r.major = major;
    if (minor !== undefined) r.minor = minor;
    return r;
  };
  return [
    { allow: false, access: 'rwm' },
    c(undefined, undefined, 'm'),
    { allow: true, type: 'b', access: 'm' },
    c(1, 3), // null
    c(1, 8), // random
    c(1, 7), // full
    c(5, 0), // tty
    c(1, 5), // zero
    c(1, 9), // urandom
    c(136, undefined), // pts/*
    c(5, 2), // ptmx
    c(10, 200), // net/tun
  ];
}

/** The filesystems every container gets (moby's DefaultLinuxSpec mounts). */
export function defaultMounts(opts: { privileged: boolean; shmSize: number }): Mount[] {
  const ro = opts.privileged ? 'rw' : 'ro';
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', ro] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', ro] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${opts.shmSize}`] },
  ];
}

export { bindMount, tmpfsMount } from '../oci/mount.ts';

const IPC_SYSCTLS = new Set([
  'kernel.msgmax',
  'kernel.msgmnb',
  'kernel.msgmni',
  'kernel.sem',
  'kernel.shmall',
  'kernel.shmmax',
  'kernel.shmmni',
  'kernel.shm_rmid_forced',
]);

/**
 * Only sysctls that are namespaced may be set (docker's rule): IPC ones when
 * the container has its own IPC namespace (not the host's, not joined), net.* when it has its own network
 * namespace. Anything else would change the host.
 */
export function validateSysctls(sysctls: Record<string, string>, ns: { hostNet: boolean; hostIpc: boolean; hostUts: boolean }): void {
  for (const [k, v] of Object.entries(sysctls)) {
    if (typeof v !== 'string' || v.length > 4096 || /[\n\0]/.test(v)) throw invalid(`sysctl ${k}: invalid value`);
    if (IPC_SYSCTLS.has(k) || k.startsWith('fs.mqueue.')) {
      if (ns.hostIpc) throw invalid(`sysctl "${k}" is not allowed with the host IPC namespace or another container's`);
    } else if (k.startsWith('net.')) {
      if (ns.hostNet) throw invalid(`sysctl "${k}" is not allowed with the host network namespace`);
    } else if (k === 'kernel.domainname' || k === 'kernel.hostname') {
      if (ns.hostUts) throw invalid(`sysctl "${k}" is not allowed with the host UTS namespace`);
    } else {
      throw invalid(`sysctl "${k}" is not namespaced and cannot be set in a container`);
    }
  }
}

const LIMIT_NAMES: Record<string, string> = {
  'Max cpu time': 'RLIMIT_CPU',
  'Max file size': 'RLIMIT_FSIZE',
  'Max data size': 'RLIMIT_DATA',
  'Max stack size': 'RLIMIT_STACK',
  'Max core file size': 'RLIMIT_CORE',
  'Max resident set': 'RLIMIT_RSS',
  'Max processes': 'RLIMIT_NPROC',
  'Max open files': 'RLIMIT_NOFILE',
  'Max locked memory': 'RLIMIT_MEMLOCK',
  'Max address space': 'RLIMIT_AS',
  'Max file locks': 'RLIMIT_LOCKS',
  'Max pending signals': 'RLIMIT_SIGPENDING',
  'Max msgqueue size': 'RLIMIT_MSGQUEUE',
  'Max nice priority': 'RLIMIT_NICE',
  'Max realtime priority': 'RLIMIT_RTPRIO',
  'Max realtime timeout': 'RLIMIT_RTTIME',
};
/** RLIM_INFINITY (2^64-1) does not fit a JS number; specToJson writes it exactly. */
export const RLIM_INFINITY = -1;

/** This process's hard limits, which runc inherits and cannot raise here. */
export function inheritedHardLimits(): Map<string, number> {
  const out = new Map<string, number>();
  const text = fs.readFileSync('/proc/self/limits', 'utf8');
  for (const line of text.split('\n').slice(1)) {
    const name = Object.keys(LIMIT_NAMES).find((n) => line.startsWith(n));
    if (!name) continue;
    const fields = line.slice(name.length).trim().split(/\s+/);
    out.set(LIMIT_NAMES[name]!, fields[1] === 'unlimited' ? RLIM_INFINITY : Number(fields[1]));
  }
  return out;
}

/** `nofile` / `RLIMIT_NOFILE` → `RLIMIT_NOFILE`. */
export function normalizeRlimit(type: string): string {
  const t = type.toUpperCase().startsWith('RLIMIT_') ? type.toUpperCase() : `RLIMIT_${type.toUpperCase()}`;
  if (!Object.values(LIMIT_NAMES).includes(t)) throw invalid(`unknown ulimit "${type}"`);
  return t;
}

const lim = (v: number) => (v === RLIM_INFINITY ? Infinity : v);

/**
 * Clamps requested limits to the inherited hard limits: without
 * CAP_SYS_RESOURCE (absent on these hosts) raising one fails with EPERM and
 * the container would not start at all.
 */
export function clampRlimits(req: Rlimit[], hard = inheritedHardLimits()): Rlimit[] {
  return req.map((r) => {
    const type = normalizeRlimit(r.type);
    if (!(Number.isInteger(r.soft) && Number.isInteger(r.hard)) || (r.soft < 0 && r.soft !== RLIM_INFINITY) || (r.hard < 0 && r.hard !== RLIM_INFINITY)) {
      throw invalid(`ulimit ${r.type}: soft and hard must be non-negative integers`);
    }
    if (lim(r.soft) > lim(r.hard)) throw invalid(`ulimit ${r.type}: soft limit ${r.soft} is above the hard limit ${r.hard}`);
    const max = hard.get(type) ?? RLIM_INFINITY;
    const h = lim(r.hard) > lim(max) ? max : r.hard;
    const s = lim(r.soft) > lim(h) ? h : r.soft;
    return { type, hard: h, soft: s };
  });
}

/**
 * Every device node under the host's /dev, for privileged containers
 * (docker skips the per-container mounts pts, shm, mqueue and the console).
 */
export function hostDevices(root = '/dev'): Device[] {
  const out: Device[] = [];
  const skip = new Set(['/dev/pts', '/dev/shm', '/dev/mqueue', '/dev/fd', '/dev/.lxc', '/dev/.udev', '/dev/console']);
  const walk = (dir: string, depth: number) => {
    if (depth > 8) return;
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names) {
      const p = path.join(dir, n);
      if (skip.has(p)) continue;
      let st: fs.BigIntStats;
      try {
        st = fs.lstatSync(p, { bigint: true });
      } catch {
        continue;
      }
      if (st.isDirectory()) walk(p, depth + 1);
      else if (st.isCharacterDevice() || st.isBlockDevice()) {
        const rdev = st.rdev;
        const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
        const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & 0xfff00n));
        out.push({
          path: p,
          type: st.isCharacterDevice() ? 'c' : 'b',
          major,
          minor,
          fileMode: Number(st.mode & 0o777n),
          uid: Number(st.uid),
          gid: Number(st.gid),
        });
      }
    }
  };
  walk(root, 0);
  return out;
}
