/**
 * Container clones (`keel clone`, POST /containers/{id}/clone): new
 * containers with a source container's configuration whose root filesystem
 * and volumes start from the source's state at that moment.
 *
 * Stopped source: its upper dir (and each volume's writable data) is frozen
 * into a read-only layer by a rename (snapshots/frozen.ts) and stacked by the
 * source and by every clone under their own empty upper: nothing is copied,
 * so a clone costs the same for 1 MB or 10 GB. Running source with `pause`:
 * it is frozen (cgroup freezer), synced, and a copy of what it wrote since
 * its last freeze becomes the layer (cost proportional to that), then thawed.
 *
 * Crash safety: each clone is announced in a journal file before anything of
 * it exists and the journal entry is dropped after its container record is
 * written (the commit point). reconcileClones() removes what a journal entry
 * without a record names, so a kill -9 at any step leaves no half clone.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { EngineError, conflict, invalid } from '../common/errors.ts';
import { crashPoint } from '../common/crashpoint.ts';
import { exec } from '../common/exec.ts';
import { mkdirp, readJsonIfExists, writeJsonAtomic } from '../common/fs.ts';
import { newId } from '../common/ids.ts';
import { log } from '../common/log.ts';
import { Phases } from '../common/phases.ts';
import { freezeSnapshot } from '../snapshots/overlay.ts';
import { cloneVolumeName, createCloneVolume, freezeVolume } from '../volumes/clones.ts';
import type { ResolvedMount } from '../volumes/index.ts';
import type { ContainerParts } from './parts.ts';
import { type ContainerRecord, isRunning, ZERO_TIME } from './types.ts';

type Cloning = Pick<ContainerParts, 'store' | 'mutex' | 'runtime' | 'rootfs' | 'images' | 'volumes' | 'event'>;

export interface CloneOptions {
  /** How many clones (1..100). */
  count?: number;
  /** The clone's name (count 1 only). */
  name?: string;
  /** Clones are named <prefix>1, <prefix>2, ... (the first free numbers). */
  namePrefix?: string;
  /** Clone a running source: freeze it, copy what it wrote, thaw it. */
  pause?: boolean;
  /** Refuse a source with bind mounts instead of sharing them with a warning. */
  strict?: boolean;
  /** Port bindings for the clones (default: the source's, each on a new host port). */
  portBindings?: Record<string, { HostIp?: string; HostPort?: string }[]>;
  /** Extra labels on the clones (pools mark their members). */
  labels?: Record<string, string>;
  signal?: AbortSignal;
}

export interface CloneResult {
  clones: { id: string; name: string }[];
  warnings: string[];
}

/** One clone in the making: what reconcile removes if its record never appears. */
interface JournalEntry {
  id: string;
  volumes: string[];
}

export const MAX_CLONES = 100;

function journalDir(svc: Cloning): string {
  return path.join(path.dirname(svc.store.dir), 'clones');
}

