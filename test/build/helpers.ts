import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { TestDaemon } from '../helpers/daemon.ts';

/** Writes a build context directory: path -> content (a string, or {link} for a symlink). */
export function writeContext(dir: string, files: Record<string, string | { link: string }>): string {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  for (const [p, c] of Object.entries(files)) {
    const abs = path.join(dir, p);
    fs.mkdirSync(path.dirname(abs), { recursive: true });
    if (typeof c === 'string') fs.writeFileSync(abs, c);
    else fs.symlinkSync(c.link, abs);
  }
  return dir;
}

/** A tar of a directory (GNU tar), as a client would send it. */
export function tarOf(dir: string, extra: string[] = []): Buffer {
  const r = spawnSync('tar', ['-C', dir, '-cf', '-', ...extra, '.'], { maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`tar failed: ${r.stderr}`);
  return r.stdout;
}

export interface RawBuild {
  status: number;
  lines: string[];
  messages: Record<string, unknown>[];
}

/** POST /build with a tar body; returns the raw response lines. */
export function rawBuild(d: TestDaemon, body: Buffer, query: string, headers: Record<string, string> = {}): Promise<RawBuild> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { socketPath: d.socket, method: 'POST', path: `/v1.41/build?${query}`, headers: { 'Content-Type': 'application/x-tar', ...headers } },
      (res) => {
        let text = '';
        res.on('data', (b) => (text += b));
        res.on('end', () => {
          const lines = text.split('\r\n').filter(Boolean);
          let messages: Record<string, unknown>[] = [];
          try {
            messages = lines.map((l) => JSON.parse(l));
          } catch {
            messages = [];
          }
          resolve({ status: res.statusCode!, lines, messages });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** What a build may leave behind: containers, active snapshots, temp dirs, mounts under the daemon's roots. */
export async function leftovers(d: TestDaemon): Promise<{ containers: string[]; snapshots: string[]; buildTmp: string[]; mounts: string[] }> {
  const ps = await d.docker(['ps', '-aq']);
  const ls = (p: string) => {
    try {
      return fs.readdirSync(p);
    } catch {
      return [];
    }
  };
  const mounts = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f[4]?.startsWith(d.dir) && !f.includes('nsfs'))
    .map((f) => f[4]!);
  return {
    containers: ps.stdout.split('\n').filter(Boolean),
    snapshots: ls(path.join(d.dataRoot, 'overlay', 'active')),
    buildTmp: ls(path.join(d.dataRoot, 'build', 'tmp')),
    mounts,
  };
}

/** leftovers() once they are gone, or after `ms` (`docker run --rm` removes its container just after it returns). */
export async function settledLeftovers(d: TestDaemon, ms = 5000): Promise<Awaited<ReturnType<typeof leftovers>>> {
  let left = await leftovers(d);
  for (const t0 = Date.now(); Date.now() - t0 < ms && JSON.stringify(left) !== JSON.stringify(NOTHING_LEFT);) {
    await new Promise((r) => setTimeout(r, 100));
    left = await leftovers(d);
  }
  return left;
}

export const NOTHING_LEFT = { containers: [], snapshots: [], buildTmp: [], mounts: [] };

/** Replaces image and container IDs so two streams can be compared. */
export function normalizeIds(s: string): string {
  return s.replace(/sha256:[a-f0-9]{64}/g, 'sha256:<id>').replace(/\b[a-f0-9]{12}\b/g, '<id12>');
}
