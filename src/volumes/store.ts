/**
 * Volume records: one directory per volume under <data-root>/volumes/<name>/
 * holding `volume.json` (the record) and `_data` (the data, what containers
 * mount; docker's layout, so Mountpoint reads the same).
 *
 * In-use tracking: each record carries `refs`, the IDs of containers created
 * with the volume mounted. The containers code calls acquire() when it
 * creates a container and release() when it removes one. We keep the set in
 * the record (not computed from container records on every call) so that
 * `volume rm`/`prune` need nothing from the containers layer, which sits
 * above us; the rare leak a crash between "record written" and "container
 * written" could cause is repaired by reconcile(), which the engine calls at
 * open with the container IDs that exist.
 *
 * `active` is the subset of refs whose container is running: a volume with
 * local-driver mount options (type=tmpfs, o=bind, ...) stays mounted on its
 * _data while `active` is non-empty (docker mounts on first use and unmounts
 * on last).
 *
 * Every change to one volume runs under a per-name mutex, and stores are
 * shared per root (volumeStore()), so "rm while a container acquires it"
 * cannot interleave inside one process; the engine owns the root exclusively.
 */
import { randomBytes } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { EngineError, errnoCode, invalid, notFound } from '../common/errors.ts';
import { mkdirp, readJsonIfExistsSync, writeJsonAtomic } from '../common/fs.ts';
import { newId } from '../common/ids.ts';
import { KeyedMutex } from '../common/lock.ts';
import { FrozenStore } from '../snapshots/frozen.ts';
import { adoptFrozenVolume, mountOverlayVolumes } from './clones.ts';
import { isMountpoint, mountLocal, mountsBelow, unmount } from './mount.ts';

export interface VolumeRecord {
  name: string;
  driver: 'local';
  /** RFC 3339, seconds, UTC (docker's CreatedAt). */
  createdAt: string;
  labels: Record<string, string> | null;
  /** Local driver options: type, device, o. */
  options: Record<string, string> | null;
  /** Made for a container without a user-given name (image VOLUME, `-v /path`). */
  anonymous: boolean;
  refs: string[];
  active: string[];
  /**
   * A cloned (or clone-source) volume: _data is an overlay mount of _upper
   * over these frozen layers (bottom first), kept mounted while the volume
   * exists (clones.ts).
   */
  overlay?: { lowers: string[] };
}

export interface CreateVolumeOptions {
  labels?: Record<string, string> | null;
  options?: Record<string, string> | null;
  anonymous?: boolean;
  driver?: string;
}

const RECORD = 'volume.json';
/** docker's names.RestrictedNamePattern: at least two characters, no '/' and no leading '.'. */
export const VOLUME_NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const VALID_OPTS = new Set(['type', 'device', 'o']);
/** docker 20.10 local driver: each option needs the others listed. */
const MANDATORY_OPTS: Record<string, string[]> = { device: ['type'], type: ['device'], o: ['device', 'type'] };
const MAX_LABELS = 1000;
const MAX_STR = 4096;

export function validateVolumeName(name: string): void {
  if (typeof name !== 'string' || name.length === 0) throw invalid('volume name must not be empty');
  if (name.length === 1) throw invalid(`create ${name}: volume name is too short, names should be at least two alphanumeric characters`);
  if (name.length > 255 || !VOLUME_NAME_PATTERN.test(name)) {
    throw invalid(
      `create ${name}: ${JSON.stringify(name)} includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`,
    );
  }
}

export function validateDriverOptions(name: string, opts: Record<string, string> | null | undefined): void {
  if (!opts) return;
  for (const [k, v] of Object.entries(opts)) {
    if (!VALID_OPTS.has(k)) throw invalid(`create ${name}: invalid option key: ${JSON.stringify(k)}`);
    if (typeof v !== 'string' || v.length > MAX_STR || /[\0\n]/.test(v)) throw invalid(`create ${name}: invalid value for option ${JSON.stringify(k)}`);
  }
  for (const [k, needs] of Object.entries(MANDATORY_OPTS)) {
    if (!(k in opts)) continue;
    for (const n of needs) if (!(n in opts)) throw invalid(`create ${name}: missing required option: ${JSON.stringify(n)}`);
  }
  // mount(8) reads a leading '-' as a flag; a device is a path, a fs name or host:path.
  if (opts.type !== undefined && !/^[a-zA-Z0-9_.]+$/.test(opts.type)) throw invalid(`create ${name}: invalid mount type ${JSON.stringify(opts.type)}`);
  if (opts.device?.startsWith('-') || opts.o?.startsWith('-')) throw invalid(`create ${name}: option values must not start with '-'`);
}

function validateLabels(labels: Record<string, string> | null | undefined): void {
  if (!labels) return;
  if (typeof labels !== 'object' || Array.isArray(labels)) throw invalid('volume labels must be an object of strings');
  const entries = Object.entries(labels);
  if (entries.length > MAX_LABELS) throw invalid(`too many volume labels (over ${MAX_LABELS})`);
  for (const [k, v] of entries)
    if (typeof v !== 'string' || k.length > MAX_STR || v.length > MAX_STR) throw invalid(`invalid volume label ${JSON.stringify(k.slice(0, 100))}`);
}

