/**
 * docker stats from cgroupfs: v1 (controllers under /sys/fs/cgroup/<ctl>,
 * the hybrid layout of these hosts) or v2 (unified). Shapes follow the
 * Engine API's ContainerStats (the v1 field names docker 20.10 sends).
 */
import fs from 'node:fs';
import os from 'node:os';

/** Where cgroupfs is and which layout it has; tests point it at a fixture tree. */
export interface CgroupFs {
  root: string;
  unified: boolean;
}

const HOST: CgroupFs = { root: '/sys/fs/cgroup', unified: fs.existsSync('/sys/fs/cgroup/cgroup.controllers') };

function read(p: string): string | undefined {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return undefined;
  }
}

function num(p: string): number {
  const v = read(p)?.trim();
  if (!v || v === 'max') return 0;
  const n = Number(v);
  return Number.isFinite(n) ? n : 0;
}

function kv(text: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of (text ?? '').split('\n')) {
    const [k, v] = line.split(' ');
    if (k && v !== undefined) out[k] = Number(v);
  }
  return out;
}

/** Total host CPU time in nanoseconds (docker's system_cpu_usage), from /proc/stat. */
function systemCpuNs(): number {
  const line = read('/proc/stat')?.split('\n')[0] ?? '';
  const ticks = line
    .split(/\s+/)
    .slice(1, 8)
    .reduce((a, b) => a + (Number(b) || 0), 0);
  return Math.round((ticks / 100) * 1e9);
}

interface BlkioEntry {
  major: number;
  minor: number;
  op: string;
  value: number;
}

function blkio(text: string | undefined): BlkioEntry[] {
  const out: BlkioEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    const m = /^(\d+):(\d+) (\w+) (\d+)$/.exec(line.trim());
    if (m) out.push({ major: Number(m[1]), minor: Number(m[2]), op: m[3]!, value: Number(m[4]) });
  }
  return out;
}

function netStats(pid: number): Record<string, Record<string, number>> | undefined {
  if (!pid) return undefined;
  const text = read(`/proc/${pid}/net/dev`);
  if (!text) return undefined;
  const out: Record<string, Record<string, number>> = {};
  for (const line of text.split('\n').slice(2)) {
    const m = /^\s*([^:]+):\s*(.*)$/.exec(line);
    if (!m || m[1] === 'lo') continue;
    const f = m[2]!.trim().split(/\s+/).map(Number);
    out[m[1]!] = {
      rx_bytes: f[0]!,
      rx_packets: f[1]!,
      rx_errors: f[2]!,
      rx_dropped: f[3]!,
      tx_bytes: f[8]!,
      tx_packets: f[9]!,
      tx_errors: f[10]!,
      tx_dropped: f[11]!,
    };
  }
  return out;
}

export interface StatsSample {
  read: string;
  pids_stats: { current?: number; limit?: number };
  blkio_stats: Record<string, BlkioEntry[] | null>;
  num_procs: number;
  storage_stats: Record<string, never>;
  cpu_stats: {
    cpu_usage: { total_usage: number; percpu_usage?: number[]; usage_in_kernelmode: number; usage_in_usermode: number };
    system_cpu_usage: number;
    online_cpus: number;
    throttling_data: { periods: number; throttled_periods: number; throttled_time: number };
  };
  memory_stats: { usage?: number; max_usage?: number; stats?: Record<string, number>; limit?: number };
  networks?: Record<string, Record<string, number>>;
}