function cloneNames(svc: Cloning, o: CloneOptions, count: number): (string | undefined)[] {
  if (o.name !== undefined && o.name !== '') {
    if (count > 1) throw invalid('--name names one clone: use --name-prefix with --count');
    if (o.namePrefix) throw invalid('give --name or --name-prefix, not both');
    svc.store.checkName(o.name.replace(/^\//, ''));
    return [o.name.replace(/^\//, '')];
  }
  if (!o.namePrefix) return Array.from({ length: count }, () => undefined);
  const out: string[] = [];
  for (let n = 1; out.length < count && n < 100_000; n++) {
    const name = `${o.namePrefix}${n}`;
    if (n === 1) svc.store.checkName(name);
    if (!svc.store.tryFind(name)) out.push(name);
  }
  return out;
}

/** The frozen layers of the source's rootfs and of each of its volumes (by volume name), under the source's mutex. */
async function freezeSource(svc: Cloning, src: ContainerRecord, o: CloneOptions): Promise<{ rootfs: string[]; volumes: Map<string, string[]> }> {
  const vols = (src.mounts ?? []).filter((m) => m.type === 'volume');
  const volumes = new Map<string, string[]>();
  const snaps = svc.images.snapshots;
  if (!isRunning(src)) {
    // A stopped container's rootfs may still be mounted (create's copy-up, a crash): freeze needs it idle.
    await svc.rootfs.unmount(src.id);
    const rootfs = await freezeSnapshot(snaps, src.id);
    for (const m of vols) if (!volumes.has(m.name!)) volumes.set(m.name!, await freezeVolume(svc.volumes.store, m.name!, { owner: src.id }));
    return { rootfs, volumes };
  }
  if (!o.pause) {
    throw conflict(
      `container ${src.name} is running: stop it first (keel stop ${src.name}), or clone it running with --pause (it is frozen while what it wrote is copied)`,
    );
  }
  if (src.state.Status === 'restarting') throw conflict(`container ${src.name} is restarting: try again when it runs`);
  const wasPaused = src.state.Status === 'paused';
  if (!wasPaused) await svc.runtime.pause(src.id);
  try {
    // Crash-consistent: nothing runs while the dirty pages reach the upper dir and the copy is made.
    await exec(['sync'], { timeoutMs: 5 * 60_000 });
    const rec = await snaps.record(src.id);
    const frozen = rec?.frozen ?? [];
    const upper = snaps.upperDir(src.id);
    const rootfs = (await fsp.readdir(upper)).length ? [...frozen, await snaps.frozen.copy(upper, src.id, o.signal)] : frozen;
    for (const m of vols)
      if (!volumes.has(m.name!)) volumes.set(m.name!, await freezeVolume(svc.volumes.store, m.name!, { copy: true, owner: src.id, signal: o.signal }));
    return { rootfs, volumes };
  } finally {
    if (!wasPaused) await svc.runtime.resume(src.id).catch((e) => log.warn('cannot thaw a container after cloning it', { id: src.id, error: String(e) }));
  }
}

function cloneRecord(src: ContainerRecord, id: string, name: string, mounts: ResolvedMount[], o: CloneOptions): ContainerRecord {
  const config = structuredClone(src.config);
  if (config.Hostname === src.id.slice(0, 12)) config.Hostname = id.slice(0, 12);
  config.Labels = { ...config.Labels, ...o.labels, 'keel.clone.source': src.id };
  const hostConfig = structuredClone(src.hostConfig);
  const pb = (o.portBindings ?? hostConfig.PortBindings) as Record<string, { HostIp?: string; HostPort?: string }[] | null> | null | undefined;
  // The source's host ports are taken (or will be when it runs): clones get new ones unless told.
  if (pb)
    hostConfig.PortBindings = Object.fromEntries(
      Object.entries(pb).map(([k, v]) => [k, (v ?? []).map((b) => ({ HostIp: b.HostIp ?? '', HostPort: o.portBindings ? (b.HostPort ?? '') : '' }))]),
    );
  const endpoints =
    src.endpoints && Object.fromEntries(Object.entries(src.endpoints).map(([k, e]) => [k, e.Aliases?.length ? { Aliases: [...e.Aliases] } : {}]));
  return {
    id,
    name,
    created: new Date().toISOString(),
    imageId: src.imageId,
    path: src.path,
    args: [...src.args],
    config,
    hostConfig,
    state: { Status: 'created', Pid: 0, ExitCode: 0, Error: '', StartedAt: ZERO_TIME, FinishedAt: ZERO_TIME, OOMKilled: false },
    restartCount: 0,
    manuallyStopped: false,
    hasBeenStarted: false,
    ...(endpoints ? { endpoints } : {}),
    mounts,
  };
}

export async function cloneContainer(svc: Cloning, ref: string, o: CloneOptions = {}): Promise<CloneResult> {
  const count = o.count ?? 1;
  if (!Number.isInteger(count) || count < 1 || count > MAX_CLONES) throw invalid(`--count must be a whole number from 1 to ${MAX_CLONES} (got ${o.count})`);
  const src = svc.store.find(ref);
  const warnings: string[] = [];
  const binds = (src.mounts ?? []).filter((m) => m.type === 'bind');
  if (binds.length) {
    const list = binds.map((m) => `${m.source}:${m.destination}`).join(', ');
    if (o.strict)
      throw invalid(`container ${src.name} has bind mounts (${list}): bind mounts are shared with clones, not cloned; drop --strict to clone it anyway`);
    warnings.push(`bind mounts are shared with the clones, not cloned: ${list}`);
  }
  const names = cloneNames(svc, o, count);
  const ph = new Phases();
  return svc.mutex.run(src.id, async () => {
    ph.mark('lock');
    if (!svc.store.get(src.id)) throw new EngineError('NOT_FOUND', `No such container: ${ref}`);
    if (src.state.Status === 'removing') throw conflict(`container ${src.id} is being removed`);
    const snap = await svc.images.snapshots.record(src.id);
    if (!snap) throw new EngineError('NOT_FOUND', `container ${src.name} has no root filesystem`);
    const frozen = await freezeSource(svc, src, o);
    ph.mark('freeze');
    crashPoint('clone-frozen');
    await mkdirp(journalDir(svc), 0o700);
    const clones: CloneResult['clones'] = [];
    for (const wanted of names) {
      o.signal?.throwIfAborted();
      const id = newId();
      const volNames = new Map((src.mounts ?? []).filter((m) => m.type === 'volume').map((m) => [m.name!, cloneVolumeName(m.name!)]));
      const journal = path.join(journalDir(svc), `${id}.json`);
      // No fsync: the journal only lets reconcile remove a clone a crash cut short. A daemon kill -9 keeps
      // it (the page cache survives); a power failure that loses it can leave only this clone's snapshot,
      // which the orphan sweep removes (no record names it), and its volume, unreferenced (volume prune):
      // a leak, never a record that names what is not there. The snapshot record and the container record
      // (the commit point) stay durable: a durable container record over a lost snapshot would be broken.
      await writeJsonAtomic(journal, { id, volumes: [...volNames.values()] } satisfies JournalEntry, 0o600, { durable: false });
      ph.mark('journal');
      crashPoint('clone-journal');
      try {
        // The rootfs snapshot and the volume clones are independent: made side by side, all settled before going on.
        const made = await Promise.allSettled([
          svc.images.snapshots.prepare(id, snap.chain, frozen.rootfs),
          ...[...volNames].map(([origin, vname]) => createCloneVolume(svc.volumes.store, vname, origin, frozen.volumes.get(origin) ?? [], id)),
        ]);
        const failed = made.find((r) => r.status === 'rejected');
        if (failed) throw failed.reason;
        ph.mark('snapshot+volumes');
        crashPoint('clone-snapshot');
        crashPoint('clone-volumes');
        const mounts: ResolvedMount[] = (src.mounts ?? []).map((m) => {
          if (m.type !== 'volume') return { ...m };
          const vname = volNames.get(m.name!)!;
          return { ...m, name: vname, source: svc.volumes.store.dataPath(vname), anonymous: true, copyData: false };
        });
        let name = wanted;
        if (!name) for (let i = 0; !name || svc.store.tryFind(name); i++) name = `${src.name.slice(0, 40)}-clone-${id.slice(0, 6)}${i ? i : ''}`;
        const rec = cloneRecord(src, id, name, mounts, o);
        await svc.store.add(rec);
        ph.mark('record');
        crashPoint('clone-record');
        await fsp.rm(journal, { force: true });
        ph.mark('unjournal');
        clones.push({ id, name });
        svc.event('create', rec, { 'keel.clone.source': src.id });
      } catch (e) {
        // Undo this clone; the ones made before it stay (they are complete).
        await undoClone(svc, { id, volumes: [...volNames.values()] }).catch(() => {}); // reconcile finishes it from the journal
        await fsp.rm(journal, { force: true });
        throw e;
      }
    }
    ph.log('clone', { src: src.id.slice(0, 12), count });
    return { clones, warnings };
  });
}

async function undoClone(svc: Cloning, j: JournalEntry): Promise<void> {
  await svc.images.snapshots.remove(j.id);
  for (const v of j.volumes) {
    await svc.volumes.store.release(v, j.id);
    await svc.volumes.store.remove(v, { force: true });
  }
}

/**
 * At daemon start, after containers are reconciled: clones a crash cut short
 * are removed (their journal entry has no record), then frozen layers nobody
 * stacks any more (a crash between a removal and its gc, an unused --pause
 * copy) are freed.
 */
export async function reconcileClones(svc: Cloning): Promise<{ removed: number; freed: number }> {
  let removed = 0;
  for (const f of await fsp.readdir(journalDir(svc)).catch(() => [] as string[])) {
    const file = path.join(journalDir(svc), f);
    const j = await readJsonIfExists<JournalEntry>(file).catch(() => undefined);
    if (j && /^[a-f0-9]{64}$/.test(j.id) && !svc.store.get(j.id)) {
      await undoClone(svc, j);
      removed++;
    }
    await fsp.rm(file, { force: true });
  }
  const snaps = svc.images.snapshots;
  const vols = svc.volumes.store;
  await svc.volumes.init();
  const freed = (await snaps.frozen.gc(await snaps.frozenInUse())) + (await vols.frozen.gc(await vols.frozenInUse()));
  return { removed, freed };
}

export interface FrozenUsage {
  id: string;
  /** rootfs (a container's writable layer) or volume. */
  kind: 'rootfs' | 'volume';
  /** The snapshot key (container ID) or volume it came from. */
  owner: string;
  size: number;
  /** Snapshots or volumes that stack it. */
  refCount: number;
}

/** `system df`: the frozen layers clones stack, with sizes and users. */
export async function frozenUsage(svc: Cloning): Promise<FrozenUsage[]> {
  const count = (lists: (string[] | undefined)[]) => {
    const m = new Map<string, number>();
    for (const l of lists) for (const f of l ?? []) m.set(f, (m.get(f) ?? 0) + 1);
    return m;
  };
  const snaps = svc.images.snapshots;
  const snapRecs = await Promise.all((await snaps.listActive()).map((k) => snaps.record(k).catch(() => undefined)));
  const rootRefs = count(snapRecs.map((r) => r?.frozen));
  const volRefs = count((await svc.volumes.store.list()).map((v) => v.overlay?.lowers));
  return [
    ...(await snaps.frozen.usage()).map((u) => ({ ...u, kind: 'rootfs' as const, refCount: rootRefs.get(u.id) ?? 0 })),
    ...(await svc.volumes.store.frozen.usage()).map((u) => ({ ...u, kind: 'volume' as const, refCount: volRefs.get(u.id) ?? 0 })),
  ].map(({ id, kind, owner, size, refCount }) => ({ id, kind, owner, size, refCount }));
}
