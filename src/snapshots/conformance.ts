// The conformance suite every LayerSnapshotter passes (types.ts), run by
// overlay.test.ts against the overlay snapshotter without root; the root-only
// half (mounting what mounts() describes) is test/snapshots/overlay.test.ts.
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { sha256 } from '../oci/digest.ts';
import type { Digest } from '../oci/digest.ts';
import type { LayerSnapshotter, Mount } from './types.ts';
import * as mountHelpers from './mount.ts';
import { MOUNT_DATA_MAX } from './mount.ts';

/** Chain IDs for `n` layers (OCI image spec). */
export function chainOf(n: number, seed = 'l'): { diffIds: Digest[]; chain: Digest[] } {
  const diffIds: Digest[] = [];
  const chain: Digest[] = [];
  for (let i = 0; i < n; i++) {
    const d = sha256(`${seed}${i}`);
    diffIds.push(d);
    chain.push(i ? sha256(`${chain[i - 1]} ${d}`) : d);
  }
  return { diffIds, chain };
}

/** Creates the layers of chainOf(n) with one file each (`f<i>`, content `i`). */
export async function makeLayers(s: LayerSnapshotter, n: number, seed = 'l'): Promise<Digest[]> {
  const { diffIds, chain } = chainOf(n, seed);
  for (let i = 0; i < n; i++) {
    await s.createLayer({ chainId: chain[i]!, diffId: diffIds[i], parent: i ? chain[i - 1]! : null }, async (dir) => {
      await fsp.writeFile(path.join(dir, `f${i}`), String(i));
      return { diffId: diffIds[i]!, size: 1 };
    });
  }
  return chain;
}

/** The lowerdir/upperdir/workdir values of an overlay mount. */
export function overlayDirs(m: Mount): { lower: string[]; upper?: string; work?: string } {
  const opt = (k: string) => m.options?.find((o) => o.startsWith(`${k}=`))?.slice(k.length + 1);
  return { lower: (opt('lowerdir') ?? '').split(':').filter(Boolean), upper: opt('upperdir'), work: opt('workdir') };
}

