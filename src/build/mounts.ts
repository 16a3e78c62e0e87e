/**
 * RUN --mount: what the step's container gets besides its rootfs. cache
 * mounts are persistent directories under <data>/build/mounts keyed by id
 * (never part of a layer or a cache key); bind mounts show a context path or
 * another stage's files read-only; tmpfs is a tmpfs; secrets are files
 * written to a private temp dir for the step only (never in a layer, the
 * cache key, or history).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { invalid } from '../common/errors.ts';
import { KeyedMutex } from '../common/lock.ts';
import { mkdirp } from '../common/fs.ts';
import type { MountOption } from '../containers/spec.ts';
import { tempDir } from './context.ts';
import type { RunMount } from './dockerfile/types.ts';
import type { BuildSession, StageState } from './session.ts';
import { resolveInRoot, type SourceRoot } from './sources.ts';
import { mountSourceFrom } from './copystep.ts';
import { exec } from '../common/exec.ts';
import { unmount } from '../snapshots/mount.ts';

const locked = new KeyedMutex();
/** Cache dirs mounted by a running step now (all builds of this process): `private` avoids them. */
const inUse = new Map<string, number>();
/** How many extra directories one private cache id may grow to (each persists for reuse). */
const MAX_PRIVATE = 64;

export interface PreparedMounts {
  specs: MountOption[];
  env: string[];
  release(): Promise<void>;
}

