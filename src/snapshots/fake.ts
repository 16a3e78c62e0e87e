import fsp from 'node:fs/promises';
import path from 'node:path';
import { EngineError } from '../common/errors.ts';
import type { Mount } from '../oci/mount.ts';

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
      if (m.type !== 'overlay') throw new EngineError('INTERNAL', `the fake mounter mounts overlay snapshots only, not ${m.type}`);
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
