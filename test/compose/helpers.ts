import fs from 'node:fs';
import path from 'node:path';
import { after, before } from 'node:test';
import { TestDaemon, type RunResult } from '../helpers/daemon.ts';

/** A daemon of the test file's own, started with busybox:local before its tests (then `also`) and cleaned up after them. */
export function busyboxDaemon(name: string, also?: (d: TestDaemon) => Promise<void>): TestDaemon {
  const d = new TestDaemon(name);
  before(async () => {
    await d.start();
    await d.importBusybox();
    await also?.(d);
  });
  after(async () => {
    await d.cleanup();
  });
  return d;
}

/** A project directory under the daemon's temp dir, and `keel compose` run in it. */
export function project(
  d: TestDaemon,
  name: string,
  files: Record<string, string>,
): { dir: string; compose: (args: string[], env?: NodeJS.ProcessEnv) => Promise<RunResult> } {
  const dir = path.join(d.dir, name);
  fs.mkdirSync(dir, { recursive: true });
  for (const [f, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.writeFileSync(path.join(dir, f), text);
  }
  return {
    dir,
    compose: (args, env) => {
      const prev = process.cwd();
      process.chdir(dir);
      try {
        return d.keel(['compose', ...args], { env: { ...env, NO_COLOR: '1' } });
      } finally {
        process.chdir(prev);
      }
    },
  };
}

/** Polls fn until it returns true (or throws after timeoutMs). */
export async function eventually(fn: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export { TestDaemon };