export async function runMounts(s: BuildSession, st: StageState, input: RunMount[], pipeFile?: { path: string; content: string }): Promise<PreparedMounts> {
  // Relative targets (or none) are joined to the WORKDIR, as BuildKit does; `/` itself is refused.
  const workdir = st.img.config.config?.WorkingDir || '/';
  const mounts = input.map((m) => {
    if (m.target === undefined || m.type === 'secret' || m.type === 'ssh') return m;
    const target = path.posix.resolve(workdir, m.target);
    if (target === '/') throw invalid(`RUN --mount=type=${m.type}: cannot mount on the root directory`);
    return { ...m, target };
  });
  const specs: MountOption[] = [];
  const env: string[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  const release = async () => {
    // every cleanup runs even if one fails; the step's own error is the one reported
    for (const c of cleanups.reverse()) await c().catch(() => {});
  };
  try {
    for (const m of mounts) {
      const target = m.type === 'secret' ? (m.target ? path.posix.resolve(workdir, m.target) : m.env ? undefined : `/run/secrets/${m.id}`) : m.target;
      if (target !== undefined && !target.startsWith('/')) throw invalid(`mount target must be an absolute path: ${target}`);
      switch (m.type) {
        case 'cache': {
          cleanups.push(...(await cacheMount(s, m, specs)));
          break;
        }
        case 'bind': {
          const src = m.from ? await mountSourceFrom(s, m.from) : { root: { dir: s.ctx.dir, isContext: true }, release: async () => {} };
          cleanups.push(src.release);
          const abs = resolveInRoot(src.root, m.source ?? '', m.source ?? '/');
          if (!abs) throw invalid(`mount source ${m.source ?? '/'} not found`);
          // rw: the RUN may write, but its writes are thrown away (BuildKit's semantics), never reaching the context.
          const source = m.readwrite ? await scratchCopy(s, abs, cleanups) : abs;
          specs.push({ type: 'bind', source: source, target: m.target, readOnly: !m.readwrite });
          break;
        }
        case 'tmpfs':
          specs.push({ type: 'tmpfs', target: m.target, ...(m.size ? { tmpfs: { sizeBytes: m.size } } : {}) });
          break;
        case 'secret': {
          const data = m.id ? s.req.secrets?.[m.id] : undefined;
          if (!data) {
            if (m.required) throw invalid(`secret ${m.id} not found: pass it with --secret id=${m.id},src=<file>`);
            break;
          }
          if (m.env) env.push(`${m.env}=${data.toString('utf8')}`);
          if (target) {
            const t = await tempDir(s.deps.dataRoot, 'secret');
            cleanups.push(t.release);
            const file = path.join(t.dir, 'secret');
            await fsp.writeFile(file, data, { mode: m.mode ?? 0o400 });
            await fsp.chown(file, m.uid ?? 0, m.gid ?? 0);
            specs.push({ type: 'bind', source: file, target: target, readOnly: true });
          }
          break;
        }
        case 'ssh':
          throw invalid('RUN --mount=type=ssh is not supported by keel');
      }
    }
    if (pipeFile) {
      // `RUN <<EOF` starting with #!: the document is a script of its own, read-only at its path.
      const t = await tempDir(s.deps.dataRoot, 'heredoc');
      cleanups.push(t.release);
      const file = path.join(t.dir, 'script');
      await fsp.writeFile(file, pipeFile.content, { mode: 0o755 });
      await fsp.chmod(file, 0o755);
      specs.push({ type: 'bind', source: file, target: pipeFile.path, readOnly: true });
    }
    return { specs, env, release };
  } catch (e) {
    await release();
    throw e;
  }
}

/** A writable view of `abs` whose writes are discarded: an overlay over a directory, a copy of a file. */
async function scratchCopy(s: BuildSession, abs: string, cleanups: (() => Promise<void>)[]): Promise<string> {
  const t = await tempDir(s.deps.dataRoot, 'bind');
  cleanups.push(t.release);
  if (!fs.statSync(abs).isDirectory()) {
    const f = path.join(t.dir, 'file');
    await fsp.copyFile(abs, f);
    return f;
  }
  if (/[,:\\]/.test(abs)) throw invalid(`a read-write bind mount of ${abs} is not supported (its path has , : or \\)`);
  const [upper, work, merged] = ['upper', 'work', 'merged'].map((n) => path.join(t.dir, n)) as [string, string, string];
  for (const d of [upper, work, merged]) await fsp.mkdir(d);
  await exec(['mount', '-t', 'overlay', 'overlay', '-o', `lowerdir=${abs},upperdir=${upper},workdir=${work}`, merged]);
  cleanups.push(() => unmount(merged));
  return merged;
}

/**
 * A cache mount's directory, keyed by id (and by the seed's image and path when `from=` gives one, as
 * BuildKit keys it). `shared`: used by all at once; `private`: a free sibling directory when the id's
 * is busy; `locked`: waits until no other locked user of the id holds it. Returns its cleanups.
 */
async function cacheMount(s: BuildSession, m: Extract<RunMount, { type: 'cache' }>, specs: MountOption[]): Promise<(() => Promise<void>)[]> {
  const cleanups: (() => Promise<void>)[] = [];
  let seed: { root: SourceRoot; image?: string; release: () => Promise<void> } | undefined;
  let id = m.id || m.target;
  try {
    if (m.from) {
      seed = await mountSourceFrom(s, m.from);
      cleanups.push(seed.release);
      id += `\0${seed.image ?? 'scratch'}\0${m.source ?? '/'}`;
    }
    // uid/gid/mode set the new cache directory's own owner and mode (docs: default 0, 0, 0755 once one is
    // given), seeded or not. They are part of what the cache starts from, so of its identity too, as in
    // BuildKit (its cache dir is keyed by its base): a cache made as root is not handed to uid=1000.
    const perms = m.uid !== undefined || m.gid !== undefined || m.mode !== undefined ? { uid: m.uid ?? 0, gid: m.gid ?? 0, mode: m.mode ?? 0o755 } : undefined;
    if (perms) id += `\0${perms.uid}:${perms.gid}:${perms.mode.toString(8)}`;
    const base = path.join(s.deps.dataRoot, 'build', 'mounts', 'cache', createHash('sha256').update(id).digest('hex').slice(0, 32));
    if (m.sharing === 'locked') {
      let unlock!: () => void;
      const held = new Promise<void>((r) => (unlock = r));
      let acquired!: () => void;
      const got = new Promise<void>((r) => (acquired = r));
      void locked.run(base, async () => {
        acquired();
        await held;
      });
      await got;
      cleanups.push(async () => unlock());
    }
    let dir = base;
    if (m.sharing === 'private') {
      for (let i = 1; inUse.get(dir); i++) {
        if (i > MAX_PRIVATE) throw invalid(`too many concurrent private uses of cache mount ${m.id || m.target}`);
        dir = `${base}-${i}`;
      }
    }
    inUse.set(dir, (inUse.get(dir) ?? 0) + 1);
    cleanups.push(async () => {
      const n = (inUse.get(dir) ?? 1) - 1;
      if (n > 0) inUse.set(dir, n);
      else inUse.delete(dir);
    });
    if (!fs.existsSync(dir)) {
      // Made beside and renamed in: a seed copy cut short never passes for a seeded cache.
      const tmp = `${dir}.new-${process.pid}-${Date.now()}`;
      await mkdirp(tmp, 0o755);
      try {
        if (seed) {
          const abs = resolveInRoot(seed.root, m.source ?? '', m.source ?? '/');
          if (!abs || !fs.statSync(abs).isDirectory()) throw invalid(`cache mount source ${m.source ?? '/'} is not a directory in ${m.from}`);
          await exec(['cp', '-a', '--', `${abs}/.`, `${tmp}/`], { signal: s.signal });
        }
        // chown before chmod: chown clears set-id bits. A seed without them keeps its source's.
        if (perms || !seed) {
          await fsp.chown(tmp, perms?.uid ?? 0, perms?.gid ?? 0);
          await fsp.chmod(tmp, perms?.mode ?? 0o755);
        }
        await fsp.rename(tmp, dir);
      } catch (e) {
        await fsp.rm(tmp, { recursive: true, force: true });
        throw e;
      }
    }
    specs.push({ type: 'bind', source: dir, target: m.target, readOnly: m.readonly });
    return cleanups;
  } catch (e) {
    // every cleanup runs even if one fails; the step's own error is the one reported
    for (const c of cleanups.reverse()) await c().catch(() => {});
    throw e;
  }
}
