/**
 * Volume clones. A clone of a volume is a new volume whose _data is an
 * overlay: its own empty _upper over the source's data frozen into
 * read-only layers (snapshots/frozen.ts), so nothing is copied. The source
 * keeps working the same way: after its first freeze its own _data is an
 * overlay too, its writes go to a fresh _upper over the frozen layer, and
 * the frozen data never changes under the clones.
 *
 * Overlay volumes stay mounted on their _data while they exist (mounted at
 * creation and again at daemon start after a reboot; unmounted by remove),
 * so everything else (binds into containers, copy-up, cp) sees a plain dir.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { EngineError } from '../common/errors.ts';
import { crashPoint } from '../common/crashpoint.ts';
import { exec } from '../common/exec.ts';
import { log } from '../common/log.ts';
import { isMountpoint, unmount } from './mount.ts';
import type { VolumeRecord, VolumeStore } from './store.ts';

/** The label a cloned volume carries: the volume it was cloned from. */
export const CLONE_ORIGIN_LABEL = 'keel.clone.origin';

async function isEmpty(dir: string): Promise<boolean> {
  return (await fsp.readdir(dir)).length === 0;
}

/**
 * The root of an overlay shows its upper dir's owner and mode, not the
 * frozen data's: a fresh _upper is root's 0755, and a program that checks
 * its data dir (PostgreSQL refuses a PGDATA it does not own, or one not
 * 0700) would stop working after the first clone. The upper takes the top
 * frozen layer's owner and mode.
 */
async function matchRoot(upper: string, top: string): Promise<void> {
  const st = await fsp.stat(top);
  await fsp.chown(upper, st.uid, st.gid);
  await fsp.chmod(upper, st.mode & 0o7777);
}

async function mountOverlay(store: VolumeStore, r: VolumeRecord): Promise<void> {
  const d = store.dir(r.name);
  const lowers = [...r.overlay!.lowers].reverse().map((id) => store.frozen.dir(id));
  const opts = `lowerdir=${lowers.join(':')},upperdir=${path.join(d, '_upper')},workdir=${path.join(d, '_work')}`;
  if (opts.length > 4000) throw new EngineError('INVALID_ARGUMENT', `volume ${r.name} stacks too many frozen layers to mount (${r.overlay!.lowers.length})`);
  await exec(['mount', '--make-private', '-t', 'overlay', 'overlay', '-o', opts, store.dataPath(r.name)], { timeoutMs: 30_000 });
}

/** At start: overlay volumes not mounted (host reboot, a crash mid-freeze) are mounted again. */
export async function mountOverlayVolumes(store: VolumeStore): Promise<void> {
  for (const r of await store.list()) {
    if (!r.overlay || (await isMountpoint(store.dataPath(r.name)))) continue;
    await mountOverlay(store, r).catch((e) => log.warn('cannot mount a cloned volume', { volume: r.name, error: String(e) }));
  }
}

/** The volume's data now lives in frozen layer `id`: stack it under a fresh upper (also the crash roll-forward). */
export async function adoptFrozenVolume(store: VolumeStore, name: string, id: string): Promise<boolean> {
  const r = await store.get(name);
  if (!r) return false;
  if (r.overlay?.lowers.includes(id)) {
    // Adopted before a crash: its overlay may be mounted over the dirs; only a missing mount is made.
    if (!(await isMountpoint(store.dataPath(name)))) await mountOverlay(store, r);
    return true;
  }
  const d = store.dir(name);
  await fsp.mkdir(path.join(d, '_data'), { recursive: true, mode: 0o755 });
  await fsp.mkdir(path.join(d, '_upper'), { recursive: true, mode: 0o755 });
  await matchRoot(path.join(d, '_upper'), store.frozen.dir(id));
  await fsp.rm(path.join(d, '_work'), { recursive: true, force: true });
  await fsp.mkdir(path.join(d, '_work'), { mode: 0o700 });
  r.overlay = { lowers: [...(r.overlay?.lowers ?? []), id] };
  await store.writeRecord(r);
  if (!(await isMountpoint(store.dataPath(name)))) await mountOverlay(store, r);
  return true;
}

