/**
 * The volume service the engine, the API and the containers code use: the
 * `docker volume` operations (create, ls with filters, inspect, rm, prune,
 * df) and the container hooks (resolve + acquire at create, setup at start,
 * teardown at stop, release at rm).
 *
 * One service per data root in a process (volumeService()), so every
 * caller shares the store's per-volume mutex.
 */
import path from 'node:path';
import { EngineError, invalid } from '../common/errors.ts';
import { diskUsage } from '../common/fs.ts';
import type { Mount } from '../oci/mount.ts';
import { type MountInput, type MountSpec, parseVolumesFrom, type ResolvedMount, resolveMounts } from './mounts.ts';
import { populateMounts, setupMounts, teardownMounts } from './setup.ts';
import { type CreateVolumeOptions, type VolumeRecord, VolumeStore } from './store.ts';

/** Docker's list filters, normalized: key → accepted values. */
export type VolumeFilters = Record<string, string[]>;

export type VolumeEventSink = (action: 'create' | 'destroy' | 'mount' | 'unmount' | 'prune', name: string, attrs: Record<string, string>) => void;

const LIST_FILTERS = new Set(['dangling', 'driver', 'label', 'name']);
const PRUNE_FILTERS = new Set(['label', 'label!']);

function boolFilter(values: string[] | undefined, key: string): boolean | undefined {
  if (!values?.length) return undefined;
  const v = values[values.length - 1]!;
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw invalid(`invalid filter '${key}=${v}'`);
}

function labelMatches(labels: Record<string, string> | null, w: string): boolean {
  const i = w.indexOf('=');
  const k = i < 0 ? w : w.slice(0, i);
  if (!labels || !(k in labels)) return false;
  return i < 0 || labels[k] === w.slice(i + 1);
}

/** docker's filters.Match: the value is a regular expression searched in the name (or an exact match). */
function nameMatches(name: string, pattern: string): boolean {
  if (pattern === name) return true;
  if (pattern.length > 256) return name.includes(pattern);
  try {
    return new RegExp(pattern).test(name);
  } catch {
    return name.includes(pattern);
  }
}

export interface VolumeUsage {
  record: VolumeRecord;
  size: number;
  refCount: number;
}

export class VolumeService {
  readonly store: VolumeStore;
  private events?: VolumeEventSink;
  private ready?: Promise<void>;

  constructor(dataRoot: string, opts: { events?: VolumeEventSink } = {}) {
    this.store = new VolumeStore(path.join(dataRoot, 'volumes'));
    this.events = opts.events;
  }

  /** Sets where volume events go (the engine's event bus). */
  setEventSink(sink: VolumeEventSink): void {
    this.events = sink;
  }

  init(): Promise<void> {
    this.ready ??= this.store.init();
    return this.ready;
  }

  mountpoint(name: string): string {
    return this.store.dataPath(name);
  }

  // ---- docker volume ... ---------------------------------------------------

  async create(name: string | undefined, opts: CreateVolumeOptions = {}): Promise<VolumeRecord> {
    await this.init();
    const { record, created } = await this.store.create(name, opts);
    if (created) this.events?.('create', record.name, { driver: record.driver });
    return record;
  }

  async inspect(name: string): Promise<VolumeRecord> {
    await this.init();
    return this.store.inspect(name);
  }

  async list(filters: VolumeFilters = {}): Promise<VolumeRecord[]> {
    await this.init();
    for (const k of Object.keys(filters)) if (!LIST_FILTERS.has(k)) throw invalid(`invalid filter '${k}'`);
    const dangling = boolFilter(filters.dangling, 'dangling');
    return (await this.store.list()).filter((v) => {
      if (dangling !== undefined && (v.refs.length === 0) !== dangling) return false;
      if (filters.driver?.length && !filters.driver.includes(v.driver)) return false;
      if (filters.name?.length && !filters.name.some((p) => nameMatches(v.name, p))) return false;
      if (filters.label?.length && !filters.label.every((l) => labelMatches(v.labels, l))) return false;
      return true;
    });
  }

