/**
 * The container's filesystem from outside: diff (changes), commit, export
 * and cp (archive get/put/stat). Every path a client names is resolved with
 * scoped.ts (fd by fd, symlinks expanded inside the rootfs); a running
 * container is frozen while files move, so nothing in it can swap a
 * directory for a symlink under our feet (podman does the same).
 */
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { applyLayer } from '../archive/apply.ts';
import { diffLayer, tarDirectory } from '../archive/diff.ts';
import { EngineError, invalid } from '../common/errors.ts';
import { createLayerImage } from '../images/import.ts';
import type { ImageRecord } from '../images/store.ts';
import type { ContainerConfig as ImageRunConfig } from '../oci/types.ts';
import { mountHostView, type HostViewMount } from '../volumes/hostview.ts';
import { networkFiles } from './netshare.ts';
import type { ContainerService } from './service.ts';
import { openDirIn, statIn } from './scoped.ts';
import { type ContainerRecord, isRunning } from './types.ts';

/** Mounts the rootfs of a stopped container for the duration of an operation. */
async function acquireRootfs(svc: ContainerService, rec: ContainerRecord): Promise<() => Promise<void>> {
  if (svc.isMounted(rec.id)) return async () => {};
  await svc.mount(rec.id);
  return async () => {
    if (!isRunning(rec)) await svc.unmount(rec.id).catch(() => {});
  };
}

/**
 * Freezes a running container for file work and returns the thaw. Holds are
 * counted: cp's archive stream keeps one after the container's mutex is
 * released, so another cp or a commit may come while it streams; the last
 * holder resumes, and a new first holder waits for that resume to finish.
 */
const freezes = new Map<string, { count: number; paused: Promise<void> }>();
const thawing = new Map<string, Promise<void>>();

async function freeze(svc: ContainerService, rec: ContainerRecord): Promise<() => Promise<void>> {
  let h = freezes.get(rec.id);
  if (!h) {
    if (rec.state.Status !== 'running') return async () => {};
    const after = thawing.get(rec.id) ?? Promise.resolve();
    h = { count: 0, paused: after.then(() => svc.driver.pause(rec.id)) };
    freezes.set(rec.id, h);
  }
  const mine = h;
  mine.count++;
  const drop = () => {
    if (--mine.count > 0) return false;
    if (freezes.get(rec.id) === mine) freezes.delete(rec.id);
    return true;
  };
  try {
    await mine.paused;
  } catch (e) {
    drop();
    throw e;
  }
  let thawed = false;
  return async () => {
    if (thawed) return;
    thawed = true;
    if (!drop()) return;
    const p = svc.driver.resume(rec.id).catch(() => {});
    thawing.set(rec.id, p);
    await p;
    if (thawing.get(rec.id) === p) thawing.delete(rec.id);
  };
}

/** Runs fn with the container frozen if it runs. */
async function frozen<T>(svc: ContainerService, rec: ContainerRecord, fn: () => Promise<T>): Promise<T> {
  const thaw = await freeze(svc, rec);
  try {
    return await fn();
  } finally {
    await thaw();
  }
}

// ---- diff -------------------------------------------------------------------

export interface Change {
  Path: string;
  Kind: 0 | 1 | 2;
}

