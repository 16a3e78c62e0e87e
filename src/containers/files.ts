/**
 * The container's filesystem from outside: diff (changes), commit, export
 * and cp (archive get/put/stat). Two defences, each enough on its own
 * against the container: the rootfs is pinned by a descriptor and every path
 * a client names, and every name archive/ walks or writes, is resolved by
 * the kernel inside it (scoped.ts, archive/rootdir.ts: openat2
 * RESOLVE_IN_ROOT), so a directory swapped for a symlink can never lead
 * outside; and a running container is frozen while files move for cp,
 * export and commit (as podman does), so it cannot swap anything at all.
 * The descriptors also hold against what freezing cannot stop: a host user
 * who owns a bind-mount source, or another container sharing a volume.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { applyLayer } from '../archive/apply.ts';
import { diffLayer, tarDirectory } from '../archive/diff.ts';
import { EngineError, errnoCode, invalid } from '../common/errors.ts';
import { createLayerImage } from '../images/import.ts';
import type { ImageRecord } from '../images/store.ts';
import type { ContainerConfig as ImageRunConfig } from '../oci/types.ts';
import { imageLookup, mergedUpper } from '../snapshots/merge.ts';
import { openHostView, type HostView, type HostViewMount } from '../volumes/hostview.ts';
import { networkFiles } from './netshare.ts';
import type { ContainerParts } from './parts.ts';
import {
  close as closeFd,
  fdPath,
  isDir,
  lstatat,
  O_DIRECTORY,
  O_RDONLY,
  openChild,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFMT,
  S_IFSOCK,
  type Stat,
} from '../common/openat2.ts';
import { openDirAt, resolveAt, statAt } from './scoped.ts';
import { type ContainerRecord, isRunning } from './types.ts';

/** The pieces of the container service that cp, diff, export and commit use. */
type Files = Pick<ContainerParts, 'store' | 'mutex' | 'runtime' | 'rootfs' | 'images' | 'event'>;

/**
 * Mounts the rootfs of a stopped container for the duration of an operation
 * (the caller holds the container's mutex). Holds are counted, so a second
 * cp while a first one streams does not lose the mount under the first.
 * The release must run under the mutex too: use releaseLater() for one that
 * runs after the mutex was given back (an archive stream's end), or a start
 * or another cp in between would have the rootfs unmounted under it.
 */
const rootfsHolds = new Map<string, number>();

async function acquireRootfs(svc: Files, rec: ContainerRecord): Promise<() => Promise<void>> {
  const held = rootfsHolds.get(rec.id) ?? 0;
  if (!held && svc.rootfs.isMounted(rec.id)) return async () => {}; // mounted by a run: not ours to unmount
  if (!held) await svc.rootfs.mount(rec.id);
  rootfsHolds.set(rec.id, held + 1);
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    const left = (rootfsHolds.get(rec.id) ?? 1) - 1;
    if (left > 0) return void rootfsHolds.set(rec.id, left);
    rootfsHolds.delete(rec.id);
    // A failed unmount leaves a mount that the next start or rm reuses or undoes.
    if (!isRunning(rec)) await svc.rootfs.unmount(rec.id).catch(() => {});
  };
}

/** A release that runs outside the caller's mutex section: it takes the mutex itself. */
function releaseLater(svc: Files, rec: ContainerRecord, release: () => Promise<void>): () => Promise<void> {
  return () => svc.mutex.run(rec.id, release);
}

/**
 * Freezes a running container for file work and returns the thaw. Holds are
 * counted: cp's archive stream keeps one after the container's mutex is
 * released, so another cp or a commit may come while it streams; the last
 * holder resumes, and a new first holder waits for that resume to finish.
 */
const freezes = new Map<string, { count: number; paused: Promise<void> }>();
const thawing = new Map<string, Promise<void>>();

async function freeze(svc: Files, rec: ContainerRecord): Promise<() => Promise<void>> {
  let h = freezes.get(rec.id);
  if (!h) {
    if (rec.state.Status !== 'running') return async () => {};
    const after = thawing.get(rec.id) ?? Promise.resolve();
    h = { count: 0, paused: after.then(() => svc.runtime.pause(rec.id)) };
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
    // a thaw that fails means the container is gone or no longer frozen: nothing left to undo
    const p = svc.runtime.resume(rec.id).catch(() => {});
    thawing.set(rec.id, p);
    await p;
    if (thawing.get(rec.id) === p) thawing.delete(rec.id);
  };
}

