import { createHash, type Hash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable, type Readable } from 'node:stream';
import { EngineError, errnoCode } from '../common/errors.ts';
import { fsyncDir, mkdirp } from '../common/fs.ts';
import { type Digest, digestHex, isDigest, parseDigest } from '../oci/digest.ts';

export interface Expected {
  digest?: Digest;
  size?: number;
  /** Refuse content larger than this when the exact size is not known (untrusted streams). */
  maxSize?: number;
}

/**
 * A content-addressed blob store: `blobs/sha256/<hex>`. Writers stream into
 * `ingest/`, hashing as they go; commit verifies digest and size, fsyncs and
 * renames into place, so a blob is either whole and verified or absent.
 * An ingest keyed by its expected digest survives an interrupted transfer and
 * can be resumed from where it stopped.
 */
export class ContentStore {
  readonly root: string;
  readonly blobDir: string;
  readonly ingestDir: string;

  constructor(root: string) {
    this.root = root;
    this.blobDir = path.join(root, 'blobs', 'sha256');
    this.ingestDir = path.join(root, 'ingest');
  }

  async init(): Promise<void> {
    await mkdirp(this.blobDir);
    await mkdirp(this.ingestDir);
  }

  path(d: Digest): string {
    return path.join(this.blobDir, digestHex(parseDigest(d)));
  }

  async has(d: Digest): Promise<boolean> {
    try {
      await fsp.access(this.path(d));
      return true;
    } catch {
      return false;
    }
  }

  async size(d: Digest): Promise<number> {
    try {
      return (await fsp.stat(this.path(d))).size;
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') throw new EngineError('NOT_FOUND', `blob ${d} not found in the content store`);
      throw e;
    }
  }

  /** Reads a whole blob into memory, refusing blobs larger than `max`. */
  async read(d: Digest, max = 4 << 20): Promise<Buffer> {
    const size = await this.size(d);
    if (size > max) throw new EngineError('INVALID_ARGUMENT', `blob ${d} is ${size} bytes, over the ${max}-byte limit`);
    return fsp.readFile(this.path(d));
  }

  openRead(d: Digest, start = 0): Readable {
    return fs.createReadStream(this.path(d), { start });
  }

  /** Stores bytes already in memory; returns their digest. */
  async put(data: Uint8Array, expected: Expected = {}): Promise<Digest> {
    const w = await this.writer(expected);
    try {
      await w.write(data);
      return await w.commit();
    } catch (e) {
      await w.abort();
      throw e;
    }
  }

  /** Streams a source into the store, verified against `expected`. */
  async putStream(source: Readable | AsyncIterable<Uint8Array>, expected: Expected = {}, signal?: AbortSignal): Promise<Digest> {
    const w = await this.writer(expected);
    try {
      await pipeline(source, w.asWritable(), { signal });
      return await w.commit();
    } catch (e) {
      await w.abort();
      throw e;
    }
  }

  /**
   * Opens a writer. With `resume` and an expected digest, an earlier partial
   * ingest of the same digest is kept: its bytes are re-hashed and `offset`
   * says where the caller should continue (e.g. an HTTP Range request).
   */
  async writer(expected: Expected = {}, opts: { resume?: boolean } = {}): Promise<BlobWriter> {
    if (expected.digest !== undefined) parseDigest(expected.digest);
    // One writer at a time owns a digest's partial (its .lock, made with O_EXCL):
    // two writers appending to one file would interleave, and the loser would
    // go on writing into the inode the winner had renamed into blobs/. A
    // writer that finds the lock taken writes a private ingest, not resumable.
    // A crash leaves the lock behind; cleanIngests (at start-up) removes it.
    let lock: string | undefined;
    if (expected.digest && opts.resume) {
      const l = path.join(this.ingestDir, `${digestHex(expected.digest)}.lock`);
      try {
        await (await fsp.open(l, 'wx', 0o600)).close();
        lock = l;
      } catch (e) {
        if (errnoCode(e) !== 'EEXIST') throw e;
      }
    }
    const name = expected.digest && lock ? `${digestHex(expected.digest)}.partial` : `${randomBytes(12).toString('hex')}.tmp`;
    const file = path.join(this.ingestDir, name);
    const hash = createHash('sha256');
    let offset = 0;
    if (lock && expected.digest) {
      try {
        for await (const chunk of fs.createReadStream(file)) {
          hash.update(chunk as Buffer);
          offset += (chunk as Buffer).length;
        }
      } catch (e) {
        if (errnoCode(e) !== 'ENOENT') throw e;
      }
    }
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(file, offset > 0 ? 'a' : 'w', 0o600);
    } catch (e) {
      if (lock) await fsp.rm(lock, { force: true });
      throw e;
    }
    return new BlobWriter(this, file, fh, hash, offset, expected, lock);
  }

  /** @internal */
  async _commit(tmp: string, digest: Digest): Promise<void> {
    const dest = this.path(digest);
    await fsp.rename(tmp, dest);
    await fsyncDir(this.blobDir);
  }

  async delete(d: Digest): Promise<void> {
    await fsp.rm(this.path(d), { force: true });
  }

  async list(): Promise<Digest[]> {
    const names = await fsp.readdir(this.blobDir);
    return names.map((n) => `sha256:${n}`).filter(isDigest);
  }

  /** Removes ingests left behind by a crash (not resumable partials younger than `keepPartialMs`). */
  async cleanIngests(keepPartialMs = 24 * 3600_000): Promise<void> {
    const now = Date.now();
    for (const n of await fsp.readdir(this.ingestDir).catch(() => [] as string[])) {
      const p = path.join(this.ingestDir, n);
      if (n.endsWith('.partial')) {
        const st = await fsp.stat(p).catch(() => undefined);
        if (st && now - st.mtimeMs < keepPartialMs) continue;
      }
      await fsp.rm(p, { force: true, recursive: true });
    }
  }
}