  async remove(name: string, opts: { force?: boolean } = {}): Promise<void> {
    await this.init();
    const r = await this.store.remove(name, opts);
    if (r) this.events?.('destroy', name, { driver: r.driver });
  }

  /**
   * API 1.41 prune (docker 20.10): every local volume no container
   * references, named or anonymous; filters `label`, `label!`.
   */
  async prune(filters: VolumeFilters = {}): Promise<{ deleted: string[]; reclaimed: number }> {
    await this.init();
    for (const k of Object.keys(filters)) if (!PRUNE_FILTERS.has(k)) throw invalid(`invalid filter '${k}'`);
    const deleted: string[] = [];
    let reclaimed = 0;
    for (const v of await this.store.list()) {
      if (v.refs.length) continue;
      if (filters.label?.length && !filters.label.every((l) => labelMatches(v.labels, l))) continue;
      if (filters['label!']?.length && filters['label!'].some((l) => labelMatches(v.labels, l))) continue;
      const size = await diskUsage(this.store.dataPath(v.name));
      try {
        await this.store.remove(v.name);
      } catch (e) {
        // Taken by a container between list and remove: not unused any more.
        if (e instanceof EngineError && (e.code === 'CONFLICT' || e.code === 'NOT_FOUND')) continue;
        throw e;
      }
      this.events?.('destroy', v.name, { driver: v.driver });
      deleted.push(v.name);
      reclaimed += size;
    }
    this.events?.('prune', '', { reclaimed: String(reclaimed) });
    return { deleted, reclaimed };
  }

  /** `system df`: every volume with its size and how many containers reference it. */
  async usage(): Promise<VolumeUsage[]> {
    await this.init();
    const out: VolumeUsage[] = [];
    for (const v of await this.store.list()) out.push({ record: v, size: await diskUsage(this.store.dataPath(v.name)), refCount: v.refs.length });
    return out;
  }

  // ---- container hooks ----------------------------------------------------

  /**
   * At container create: resolves the container's mounts and creates and
   * acquires the volumes they name. Keep the result in the container record;
   * on failure nothing stays acquired (volumes this call created are
   * removed again when they are anonymous).
   */
  async prepareContainerMounts(cid: string, input: MountInput): Promise<ResolvedMount[]> {
    await this.init();
    const { mounts } = resolveMounts(input, { volumePath: (n) => this.store.dataPath(n) });
    const acquired: ResolvedMount[] = [];
    try {
      for (const m of mounts) {
        if (m.type !== 'volume') continue;
        // --volumes-from mounts name volumes that must exist; the others are created when missing.
        const create = m.volumeCreate ? { ...m.volumeCreate, anonymous: m.anonymous } : undefined;
        const { record, created } = await this.store.acquire(m.name!, cid, create);
        acquired.push(m);
        m.source = this.store.dataPath(record.name);
        if (created) this.events?.('create', record.name, { driver: record.driver });
      }
    } catch (e) {
      await this.releaseContainerMounts(cid, acquired, { removeAnonymous: true }).catch(() => {}); // undoing a failed prepare: its own error is the one to report
      throw e;
    }
    return mounts;
  }

  /**
   * At container rm: drops the container's references. With
   * removeAnonymous (`rm -v`, `--rm`) anonymous volumes nobody else uses are
   * deleted; named volumes never are (docker's rule).
   */
  async releaseContainerMounts(cid: string, mounts: ResolvedMount[], opts: { removeAnonymous?: boolean } = {}): Promise<void> {
    await this.init();
    for (const m of mounts) {
      if (m.type !== 'volume') continue;
      const r = await this.store.release(m.name!, cid);
      if (opts.removeAnonymous && m.anonymous && r && r.refs.length === 0) {
        await this.remove(m.name!).catch((e) => {
          if (!(e instanceof EngineError && (e.code === 'CONFLICT' || e.code === 'NOT_FOUND'))) throw e;
        });
      }
    }
  }

