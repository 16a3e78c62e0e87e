import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { cgroupPids, sampleStats } from './stats.ts';

/** Writes files (relative path → content) under a fresh temp dir, as cgroupfs would show them. */
function tree(files: Record<string, string>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-cgfs-'));
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), text);
  }
  return root;
}

// The host runs the test (its own pid) so the sample has a live process with a /proc/<pid>/net/dev.
const PID = process.pid;

test('stats from a unified (cgroup v2) hierarchy: the files a v2 host shows', () => {
  const cg = '/keel/abc';
  const root = tree({
    [`${cg}/cpu.stat`]: 'usage_usec 2500\nuser_usec 2000\nsystem_usec 500\nnr_periods 10\nnr_throttled 2\nthrottled_usec 300\n',
    [`${cg}/memory.current`]: '1048576\n',
    [`${cg}/memory.max`]: '67108864\n',
    [`${cg}/memory.stat`]: 'anon 524288\nfile 4096\ninactive_file 4096\n',
    [`${cg}/pids.current`]: '3\n',
    [`${cg}/pids.max`]: 'max\n',
    [`${cg}/io.stat`]: '8:0 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0\n',
    [`${cg}/cgroup.procs`]: '11\n12\n13\n',
  });
  try {
    const s = sampleStats(cg, PID, { root, unified: true });
    assert.deepEqual(s.cpu_stats.cpu_usage, { total_usage: 2_500_000, usage_in_kernelmode: 500_000, usage_in_usermode: 2_000_000 });
    assert.deepEqual(s.cpu_stats.throttling_data, { periods: 10, throttled_periods: 2, throttled_time: 300_000 });
    assert.equal(s.memory_stats.usage, 1048576);
    assert.equal(s.memory_stats.limit, 67108864);
    // The docker CLI subtracts inactive_file (v2's name) from usage.
    assert.equal(s.memory_stats.stats?.inactive_file, 4096);
    assert.deepEqual(s.pids_stats, { current: 3 });
    assert.deepEqual(s.blkio_stats.io_service_bytes_recursive, [
      { major: 8, minor: 0, op: 'read', value: 1459200 },
      { major: 8, minor: 0, op: 'write', value: 314773504 },
    ]);
    assert.deepEqual(cgroupPids(cg, { root, unified: true }), [11, 12, 13]);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('stats from v1 controllers (the hybrid layout of these hosts); unlimited memory reads as the host total', () => {
  const cg = '/keel/abc';
  const root = tree({
    [`cpuacct${cg}/cpuacct.usage`]: '5000000\n',
    [`cpuacct${cg}/cpuacct.usage_percpu`]: '3000000 2000000 \n',
    [`cpuacct${cg}/cpuacct.stat`]: 'user 3\nsystem 1\n',
    [`cpu${cg}/cpu.stat`]: 'nr_periods 4\nnr_throttled 1\nthrottled_time 999\n',
    [`memory${cg}/memory.usage_in_bytes`]: '2097152\n',
    [`memory${cg}/memory.max_usage_in_bytes`]: '4194304\n',
    [`memory${cg}/memory.limit_in_bytes`]: '9223372036854771712\n',
    [`memory${cg}/memory.stat`]: 'cache 8192\ntotal_inactive_file 8192\n',
    [`pids${cg}/pids.current`]: '2\n',
    [`pids${cg}/pids.max`]: '100\n',
    [`pids${cg}/cgroup.procs`]: '21\n22\n',
    [`blkio${cg}/blkio.throttle.io_service_bytes_recursive`]: '8:0 Read 4096\n8:0 Write 8192\nTotal 12288\n',
  });
  try {
    const s = sampleStats(cg, PID, { root, unified: false });
    assert.deepEqual(s.cpu_stats.cpu_usage, {
      total_usage: 5_000_000,
      percpu_usage: [3_000_000, 2_000_000],
      usage_in_kernelmode: 10_000_000,
      usage_in_usermode: 30_000_000,
    });
    assert.deepEqual(s.memory_stats, { usage: 2097152, max_usage: 4194304, stats: { cache: 8192, total_inactive_file: 8192 }, limit: os.totalmem() });
    assert.deepEqual(s.pids_stats, { current: 2, limit: 100 });
    assert.deepEqual(s.blkio_stats.io_service_bytes_recursive, [
      { major: 8, minor: 0, op: 'Read', value: 4096 },
      { major: 8, minor: 0, op: 'Write', value: 8192 },
    ]);
    assert.deepEqual(cgroupPids(cg, { root, unified: false }), [21, 22]);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('a stopped container (pid 0) samples as zeros without reading its cgroup', () => {
  const s = sampleStats('/keel/none', 0, { root: '/nonexistent', unified: true });
  assert.equal(s.cpu_stats.cpu_usage.total_usage, 0);
  assert.deepEqual(s.memory_stats, {});
  assert.equal(s.networks, undefined);
});
