/**
 * COPY --link / ADD --link: the copied files become a layer of their own,
 * made in an empty directory instead of an overlay of the previous step, as
 * BuildKit does. So the layer does not depend on what is below it:
 *
 * - the destination is never resolved through the previous state: a path
 *   that is a symlink below becomes a real directory in this layer (which
 *   hides the link), directories the copy needs are made in the layer (0755,
 *   or the --chown owner; their mode then shows over the one below), and a
 *   single file copied to a path that is a directory below replaces it;
 * - the layer is cached apart from the step: when an earlier step changes,
 *   a COPY --link of the same files finds the layer it made before, and the
 *   step's new image is that same layer (same diff ID) on the new parent,
 *   without copying or hashing the files again (` ---> Using cache`).
 *
 * What stays as in keel's other steps, unlike BuildKit: each step is still
 * an image on its parent (the legacy builder's model), so the reuse is of
 * keel's own cache, not a rebase of a pushed image's manifest; and a
 * --chown by name is looked up in the previous state's /etc/passwd (the
 * numeric IDs it gives are part of the layer's key).
 */
import { exec } from '../common/exec.ts';
import type { ImageRecord } from '../images/store.ts';
import { BuildCache } from './cache.ts';
import type { ModeFn } from './chmod.ts';
import { Copier, type Owner } from './copy.ts';
import type { Instruction } from './dockerfile/types.ts';
import { commitStep } from './image.ts';
import type { BuildSession, StageState } from './session.ts';
import type { PlanEntry } from './sources.ts';
import { advance } from './steps.ts';

type CopyInst = Extract<Instruction, { kind: 'COPY' | 'ADD' }>;

export interface LinkPlan {
  entries: PlanEntry[];
  archives: string[];
  files: { rel: string; name: string; data: Buffer; mode: number }[];
  digest: string;
}

export async function linkStep(
  s: BuildSession,
  st: StageState,
  inst: CopyInst,
  o: { plan: LinkPlan; destAbs: string; destIsDir: boolean; chmod?: ModeFn; owner?: Owner; keys: string[]; createdBy: string },
): Promise<void> {
  const images = s.deps.images;
  const runConfig = st.img.config.config ?? {};
  const layerKey = BuildCache.key([
    'copy-link-layer',
    inst.kind,
    o.destAbs,
    o.owner ? `${o.owner.uid}:${o.owner.gid}` : '',
    inst.chmod ?? null,
    inst.parents,
    o.plan.digest,
    s.epoch ?? null,
  ]);
  let rec: ImageRecord | undefined;
  const hit = s.req.noCache ? undefined : await s.deps.cache.get(layerKey);
  const prev = hit && images.store.get(hit.image);
  if (prev) {
    s.say(' ---> Using cache\n');
    rec = await rebase(s, st, prev, o.createdBy);
  } else {
    const scratch = await images.snapshots.scratchDir();
    try {
      const copier = new Copier({
        rootfs: scratch,
        dest: o.destAbs.replace(/\/$/, '') || '/',
        destIsDir: o.destIsDir || o.plan.archives.length > 0,
        owner: o.owner,
        chmod: o.chmod,
      });
      await copier.copyAll(o.plan.entries, { signal: s.signal });
      for (const f of o.plan.files) copier.writeFile(f.rel, f.data, f.mode);
      for (const a of o.plan.archives) await copier.extract(a, s.signal);
      rec = await commitStep(images, st.img, {
        runConfig,
        createdBy: o.createdBy,
        upperDir: scratch,
        adoptUpper: true,
        signal: s.signal,
        sourceDateEpoch: s.epoch,
      });
    } finally {
      await images.snapshots.discardScratch(scratch);
    }
  }
  await s.deps.cache.put(layerKey, rec.id);
  for (const k of o.keys) await s.deps.cache.put(k, rec.id);
  await advance(s, st, rec);
}

/** The top layer of `prev` (a --link layer) on the stage's current image: a copy of its tree, adopted under the new chain. */
async function rebase(s: BuildSession, st: StageState, prev: ImageRecord, createdBy: string): Promise<ImageRecord> {
  const images = s.deps.images;
  const i = prev.layers.length - 1;
  const diffId = (await images.config(prev)).rootfs.diff_ids[i]!;
  const scratch = await images.snapshots.scratchDir();
  try {
    await exec(['cp', '-a', '--', `${images.snapshots.layerDir(prev.chainIds[i]!)}/.`, `${scratch}/`], { signal: s.signal });
    return await commitStep(images, st.img, {
      runConfig: st.img.config.config ?? {},
      createdBy,
      layer: { desc: prev.layers[i]!, diffId, dir: scratch },
      signal: s.signal,
      sourceDateEpoch: s.epoch,
    });
  } finally {
    await images.snapshots.discardScratch(scratch);
  }
}