function rfc3339Seconds(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z');
}

export class VolumeStore {
  /** <data-root>/volumes */
  readonly root: string;
  readonly mu = new KeyedMutex();
  /** Volume data frozen for clones (clones.ts). */
  readonly frozen: FrozenStore;

  constructor(root: string) {
    this.root = path.resolve(root);
    this.frozen = new FrozenStore(path.join(this.root, '.frozen'));
  }

  async init(): Promise<void> {
    await mkdirp(this.root, 0o701);
    // Leftovers of interrupted creates/removals (never visible as volumes).
    for (const e of await fsp.readdir(this.root)) {
      if (e.startsWith('.tmp-') || e.startsWith('.rm-')) await this.removeTree(path.join(this.root, e));
    }
    await this.frozen.init();
    await this.frozen.rollForward((r) => adoptFrozenVolume(this, r.owner, r.id));
    await mountOverlayVolumes(this);
  }

  /** Writes a record (atomic); the caller holds the volume's mutex. */
  async writeRecord(r: VolumeRecord): Promise<void> {
    await writeJsonAtomic(path.join(this.dir(r.name), RECORD), r);
  }

  /** Frozen layers some volume stacks: the reference count, derived from the records. */
  async frozenInUse(): Promise<Set<string>> {
    const out = new Set<string>();
    for (const v of await this.list()) for (const f of v.overlay?.lowers ?? []) out.add(f);
    return out;
  }

  dir(name: string): string {
    return path.join(this.root, name);
  }

  /** The host path containers mount: <data-root>/volumes/<name>/_data. */
  dataPath(name: string): string {
    return path.join(this.root, name, '_data');
  }

  async get(name: string): Promise<VolumeRecord | undefined> {
    return this.record(name);
  }

  /**
   * A volume's record, read at once: a few hundred bytes, where a round trip
   * through the thread pool costs more than the read (list reads them by the dozen).
   */
  private record(name: string): VolumeRecord | undefined {
    if (!VOLUME_NAME_PATTERN.test(name) || name.length > 255) return undefined;
    return readJsonIfExistsSync<VolumeRecord>(path.join(this.dir(name), RECORD));
  }

  async inspect(name: string): Promise<VolumeRecord> {
    const r = await this.get(name);
    if (!r) throw notFound(`get ${name}: no such volume`);
    return r;
  }

  async list(): Promise<VolumeRecord[]> {
    let names: string[];
    try {
      names = await fsp.readdir(this.root);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return [];
      throw e;
    }
    // Ten records read at once took ~0.15 ms, ~0.7 through the thread pool,
    // tens of ms one await after another (compose's up lists them every
    // time): 64 between turns of the event loop.
    const out: VolumeRecord[] = [];
    const sorted = names.sort();
    for (let i = 0; i < sorted.length; i += 64) {
      if (i) await new Promise((r) => setImmediate(r));
      for (const n of sorted.slice(i, i + 64)) {
        const r = this.record(n);
        if (r) out.push(r);
      }
    }
    return out;
  }

  /**
   * Creates a volume, or returns the existing one of that name (docker's
   * rule: create is idempotent for the same driver). No name makes an
   * anonymous volume with a 64-hex name.
   */
  async create(name: string | undefined, opts: CreateVolumeOptions = {}): Promise<{ record: VolumeRecord; created: boolean }> {
    const n = name || newId();
    this.validateCreate(n, opts);
    return this.mu.run(n, () => this.createLocked(n, !name || !!opts.anonymous, opts));
  }

  private validateCreate(n: string, opts: CreateVolumeOptions): void {
    validateVolumeName(n);
    if (opts.driver && opts.driver !== 'local')
      throw new EngineError('NOT_FOUND', `create ${n}: error looking up volume plugin ${opts.driver}: plugin "${opts.driver}" not found`);
    validateDriverOptions(n, opts.options);
    validateLabels(opts.labels);
  }

  /** Caller holds the volume's mutex. */
  private async createLocked(n: string, anonymous: boolean, opts: CreateVolumeOptions): Promise<{ record: VolumeRecord; created: boolean }> {
    {
      const existing = await this.get(n);
      if (existing) return { record: existing, created: false };
      const rec: VolumeRecord = {
        name: n,
        driver: 'local',
        createdAt: rfc3339Seconds(new Date()),
        labels: opts.labels && Object.keys(opts.labels).length ? { ...opts.labels } : null,
        options: opts.options && Object.keys(opts.options).length ? { ...opts.options } : null,
        anonymous,
        refs: [],
        active: [],
      };
      // Build it under a temp name and rename: a volume is either complete or absent.
      await mkdirp(this.root, 0o701);
      const tmp = path.join(this.root, `.tmp-${randomBytes(6).toString('hex')}`);
      await fsp.mkdir(tmp, 0o701);
      try {
        await fsp.mkdir(path.join(tmp, '_data'), 0o755);
        await writeJsonAtomic(path.join(tmp, RECORD), rec);
        await fsp.rename(tmp, this.dir(n));
      } catch (e) {
        await fsp.rm(tmp, { recursive: true, force: true });
        throw e;
      }
      return { record: rec, created: true };
    }
  }

