import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { busyboxRootfsTar, keelBin, run, TestDaemon, type RunResult } from '../helpers/daemon.ts';

const ptyrun = path.join(path.dirname(fileURLToPath(import.meta.url)), 'ptyrun.py');

/** A keel daemon on temp roots with busybox:local imported. */
export async function daemonWithBusybox(name: string): Promise<TestDaemon> {
  const d = new TestDaemon(name);
  await d.start();
  const r = await d.keel(['import', '-c', 'CMD ["sh"]', busyboxRootfsTar(d.dir), 'busybox:local']);
  assert.equal(r.code, 0, r.stderr);
  return d;
}

/** Runs `keel ARGS` on a 30x100 pseudo-terminal, typing `input` chunks after the first output. */
export function keelOnPty(d: TestDaemon, input: (string | Buffer)[], args: string[]): Promise<RunResult> {
  const hex = input.map((c) => Buffer.from(c).toString('hex')).join(',');
  return run(['python3', ptyrun, hex, process.execPath, keelBin, '-H', `unix://${d.socket}`, ...args], { timeoutMs: 60_000 });
}

/** Asserts success and returns stdout. */
export async function ok(d: TestDaemon, args: string[], input?: string): Promise<string> {
  const r = await d.keel(args, { input });
  assert.equal(r.code, 0, `keel ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
