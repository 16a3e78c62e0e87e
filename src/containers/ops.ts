import { EngineError, conflict, invalid } from '../common/errors.ts';
import { exec } from '../common/exec.ts';
import { diskUsage } from '../common/fs.ts';
import { parseRestartPolicy } from './create.ts';
import { pruneMatch, type Filters } from './query.ts';
import { containerCgroupPath, type ContainerOps, type ContainerParts } from './parts.ts';
import { cgroupPids, runcUpdateArgs } from './stats.ts';
import type { UpdateSpec } from './spec.ts';
import { isRunning, type HostConfig } from './types.ts';

type Ops = Pick<ContainerParts, 'store' | 'mutex' | 'runtime' | 'images' | 'event' | 'cgroupParent'>;

/**
 * docker top: `ps <args>` on the host, rows kept when their PID is in the
 * container's cgroup (what dockerd does). ps_args are passed as separate
 * argv words, never through a shell.
 */
export async function top(svc: Ops, ref: string, psArgs = '-ef'): Promise<{ Titles: string[]; Processes: string[][] }> {
  const rec = svc.store.find(ref);
  if (!isRunning(rec)) throw conflict(`Container ${rec.id} is not running`);
  const args = psArgs.trim().split(/\s+/).filter(Boolean);
  if (args.length > 32 || args.some((a) => a.length > 256)) throw invalid('ps arguments are too long');
  const pids = new Set(cgroupPids(containerCgroupPath(svc, rec)));
  if (!pids.size && rec.state.Pid) pids.add(rec.state.Pid);
  const r = await exec(['ps', ...args], { allowFailure: true, timeoutMs: 10_000 });
  if (r.code !== 0) throw invalid(`Error running ps: ${r.stderr.trim() || `exit status ${r.code}`}`);
  const lines = r.stdout.split('\n').filter((l) => l.trim());
  const header = lines[0] ?? '';
  const titles = header.trim().split(/\s+/);
  const pidCol = titles.indexOf('PID');
  if (pidCol < 0) throw invalid(`Couldn't find PID field in ps output`);
  const processes: string[][] = [];
  for (const line of lines.slice(1)) {
    const fields = line.trim().split(/\s+/);
    const pid = Number(fields[pidCol]);
    if (!pids.has(pid)) continue;
    // The last column (command) may contain spaces: keep it whole.
    const row = fields.slice(0, titles.length - 1);
    row.push(fields.slice(titles.length - 1).join(' '));
    processes.push(row);
  }
  return { Titles: titles, Processes: processes };
}

/** docker update: record the new limits and apply them to a running container with runc update. */
export async function update(svc: Ops, ref: string, u: UpdateSpec): Promise<{ Warnings: string[] }> {
  const rec = svc.store.find(ref);
  const r = u.resources;
  await svc.mutex.run(rec.id, async () => {
    const h: HostConfig = { ...rec.hostConfig };
    const set = <K extends keyof HostConfig>(k: K, v: HostConfig[K] | null | undefined) => {
      if (v === undefined || v === null || v === 0 || v === '') return;
      h[k] = v;
    };
    const { memory, memorySwap: swap, nanoCpus: nano } = r;
    if (memory && memory < 6 * 1024 * 1024) throw invalid('Minimum memory limit allowed is 6MB');
    if (nano && (r.cpuQuota || r.cpuPeriod)) throw invalid('Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set');
    set('Memory', memory);
    set('MemorySwap', swap);
    set('MemoryReservation', r.memoryReservation);
    set('NanoCpus', nano);
    set('CpuShares', r.cpuShares);
    set('CpuPeriod', r.cpuPeriod);
    set('CpuQuota', r.cpuQuota);
    set('CpusetCpus', r.cpusetCpus);
    set('CpusetMems', r.cpusetMems);
    if (r.pidsLimit) h.PidsLimit = r.pidsLimit;
    if (u.restartPolicy?.name) {
      const p = u.restartPolicy;
      h.RestartPolicy = parseRestartPolicy({ Name: p.name as HostConfig['RestartPolicy']['Name'], MaximumRetryCount: p.maximumRetryCount }, h.AutoRemove);
    }
    if (memory && h.MemorySwap > 0 && h.MemorySwap < memory) {
      throw invalid('Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time');
    }
    if (isRunning(rec)) {
      const args = runcUpdateArgs({
        memory: memory || undefined,
        memorySwap: swap || (memory && rec.hostConfig.MemorySwap === 0 ? memory * 2 : undefined),
        memoryReservation: r.memoryReservation || undefined,
        cpuPeriod: nano ? 100000 : r.cpuPeriod || undefined,
        cpuQuota: nano ? Math.round((nano / 1e9) * 100000) : r.cpuQuota || undefined,
        cpuShares: r.cpuShares || undefined,
        cpusetCpus: r.cpusetCpus || undefined,
        cpusetMems: r.cpusetMems || undefined,
        pidsLimit: r.pidsLimit || undefined,
      });
      if (args.length) {
        await svc.runtime.update(rec.id, args).catch((e: unknown) => {
          throw new EngineError('INVALID_ARGUMENT', `Cannot update container ${rec.id}: ${(e as Error).message}`);
        });
      }
    }
    rec.hostConfig = h;
    await svc.store.save(rec);
  });
  svc.event('update', rec);
  return { Warnings: [] };
}

/** docker container prune: removes stopped containers matching the filters. */
export async function prune(svc: Ops, ops: Pick<ContainerOps, 'remove'>, filters: Filters): Promise<{ deleted: string[]; reclaimed: number }> {
  const deleted: string[] = [];
  let reclaimed = 0;
  for (const rec of svc.store.list()) {
    if (isRunning(rec) || rec.state.Status === 'removing' || !pruneMatch(rec, filters)) continue;
    const size = await diskUsage(svc.images.snapshots.upperDir(rec.id)).catch(() => 0);
    try {
      await ops.remove(rec.id);
      deleted.push(rec.id);
      reclaimed += size;
    } catch {
      // started or removed meanwhile
    }
  }
  return { deleted, reclaimed };
}