/** docker diff: the upper dir against the image layers (C=0, A=1, D=2). */
export async function changes(svc: ContainerService, ref: string): Promise<Change[]> {
  const rec = svc.find(ref);
  const upper = svc.images.snapshots.upperDir(rec.id);
  const image = svc.images.store.get(rec.imageId);
  const lowers = (image?.chainIds ?? []).map((c) => svc.images.snapshots.layerDir(c)).reverse();
  // The image's entry for a path: the topmost layer that has it; a whiteout there means the image has none.
  const lowerStat = (rel: string): fs.Stats | undefined => {
    for (const l of lowers) {
      let st: fs.Stats;
      try {
        st = fs.lstatSync(path.join(l, rel));
      } catch {
        continue;
      }
      return st.isCharacterDevice() && st.rdev === 0 ? undefined : st;
    }
    return undefined;
  };
  // Mount points runc makes in the rootfs: docker keeps them in an init layer, so diff never shows them.
  const hidden = new Set(['dev', 'proc', 'sys', 'etc/hosts', 'etc/hostname', 'etc/resolv.conf', '.dockerenv']);
  const walk = (rel: string): Change[] => {
    let names: string[];
    try {
      names = fs.readdirSync(path.join(upper, rel)).sort();
    } catch {
      return [];
    }
    const out: Change[] = [];
    for (const n of names) {
      const r = rel ? `${rel}/${n}` : n;
      const st = fs.lstatSync(path.join(upper, r));
      const lower = lowerStat(r);
      if (hidden.has(r) && !lower && (st.isDirectory() ? fs.readdirSync(path.join(upper, r)).length === 0 : st.size === 0)) continue;
      if (st.isCharacterDevice() && st.rdev === 0) {
        out.push({ Path: `/${r}`, Kind: 2 });
        continue;
      }
      if (!st.isDirectory()) {
        out.push({ Path: `/${r}`, Kind: lower ? 0 : 1 });
        continue;
      }
      // overlay copies a directory up just to hold a change inside it: like docker, such a
      // directory counts as changed only when something inside changed or its own owner or mode did.
      const inside = walk(r);
      const same = lower?.isDirectory() && lower.mode === st.mode && lower.uid === st.uid && lower.gid === st.gid;
      if (!same || inside.length) out.push({ Path: `/${r}`, Kind: lower ? 0 : 1 });
      out.push(...inside);
    }
    return out;
  };
  return walk('');
}

// ---- commit -----------------------------------------------------------------

export interface CommitOptions {
  ref?: string;
  comment?: string;
  author?: string;
  changes?: string[];
  pause?: boolean;
  /** Config fields from the request body that override the container's. */
  config?: Partial<ImageRunConfig> | null;
}

/** docker commit: the container's upper dir as a new layer on its image. */
export async function commit(svc: ContainerService, ref: string, o: CommitOptions): Promise<ImageRecord> {
  const rec = svc.find(ref);
  const base = svc.images.store.get(rec.imageId);
  if (!base) throw new EngineError('NOT_FOUND', `the image of container ${rec.id.slice(0, 12)} no longer exists`);
  // A clone, or a container that was cloned, keeps part of its changes in frozen layers (clone.ts) the upper-dir diff would miss.
  if ((await svc.images.snapshots.record(rec.id))?.frozen?.length) {
    throw new EngineError('INVALID_ARGUMENT', `container ${rec.name} is a clone or has been cloned: its changes span frozen layers, which commit does not support yet; clone it instead`);
  }
  const c = rec.config;
  const config: ImageRunConfig = {
    User: c.User || undefined, Env: c.Env, Cmd: c.Cmd, Entrypoint: c.Entrypoint, WorkingDir: c.WorkingDir || undefined,
    Labels: c.Labels, ...(c.ExposedPorts ? { ExposedPorts: c.ExposedPorts } : {}), ...(c.Volumes ? { Volumes: c.Volumes } : {}),
    ...(c.StopSignal ? { StopSignal: c.StopSignal } : {}),
    ...(c.Healthcheck ? { Healthcheck: c.Healthcheck } : {}),
  };
  for (const [k, v] of Object.entries(o.config ?? {})) {
    if (v === null || v === undefined || v === '' || (Array.isArray(v) && v.length === 0)) continue;
    if (typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0) continue;
    (config as Record<string, unknown>)[k] = v;
  }
  const run = () => createLayerImage(svc.images, {
    layer: diffLayer(svc.images.snapshots.upperDir(rec.id)),
    base, config, changes: o.changes, comment: o.comment, author: o.author, ref: o.ref,
    createdBy: [rec.path, ...rec.args].join(' '),
  });
  const img = await svc.mutex.run(rec.id, () => (o.pause === false ? run() : frozen(svc, rec, run)));
  svc.event('commit', rec, { comment: o.comment ?? '', imageID: img.id, imageRef: o.ref ?? '' });
  return img;
}

