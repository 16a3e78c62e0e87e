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

/** Runs fn with the container frozen if it runs (and was not paused already). */
async function frozen<T>(svc: ContainerService, rec: ContainerRecord, fn: () => Promise<T>): Promise<T> {
  if (rec.state.Status !== 'running') return fn();
  await svc.driver.pause(rec.id);
  try {
    return await fn();
  } finally {
    await svc.driver.resume(rec.id).catch(() => {});
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
  const inLower = (rel: string) => lowers.some((l) => {
    try {
      fs.lstatSync(path.join(l, rel));
      return true;
    } catch {
      return false;
    }
  });
  const out: Change[] = [];
  // Mount points runc makes in the rootfs: docker keeps them in an init layer, so diff never shows them.
  const hidden = new Set(['dev', 'proc', 'sys', 'etc/hosts', 'etc/hostname', 'etc/resolv.conf', '.dockerenv']);
  const walk = (rel: string) => {
    let names: string[];
    try {
      names = fs.readdirSync(path.join(upper, rel)).sort();
    } catch {
      return;
    }
    for (const n of names) {
      const r = rel ? `${rel}/${n}` : n;
      const st = fs.lstatSync(path.join(upper, r));
      if (hidden.has(r) && !inLower(r) && (st.isDirectory() ? fs.readdirSync(path.join(upper, r)).length === 0 : st.size === 0)) continue;
      if (st.isCharacterDevice() && st.rdev === 0) {
        out.push({ Path: `/${r}`, Kind: 2 });
        continue;
      }
      out.push({ Path: `/${r}`, Kind: inLower(r) ? 0 : 1 });
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
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
  const c = rec.config;
  const config: ImageRunConfig = {
    User: c.User || undefined, Env: c.Env, Cmd: c.Cmd, Entrypoint: c.Entrypoint, WorkingDir: c.WorkingDir || undefined,
    Labels: c.Labels, ...(c.ExposedPorts ? { ExposedPorts: c.ExposedPorts } : {}), ...(c.Volumes ? { Volumes: c.Volumes } : {}),
    ...(c.StopSignal ? { StopSignal: c.StopSignal } : {}),
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
      const s = await frozen(svc, rec, async () => statIn(svc.rootfs(rec.id), want));
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
      const s = statIn(rootfs, want);
      if (!s) throw new EngineError('NOT_FOUND', `Could not find the file ${want} in container ${ref}`);
      const base = path.posix.basename(s.clean);
      const parent = openDirIn(rootfs, path.posix.dirname(s.clean));
      const stat = { name: base || '/', size: s.stat.size, mode: goFileMode(s.stat), mtime: s.stat.mtime.toISOString(), linkTarget: s.linkTarget };
      const wasRunning = rec.state.Status === 'running';
      if (wasRunning) await svc.driver.pause(rec.id);
      const tar = base ? tarDirectory(parent.path, { include: [base] }) : tarDirectory(parent.path, { rename: (r) => (r ? `./${r}` : '.') });
      const out = new PassThrough();
      tar.on('error', (e) => out.destroy(e));
      tar.pipe(out);
      let done = false;
      const finish = async () => {
        if (done) return;
        done = true;
        parent.close();
        if (wasRunning) await svc.driver.resume(rec.id).catch(() => {});
        await release();
      };
      out.on('close', () => void finish());
      out.on('end', () => void finish());
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
      const s = statIn(rootfs, want, true);
      if (!s) throw new EngineError('NOT_FOUND', `Could not find the file ${want} in container ${ref}`);
      if (!s.stat.isDirectory()) throw invalid(`extraction point is not a directory: ${want}`);
      await frozen(svc, rec, async () => {
        const dir = openDirIn(rootfs, want);
        try {
          await applyLayer(dir.path, tar, { overlayWhiteouts: false, compression: 'auto', signal: opts.signal });
        } finally {
          dir.close();
        }
      });
    } finally {
      await release();
    }
  });
  svc.event('extract-to-dir', rec);
}