/** Runs fn with the container frozen if it runs. */
async function frozen<T>(svc: Files, rec: ContainerRecord, fn: () => Promise<T>): Promise<T> {
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

/**
 * docker diff: the container's changes against the image layers (C=0, A=1,
 * D=2). A clone, or a container that was cloned, has part of them in frozen
 * layers: they are merged with its upper dir first (snapshots/merge.ts).
 */
export async function changes(svc: Files, ref: string): Promise<Change[]> {
  const rec = svc.store.find(ref);
  const snaps = svc.images.snapshots;
  const image = svc.images.store.get(rec.imageId);
  const lowerStat = imageLookup((image?.chainIds ?? []).map((c) => snaps.layerDir(c)).reverse());
  let merged: Awaited<ReturnType<typeof mergedUpper>>;
  try {
    merged = await mergedUpper(snaps, rec.id);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return [];
    throw e;
  }
  try {
    return diffWalk(merged.dir, lowerStat);
  } finally {
    await merged.release();
  }
}

function diffWalk(upper: string, lowerStat: (rel: string) => fs.Stats | undefined): Change[] {
  // Mount points runc makes in the rootfs: docker keeps them in an init layer, so diff never shows them.
  const hidden = new Set(['dev', 'proc', 'sys', 'etc/hosts', 'etc/hostname', 'etc/resolv.conf', '.dockerenv']);
  // The upper dir is the container's to change: it is walked by descriptors (a directory swapped
  // for a symlink is seen as the symlink, never followed), so no host name can appear in the diff.
  const walk = (dirFd: number, rel: string): Change[] => {
    const names = fs.readdirSync(fdPath(dirFd)).sort();
    const out: Change[] = [];
    for (const n of names) {
      const r = rel ? `${rel}/${n}` : n;
      let st: Stat;
      try {
        st = lstatat(dirFd, n);
      } catch {
        continue; // removed meanwhile
      }
      const lower = lowerStat(r);
      const type = st.mode & S_IFMT;
      let childFd = -1;
      try {
        if (type === S_IFDIR) {
          try {
            childFd = openChild(dirFd, n, O_RDONLY | O_DIRECTORY);
          } catch {
            continue; // swapped or removed meanwhile
          }
        }
        if (hidden.has(r) && !lower && (childFd >= 0 ? fs.readdirSync(fdPath(childFd)).length === 0 : st.size === 0)) continue;
        if (type === S_IFCHR && st.rdevMajor === 0 && st.rdevMinor === 0) {
          out.push({ Path: `/${r}`, Kind: 2 });
          continue;
        }
        if (childFd < 0) {
          out.push({ Path: `/${r}`, Kind: lower ? 0 : 1 });
          continue;
        }
        // overlay copies a directory up just to hold a change inside it: like docker, such a
        // directory counts as changed only when something inside changed or its own owner or mode did.
        const inside = walk(childFd, r);
        const same = lower?.isDirectory() && (lower.mode & 0o7777) === (st.mode & 0o7777) && lower.uid === st.uid && lower.gid === st.gid;
        if (!same || inside.length) out.push({ Path: `/${r}`, Kind: lower ? 0 : 1 });
        out.push(...inside);
      } finally {
        if (childFd >= 0) closeFd(childFd);
      }
    }
    return out;
  };
  let upperFd: number;
  try {
    upperFd = fs.openSync(upper, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  } catch {
    return [];
  }
  try {
    return walk(upperFd, '');
  } finally {
    fs.closeSync(upperFd);
  }
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
export async function commit(svc: Files, ref: string, o: CommitOptions): Promise<ImageRecord> {
  const rec = svc.store.find(ref);
  const base = svc.images.store.get(rec.imageId);
  if (!base) throw new EngineError('NOT_FOUND', `the image of container ${rec.id.slice(0, 12)} no longer exists`);
  const c = rec.config;
  const config: ImageRunConfig = {
    User: c.User || undefined,
    Env: c.Env,
    Cmd: c.Cmd,
    Entrypoint: c.Entrypoint,
    WorkingDir: c.WorkingDir || undefined,
    Labels: c.Labels,
    ...(c.ExposedPorts ? { ExposedPorts: c.ExposedPorts } : {}),
    ...(c.Volumes ? { Volumes: c.Volumes } : {}),
    ...(c.StopSignal ? { StopSignal: c.StopSignal } : {}),
    ...(c.Healthcheck ? { Healthcheck: c.Healthcheck } : {}),
  };
  for (const [k, v] of Object.entries(o.config ?? {})) {
    if (v === null || v === undefined || v === '' || (Array.isArray(v) && v.length === 0)) continue;
    if (typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0) continue;
    (config as Record<string, unknown>)[k] = v;
  }
  // A clone, or a container that was cloned, keeps part of its changes in frozen layers: the layer holds them all.
  const run = async () => {
    const merged = await mergedUpper(svc.images.snapshots, rec.id);
    try {
      return await createLayerImage(svc.images, {
        layer: diffLayer(merged.dir),
        base,
        config,
        changes: o.changes,
        comment: o.comment,
        author: o.author,
        ref: o.ref,
        createdBy: [rec.path, ...rec.args].join(' '),
      });
    } finally {
      await merged.release();
    }
  };
  const img = await svc.mutex.run(rec.id, () => (o.pause === false ? run() : frozen(svc, rec, run)));
  svc.event('commit', rec, { comment: o.comment ?? '', imageID: img.id, imageRef: o.ref ?? '' });
  return img;
}

// ---- export -----------------------------------------------------------------

/** docker export: a tar of the whole rootfs, the container frozen (if it runs) until the tar has been read. */
export async function exportRootfs(svc: Files, ref: string): Promise<Readable> {
  const rec = svc.store.find(ref);
  return svc.mutex.run(rec.id, async () => {
    const release = await acquireRootfs(svc, rec);
    // finish() runs under the mutex on an early failure, and after it was given back once the stream is handed off.
    let handedOff = false;
    let thaw: (() => Promise<void>) | undefined;
    let rootFd = -1;
    const finish = async () => {
      if (rootFd >= 0) closeFd(rootFd);
      rootFd = -1;
      await thaw?.();
      await (handedOff ? releaseLater(svc, rec, release)() : release());
    };
    let tar: Readable;
    try {
      thaw = await freeze(svc, rec);
      rootFd = fs.openSync(svc.rootfs.path(rec.id), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
      tar = tarDirectory({ fd: rootFd });
    } catch (e) {
      await finish();
      throw e;
    }
    svc.event('export', rec);
    handedOff = true;
    return streamThen(tar, finish);
  });
}

/**
 * The tar as the response body: it ends only once `finish` (unfreeze,
 * unmount) has run, so a client's next request finds the container as
 * before; a client that goes early runs finish too.
 */
function streamThen(tar: Readable, finish: () => Promise<void>): Readable {
  const out = new PassThrough();
  let finished: Promise<void> | undefined;
  const finishOnce = () => (finished ??= finish());
  tar.on('error', (e) => out.destroy(e));
  tar.pipe(out, { end: false });
  tar.on(
    'end',
    () =>
      void finishOnce().then(
        () => out.end(),
        (e) => out.destroy(e),
      ),
  );
  out.on('close', () => {
    tar.destroy();
    void finishOnce();
  });
  return out;
}

// ---- cp ---------------------------------------------------------------------

/** What cp sees besides the rootfs: volumes, binds and, once started, the network files keel bind-mounts. */
function hostView(svc: Files, rec: ContainerRecord): HostViewMount[] {
  const out: HostViewMount[] = [];
  for (const m of rec.mounts ?? []) {
    if (m.type === 'tmpfs' || !m.source) continue;
    // A volume's _data is opened inside the volume's own directory in the store; a bind source is the user's host path.
    out.push({ source: m.source, sourceRoot: m.type === 'volume' ? path.dirname(m.source) : undefined, destination: m.destination, readonly: m.readonly });
  }
  if (rec.hasBeenStarted) {
    // A container on another's network (container:<id>) has that one's files.
    const dir = svc.store.containerDir(rec.networkOwner ?? rec.id);
    const files = networkFiles(dir);
    for (const [source, destination] of [
      [files.hosts, '/etc/hosts'],
      [files.hostname, '/etc/hostname'],
      [files.resolv, '/etc/resolv.conf'],
    ] as const) {
      if (fs.existsSync(source) && !out.some((m) => m.destination === destination)) out.push({ source, sourceRoot: dir, destination, readonly: false });
    }
  }
  return out;
}

/** A running container's bind sources are checked against what it has mounted (volumes/hostview.ts). */
function viewOpts(rec: ContainerRecord): { containerRoot?: string } {
  return isRunning(rec) && rec.state.Pid > 0 ? { containerRoot: `/proc/${rec.state.Pid}/root` } : {};
}

/**
 * Runs fn on the container's root as cp sees it: its mounts in place, as a
 * detached tree reached by descriptor only (volumes/hostview.ts). The caller
 * holds the container frozen or stopped.
 */
async function withHostView<T>(svc: Files, rec: ContainerRecord, fn: (rootFd: number) => Promise<T> | T): Promise<T> {
  const view = openHostView(svc.rootfs.path(rec.id), hostView(svc, rec), viewOpts(rec));
  try {
    return await fn(view.fd);
  } finally {
    view.close();
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
export function goFileMode(st: Stat): number {
  let m = st.mode & 0o777;
  const t = st.mode & S_IFMT;
  if (t === S_IFDIR) m |= 2 ** 31;
  else if (t === S_IFLNK) m |= 2 ** 27;
  else if (t === S_IFIFO) m |= 2 ** 25;
  else if (t === S_IFSOCK) m |= 2 ** 24;
  else if (t === S_IFCHR) m |= 2 ** 26 + 2 ** 21;
  else if (t === S_IFBLK) m |= 2 ** 26;
  if (st.mode & 0o4000) m |= 2 ** 23;
  if (st.mode & 0o2000) m |= 2 ** 22;
  if (st.mode & 0o1000) m |= 2 ** 20;
  return m >>> 0;
}

function pathStat(name: string, st: Stat, linkTarget: string): PathStat {
  return {
    name: name || '/',
    size: st.size,
    mode: goFileMode(st),
    mtime: new Date(st.mtime * 1000 + Math.floor(st.mtimeNsec / 1e6)).toISOString(),
    linkTarget,
  };
}

function checkPath(p: string | null): string {
  if (!p) throw invalid('path must be given: ?path=/some/path');
  if (p.includes('\0')) throw invalid('path contains a NUL byte');
  return p.startsWith('/') ? p : `/${p}`;
}

/** HEAD archive: stat of a path in the container (the final symlink not followed). */
export async function statPath(svc: Files, ref: string, p: string | null): Promise<PathStat> {
  const rec = svc.store.find(ref);
  const want = checkPath(p);
  return svc.mutex.run(rec.id, async () => {
    const release = await acquireRootfs(svc, rec);
    try {
      const s = await frozen(svc, rec, () => withHostView(svc, rec, (fd) => statAt(fd, want)));
      if (!s) throw new EngineError('NOT_FOUND', `Could not find the file ${want} in container ${ref}`);
      return pathStat(path.posix.basename(s.clean), s.stat, s.linkTarget);
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
export async function getArchive(svc: Files, ref: string, p: string | null): Promise<{ stat: PathStat; tar: Readable }> {
  const rec = svc.store.find(ref);
  const want = checkPath(p);
  return svc.mutex.run(rec.id, async () => {
    const release = await acquireRootfs(svc, rec);
    // finish() runs under the mutex on an early failure, and after it was given back once the stream is handed off.
    let handedOff = false;
    let thaw: (() => Promise<void>) | undefined;
    let view: HostView | undefined;
    let parentFd = -1;
    const finish = async () => {
      if (parentFd >= 0) closeFd(parentFd);
      parentFd = -1;
      view?.close();
      await thaw?.();
      await (handedOff ? releaseLater(svc, rec, release)() : release());
    };
    try {
      thaw = await freeze(svc, rec);
      view = openHostView(svc.rootfs.path(rec.id), hostView(svc, rec), viewOpts(rec));
      // The parent is pinned, and the tar is made from it: nothing is resolved again by path later.
      const r = resolveAt(view.fd, want);
      parentFd = r.dirFd;
      const s = r.name === '' ? statAt(parentFd, '/') : statAt(parentFd, r.name);
      if (!s) throw new EngineError('NOT_FOUND', `Could not find the file ${want} in container ${ref}`);
      const stat = pathStat(r.name, s.stat, s.linkTarget);
      const tar = r.name ? tarDirectory({ fd: parentFd }, { include: [r.name] }) : tarDirectory({ fd: parentFd }, { rename: (x) => (x ? `./${x}` : '.') });
      handedOff = true;
      return { stat, tar: streamThen(tar, finish) };
    } catch (e) {
      await finish();
      throw e;
    }
  });
}

/** PUT archive: extracts a tar into a directory of the container. */
export async function putArchive(
  svc: Files,
  ref: string,
  p: string | null,
  tar: Readable,
  opts: { noOverwriteDirNonDir?: boolean; signal?: AbortSignal } = {},
): Promise<void> {
  const rec = svc.store.find(ref);
  const want = checkPath(p);
  if (rec.hostConfig.ReadonlyRootfs) throw new EngineError('FORBIDDEN', 'container rootfs is marked read-only');
  await svc.mutex.run(rec.id, async () => {
    const release = await acquireRootfs(svc, rec);
    try {
      await frozen(svc, rec, () =>
        withHostView(svc, rec, async (rootFd) => {
          let dirFd = -1;
          try {
            const s = statAt(rootFd, want, true);
            if (!s) throw new EngineError('NOT_FOUND', `Could not find the file ${want} in container ${ref}`);
            if (!isDir(s.stat)) throw invalid(`extraction point is not a directory: ${want}`);
            dirFd = openDirAt(rootFd, want);
            // A copy, not a layer: no whiteouts, nothing replaced across types or mounts (archive/apply.ts).
            await applyLayer({ fd: dirFd }, tar, { copy: { noOverwriteDirNonDir: opts.noOverwriteDirNonDir }, compression: 'auto', signal: opts.signal });
          } finally {
            if (dirFd >= 0) closeFd(dirFd);
          }
        }),
      );
    } finally {
      await release();
    }
  });
  svc.event('extract-to-dir', rec);
}