// ---- export -----------------------------------------------------------------

/** docker export: a tar of the whole rootfs. */
export async function exportRootfs(svc: ContainerService, ref: string): Promise<Readable> {
  const rec = svc.find(ref);
  const release = await svc.mutex.run(rec.id, () => acquireRootfs(svc, rec));
  const out = new PassThrough();
  const tar = tarDirectory(svc.rootfs(rec.id));
  tar.on('error', (e) => out.destroy(e));
  tar.pipe(out);
  out.on('close', () => void release());
  svc.event('export', rec);
  return out;
}

// ---- cp ---------------------------------------------------------------------

/** What cp sees besides the rootfs: volumes, binds and, once started, the network files keel bind-mounts. */
function hostView(svc: ContainerService, rec: ContainerRecord): HostViewMount[] {
  const out: HostViewMount[] = [];
  for (const m of rec.mounts ?? []) if (m.type !== 'tmpfs' && m.source) out.push({ source: m.source, destination: m.destination, readonly: m.readonly });
  if (rec.hasBeenStarted) {
    // A container on another's network (container:<id>) has that one's files.
    const files = networkFiles(svc.store.containerDir(rec.networkOwner ?? rec.id));
    for (const [source, destination] of [[files.hosts, '/etc/hosts'], [files.hostname, '/etc/hostname'], [files.resolv, '/etc/resolv.conf']] as const) {
      if (fs.existsSync(source) && !out.some((m) => m.destination === destination)) out.push({ source, destination, readonly: false });
    }
  }
  return out;
}

/** Runs fn with the container's mounts in place under its rootfs (caller holds the container frozen or stopped). */
async function withHostView<T>(svc: ContainerService, rec: ContainerRecord, fn: () => Promise<T>): Promise<T> {
  const undo = await mountHostView(svc.rootfs(rec.id), hostView(svc, rec));
  try {
    return await fn();
  } finally {
    await undo();
  }
}

export interface PathStat {
  name: string;
  size: number;
  mode: number;
  mtime: string;
  linkTarget: string;
}

/** Go's os.FileMode bits, which docker's path stat header carries. */
export function goFileMode(st: fs.Stats): number {
  let m = st.mode & 0o777;
  if (st.isDirectory()) m |= 2 ** 31;
  else if (st.isSymbolicLink()) m |= 2 ** 27;
  else if (st.isFIFO()) m |= 2 ** 25;
  else if (st.isSocket()) m |= 2 ** 24;
  else if (st.isCharacterDevice()) m |= 2 ** 26 + 2 ** 21;
  else if (st.isBlockDevice()) m |= 2 ** 26;
  if (st.mode & 0o4000) m |= 2 ** 23;
  if (st.mode & 0o2000) m |= 2 ** 22;
  if (st.mode & 0o1000) m |= 2 ** 20;
  return m >>> 0;
}

function checkPath(p: string | null): string {
  if (!p) throw invalid('path must be given: ?path=/some/path');
  if (p.includes('\0')) throw invalid('path contains a NUL byte');
  return p.startsWith('/') ? p : `/${p}`;
}

/** HEAD archive: stat of a path in the container (the final symlink not followed). */
export async function statPath(svc: ContainerService, ref: string, p: string | null): Promise<PathStat> {
  const rec = svc.find(ref);
  const want = checkPath(p);
  return svc.mutex.run(rec.id, async () => {
    const release = await acquireRootfs(svc, rec);
    try {
      const s = await frozen(svc, rec, () => withHostView(svc, rec, async () => statIn(svc.rootfs(rec.id), want)));
      if (!s) throw new EngineError('NOT_FOUND', `Could not find the file ${want} in container ${ref}`);
      return { name: path.posix.basename(s.clean) || '/', size: s.stat.size, mode: goFileMode(s.stat), mtime: s.stat.mtime.toISOString(), linkTarget: s.linkTarget };
    } finally {
      await release();
    }
  });
}

