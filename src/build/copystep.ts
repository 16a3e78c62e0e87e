/**
 * The COPY/ADD step: plan what is copied (sources.ts), key the cache on the
 * digest of exactly those files, and on a miss copy them into an overlay
 * snapshot of the previous step, whose upper directory becomes the layer.
 * Every mount and snapshot made here is released on every path.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { EngineError, invalid } from '../common/errors.ts';
import { Phases } from '../common/phases.ts';
import { resolveUserIn } from '../containers/user.ts';
import type { ImageRecord } from '../images/store.ts';
import { mountRootfs, unmount } from '../snapshots/mount.ts';
import { BuildCache } from './cache.ts';
import { tempDir } from './context.ts';
import { Copier, isArchive, isDirIn, type Owner } from './copy.ts';
import type { Instruction } from './dockerfile/types.ts';
import { commitStep } from './image.ts';
import { nopCreatedBy, shellOf } from './meta.ts';
import type { BuildSession, StageState } from './session.ts';
import { matchSource, type PlanEntry, planDigest, resolveInRoot, type SourceRoot, walkSource } from './sources.ts';
import { advance, fromCache, parentId } from './steps.ts';
import { downloadUrl } from './fetch.ts';
import { parseChmod } from './chmod.ts';
import { linkStep } from './link.ts';

type CopyInst = Extract<Instruction, { kind: 'COPY' | 'ADD' }>;

/** A mounted image filesystem, released by `release`. */
export async function mountImage(s: BuildSession, rec: ImageRecord | undefined): Promise<{ dir: string; key: string; release: () => Promise<void> }> {
  const snaps = s.deps.images.snapshots;
  const key = `build-${randomBytes(8).toString('hex')}`;
  const t = await tempDir(s.deps.dataRoot, 'rootfs');
  let mounted = false;
  const release = async () => {
    // cleanup after the step: an error here must not hide the step's own result or error
    if (mounted) await unmount(t.dir).catch(() => {});
    mounted = false;
    await snaps.remove(key).catch(() => {});
    await t.release().catch(() => {});
  };
  try {
    await snaps.prepare(key, rec?.chainIds ?? []);
    await mountRootfs(await snaps.mounts(key), t.dir);
    mounted = true;
    return { dir: t.dir, key, release };
  } catch (e) {
    await release();
    throw e;
  }
}

/** Runs `fn` on the stage's current filesystem, mounted for the call. */
async function withRootfs<T>(s: BuildSession, st: StageState, fn: (dir: string) => T): Promise<T> {
  const m = await mountImage(s, st.img.record);
  try {
    return fn(m.dir);
  } finally {
    await m.release();
  }
}

/** `--from=stage|index|image`: the filesystem to read from. */
export async function mountSourceFrom(s: BuildSession, from: string): Promise<{ root: SourceRoot; image?: string; release: () => Promise<void> }> {
  const rec = await sourceImage(s, from);
  const m = await mountImage(s, rec);
  return { root: { dir: m.dir, isContext: false }, image: rec?.id, release: m.release };
}

/** The image a `--from=stage|index|image` names (pulled when missing); undefined for a stage FROM scratch with no steps. */
async function sourceImage(s: BuildSession, from: string): Promise<ImageRecord | undefined> {
  const stages = s.df.stages;
  const lower = from.toLowerCase();
  const byName = stages.find((x) => x.name === lower);
  const idx = byName ? byName.index : /^\d+$/.test(from) ? Number(from) : undefined;
  let rec: ImageRecord | undefined;
  if (idx !== undefined) {
    // A --from whose name only a stage's ARG spelled is not known up front: wait for that stage here.
    if (!s.results.has(idx)) await s.stages.get(idx);
    const img = s.results.get(idx);
    if (!img) throw invalid(`stage ${from} has not been built (a stage can only use earlier stages)`);
    rec = img.record;
  } else {
    rec = s.deps.images.store.tryResolve(from) ?? (await s.deps.pull(from, { auth: s.authFor(from), signal: s.signal, onProgress: (m) => s.out.progress(m) }));
  }
  return rec;
}