/**
 * The frozen layers a clone of volume `name` stacks, bottom first. Stopped
 * users (`copy` false): the volume's writable part is moved into a new
 * frozen layer (a rename). `copy` (a paused user, --pause): a copy of it is
 * made instead, costing what was written since the last freeze.
 */
export async function freezeVolume(store: VolumeStore, name: string, o: { copy?: boolean; owner?: string; signal?: AbortSignal } = {}): Promise<string[]> {
  return store.mu.run(name, async () => {
    const r = await store.inspect(name);
    if (r.options)
      throw new EngineError(
        'INVALID_ARGUMENT',
        `volume ${name} is mounted with driver options (${Object.keys(r.options).join(', ')}): such a volume cannot be cloned`,
      );
    const d = store.dir(name);
    const writable = r.overlay ? path.join(d, '_upper') : store.dataPath(name);
    const lowers = r.overlay?.lowers ?? [];
    if (await isEmpty(writable)) return lowers;
    if (o.copy) return [...lowers, await store.frozen.copy(writable, name, o.signal)];
    const users = r.active.filter((c) => c !== o.owner);
    if (users.length) {
      throw new EngineError(
        'CONFLICT',
        `volume ${name} is in use by running container${users.length > 1 ? 's' : ''} ${users.map((c) => c.slice(0, 12)).join(', ')}: stop ${users.length > 1 ? 'them' : 'it'} first, or clone with --pause`,
      );
    }
    if (r.overlay) await unmount(store.dataPath(name));
    const id = await store.frozen.freeze(writable, name);
    await adoptFrozenVolume(store, name, id);
    crashPoint('volume-frozen');
    await store.frozen.commit(id);
    return [...lowers, id];
  });
}

/**
 * Creates the clone volume of `origin` for container `cid` (which holds the
 * only reference): anonymous, so `rm -v` and `--rm` remove it with its
 * container; labelled with its origin. Complete or absent (made under a temp
 * name, renamed into place).
 */
export function cloneVolumeName(origin: string): string {
  return `${origin.slice(0, 40)}-clone-${randomBytes(6).toString('hex')}`;
}

export async function createCloneVolume(
  store: VolumeStore,
  name: string,
  origin: string,
  lowers: string[],
  cid: string,
  labels: Record<string, string> = {},
): Promise<VolumeRecord> {
  const rec: VolumeRecord = {
    name,
    driver: 'local',
    createdAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    labels: { ...labels, [CLONE_ORIGIN_LABEL]: origin },
    options: null,
    anonymous: true,
    refs: [cid],
    active: [],
    ...(lowers.length ? { overlay: { lowers } } : {}),
  };
  return store.mu.run(name, async () => {
    const tmp = path.join(store.root, `.tmp-${randomBytes(6).toString('hex')}`);
    await fsp.mkdir(tmp, 0o701);
    try {
      await fsp.mkdir(path.join(tmp, '_data'), 0o755);
      if (lowers.length) {
        await fsp.mkdir(path.join(tmp, '_upper'), 0o755);
        await matchRoot(path.join(tmp, '_upper'), store.frozen.dir(lowers.at(-1)!));
        await fsp.mkdir(path.join(tmp, '_work'), 0o700);
      }
      await fsp.writeFile(path.join(tmp, 'volume.json'), JSON.stringify(rec, null, 1) + '\n', { mode: 0o600 });
      await fsp.rename(tmp, store.dir(name));
    } catch (e) {
      await fsp.rm(tmp, { recursive: true, force: true });
      throw e;
    }
    if (lowers.length) {
      try {
        await mountOverlay(store, rec);
      } catch (e) {
        await fsp.rm(store.dir(name), { recursive: true, force: true });
        throw e;
      }
    }
    return rec;
  });
}
