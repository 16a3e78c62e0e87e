/**
 * The builder as the engine holds it: one per state root, with the
 * persistent cache, the builds in flight (POST /build/cancel ends one by
 * its buildid), and `builder prune`.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { diskUsage } from '../common/fs.ts';
import { BuildCache } from './cache.ts';
import { ContextCache, keptRoot } from './ctxcache.ts';
import { cleanContextRoot, contextRoot } from './context.ts';
import { unmount } from '../snapshots/mount.ts';
import { build } from './executor.ts';
import type { BuilderDeps } from './session.ts';
import type { BuildOutput, BuildRequest, BuildResult } from './types.ts';

export { RunFailedError } from './session.ts';

/** Marks the containers RUN steps make, so a restart removes those a crash left. */
export const BUILD_LABEL = 'io.keel.build';

export class Builder {
  readonly cache: BuildCache;
  private readonly contexts: ContextCache;
  private readonly deps: Omit<BuilderDeps, 'cache'>;
  private readonly active = new Map<string, AbortController>();

  constructor(deps: Omit<BuilderDeps, 'cache'>) {
    this.deps = deps;
    this.cache = new BuildCache(deps.dataRoot);
    this.contexts = new ContextCache(deps.dataRoot);
  }

  /** Removes contexts and mount points a crash left behind (call at startup, before any build). */
  async init(): Promise<void> {
    const tmp = contextRoot(this.deps.dataRoot);
    let mounts: string[] = [];
    try {
      mounts = fs
        .readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .map((l) => l.split(' ')[4] ?? '')
        .filter((m) => m.startsWith(tmp + '/'));
    } catch {
      // no mountinfo: nothing to unmount
    }
    for (const m of mounts.sort().reverse()) await unmount(m).catch(() => {});
    await cleanContextRoot(this.deps.dataRoot);
    await fsp.rm(keptRoot(this.deps.dataRoot), { recursive: true, force: true });
    // RUN containers of builds a crash interrupted.
    for (const c of this.deps.containers.store.list()) {
      if (c.config.Labels?.[BUILD_LABEL] !== undefined) await this.deps.containers.remove(c.id, { force: true, volumes: true }).catch(() => {});
    }
    const snaps = this.deps.images.snapshots;
    // best effort at start-up: a leftover that will not go is tried again at the next start
    for (const k of await snaps.listActive()) if (k.startsWith('build-')) await snaps.remove(k).catch(() => {});
  }

  async build(req: BuildRequest & { buildId?: string }, out: BuildOutput): Promise<BuildResult> {
    const id = req.buildId || randomBytes(16).toString('hex');
    const ac = new AbortController();
    const signal = req.signal ? AbortSignal.any([req.signal, ac.signal]) : ac.signal;
    this.active.set(id, ac);
    try {
      return await build({ ...this.deps, cache: this.cache, contexts: this.contexts }, { ...req, signal }, out);
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
    await this.contexts.clear();
    const mounts = path.join(this.deps.dataRoot, 'build', 'mounts');
    let reclaimed = 0;
    if (o.all !== false) {
      reclaimed = await diskUsage(mounts).catch(() => 0);
      await fsp.rm(mounts, { recursive: true, force: true });
    }
    return { removed, reclaimed };
  }
}
