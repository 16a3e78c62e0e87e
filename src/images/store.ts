import fsp from 'node:fs/promises';
import path from 'node:path';
import { EngineError } from '../common/errors.ts';
import { mkdirp, readJsonIfExists, writeJsonAtomic } from '../common/fs.ts';
import { KeyedMutex } from '../common/lock.ts';
import { type Digest, digestHex, isDigest } from '../oci/digest.ts';
import { familiarName, formatReference, type ImageReference, parseReference, repositoryName } from '../oci/reference.ts';
import type { Descriptor, ImageConfig } from '../oci/types.ts';

/**
 * What keel knows of one image, keyed by its ID (the config digest). The
 * config and manifest themselves are blobs in the content store; the
 * layers are unpacked by chain ID in the snapshotter.
 */
export interface ImageRecord {
  id: Digest;
  /** Manifest as stored in the content store (pulled, loaded or made by keel). */
  manifest: Descriptor;
  /** Compressed or plain layer blobs, aligned with config.rootfs.diff_ids. */
  layers: Descriptor[];
  chainIds: Digest[];
  /** Sum of the uncompressed layer tar sizes (docker's Size). */
  size: number;
  /** When keel stored it. */
  stored: string;
  /** ID of the image this was built or committed from, if known. */
  parent?: Digest;
}

/** Names: normalized `repo:tag` and `repo@digest` → image ID. */
type NameMap = Record<string, Digest>;

/**
 * The image metadata store: one JSON file per image, plus one name map.
 * Every write is atomic; an image record is written only after its config,
 * manifest and layers are in place, and names only after their record, so
 * a crash leaves at worst unreferenced blobs and layers (collected later),
 * never a name pointing at a half image.
 */
export class ImageStore {
  readonly dir: string;
  private readonly namesFile: string;
  private names: NameMap = {};
  private records = new Map<Digest, ImageRecord>();
  private readonly mutex = new KeyedMutex();

  constructor(dir: string) {
    this.dir = dir;
    this.namesFile = path.join(dir, 'names.json');
  }

  async init(): Promise<void> {
    await mkdirp(path.join(this.dir, 'records'));
    for (const n of await fsp.readdir(path.join(this.dir, 'records'))) {
      if (!n.endsWith('.json')) continue;
      const rec = await readJsonIfExists<ImageRecord>(path.join(this.dir, 'records', n));
      if (rec && isDigest(rec.id)) this.records.set(rec.id, rec);
    }
    const names = (await readJsonIfExists<NameMap>(this.namesFile)) ?? {};
    // A name whose record is gone (crash between the two writes) is dropped.
    this.names = Object.fromEntries(Object.entries(names).filter(([, id]) => this.records.has(id)));
  }

  list(): ImageRecord[] {
    return [...this.records.values()];
  }

  get(id: Digest): ImageRecord | undefined {
    return this.records.get(id);
  }

  /** Every name (normalized) pointing at an image. */
  namesOf(id: Digest): string[] {
    return Object.entries(this.names)
      .filter(([, v]) => v === id)
      .map(([k]) => k);
  }

  /** docker's RepoTags, e.g. `busybox:latest`. */
  repoTags(id: Digest): string[] {
    return this.namesOf(id)
      .filter((n) => !n.includes('@'))
      .map((n) => familiarName(parseReference(n)));
  }

  /** docker's RepoDigests, e.g. `busybox@sha256:…`. */
  repoDigests(id: Digest): string[] {
    return this.namesOf(id)
      .filter((n) => n.includes('@'))
      .map((n) => familiarName(parseReference(n)));
  }

  /**
   * Finds an image by full or short ID (`sha256:` optional, any unique
   * prefix), by name (`busybox`, `busybox:1`), or by `repo@digest`.
   */
  resolve(ref: string): ImageRecord {
    const rec = this.tryResolve(ref);
    if (!rec) throw new EngineError('NOT_FOUND', `No such image: ${displayRef(ref)}`);
    return rec;
  }

  tryResolve(ref: string): ImageRecord | undefined {
    const hex = ref.startsWith('sha256:') ? ref.slice(7) : ref;
    if (/^[a-f0-9]{64}$/.test(hex)) {
      const rec = this.records.get(`sha256:${hex}`);
      if (rec) return rec;
    }
    let parsed: ImageReference | undefined;
    try {
      parsed = parseReference(ref);
    } catch {
      parsed = undefined;
    }
    if (parsed) {
      const id = this.names[formatReference(parsed)] ?? (parsed.digest ? this.names[`${repositoryName(parsed)}@${parsed.digest}`] : undefined);
      if (id) return this.records.get(id);
    }
    if (/^[a-f0-9]{1,63}$/.test(hex) && (ref.startsWith('sha256:') || !parsed || !ref.includes(':'))) {
      const matches = [...this.records.keys()].filter((id) => id.slice(7).startsWith(hex));
      if (matches.length === 1) return this.records.get(matches[0]!);
      if (matches.length > 1) throw new EngineError('INVALID_ARGUMENT', `image ID prefix ${ref} is ambiguous: give more characters`);
    }
    return undefined;
  }

  /** Which image a normalized name points at. */
  lookupName(name: string): Digest | undefined {
    return this.names[name];
  }

  /** Adds (or replaces) an image record, then points `names` at it. */
  async put(rec: ImageRecord, names: string[] = []): Promise<string[]> {
    return this.mutex.run('store', async () => {
      await writeJsonAtomic(this.recordFile(rec.id), rec);
      this.records.set(rec.id, rec);
      const displaced = this.setNames(rec.id, names);
      await this.saveNames();
      return displaced;
    });
  }

  /** Points a name at an image; returns the ID it pointed at before, if another. */
  async tag(id: Digest, name: string): Promise<Digest | undefined> {
    return this.mutex.run('store', async () => {
      const before = this.names[name];
      this.setNames(id, [name]);
      await this.saveNames();
      return before !== id ? before : undefined;
    });
  }

  async untag(name: string): Promise<void> {
    await this.mutex.run('store', async () => {
      delete this.names[name];
      await this.saveNames();
    });
  }

  /** Deletes an image record and all names pointing at it. */
  async delete(id: Digest): Promise<void> {
    await this.mutex.run('store', async () => {
      for (const n of this.namesOf(id)) delete this.names[n];
      await this.saveNames();
      this.records.delete(id);
      await fsp.rm(this.recordFile(id), { force: true });
    });
  }

  private setNames(id: Digest, names: string[]): string[] {
    const displaced: string[] = [];
    for (const n of names) {
      const prev = this.names[n];
      if (prev && prev !== id) displaced.push(prev);
      this.names[n] = id;
    }
    return displaced;
  }

  private async saveNames(): Promise<void> {
    await writeJsonAtomic(this.namesFile, this.names);
  }

  private recordFile(id: Digest): string {
    return path.join(this.dir, 'records', `${digestHex(id)}.json`);
  }
}

/** Docker's notion of when an image was made: the config's `created`. */
export function imageCreated(config: ImageConfig): number {
  const t = config.created ? Date.parse(config.created) : NaN;
  return Number.isFinite(t) ? Math.floor(t / 1000) : 0;
}

/** How docker names a missing image: `busybox` → `busybox:latest`. */
function displayRef(ref: string): string {
  try {
    return /^(sha256:)?[a-f0-9]{1,64}$/.test(ref) ? ref : familiarName(parseReference(ref));
  } catch {
    return ref;
  }
}
