/**
 * The builder as the engine holds it: one per state root, with the
 * persistent cache, the builds in flight (POST /build/cancel ends one by
 * its buildid), and `builder prune`.
 */
import { randomBytes } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { diskUsage } from '../common/fs.ts';
import { BuildCache } from './cache.ts';
import { cleanContextRoot } from './context.ts';
import { build } from './executor.ts';
import type { BuilderDeps } from './session.ts';
import type { BuildOutput, BuildRequest, BuildResult } from './types.ts';

export { RunFailedError } from './session.ts';

export class Builder {
  readonly cache: BuildCache;
  private readonly deps: Omit<BuilderDeps, 'cache'>;
  private readonly active = new Map<string, AbortController>();

  constructor(deps: Omit<BuilderDeps, 'cache'>) {
    this.deps = deps;
    this.cache = new BuildCache(deps.dataRoot);
  }

  /** Removes contexts and mount points a crash left behind (call at startup, before any build). */
  async init(): Promise<void> {
    await cleanContextRoot(this.deps.dataRoot);
  }

  async build(req: BuildRequest & { buildId?: string }, out: BuildOutput): Promise<BuildResult> {
    const id = req.buildId || randomBytes(16).toString('hex');
    const ac = new AbortController();
    const signal = req.signal ? AbortSignal.any([req.signal, ac.signal]) : ac.signal;
    this.active.set(id, ac);
    try {
      return await build({ ...this.deps, cache: this.cache }, { ...req, signal }, out);
    } finally {
      this.active.delete(id);
    }
  }

  /** POST /build/cancel?id=: ends a build in flight (no error when it is already over). */
  cancel(id: string): void {
    this.active.get(id)?.abort();
  }

  /**
   * `builder prune`: forgets every cache entry and empties cache mounts.
   * The intermediate images stay until `image prune` removes them.
   */
  async prune(o: { all?: boolean } = {}): Promise<{ removed: string[]; reclaimed: number }> {
    const { removed } = await this.cache.prune();
    const mounts = path.join(this.deps.dataRoot, 'build', 'mounts');
    let reclaimed = 0;
    if (o.all !== false) {
      reclaimed = await diskUsage(mounts).catch(() => 0);
      await fsp.rm(mounts, { recursive: true, force: true });
    }
    return { removed, reclaimed };
  }
}