  private async update(name: string, fn: (r: VolumeRecord) => boolean | Promise<boolean>): Promise<VolumeRecord> {
    return this.mu.run(name, async () => {
      const r = await this.inspect(name);
      if (await fn(r)) await writeJsonAtomic(path.join(this.dir(name), RECORD), r);
      return r;
    });
  }

  /**
   * Records that container `cid` uses the volume; with `create`, a missing
   * volume is created first, in the same critical section (so a concurrent
   * prune cannot remove it in between).
   */
  async acquire(name: string, cid: string, create?: CreateVolumeOptions): Promise<{ record: VolumeRecord; created: boolean }> {
    if (create) this.validateCreate(name, create);
    return this.mu.run(name, async () => {
      let created = false;
      if (create) created = (await this.createLocked(name, !!create.anonymous, create)).created;
      const r = await this.inspect(name);
      if (!r.refs.includes(cid)) {
        r.refs.push(cid);
        await writeJsonAtomic(path.join(this.dir(name), RECORD), r);
      }
      return { record: r, created };
    });
  }

  /** Drops container `cid`'s reference; a missing volume is not an error (it may be gone already). */
  async release(name: string, cid: string): Promise<VolumeRecord | undefined> {
    if (!(await this.get(name))) return undefined;
    return this.update(name, (r) => {
      const before = r.refs.length + r.active.length;
      r.refs = r.refs.filter((x) => x !== cid);
      r.active = r.active.filter((x) => x !== cid);
      return r.refs.length + r.active.length !== before;
    }).catch((e) => {
      if (e instanceof EngineError && e.code === 'NOT_FOUND') return undefined;
      throw e;
    });
  }

  /**
   * Container `cid` starts with this volume: a volume with driver options is
   * mounted on its _data unless it already is.
   */
  async activate(name: string, cid: string): Promise<VolumeRecord> {
    return this.update(name, async (r) => {
      if (r.options && !(await isMountpoint(this.dataPath(name)))) await mountLocal(r.options, this.dataPath(name));
      if (r.active.includes(cid)) return false;
      r.active.push(cid);
      return true;
    });
  }

  /** Container `cid` stopped: the last user of an options volume unmounts it. */
  async deactivate(name: string, cid: string): Promise<void> {
    if (!(await this.get(name))) return;
    await this.update(name, async (r) => {
      const changed = r.active.includes(cid);
      r.active = r.active.filter((x) => x !== cid);
      if (r.options && r.active.length === 0 && (await isMountpoint(this.dataPath(name)))) await unmount(this.dataPath(name));
      return changed;
    });
  }

  /**
   * Removes a volume. Refused while a container references it, with
   * dockerd's message; `force` (docker's purge-on-error) only makes a
   * missing volume not an error.
   */
  async remove(name: string, opts: { force?: boolean } = {}): Promise<VolumeRecord | undefined> {
    return this.mu.run(name, async () => {
      const r = await this.get(name);
      if (!r) {
        if (opts.force) return undefined;
        throw notFound(`get ${name}: no such volume`);
      }
      if (r.refs.length) throw new EngineError('CONFLICT', `remove ${name}: volume is in use - [${r.refs.join(', ')}]`);
      // Never delete through a mount: unmount whatever sits under the volume first.
      for (const m of await mountsBelow(this.dir(name))) await unmount(m);
      const gone = path.join(this.root, `.rm-${name}-${randomBytes(4).toString('hex')}`);
      await fsp.rename(this.dir(name), gone);
      await this.removeTree(gone);
      // The last volume stacking a frozen layer frees it.
      if (r.overlay?.lowers.length) await this.frozen.gc(await this.frozenInUse(), r.overlay.lowers);
      return r;
    });
  }

  private async removeTree(p: string): Promise<void> {
    for (const m of await mountsBelow(p)) await unmount(m);
    await fsp.rm(p, { recursive: true, force: true });
  }

  /**
   * Drops references of containers that no longer exist and activations of
   * containers no longer running (after a crash or a host reboot).
   */
  async reconcile(containers: ReadonlySet<string>, running: ReadonlySet<string>): Promise<void> {
    for (const v of await this.list()) {
      if (v.refs.every((c) => containers.has(c)) && v.active.every((c) => running.has(c))) continue;
      await this.update(v.name, async (r) => {
        r.refs = r.refs.filter((c) => containers.has(c));
        r.active = r.active.filter((c) => running.has(c));
        if (r.options && r.active.length === 0 && (await isMountpoint(this.dataPath(r.name)))) await unmount(this.dataPath(r.name));
        return true;
      });
    }
  }
}
