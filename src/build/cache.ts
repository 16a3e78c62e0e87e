/**
 * The build cache: step key -> the image that step made. A key is a sha256
 * over the parent image ID, the compiled instruction and what else decides
 * its result (build args it sees, the digest of the files a COPY reads), so
 * a hit is exact. Entries are small JSON files under <data>/build/cache,
 * written atomically, so the cache survives a daemon restart; an entry whose
 * image is gone (pruned, removed) is a miss. The in-memory map spares the
 * file reads on a warm no-op rebuild.
 */
import { createHash } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { mkdirp, readJsonIfExists, writeJsonAtomic } from '../common/fs.ts';
import type { Digest } from '../oci/digest.ts';

export interface CacheEntry {
  image: Digest;
  created: string;
}

export class BuildCache {
  readonly dir: string;
  private readonly mem = new Map<string, CacheEntry>();

  constructor(dataRoot: string) {
    this.dir = path.join(dataRoot, 'build', 'cache');
  }

  static key(parts: unknown[]): string {
    return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
  }

  async get(key: string): Promise<CacheEntry | undefined> {
    const m = this.mem.get(key);
    if (m) return m;
    const e = await readJsonIfExists<CacheEntry>(path.join(this.dir, `${key}.json`)).catch(() => undefined);
    if (e) this.mem.set(key, e);
    return e;
  }

  async put(key: string, image: Digest): Promise<void> {
    const e: CacheEntry = { image, created: new Date().toISOString() };
    await mkdirp(this.dir, 0o700);
    await writeJsonAtomic(path.join(this.dir, `${key}.json`), e);
    this.mem.set(key, e);
  }

  async delete(key: string): Promise<void> {
    this.mem.delete(key);
    await fsp.rm(path.join(this.dir, `${key}.json`), { force: true });
  }

  /** Drops every entry (or those `drop` selects); returns how many went. */
  async prune(drop: (e: CacheEntry) => boolean = () => true): Promise<{ removed: string[] }> {
    const removed: string[] = [];
    let names: string[] = [];
    try {
      names = await fsp.readdir(this.dir);
    } catch {
      return { removed };
    }
    for (const n of names) {
      if (!n.endsWith('.json')) continue;
      const key = n.slice(0, -5);
      const e = await readJsonIfExists<CacheEntry>(path.join(this.dir, n)).catch(() => undefined);
      if (e && !drop(e)) continue;
      await this.delete(key);
      removed.push(key);
    }
    return { removed };
  }
}
