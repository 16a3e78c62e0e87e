// The latency of `pool take` as a test suite sees it: keel's client library in a
// running process (the README's node:test example), one take at a time, each
// after the pool has refilled (untimed). A command-line client pays its own
// process start on top (curl ~20-30 ms on these machines, keel's CLI a Node
// start), which bench/clones.sh measures beside this.
//
//   node bench/pooltake.ts SOCKET POOL SIZE TAKES
// prints {"median":s,"min":s,"max":s,"samples":[s...]} (seconds) and removes
// the containers it took.
import { KeelClient } from '../src/client/index.ts';

const [socketPath, pool, sizeArg, takesArg] = process.argv.slice(2);
if (!socketPath || !pool || !sizeArg || !takesArg) {
  process.stderr.write('usage: node bench/pooltake.ts SOCKET POOL SIZE TAKES\n');
  process.exit(2);
}
const size = Number(sizeArg);
const takes = Number(takesArg);
const keel = new KeelClient({ socketPath });

async function refilled(): Promise<void> {
  const deadline = Date.now() + 300_000;
  while (Date.now() < deadline) {
    const p = (await keel.pool.list()).find((x) => x.name === pool);
    if (!p) throw new Error(`no pool ${pool}`);
    if (p.readyCount === size && p.starting === 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`pool ${pool} did not refill to ${size} in 300 s`);
}

const samples: number[] = [];
const taken: string[] = [];
try {
  for (let i = 0; i < takes; i++) {
    await refilled();
    const t0 = performance.now();
    const c = await keel.pool.take(pool);
    samples.push((performance.now() - t0) / 1000);
    taken.push(c.id);
  }
} finally {
  await Promise.allSettled(taken.map((id) => keel.remove(id, { force: true, volumes: true })));
}
const sorted = [...samples].sort((a, b) => a - b);
const mid = sorted.length >> 1;
const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
process.stdout.write(`${JSON.stringify({ median, min: sorted[0], max: sorted.at(-1), samples })}\n`);
