import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { TestDaemon } from '../helpers/daemon.ts';

export async function ok(d: TestDaemon, args: string[]): Promise<string> {
  const r = await d.docker(args);
  assert.equal(r.code, 0, `docker ${args.join(' ')} failed: ${r.stderr}\n${d.log.slice(-3000)}`);
  return r.stdout;
}

export async function keelOk(d: TestDaemon, args: string[], timeoutMs?: number): Promise<string> {
  const r = await d.keel(args, { timeoutMs });
  assert.equal(r.code, 0, `keel ${args.join(' ')} failed: ${r.stderr}\n${d.log.slice(-3000)}`);
  return r.stdout;
}

/** Mount points under the daemon's roots (but the network namespace it keeps ready for the next container). */
export function mountsUnder(d: TestDaemon): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m.startsWith(d.dir + '/') && !m.startsWith(path.join(d.execRoot, 'netns') + '/'));
}

export function frozenLayers(d: TestDaemon): { rootfs: string[]; volumes: string[] } {
  const ls = (p: string) => (fs.existsSync(p) ? fs.readdirSync(p).filter((n) => /^[a-f0-9]{16}$/.test(n)) : []);
  return { rootfs: ls(path.join(d.dataRoot, 'overlay/frozen')), volumes: ls(path.join(d.dataRoot, 'volumes/.frozen')) };
}

/** Bytes under a directory (du -sb). */
export function du(p: string): number {
  let total = 0;
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const f = path.join(dir, e.name);
      if (e.isDirectory()) walk(f);
      else if (e.isFile()) total += fs.lstatSync(f).size;
    }
  };
  if (fs.existsSync(p)) walk(p);
  return total;
}