export class BlobWriter {
  private done = false;
  private readonly store: ContentStore;
  private readonly file: string;
  private readonly fh: fsp.FileHandle;
  private readonly hash: Hash;
  private readonly expected: Expected;
  /** The partial's lock this writer holds (ContentStore.writer). */
  private readonly lock: string | undefined;
  /** Bytes written so far (including a resumed prefix). */
  offset: number;

  constructor(store: ContentStore, file: string, fh: fsp.FileHandle, hash: Hash, offset: number, expected: Expected, lock?: string) {
    this.store = store;
    this.lock = lock;
    this.file = file;
    this.fh = fh;
    this.hash = hash;
    this.offset = offset;
    this.expected = expected;
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.admit(chunk.length);
    this.hash.update(chunk);
    this.offset += chunk.length;
    await this.fh.write(chunk);
  }

  /** write() of several chunks with one writev(2), without first copying them into one buffer. */
  async writev(chunks: Uint8Array[]): Promise<void> {
    let n = 0;
    for (const c of chunks) n += c.length;
    this.admit(n);
    for (const c of chunks) this.hash.update(c);
    this.offset += n;
    const { bytesWritten } = await this.fh.writev(chunks);
    if (bytesWritten < n) {
      // A short write (rare on a file): write what is left from where it stopped.
      const rest = Buffer.concat(chunks, n).subarray(bytesWritten);
      for (let off = 0; off < rest.length;) off += (await this.fh.write(rest, off)).bytesWritten;
    }
  }

  private admit(n: number): void {
    if (this.expected.size !== undefined && this.offset + n > this.expected.size) {
      throw new EngineError('INVALID_ARGUMENT', `blob ${this.expected.digest ?? ''} is larger than its declared size ${this.expected.size}`);
    }
    if (this.expected.maxSize !== undefined && this.offset + n > this.expected.maxSize) {
      throw new EngineError('INVALID_ARGUMENT', `content is larger than the ${this.expected.maxSize}-byte limit: refusing it`);
    }
  }

  asWritable(): Writable {
    return new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        this.write(chunk).then(() => cb(), cb);
      },
    });
  }

  /** Verifies and moves the blob into place; returns its digest. */
  async commit(): Promise<Digest> {
    try {
      return await this.verifyAndCommit();
    } finally {
      await this.unlock();
    }
  }

  private async unlock(): Promise<void> {
    if (this.lock) await fsp.rm(this.lock, { force: true });
  }

  private async verifyAndCommit(): Promise<Digest> {
    const digest: Digest = `sha256:${this.hash.digest('hex')}`;
    const { size, digest: want } = this.expected;
    await this.fh.sync();
    await this.fh.close();
    this.done = true;
    if (size !== undefined && this.offset !== size) {
      await fsp.rm(this.file, { force: true });
      throw new EngineError('INVALID_ARGUMENT', `size mismatch for blob ${want ?? digest}: expected ${size} bytes, got ${this.offset}`);
    }
    if (want !== undefined && want !== digest) {
      await fsp.rm(this.file, { force: true });
      throw new EngineError('INVALID_ARGUMENT', `digest mismatch: expected ${want}, got ${digest}`);
    }
    await this.store._commit(this.file, digest);
    return digest;
  }

  /** Drops the ingest. A resumable partial is kept unless `discard`. */
  async abort(discard = false): Promise<void> {
    if (!this.done) {
      this.done = true;
      await this.fh.close().catch(() => {}); // aborting: the write has failed or been abandoned already
    }
    if (discard || !this.file.endsWith('.partial')) await fsp.rm(this.file, { force: true });
    await this.unlock();
  }
}