/**
 * GET archive: a tar of the path, entries named from its base name. The
 * tar is produced into memory-bounded stream chunks while the container is
 * frozen; the rootfs stays mounted until the stream ends.
 */
export async function getArchive(svc: ContainerService, ref: string, p: string | null): Promise<{ stat: PathStat; tar: Readable }> {
  const rec = svc.find(ref);
  const want = checkPath(p);
  return svc.mutex.run(rec.id, async () => {
    const release = await acquireRootfs(svc, rec);
    let handedOff = false;
    try {
      const rootfs = svc.rootfs(rec.id);
      const thaw = await freeze(svc, rec);
      let undoView: (() => Promise<void>) | undefined;
      let parent: ReturnType<typeof openDirIn> | undefined;
      const finish = async () => {
        parent?.close();
        await undoView?.();
        await thaw();
        await release();
      };
      let s: ReturnType<typeof statIn>;
      try {
        undoView = await mountHostView(rootfs, hostView(svc, rec));
        s = statIn(rootfs, want);
        if (!s) throw new EngineError('NOT_FOUND', `Could not find the file ${want} in container ${ref}`);
        parent = openDirIn(rootfs, path.posix.dirname(s.clean));
      } catch (e) {
        handedOff = true; // finish() releases
        await finish();
        throw e;
      }
      const base = path.posix.basename(s.clean);
      const stat = { name: base || '/', size: s.stat.size, mode: goFileMode(s.stat), mtime: s.stat.mtime.toISOString(), linkTarget: s.linkTarget };
      const tar = base ? tarDirectory(parent.path, { include: [base] }) : tarDirectory(parent.path, { rename: (r) => (r ? `./${r}` : '.') });
      const out = new PassThrough();
      let finished: Promise<void> | undefined;
      const finishOnce = () => (finished ??= finish());
      tar.on('error', (e) => out.destroy(e));
      // The response ends only once the mounts are undone and the container
      // runs again, so a client's next request finds it as before.
      tar.pipe(out, { end: false });
      tar.on('end', () => void finishOnce().then(() => out.end(), (e) => out.destroy(e)));
      out.on('close', () => void finishOnce());
      handedOff = true;
      return { stat, tar: out };
    } finally {
      if (!handedOff) await release();
    }
  });
}

/** PUT archive: extracts a tar into a directory of the container. */
export async function putArchive(svc: ContainerService, ref: string, p: string | null, tar: Readable, opts: { noOverwriteDirNonDir?: boolean; signal?: AbortSignal } = {}): Promise<void> {
  const rec = svc.find(ref);
  const want = checkPath(p);
  if (rec.hostConfig.ReadonlyRootfs) throw new EngineError('FORBIDDEN', 'container rootfs is marked read-only');
  await svc.mutex.run(rec.id, async () => {
    const release = await acquireRootfs(svc, rec);
    try {
      const rootfs = svc.rootfs(rec.id);
      await frozen(svc, rec, () => withHostView(svc, rec, async () => {
        const s = statIn(rootfs, want, true);
        if (!s) throw new EngineError('NOT_FOUND', `Could not find the file ${want} in container ${ref}`);
        if (!s.stat.isDirectory()) throw invalid(`extraction point is not a directory: ${want}`);
        const dir = openDirIn(rootfs, want);
        try {
          await applyLayer(dir.path, tar, { overlayWhiteouts: false, compression: 'auto', signal: opts.signal });
        } finally {
          dir.close();
        }
      }));
    } finally {
      await release();
    }
  });
  svc.event('extract-to-dir', rec);
}