/** One sample of a container's cgroup (`cgroupPath` like /keel/<id>); zeros when it is not running. */
export function sampleStats(cgroupPath: string, pid: number, cg: CgroupFs = HOST): StatsSample {
  const cpus = os.cpus().length;
  const hostMem = os.totalmem();
  const s: StatsSample = {
    read: new Date().toISOString(),
    pids_stats: {},
    blkio_stats: {
      io_service_bytes_recursive: null,
      io_serviced_recursive: null,
      io_queue_recursive: null,
      io_service_time_recursive: null,
      io_wait_time_recursive: null,
      io_merged_recursive: null,
      io_time_recursive: null,
      sectors_recursive: null,
    },
    num_procs: 0,
    storage_stats: {},
    cpu_stats: {
      cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 },
      system_cpu_usage: systemCpuNs(),
      online_cpus: cpus,
      throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 },
    },
    memory_stats: {},
  };
  if (!pid) return s;
  if (cg.unified) {
    const d = `${cg.root}${cgroupPath}`;
    const cpu = kv(read(`${d}/cpu.stat`));
    s.cpu_stats.cpu_usage = {
      total_usage: (cpu.usage_usec ?? 0) * 1000,
      usage_in_kernelmode: (cpu.system_usec ?? 0) * 1000,
      usage_in_usermode: (cpu.user_usec ?? 0) * 1000,
    };
    s.cpu_stats.throttling_data = { periods: cpu.nr_periods ?? 0, throttled_periods: cpu.nr_throttled ?? 0, throttled_time: (cpu.throttled_usec ?? 0) * 1000 };
    const stat = kv(read(`${d}/memory.stat`));
    const limit = num(`${d}/memory.max`);
    s.memory_stats = { usage: num(`${d}/memory.current`), stats: stat, limit: limit || hostMem };
    s.pids_stats = { current: num(`${d}/pids.current`), ...(num(`${d}/pids.max`) ? { limit: num(`${d}/pids.max`) } : {}) };
    const io: BlkioEntry[] = [];
    for (const line of (read(`${d}/io.stat`) ?? '').split('\n')) {
      const m = /^(\d+):(\d+) (.*)$/.exec(line.trim());
      if (!m) continue;
      const f = kv(m[3]!.replace(/=/g, ' ').replace(/ (\d+) /g, ' $1\n'));
      io.push(
        { major: Number(m[1]), minor: Number(m[2]), op: 'read', value: f.rbytes ?? 0 },
        { major: Number(m[1]), minor: Number(m[2]), op: 'write', value: f.wbytes ?? 0 },
      );
    }
    s.blkio_stats.io_service_bytes_recursive = io;
  } else {
    const c = (ctl: string, f: string) => `${cg.root}/${ctl}${cgroupPath}/${f}`;
    const percpu = (read(c('cpuacct', 'cpuacct.usage_percpu')) ?? '').trim().split(/\s+/).filter(Boolean).map(Number);
    const cs = kv(read(c('cpuacct', 'cpuacct.stat')));
    const tick = 1e9 / 100;
    s.cpu_stats.cpu_usage = {
      total_usage: num(c('cpuacct', 'cpuacct.usage')),
      percpu_usage: percpu,
      usage_in_kernelmode: (cs.system ?? 0) * tick,
      usage_in_usermode: (cs.user ?? 0) * tick,
    };
    const thr = kv(read(c('cpu', 'cpu.stat')));
    s.cpu_stats.throttling_data = { periods: thr.nr_periods ?? 0, throttled_periods: thr.nr_throttled ?? 0, throttled_time: thr.throttled_time ?? 0 };
    const limit = num(c('memory', 'memory.limit_in_bytes'));
    s.memory_stats = {
      usage: num(c('memory', 'memory.usage_in_bytes')),
      max_usage: num(c('memory', 'memory.max_usage_in_bytes')),
      stats: kv(read(c('memory', 'memory.stat'))),
      limit: limit && limit < hostMem ? limit : hostMem,
    };
    const pmax = read(c('pids', 'pids.max'))?.trim();
    s.pids_stats = { current: num(c('pids', 'pids.current')), ...(pmax && pmax !== 'max' ? { limit: Number(pmax) } : {}) };
    s.blkio_stats.io_service_bytes_recursive = blkio(
      read(c('blkio', 'blkio.throttle.io_service_bytes_recursive')) ?? read(c('blkio', 'blkio.throttle.io_service_bytes')),
    );
    s.blkio_stats.io_serviced_recursive = blkio(read(c('blkio', 'blkio.throttle.io_serviced_recursive')));
  }
  const net = netStats(pid);
  if (net) s.networks = net;
  return s;
}

/** PIDs in the container's cgroup (for top). */
export function cgroupPids(cgroupPath: string, cg: CgroupFs = HOST): number[] {
  const file = cg.unified ? `${cg.root}${cgroupPath}/cgroup.procs` : `${cg.root}/pids${cgroupPath}/cgroup.procs`;
  return (read(file) ?? '').split('\n').filter(Boolean).map(Number);
}

/** Resource updates (docker update) as runc update flags. */
export function runcUpdateArgs(u: {
  memory?: number;
  memorySwap?: number;
  memoryReservation?: number;
  cpuQuota?: number;
  cpuPeriod?: number;
  cpuShares?: number;
  cpusetCpus?: string;
  cpusetMems?: string;
  pidsLimit?: number;
}): string[] {
  const a: string[] = [];
  if (u.memory !== undefined) a.push('--memory', String(u.memory));
  if (u.memorySwap !== undefined) a.push('--memory-swap', String(u.memorySwap));
  if (u.memoryReservation !== undefined) a.push('--memory-reservation', String(u.memoryReservation));
  if (u.cpuPeriod !== undefined) a.push('--cpu-period', String(u.cpuPeriod));
  if (u.cpuQuota !== undefined) a.push('--cpu-quota', String(u.cpuQuota));
  if (u.cpuShares !== undefined) a.push('--cpu-share', String(u.cpuShares));
  if (u.cpusetCpus !== undefined) a.push('--cpuset-cpus', u.cpusetCpus);
  if (u.cpusetMems !== undefined) a.push('--cpuset-mems', u.cpusetMems);
  if (u.pidsLimit !== undefined) a.push('--pids-limit', String(u.pidsLimit));
  return a;
}