export function snapshotterConformance(name: string, factory: () => Promise<LayerSnapshotter>): void {
  const fresh = async () => {
    const s = await factory();
    await s.init();
    return s;
  };

  test(`${name}: a layer appears only when its fill succeeds with the expected diff ID`, async () => {
    const s = await fresh();
    const diffId = sha256('layer');
    await assert.rejects(
      s.createLayer({ chainId: diffId, diffId, parent: null }, async (dir) => {
        await fsp.writeFile(path.join(dir, 'half'), 'x');
        throw new Error('interrupted');
      }),
      /interrupted/,
    );
    await assert.rejects(
      s.createLayer({ chainId: diffId, diffId, parent: null }, async () => ({ diffId: sha256('other'), size: 1 })),
      /diff_id/,
    );
    assert.deepEqual(await s.listLayers(), []);
    assert.equal(await s.hasLayer(diffId), false);
    await makeLayers(s, 1, 'layer-');
  });

  test(`${name}: concurrent creations of one layer leave one layer`, async () => {
    const s = await fresh();
    const diffId = sha256('same');
    const fill = async (dir: string) => {
      await fsp.writeFile(path.join(dir, 'f'), 'x');
      return { diffId, size: 1 };
    };
    const metas = await Promise.all([1, 2, 3].map(() => s.createLayer({ chainId: diffId, diffId, parent: null }, fill)));
    for (const m of metas) assert.equal(m.chainId, diffId);
    assert.deepEqual(await s.listLayers(), [diffId]);
    assert.equal(await fsp.readFile(path.join(s.layerDir(diffId), 'f'), 'utf8'), 'x');
  });

  test(`${name}: a snapshot's mounts are self-contained: absolute paths to existing dirs, top layer first`, async () => {
    const s = await fresh();
    const chain = await makeLayers(s, 3);
    const ms = await s.prepare('c1', chain);
    assert.equal(ms.length, 1);
    const m = ms[0]!;
    assert.equal(m.destination, '/');
    assert.equal(m.type, 'overlay');
    const { lower, upper, work } = overlayDirs(m);
    assert.equal(lower.length, 3);
    for (const d of [...lower, upper!, work!]) {
      assert.ok(path.isAbsolute(d), `${d} is absolute`);
      assert.ok((await fsp.stat(d)).isDirectory(), `${d} is a directory`);
    }
    // Top layer first, each lowerdir the layer's own tree (possibly through a link).
    for (let i = 0; i < 3; i++) assert.equal(await fsp.readFile(path.join(lower[i]!, `f${2 - i}`), 'utf8'), String(2 - i));
    assert.equal(await fsp.realpath(upper!), await fsp.realpath(s.upperDir('c1')));
    assert.deepEqual(await s.mounts('c1'), ms);
    assert.deepEqual(await s.chainOf('c1'), chain);
  });

  // 80 layers: past the ~55 the old working-directory-relative lowerdirs fit, under docker's 125.
  test(`${name}: a deep image's mount options fit one page and stay absolute`, async () => {
    const s = await fresh();
    const n = 80;
    const chain = await makeLayers(s, n);
    const [m] = await s.prepare('deep', chain);
    const opts = m!.options!.join(',');
    assert.ok(opts.length <= MOUNT_DATA_MAX, `${opts.length} bytes of options`);
    const { lower } = overlayDirs(m!);
    assert.equal(lower.length, n);
    for (const [i, d] of lower.entries()) {
      assert.ok(path.isAbsolute(d));
      assert.equal(await fsp.readFile(path.join(d, `f${n - 1 - i}`), 'utf8'), String(n - 1 - i));
    }
  });

  test(`${name}: an image without layers still gets a lowerdir`, async () => {
    const s = await fresh();
    const [m] = await s.prepare('empty', []);
    const { lower } = overlayDirs(m!);
    assert.equal(lower.length, 1);
    assert.deepEqual(await fsp.readdir(lower[0]!), []);
  });

  test(`${name}: remove drops the snapshot; unknown and invalid keys are refused`, async () => {
    const s = await fresh();
    const chain = await makeLayers(s, 1);
    await s.prepare('c2', chain);
    assert.deepEqual(await s.listActive(), ['c2']);
    await s.remove('c2');
    assert.deepEqual(await s.listActive(), []);
    await s.remove('c2'); // idempotent
    await assert.rejects(s.mounts('c2'), /does not exist/);
    assert.throws(() => s.upperDir('../escape'), /invalid snapshot key/);
    await assert.rejects(s.prepare('a/b', chain), /invalid snapshot key/);
  });

  test(`${name}: a removed layer is gone and its snapshot-side links with it`, async () => {
    const s = await fresh();
    const [c] = await makeLayers(s, 1);
    await s.removeLayer(c!);
    assert.equal(await s.hasLayer(c!), false);
    assert.deepEqual(await s.listLayers(), []);
  });

  test(`${name}: scratch dirs are dropped by discardScratch and by init after a crash`, async () => {
    const s = await fresh();
    const d1 = await s.scratchDir();
    const d2 = await s.scratchDir();
    await fsp.writeFile(path.join(d1, 'x'), 'x');
    await s.discardScratch(d1);
    await assert.rejects(fsp.stat(d1), { code: 'ENOENT' });
    await s.init(); // a restart after a crash that left d2
    await assert.rejects(fsp.stat(d2), { code: 'ENOENT' });
  });
}

/**
 * The root-only half (test/snapshots/): what mounts() describes, mounted by
 * mount.ts's mountRootfs from another working directory, shows every layer
 * and writes to the snapshot's upper dir.
 */
export function snapshotterMountConformance(name: string, factory: () => Promise<LayerSnapshotter>, scratch: () => Promise<string>): void {
  const { mountRootfs, unmount } = mountHelpers;
  for (const depth of [3, 80]) {
    test(`${name}: a ${depth}-layer snapshot mounts as described, from any working directory`, async () => {
      const s = await factory();
      await s.init();
      const chain = await makeLayers(s, depth);
      await s.prepare('m1', chain);
      const target = await scratch();
      const cwd = process.cwd();
      process.chdir('/'); // the mount must not depend on where its caller stands
      try {
        await mountRootfs(await s.mounts('m1'), target);
      } finally {
        process.chdir(cwd);
      }
      try {
        for (let i = 0; i < depth; i++) assert.equal(await fsp.readFile(path.join(target, `f${i}`), 'utf8'), String(i));
        await fsp.writeFile(path.join(target, 'written'), 'w');
        assert.equal(await fsp.readFile(path.join(s.upperDir('m1'), 'written'), 'utf8'), 'w');
      } finally {
        await unmount(target);
      }
      // Mounted again (not volatile), the write is still there.
      await mountRootfs(await s.mounts('m1'), target);
      try {
        assert.equal(await fsp.readFile(path.join(target, 'written'), 'utf8'), 'w');
      } finally {
        await unmount(target);
      }
      await s.remove('m1');
    });
  }
}
