/**
 * WORKDIR: besides setting the config, docker's legacy builder creates the
 * directory when the image does not have it (owned by root, mode 0755,
 * whatever USER says: it calls SetupWorkingDirectory with the root pair), so
 * the step adds a layer then, and an empty one when the directory exists.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ScopedRoot } from '../archive/resolve.ts';
import { BuildCache } from './cache.ts';
import { isDirIn } from './copy.ts';
import { mountImage } from './copystep.ts';
import type { Instruction } from './dockerfile/types.ts';
import { commitStep } from './image.ts';
import { applyMeta, shellOf } from './meta.ts';
import type { BuildSession, StageState } from './session.ts';
import { unmount } from '../snapshots/mount.ts';
import { advance, fromCache, keyOf, parentId } from './steps.ts';

export async function workdirStep(s: BuildSession, st: StageState, inst: Extract<Instruction, { kind: 'WORKDIR' }>): Promise<void> {
  // 'mkdir': entries of keel versions whose WORKDIR made no directory are not reused.
  const key = BuildCache.key([parentId(s, st), keyOf(inst), 'mkdir']);
  const r = applyMeta(inst, st.img.config.config ?? {}, st.cmdSet);
  const dir = r.config.WorkingDir || '/';
  // As dockerd 20.10's legacy builder writes it: the resolved directory (`WORKDIR rel` after `WORKDIR /a` is
  // `WORKDIR /a/rel`) after `#(nop)` and ONE space (other metadata steps have two).
  const createdBy = `${shellOf(st.img.config.config).join(' ')} #(nop) WORKDIR ${dir}`;
  // Only for matching --cache-from history: a cheap look in the layer dirs (whiteouts ignored).
  const layerDirs = (st.img.record?.chainIds ?? []).map((c) => s.deps.images.snapshots.layerDir(c));
  const probablyThere = dir === '/' || layerDirs.some((l) => fs.existsSync(path.join(l, dir)));
  if (await fromCache(s, st, key, { createdBy, runConfig: r.config, layer: !probablyThere })) {
    st.cmdSet = r.cmdSet;
    return;
  }
  st.cmdSet = r.cmdSet;
  const cid = randomBytes(32).toString('hex');
  s.say(` ---> Running in ${cid.slice(0, 12)}\n`);
  const rootfs = await mountImage(s, st.img.record);
  try {
    let upperDir: string | undefined;
    if (!isDirIn(rootfs.dir, dir)) {
      // Scoped: a symlink in the image on the way resolves inside the rootfs, never on the host.
      const sr = new ScopedRoot(fs.realpathSync(rootfs.dir));
      const comps = dir.split('/').filter(Boolean);
      const made = [...sr.created];
      sr.resolveDir(comps, true, dir);
      for (const c of sr.created) {
        if (made.includes(c)) continue;
        fs.lchownSync(sr.abs(c), 0, 0);
        fs.chmodSync(sr.abs(c), 0o755);
      }
      upperDir = s.deps.images.snapshots.upperDir(rootfs.key);
    }
    await unmount(rootfs.dir);
    const rec = await commitStep(s.deps.images, st.img, {
      runConfig: r.config,
      createdBy,
      upperDir,
      adoptUpper: upperDir !== undefined,
      signal: s.signal,
      sourceDateEpoch: s.epoch,
    });
    await s.deps.cache.put(key, rec.id);
    if (s.req.rm !== false) s.say(`Removing intermediate container ${cid.slice(0, 12)}\n`);
    await advance(s, st, rec);
  } finally {
    await rootfs.release();
  }
}
