import fsp from 'node:fs/promises';
import path from 'node:path';
import { EngineError, errnoCode } from '../common/errors.ts';
import { mkdirp, writeFileAtomic } from '../common/fs.ts';
import { NAME_PATTERN } from '../common/ids.ts';
import { log } from '../common/log.ts';
import type { ContainerRecord } from './types.ts';

/**
 * Container records in memory, backed by <dir>/<id>/config.json. Writes are
 * atomic and durable (temp file, fsync, rename, fsync of the directory): a
 * record must be on disk before runc is asked to create what it describes,
 * or a crash leaves a container no restarted daemon knows of. The saves of
 * one record run one after another and each writes the record as it is
 * when its turn comes, so an older state never lands after a newer one.
 */
export class ContainerStore {
  readonly dir: string;
  private readonly byId = new Map<string, ContainerRecord>();
  private readonly byName = new Map<string, string>();
  /** The last queued save of each record. */
  private readonly writes = new Map<string, Promise<void>>();

  constructor(dir: string) {
    this.dir = dir;
  }

  async load(): Promise<void> {
    await mkdirp(this.dir, 0o700);
    for (const id of await fsp.readdir(this.dir)) {
      if (!/^[a-f0-9]{64}$/.test(id)) continue;
      let rec: ContainerRecord;
      try {
        rec = JSON.parse(await fsp.readFile(path.join(this.dir, id, 'config.json'), 'utf8')) as ContainerRecord;
      } catch (e) {
        // A directory without a record is a create that crashed before writing it.
        if (errnoCode(e) === 'ENOENT') await fsp.rm(path.join(this.dir, id), { recursive: true, force: true });
        else log.warn('skipping unreadable container record', { id, error: (e as Error).message });
        continue;
      }
      if (rec.id !== id) continue;
      this.byId.set(id, rec);
      this.byName.set(rec.name, id);
    }
  }

  containerDir(id: string): string {
    return path.join(this.dir, id);
  }

  /** The container's json-file log (conmon writes it). */
  logPath(id: string): string {
    return path.join(this.dir, id, 'container.log');
  }

  list(): ContainerRecord[] {
    return [...this.byId.values()];
  }

  get(id: string): ContainerRecord | undefined {
    return this.byId.get(id);
  }

  /** Docker's lookup order: full ID, exact name, then a unique ID prefix. */
  tryFind(ref: string): ContainerRecord | undefined {
    const byId = this.byId.get(ref);
    if (byId) return byId;
    const name = ref.startsWith('/') ? ref.slice(1) : ref;
    const named = this.byName.get(name);
    if (named) return this.byId.get(named);
    if (!/^[a-f0-9]+$/.test(ref)) return undefined;
    let found: ContainerRecord | undefined;
    for (const [id, rec] of this.byId) {
      if (!id.startsWith(ref)) continue;
      if (found) throw new EngineError('INVALID_ARGUMENT', `multiple IDs found with provided prefix: ${ref}`);
      found = rec;
    }
    return found;
  }

  find(ref: string): ContainerRecord {
    const rec = this.tryFind(ref);
    if (!rec) throw new EngineError('NOT_FOUND', `No such container: ${ref}`);
    return rec;
  }

  /** Reserves a name; throws docker's 409 when another container has it. */
  checkName(name: string, selfId?: string): void {
    if (!NAME_PATTERN.test(name)) throw new EngineError('INVALID_ARGUMENT', `Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    const other = this.byName.get(name);
    if (other && other !== selfId) {
      throw new EngineError(
        'CONFLICT',
        `Conflict. The container name "/${name}" is already in use by container "${other}". You have to remove (or rename) that container to be able to reuse that name.`,
      );
    }
  }

  /** Adds a new record (name must be free) and writes it. */
  async add(rec: ContainerRecord): Promise<void> {
    this.checkName(rec.name);
    this.byId.set(rec.id, rec);
    this.byName.set(rec.name, rec.id);
    try {
      await mkdirp(this.containerDir(rec.id), 0o700);
      await this.save(rec);
    } catch (e) {
      this.forget(rec);
      throw e;
    }
  }

  async rename(rec: ContainerRecord, name: string): Promise<void> {
    this.checkName(name, rec.id);
    this.byName.delete(rec.name);
    rec.name = name;
    this.byName.set(name, rec.id);
    await this.save(rec);
  }

  /**
   * Writes the record. `durable: false` skips the fsyncs (writeFileAtomic): for a change that must survive
   * the daemon's kill -9 at once but may be lost with a power failure (which also stops every container).
   */
  save(rec: ContainerRecord, o: { durable?: boolean } = {}): Promise<void> {
    const prev = this.writes.get(rec.id) ?? Promise.resolve();
    // an earlier write's failure was its caller's: this write replaces the whole record anyway
    const mine = prev.catch(() => {}).then(() => this.write(rec, o));
    this.writes.set(rec.id, mine);
    mine.finally(() => this.writes.get(rec.id) === mine && this.writes.delete(rec.id)).catch(() => {});
    return mine;
  }

  private async write(rec: ContainerRecord, o: { durable?: boolean }): Promise<void> {
    // A record removed while this save waited stays removed.
    if (!this.byId.has(rec.id)) return;
    await writeFileAtomic(path.join(this.containerDir(rec.id), 'config.json'), JSON.stringify(rec), 0o600, o);
  }

  forget(rec: ContainerRecord): void {
    this.byId.delete(rec.id);
    if (this.byName.get(rec.name) === rec.id) this.byName.delete(rec.name);
  }

  /** Drops the record and its directory (logs, hosts files) for good. */
  async remove(rec: ContainerRecord): Promise<void> {
    this.forget(rec);
    // the record is being removed: a failed pending write of it no longer matters
    await this.writes.get(rec.id)?.catch(() => {});
    await fsp.rm(this.containerDir(rec.id), { recursive: true, force: true });
  }
}
