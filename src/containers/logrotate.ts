/**
 * Keeps the older files of a rotating log (json-file/local max-file).
 *
 * conmon rotates by itself when the live file reaches max-size (it writes a
 * new file and renames it over the log path), which drops the old one.
 * To keep max-file files, the daemon holds a hard link to the live file
 * (`<log>.keep`, no extra space while they are the same inode). When conmon
 * replaces the live file, `.keep` is the complete old file: it becomes
 * `<log>.1` (gzipped to `.1.gz` with compress), older ones move up one, the
 * one past max-file - 1 is removed, and `.keep` links the new live file.
 * Disk use stays within max-file x max-size however fast the container
 * writes. If the daemon is down meanwhile, conmon still bounds the live
 * file; only the older files it replaced are not kept.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { log } from '../common/log.ts';
import type { LogPolicy } from './logconfig.ts';

const keepOf = (logPath: string) => `${logPath}.keep`;

/** The log's files, oldest first (rotated .N[.gz] ... .1[.gz], the kept old live file, the live one). */
export function logFiles(logPath: string): { path: string; gzip: boolean }[] {
  const dir = path.dirname(logPath);
  const base = path.basename(logPath);
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const rotated = names
    .map((n) => ({ n, m: new RegExp(`^${base.replace(/\./g, '\\.')}\\.(\\d+)(\\.gz)?$`).exec(n) }))
    .filter((x): x is { n: string; m: RegExpExecArray } => !!x.m)
    .sort((a, b) => Number(b.m[1]) - Number(a.m[1]))
    .map((x) => ({ path: path.join(dir, x.n), gzip: !!x.m[2] }));
  const out = [...rotated];
  const keep = keepOf(logPath);
  try {
    const k = fs.statSync(keep);
    const live = fs.statSync(logPath, { throwIfNoEntry: false });
    if (!live || live.ino !== k.ino) out.push({ path: keep, gzip: false });
  } catch {
    // no kept file
  }
  out.push({ path: logPath, gzip: false });
  return out;
}

/** Starts keeping rotated files for a running container; returns the stop. */
export function keepRotatedLogs(logPath: string, policy: LogPolicy): () => void {
  if (policy.driver === 'none' || policy.maxFile < 2 || !policy.maxSize) return () => {};
  let stopped = false;
  let busy: Promise<void> = Promise.resolve();
  const check = () => {
    busy = busy
      .then(() => (stopped ? undefined : rotateIfReplaced(logPath, policy)))
      .catch((e: unknown) => log.warn('log rotation failed', { log: logPath, error: (e as Error).message }));
  };
  let watcher: fs.FSWatcher | undefined;
  try {
    watcher = fs.watch(path.dirname(logPath), (_ev, name) => {
      if (name === path.basename(logPath)) check();
    });
    watcher.on('error', () => {});
  } catch {
    // the timer below still checks
  }
  // fs.watch can miss a rename under load: look every second too.
  const timer = setInterval(check, 1000);
  timer.unref();
  check();
  return () => {
    stopped = true;
    clearInterval(timer);
    watcher?.close();
  };
}

async function rotateIfReplaced(logPath: string, policy: LogPolicy): Promise<void> {
  const keep = keepOf(logPath);
  const live = await fsp.stat(logPath).catch(() => undefined);
  const kept = await fsp.stat(keep).catch(() => undefined);
  if (!live) return;
  if (kept && kept.ino === live.ino) return;
  if (kept) {
    // .keep is the complete old file: shift the older ones up, drop the one past max-file.
    const older = policy.maxFile - 1;
    for (const gz of ['', '.gz']) await fsp.rm(`${logPath}.${older}${gz}`, { force: true });
    for (let i = older - 1; i >= 1; i--) {
      // a generation that does not exist yet (fewer files than max-file so far)
      for (const gz of ['', '.gz']) await fsp.rename(`${logPath}.${i}${gz}`, `${logPath}.${i + 1}${gz}`).catch(() => {});
    }
    if (policy.compress) {
      await pipeline(fs.createReadStream(keep), zlib.createGzip(), fs.createWriteStream(`${logPath}.1.gz.tmp`));
      await fsp.rename(`${logPath}.1.gz.tmp`, `${logPath}.1.gz`);
      await fsp.rm(keep, { force: true });
    } else {
      await fsp.rename(keep, `${logPath}.1`);
    }
  }
  await fsp.rm(keep, { force: true });
  // the next rotation's hard link; without it rotation copies instead
  await fsp.link(logPath, keep).catch(() => {});
}