  /** At container create, with its rootfs mounted: docker's copy-up (see populateMounts). */
  async populateContainerMounts(cid: string, rootfs: string, mounts: ResolvedMount[]): Promise<void> {
    await this.init();
    await populateMounts(this.store, cid, rootfs, mounts);
  }

  /**
   * At container start, after its rootfs is mounted, before `runc create`:
   * returns the OCI mounts to append to the spec (see setup.ts).
   */
  async setupContainerMounts(cid: string, rootfs: string, mounts: ResolvedMount[]): Promise<Mount[]> {
    await this.init();
    const oci = await setupMounts(this.store, cid, rootfs, mounts);
    for (const m of mounts) {
      if (m.type === 'volume')
        this.events?.('mount', m.name!, {
          container: cid,
          destination: m.destination,
          driver: m.driver ?? 'local',
          propagation: m.propagation,
          'read/write': String(!m.readonly),
        });
    }
    return oci;
  }

  /** After the container stopped (or its start failed). */
  async teardownContainerMounts(cid: string, mounts: ResolvedMount[]): Promise<void> {
    await this.init();
    await teardownMounts(this.store, cid, mounts);
    for (const m of mounts) if (m.type === 'volume') this.events?.('unmount', m.name!, { container: cid, driver: m.driver ?? 'local' });
  }

  /** At engine open: forget references of containers that are gone and activations of stopped ones. */
  async reconcile(containers: Iterable<string>, running: Iterable<string>): Promise<void> {
    await this.init();
    await this.store.reconcile(new Set(containers), new Set(running));
  }
}

/**
 * A container create request's mount fields (HostConfig Binds, Mounts,
 * Tmpfs, VolumesFrom, VolumeDriver and the merged Config.Volumes — where
 * the docker CLI also puts `-v /path`) as a checked MountInput.
 * `mountsOf` returns the mounts of the container a --volumes-from names
 * (throwing its not-found error).
 */
export function mountInputFrom(
  hc: Record<string, unknown>,
  volumes: Record<string, unknown> | null | undefined,
  mountsOf: (container: string) => ResolvedMount[],
): MountInput {
  const list = (v: unknown, what: string): unknown[] => {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw invalid(`${what} must be a list`);
    return v;
  };
  const strings = (v: unknown, what: string): string[] =>
    list(v, what).map((x) => {
      if (typeof x !== 'string') throw invalid(`${what} must be a list of strings`);
      return x;
    });
  const tmpfs = hc.Tmpfs;
  if (tmpfs !== undefined && tmpfs !== null && (typeof tmpfs !== 'object' || Array.isArray(tmpfs) || Object.values(tmpfs).some((o) => typeof o !== 'string'))) {
    throw invalid('Tmpfs must be an object of mount point → options');
  }
  return {
    binds: strings(hc.Binds, 'Binds'),
    mounts: list(hc.Mounts, 'Mounts') as MountSpec[],
    tmpfs: (tmpfs as Record<string, string> | null | undefined) ?? null,
    imageVolumes: Object.keys(volumes ?? {}),
    volumeDriver: typeof hc.VolumeDriver === 'string' ? hc.VolumeDriver : '',
    volumesFrom: strings(hc.VolumesFrom, 'VolumesFrom').map((spec) => {
      const { container, mode } = parseVolumesFrom(spec);
      return { mounts: mountsOf(container), mode };
    }),
  };
}

const services = new Map<string, VolumeService>();

/** The one VolumeService of `dataRoot` in this process. */
export function volumeService(dataRoot: string): VolumeService {
  const key = path.resolve(dataRoot);
  let s = services.get(key);
  if (!s) services.set(key, (s = new VolumeService(key)));
  return s;
}
