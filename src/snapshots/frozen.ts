import { randomBytes } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { EngineError, errnoCode } from '../common/errors.ts';
import { crashPoint } from '../common/crashpoint.ts';
import { exec } from '../common/exec.ts';
import { diskUsage, mkdirp, readJsonIfExists, writeJsonAtomic } from '../common/fs.ts';

/**
 * Frozen layers: a writable directory (a container's overlay upper, a
 * volume's data) turned into a read-only layer that clones stack their own
 * upper over. Freezing is a rename, so it costs the same for 1 MB or 10 GB.
 *
 * Layout: <root>/<id>/frozen.json and <root>/<id>/diff. A layer is never
 * changed after it is made. Who uses it is not stored here: the owners'
 * records (snapshot.json, volume.json) list the frozen layers they stack, each
 * written atomically, and a layer no record lists is garbage (derived
 * reference counts cannot drift from the records after a crash).
 *
 * Freezing a directory in place is a three-step change across two records,
 * made crash-safe by an intent: (1) frozen.json with `pending` and the owner
 * is written, (2) the owner's directory is renamed to <id>/diff, (3) the
 * owner's record lists <id>, then `pending` is cleared. After a crash, a
 * pending layer whose diff exists is rolled forward (the owner's data is
 * there and must stay reachable), one without a diff is dropped.
 */
export interface FrozenRecord {
  id: string;
  created: string;
  /** Who the data came from (a snapshot key, a volume name): for people and for roll-forward. */
  owner: string;
  /** Set until the owner's record lists the layer (see above). */
  pending?: boolean;
}

const ID = /^[a-f0-9]{16}$/;

export class FrozenStore {
  readonly root: string;

  constructor(root: string) {
    this.root = root;
  }

  async init(): Promise<void> {
    await mkdirp(this.root, 0o700);
    for (const n of await fsp.readdir(this.root))
      if (n.startsWith('.tmp-') || n.startsWith('.rm-')) await fsp.rm(path.join(this.root, n), { recursive: true, force: true });
  }

  dir(id: string): string {
    if (!ID.test(id)) throw new EngineError('INVALID_ARGUMENT', `invalid frozen layer id "${id}"`);
    return path.join(this.root, id, 'diff');
  }

  async list(): Promise<FrozenRecord[]> {
    const out: FrozenRecord[] = [];
    for (const n of await fsp.readdir(this.root).catch(() => [] as string[])) {
      if (!ID.test(n)) continue;
      const r = await readJsonIfExists<FrozenRecord>(path.join(this.root, n, 'frozen.json')).catch(() => undefined);
      // A directory without a record is a freeze cut short before its intent was written.
      out.push(r ?? { id: n, created: '', owner: '', pending: true });
    }
    return out;
  }

  /**
   * Moves `dir` (which must not be in use) into a new frozen layer. The
   * caller lists the returned id in its owner's record, then calls commit();
   * `rollForward` in its init does the same for pending layers after a crash.
   */
  async freeze(dir: string, owner: string): Promise<string> {
    const id = randomBytes(8).toString('hex');
    const top = path.join(this.root, id);
    await fsp.mkdir(top, { mode: 0o700 });
    await writeJsonAtomic(path.join(top, 'frozen.json'), { id, created: new Date().toISOString(), owner, pending: true } satisfies FrozenRecord);
    crashPoint('freeze-intent');
    try {
      await fsp.rename(dir, path.join(top, 'diff'));
    } catch (e) {
      await fsp.rm(top, { recursive: true, force: true });
      if (errnoCode(e) === 'EXDEV') throw new EngineError('INTERNAL', `cannot freeze ${dir}: it is on another filesystem than ${this.root}`);
      throw e;
    }
    crashPoint('freeze-renamed');
    return id;
  }

  /**
   * A frozen layer that is a copy of `dir` (cp -a: owners, modes, xattrs,
   * whiteouts, hard links), for a directory that stays in use (a paused
   * container's upper). Costs what `dir` holds. Appears by rename only when
   * complete, and is not pending: nobody's data lives only there.
   */
  async copy(dir: string, owner: string, signal?: AbortSignal): Promise<string> {
    const id = randomBytes(8).toString('hex');
    const tmp = path.join(this.root, `.tmp-${id}`);
    await fsp.mkdir(path.join(tmp, 'diff'), { recursive: true, mode: 0o755 });
    try {
      await exec(['cp', '-a', '--', `${dir}/.`, `${tmp}/diff/`], { timeoutMs: 60 * 60_000, signal });
      const st = await fsp.stat(dir);
      await fsp.chown(path.join(tmp, 'diff'), st.uid, st.gid);
      await fsp.chmod(path.join(tmp, 'diff'), st.mode & 0o7777);
      await writeJsonAtomic(path.join(tmp, 'frozen.json'), { id, created: new Date().toISOString(), owner } satisfies FrozenRecord);
      await fsp.rename(tmp, path.join(this.root, id));
    } catch (e) {
      await fsp.rm(tmp, { recursive: true, force: true });
      throw e;
    }
    return id;
  }

  async commit(id: string): Promise<void> {
    const file = path.join(this.root, id, 'frozen.json');
    const r = await readJsonIfExists<FrozenRecord>(file);
    if (!r?.pending) return;
    delete r.pending;
    await writeJsonAtomic(file, r);
  }

  /**
   * After a crash: for each pending layer, `adopt(record)` is called when its
   * data arrived (the owner must list it; return false when the owner is
   * gone) and the layer is committed; a pending layer without data is dropped.
   */
  async rollForward(adopt: (r: FrozenRecord) => Promise<boolean>): Promise<void> {
    for (const r of await this.list()) {
      if (!r.pending) continue;
      const hasData = await fsp.stat(this.dir(r.id)).then(
        () => true,
        () => false,
      );
      if (hasData && r.owner && (await adopt(r))) await this.commit(r.id);
      else await this.remove(r.id);
    }
  }

  /** Removes every committed layer that `inUse` does not list. Returns the bytes freed. */
  async gc(inUse: ReadonlySet<string>, candidates?: Iterable<string>): Promise<number> {
    let freed = 0;
    const ids = candidates ? [...candidates] : (await this.list()).filter((r) => !r.pending).map((r) => r.id);
    for (const id of ids) {
      if (inUse.has(id) || !ID.test(id)) continue;
      const r = await readJsonIfExists<FrozenRecord>(path.join(this.root, id, 'frozen.json')).catch(() => undefined);
      if (r?.pending) continue;
      freed += await diskUsage(this.dir(id)).catch(() => 0);
      await this.remove(id);
    }
    return freed;
  }

  async remove(id: string): Promise<void> {
    const trash = path.join(this.root, `.rm-${id}`);
    try {
      await fsp.rename(path.join(this.root, id), trash);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return;
      throw e;
    }
    await fsp.rm(trash, { recursive: true, force: true });
  }

  /** `system df`: every layer with its size. */
  async usage(): Promise<{ id: string; owner: string; created: string; size: number }[]> {
    const out = [];
    for (const r of await this.list())
      if (!r.pending) out.push({ id: r.id, owner: r.owner, created: r.created, size: await diskUsage(this.dir(r.id)).catch(() => 0) });
    return out;
  }
}