function ownerIn(rootfs: string, chown: string | undefined): Owner | undefined {
  if (!chown) return undefined;
  const [u = '', g] = chown.split(':');
  if (/^\d+$/.test(u) && (g === undefined || /^\d+$/.test(g))) return { uid: Number(u), gid: Number(g ?? u) };
  const r = resolveUserIn(rootfs, chown);
  return { uid: r.uid, gid: r.gid };
}

interface Planned {
  entries: PlanEntry[];
  archives: string[];
  files: { rel: string; name: string; data: Buffer; mode: number }[];
  digest: string;
}

export async function copyStep(s: BuildSession, st: StageState, inst: CopyInst): Promise<void> {
  const tmp = await tempDir(s.deps.dataRoot, 'copy');
  let src: { root: SourceRoot; release: () => Promise<void> } | undefined;
  try {
    const exclude = inst.exclude.length ? s.deps.frontend.ignoreMatcher(inst.exclude) : undefined;
    // An image never changes: parent, instruction and source image ID decide a COPY --from's result, so a
    // rebuild finds it without mounting, walking and hashing the source again (the no-op rebuild of a
    // multi-stage build spent most of its time there).
    let fromKey: string | undefined;
    if (inst.from && !inst.heredocs.length) {
      const srcImage = await sourceImage(s, inst.from);
      if (srcImage) {
        const wd = st.img.config.config?.WorkingDir || '/';
        fromKey = BuildCache.key([
          parentId(s, st),
          'copy-from-image',
          srcImage.id,
          inst.kind,
          inst.sources,
          inst.exclude,
          wd,
          inst.dest,
          inst.chown ?? '',
          inst.chmod ?? null,
          inst.parents,
          inst.link,
          s.epoch ?? null,
        ]);
        if (await fromCache(s, st, fromKey)) return;
      }
    }
    if (inst.from) {
      src = await mountSourceFrom(s, inst.from);
      if (exclude) src.root.exclude = exclude;
    } else {
      src = { root: { dir: s.ctx.dir, isContext: true, excluded: s.ignored, exclude }, release: async () => {} };
    }
    const cfg = st.img.config.config ?? {};
    const workdir = cfg.WorkingDir || '/';
    const destAbs = path.posix.resolve(workdir, inst.dest) + (inst.dest.endsWith('/') || inst.dest.endsWith('/.') || inst.dest === '.' ? '/' : '');
    const chmod = parseChmod(inst.chmod);
    const plan: Planned = { entries: [], archives: [], files: [], digest: '' };
    const urls = inst.kind === 'ADD' ? inst.sources.filter((x) => /^https?:\/\//i.test(x)) : [];
    const locals = inst.sources.filter((x) => !urls.includes(x));
    const matched: string[] = [];
    for (const word of locals) {
      const m = matchSource(src.root, word);
      if (!m.length) {
        throw new EngineError(
          'NOT_FOUND',
          /[*?[]/.test(word)
            ? `${inst.kind} failed: no source files were specified`
            : `${inst.kind} failed: file not found in build context or excluded by .dockerignore: stat ${word}: file does not exist`,
        );
      }
      matched.push(...m);
    }
    const count = matched.length + urls.length + inst.heredocs.length;
    const destIsDir = destAbs.endsWith('/') || count > 1;
    if (count > 1 && !destAbs.endsWith('/'))
      throw invalid(`When using ${inst.kind} with more than one source file, the destination must be a directory and end with a /`);
    if (count === 0) throw invalid(`${inst.kind} failed: no source files were specified`);
    let singleName = '';
    for (const rel of matched) {
      const abs = resolveInRoot(src.root, rel, rel)!;
      const st2 = fs.statSync(abs);
      singleName = path.posix.basename(rel);
      if (inst.kind === 'ADD' && st2.isFile() && isArchive(abs)) {
        plan.archives.push(abs);
        continue;
      }
      const base = st2.isDirectory() ? (inst.parents ? rel : '') : inst.parents ? rel : destIsDir ? path.posix.basename(rel) : '';
      walkSource(src.root, rel, rel, base, plan.entries);
    }
    for (const u of urls) {
      const file = path.join(tmp.dir, `url-${plan.files.length}`);
      const got = await downloadUrl(u, file, { checksum: inst.checksum, signal: s.signal });
      const name = destIsDir ? got.name : '';
      singleName = got.name;
      if (destIsDir && !name) throw invalid(`cannot determine a filename from the URL ${u}: give a destination file name`);
      plan.entries.push({ abs: file, dest: name, type: 'file', mode: 0o600, size: got.size, mtime: got.mtime });
    }
    for (const h of inst.heredocs) plan.files.push({ rel: destIsDir ? h.name : '', name: h.name, data: Buffer.from(h.content), mode: 0o644 });
    const ph = new Phases();
    const hash = createHash('sha256');
    hash.update(planDigest(plan.entries, inst.chown ?? '', chmod, src.root.isContext && s.ctx.hashes ? { root: s.ctx.dir, map: s.ctx.hashes } : undefined));
    for (const a of plan.archives)
      hash.update(`archive ${planDigest([{ abs: a, dest: '', type: 'file', mode: 0, size: 0, mtime: new Date(0) }], '', undefined)}`);
    for (const f of plan.files) hash.update(`heredoc ${f.rel} ${createHash('sha256').update(f.data).digest('hex')}`);
    plan.digest = hash.digest('hex');
    const key = BuildCache.key([
      parentId(s, st),
      inst.kind,
      destAbs,
      inst.chown ?? '',
      inst.chmod ?? null,
      inst.parents,
      plan.digest,
      ...(inst.link ? ['link'] : []),
    ]);
    const what = plan.archives.length ? 'multi' : plan.entries.length === 1 && plan.entries[0]!.type === 'file' ? 'file' : 'dir';
    const createdBy = nopCreatedBy(shellOf(st.img.config.config), `${inst.kind} ${what}:${plan.digest} in ${destAbs} `);
    if (await fromCache(s, st, key, { createdBy, runConfig: st.img.config.config ?? {}, layer: true })) {
      if (fromKey) await s.deps.cache.put(fromKey, st.img.record!.id);
      return;
    }
    if (inst.link) {
      const owner = inst.chown && !/^\d+(:\d+)?$/.test(inst.chown) ? await withRootfs(s, st, (dir) => ownerIn(dir, inst.chown)) : ownerIn('/', inst.chown);
      const keys = fromKey ? [key, fromKey] : [key];
      return await linkStep(s, st, inst, { plan, destAbs, destIsDir, chmod, owner, keys, createdBy });
    }
    ph.mark('digestMs');
    const rootfs = await mountImage(s, st.img.record);
    try {
      const owner = ownerIn(rootfs.dir, inst.chown);
      const intoDir = destIsDir || plan.archives.length > 0 || (!destIsDir && isDirIn(rootfs.dir, destAbs));
      const fileIntoDir = !destIsDir && intoDir;
      const copier = new Copier({ rootfs: rootfs.dir, dest: destAbs.replace(/\/$/, '') || '/', destIsDir: intoDir, owner, chmod });
      // A single file onto an existing directory lands inside it.
      await copier.copyAll(plan.entries, { signal: s.signal, fileIntoDir: fileIntoDir ? singleName : undefined });
      for (const f of plan.files) copier.writeFile(f.rel || (fileIntoDir ? f.name : ''), f.data, f.mode);
      for (const a of plan.archives) await copier.extract(a, s.signal);
      await unmount(rootfs.dir);
      const upper = s.deps.images.snapshots.upperDir(rootfs.key);
      ph.mark('copyMs');
      const rec = await commitStep(s.deps.images, st.img, {
        runConfig: st.img.config.config ?? {},
        createdBy,
        upperDir: upper,
        adoptUpper: true,
        signal: s.signal,
        sourceDateEpoch: s.epoch,
      });
      ph.mark('commitMs');
      ph.log('build copy', { entries: plan.entries.length });
      await s.deps.cache.put(key, rec.id);
      if (fromKey) await s.deps.cache.put(fromKey, rec.id);
      await advance(s, st, rec);
    } finally {
      await rootfs.release();
    }
  } finally {
    await src?.release();
    await tmp.release();
  }
}
