/**
 * Start-time work for a container's mounts, after its rootfs is mounted and
 * before `runc create`: create missing `-v` host directories, mount option
 * volumes, resolve every destination inside the rootfs (symlinks scoped to
 * the rootfs, missing directories created without following anything out),
 * and describe the result as OCI runtime mounts. Filling empty volumes from
 * the image (docker's copy-up) happens once, at create (populateMounts).
 *
 * Destinations are handed to runc already resolved, so a symlink in the
 * image (`/data -> /etc` or `-> ../../..`) can only ever redirect a mount to
 * another place inside the rootfs. They are resolved by descriptor
 * (destination.ts), each directory made with mkdirat on its pinned parent,
 * so even a tree changing meanwhile never gets a directory made or a mount
 * point found outside the rootfs; the path string handed on is used by runc
 * before anything of the container runs.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { EngineError, invalid } from '../common/errors.ts';
import { exec } from '../common/exec.ts';
import { close, isDir } from '../common/openat2.ts';
import { openDestination, type Destination } from './destination.ts';
import { bindMount, tmpfsMount, type Mount } from '../oci/mount.ts';
import type { ResolvedMount } from './mounts.ts';

/**
 * Resolves `dest` inside `rootfs` like securejoin, by descriptor
 * (destination.ts): every symlink on the way, the last component included,
 * is read as if rootfs were `/`. Missing directories are created (0755); a
 * missing last component becomes a directory, or an empty file when
 * `asFile`. Returns the resolved path relative to rootfs ('' for the root
 * itself), or null when it is missing and not to be created.
 */
export function resolveDestination(rootfs: string, dest: string, opts: { create: boolean; asFile?: boolean } = { create: true }): string | null {
  return withDestination(rootfs, dest, opts, (d) => d.rel);
}

/** Runs fn on the resolved destination (null: missing, not created); the fds are closed after. */
function withDestination<T>(rootfs: string, dest: string, opts: { create: boolean; asFile?: boolean }, fn: (d: Destination) => T): T | null {
  const rootFd = fs.openSync(rootfs, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    const d = openDestination(rootFd, dest, opts);
    if (!d) return null;
    try {
      return fn(d);
    } finally {
      close(d.fd);
    }
  } finally {
    fs.closeSync(rootFd);
  }
}

async function isEmptyDir(p: string): Promise<boolean> {
  return (await fsp.readdir(p)).length === 0;
}

/**
 * docker's copy-up: when the volume at `volumePath` is empty and the image
 * has a directory at `dest`, copy its content with ownership, modes,
 * xattrs, links and special files, and give the volume root the
 * directory's owner and mode. Returns whether anything was copied.
 */
export async function copyUp(volumePath: string, rootfs: string, dest: string): Promise<boolean> {
  const rel = resolveDestination(rootfs, dest, { create: false });
  if (rel === null) return false;
  const src = rel === '' ? rootfs : path.join(rootfs, rel);
  const st = await fsp.lstat(src);
  if (!st.isDirectory()) return false;
  if (!(await isEmptyDir(volumePath))) return false;
  if (!(await isEmptyDir(src))) {
    // GNU cp -a: no dereference, preserves ownership/mode/timestamps/xattrs/hard links.
    await exec(['cp', '-a', '--', `${src}/.`, `${volumePath}/`], { timeoutMs: 30 * 60_000 });
  }
  await fsp.chown(volumePath, st.uid, st.gid);
  await fsp.chmod(volumePath, st.mode & 0o7777);
  return true;
}

export interface VolumeActivator {
  activate(name: string, cid: string): Promise<unknown>;
  deactivate(name: string, cid: string): Promise<void>;
}

/**
 * Everything a container's mounts need at start; returns the OCI mounts
 * to append to the runtime spec (in order). On failure, volumes it
 * activated are deactivated again.
 */
export async function setupMounts(store: VolumeActivator, cid: string, rootfs: string, mounts: ResolvedMount[]): Promise<Mount[]> {
  const out: Mount[] = [];
  const activated: string[] = [];
  try {
    for (const m of mounts) {
      let asFile = false;
      if (m.type === 'bind') {
        let st = await fsp.stat(m.source).catch(() => undefined);
        if (!st && m.createSource) {
          await fsp.mkdir(m.source, { recursive: true, mode: 0o755 });
          st = await fsp.stat(m.source);
        }
        if (!st) throw invalid(`invalid mount config for type "bind": bind source path does not exist: ${m.source}`);
        asFile = !st.isDirectory();
      } else if (m.type === 'volume') {
        await store.activate(m.name!, cid);
        activated.push(m.name!);
      }
      const { rel, dir } = withDestination(rootfs, m.destination, { create: true, asFile }, (d) => ({ rel: d.rel, dir: isDir(d.stat) }))!;
      const dest = '/' + rel;
      if (m.type === 'volume') {
        if (!dir) throw new EngineError('INVALID_ARGUMENT', `cannot mount volume over existing file, file exists ${path.join(rootfs, rel)}`);
        if (m.copyData) await copyUp(m.source, rootfs, dest);
        out.push(bindMount(m.source, dest, { readonly: m.readonly }));
      } else if (m.type === 'bind') {
        out.push(bindMount(m.source, dest, { readonly: m.readonly, propagation: m.propagation || 'rprivate', recursive: !m.nonRecursive }));
      } else {
        out.push(
          tmpfsMount(dest, { options: m.readonly && !(m.tmpfsOptions ?? []).includes('ro') ? [...(m.tmpfsOptions ?? []), 'ro'] : (m.tmpfsOptions ?? []) }),
        );
      }
    }
  } catch (e) {
    for (const n of activated) await store.deactivate(n, cid).catch(() => {}); // undoing a failed setup: its own error is the one to report
    throw e;
  }
  return out;
}

/**
 * docker's copy-up, which it does once, when the container is created: each
 * volume mount that asks for it is filled from the image when empty. The
 * caller then clears copyData, so a volume emptied later stays empty at the
 * next start. Option volumes (tmpfs, ...) are mounted just for the copy.
 */
export async function populateMounts(store: VolumeActivator, cid: string, rootfs: string, mounts: ResolvedMount[]): Promise<void> {
  for (const m of mounts) {
    if (m.type !== 'volume' || !m.copyData) continue;
    await store.activate(m.name!, cid);
    try {
      await copyUp(m.source, rootfs, m.destination);
    } finally {
      await store.deactivate(m.name!, cid);
    }
  }
}

/** After the container stopped: option volumes nobody else runs with are unmounted. */
export async function teardownMounts(store: VolumeActivator, cid: string, mounts: ResolvedMount[]): Promise<void> {
  for (const m of mounts) if (m.type === 'volume') await store.deactivate(m.name!, cid);
}
