import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { errnoCode } from './errors.ts';

/**
 * Writes a file so that readers see either the old or the new content, never
 * a mix: write a temp file beside it, fsync, rename over, fsync the directory.
 * `durable: false` skips both fsyncs: the rename is still atomic for a
 * process that dies (kill -9 keeps the page cache), but a power loss may
 * bring back the old content (or, with no old content, an empty file), so it
 * is only for records whose loss on power failure is harmless.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o600, o: { durable?: boolean } = {}): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  if (o.durable === false) {
    // Page-cache writes of a small record take microseconds: done in place, without the four trips
    // through libuv's thread pool, which cost milliseconds each on a loaded machine (a pool take waits on this).
    try {
      fs.writeFileSync(tmp, data, { mode });
      fs.renameSync(tmp, file);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw e;
    }
    return;
  }
  const fh = await fsp.open(tmp, 'w', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await fsp.rename(tmp, file);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  await fsyncDir(dir);
}

export async function writeJsonAtomic(file: string, value: unknown, mode = 0o600, o: { durable?: boolean } = {}): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(value, null, 1) + '\n', mode, o);
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Reads and parses a JSON file; undefined when it does not exist. */
export async function readJsonIfExists<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await fsp.readFile(file, 'utf8')) as T;
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw e;
  }
}

/** readJsonIfExists for a small file where a thread-pool round trip costs more than the read (records read by the dozen). */
export function readJsonIfExistsSync<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw e;
  }
}

export async function exists(p: string): Promise<boolean> {
  try {
    await fsp.lstat(p);
    return true;
  } catch {
    return false;
  }
}

export async function mkdirp(dir: string, mode = 0o700): Promise<void> {
  await fsp.mkdir(dir, { recursive: true, mode });
}

/** Total bytes of regular files below `dir` (not following symlinks). */
export async function diskUsage(dir: string): Promise<number> {
  let total = 0;
  const walk = async (d: string): Promise<void> => {
    let entries: fs.Dirent[];
    try {
      entries = await fsp.readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) total += (await fsp.lstat(p)).size;
    }
  };
  await walk(dir);
  return total;
}
