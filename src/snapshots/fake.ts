import fsp from 'node:fs/promises';
import path from 'node:path';
import { EngineError } from '../common/errors.ts';
import type { Digest } from '../oci/digest.ts';
import type { Mount } from '../oci/mount.ts';
import type { LayerMeta, LayerSnapshotter } from './types.ts';

/**
 * Mounts without the kernel, for unit tests without root: "mounting" an
 * overlay snapshot copies its layers (bottom first) and then its upper dir
 * into the target, "unmounting" empties the target. Writes to a "mounted"
 * tree do not reach the upper dir (what mount.ts's real mounts do, which
 * test/snapshots checks as root); the containers layer only needs a rootfs
 * with the image's files ("/etc/passwd") and the mount bookkeeping.
 */
export class FakeMounter {
  /** Every mount and unmount, in order: ['mount' | 'unmount', target, volatile?]. */
  readonly calls: [string, string, boolean?][] = [];

  async mount(mounts: Mount[], target: string, o: { volatile?: boolean } = {}): Promise<void> {
    for (const m of mounts) {
      if (m.type === 'tmpfs') continue; // an empty tree: the target as it is (a shareable /dev/shm)
      if (m.type !== 'overlay') throw new EngineError('INTERNAL', `the fake mounter mounts overlay snapshots and tmpfs only, not ${m.type}`);
      const opt = (k: string) => m.options?.find((x) => x.startsWith(`${k}=`))?.slice(k.length + 1);
      const lower = (opt('lowerdir') ?? '').split(':').filter(Boolean).reverse();
      const upper = opt('upperdir');
      const dest = path.join(target, m.destination);
      for (const d of [...lower, ...(upper ? [upper] : [])]) await fsp.cp(d, dest, { recursive: true, force: true, verbatimSymlinks: true });
    }
    this.calls.push(['mount', target, !!o.volatile]);
  }

  async unmount(target: string): Promise<void> {
    for (const e of await fsp.readdir(target).catch(() => [] as string[])) await fsp.rm(path.join(target, e), { recursive: true, force: true });
    this.calls.push(['unmount', target]);
  }
}

const KEY = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

function checkKey(key: string): void {
  if (!KEY.test(key)) throw new EngineError('INVALID_ARGUMENT', `invalid snapshot key "${key}"`);
}

/**
 * A LayerSnapshotter in a temp dir with its index in memory, for tests of
 * what stands on the snapshotter interface (it passes the conformance
 * suite, fake.test.ts). Layers are numbered dirs (short paths, so 80 of them
 * fit an overlay option page); it keeps nothing across instances but the
 * dirs, and locks nothing across processes.
 */
export class FakeSnapshotter implements LayerSnapshotter {
  private readonly root: string;
  private readonly layers = new Map<Digest, { meta: LayerMeta; dir: string }>();
  private readonly active = new Map<string, Digest[]>();
  private readonly creating = new Map<Digest, Promise<LayerMeta>>();
  private next = 0;

  constructor(root: string) {
    this.root = root;
  }

  async init(): Promise<void> {
    await fsp.rm(path.join(this.root, 'tmp'), { recursive: true, force: true });
    for (const d of ['l', 'a', 'tmp', 'empty']) await fsp.mkdir(path.join(this.root, d), { recursive: true });
  }

  async hasLayer(chainId: Digest): Promise<boolean> {
    return this.layers.has(chainId);
  }

  async layerMeta(chainId: Digest): Promise<LayerMeta | undefined> {
    return this.layers.get(chainId)?.meta;
  }

  async listLayers(): Promise<Digest[]> {
    return [...this.layers.keys()];
  }

  layerDir(chainId: Digest): string {
    const l = this.layers.get(chainId);
    if (!l) throw new EngineError('NOT_FOUND', `layer ${chainId} does not exist`);
    return l.dir;
  }

  createLayer(
    expected: { chainId: Digest; diffId?: Digest; parent: Digest | null },
    fill: (dir: string) => Promise<{ diffId: Digest; size: number }>,
  ): Promise<LayerMeta> {
    const have = this.layers.get(expected.chainId);
    if (have) return Promise.resolve(have.meta);
    const inFlight = this.creating.get(expected.chainId);
    if (inFlight) return inFlight;
    const p = (async () => {
      const scratch = await this.scratchDir();
      let r: { diffId: Digest; size: number };
      try {
        r = await fill(scratch);
        if (expected.diffId && r.diffId !== expected.diffId)
          throw new EngineError('INVALID_ARGUMENT', `layer content does not match its diff_id: expected ${expected.diffId}, got ${r.diffId}`);
      } catch (e) {
        await this.discardScratch(scratch);
        throw e;
      }
      const dir = path.join(this.root, 'l', String(this.next++));
      await fsp.rename(scratch, dir);
      const meta: LayerMeta = { chainId: expected.chainId, diffId: r.diffId, parent: expected.parent, size: r.size, created: new Date().toISOString() };
      this.layers.set(expected.chainId, { meta, dir });
      return meta;
    })();
    this.creating.set(expected.chainId, p);
    return p.finally(() => this.creating.delete(expected.chainId));
  }

  async scratchDir(): Promise<string> {
    return fsp.mkdtemp(path.join(this.root, 'tmp', 's-'));
  }

  async discardScratch(dir: string): Promise<void> {
    await fsp.rm(dir, { recursive: true, force: true });
  }

  async removeLayer(chainId: Digest): Promise<void> {
    const l = this.layers.get(chainId);
    if (!l) return;
    this.layers.delete(chainId);
    await fsp.rm(l.dir, { recursive: true, force: true });
  }

  async prepare(key: string, chain: Digest[]): Promise<Mount[]> {
    checkKey(key);
    for (const c of chain) this.layerDir(c);
    await fsp.mkdir(path.join(this.root, 'a', key, 'fs'), { recursive: true });
    await fsp.mkdir(path.join(this.root, 'a', key, 'work'), { recursive: true });
    this.active.set(key, [...chain]);
    return this.mounts(key);
  }

  async mounts(key: string): Promise<Mount[]> {
    const chain = this.active.get(key);
    if (!chain) throw new EngineError('NOT_FOUND', `snapshot ${key} does not exist`);
    const lower = chain.length ? [...chain].reverse().map((c) => this.layerDir(c)) : [path.join(this.root, 'empty')];
    const dir = path.join(this.root, 'a', key);
    return [
      {
        destination: '/',
        type: 'overlay',
        source: 'overlay',
        options: [`lowerdir=${lower.join(':')}`, `upperdir=${path.join(dir, 'fs')}`, `workdir=${path.join(dir, 'work')}`],
      },
    ];
  }

  upperDir(key: string): string {
    checkKey(key);
    return path.join(this.root, 'a', key, 'fs');
  }

  async chainOf(key: string): Promise<Digest[] | undefined> {
    const c = this.active.get(key);
    return c && [...c];
  }

  async listActive(): Promise<string[]> {
    return [...this.active.keys()];
  }

  async remove(key: string): Promise<void> {
    checkKey(key);
    this.active.delete(key);
    await fsp.rm(path.join(this.root, 'a', key), { recursive: true, force: true });
  }
}
