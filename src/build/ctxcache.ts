/**
 * Unpacked build contexts kept for the next build that uploads the same
 * bytes. The docker CLI tars an unchanged directory into the same tar, and in
 * the edit-build loop most builds send the context of the last one: a no-op
 * rebuild spent most of its daemon time unpacking it again and hashing the
 * files its COPY steps read. An upload up to 64 MB is held while it is
 * hashed (its first 16 MB in memory, the rest in a file); when a context
 * with that digest is kept, what was held is dropped
 * and the kept directory serves the build (nothing writes into a context:
 * COPY and bind mounts only read it, a read-write bind is an overlay over
 * it). A larger upload streams into place as before, without a spool and
 * without being kept. The per-file content hashes (`hashes`) live with the
 * kept directory, so unchanged files are not read again either.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { mkdirp } from '../common/fs.ts';
import { type BuildContext, receiveContext, tempDir } from './context.ts';

/** Uploads up to this size are spooled and may be kept; the first MEM_MAX bytes of one are held in memory. */
const SPOOL_MAX = 64 << 20;
const MEM_MAX = 16 << 20;
/** Contexts kept at once (the last builds of a daemon's clients), each up to KEEP_MAX bytes unpacked. */
const MAX_KEPT = 2;
const KEEP_MAX = 256 << 20;

/** Where kept contexts live (emptied at start-up, like the temp root). */
export function keptRoot(dataRoot: string): string {
  return path.join(dataRoot, 'build', 'contexts');
}

interface Kept {
  digest: string;
  ctx: BuildContext;
  users: number;
  evicted: boolean;
  used: number;
}

export class ContextCache {
  private readonly kept = new Map<string, Kept>();
  private readonly dataRoot: string;

  constructor(dataRoot: string) {
    this.dataRoot = dataRoot;
  }

  /** Receives a context (see receiveContext); release() of the result hands it back. */
  async receive(body: AsyncIterable<Uint8Array>, o: { maxBytes?: number; signal?: AbortSignal } = {}): Promise<BuildContext> {
    const spool = await tempDir(this.dataRoot, 'spool');
    try {
      const file = path.join(spool.dir, 'context');
      const head = await spoolHead(body, file, Math.min(SPOOL_MAX, o.maxBytes ?? SPOOL_MAX), o.signal);
      if (!head.complete) {
        // Too large to keep: what was spooled, then the rest of the upload, stream into place.
        return await receiveContext(this.dataRoot, concat(head.replay(), head.rest), o);
      }
      const raw = `sha256:${head.hash}`;
      const k = this.kept.get(raw);
      if (k) return this.lend(k);
      const fresh = await receiveContext(this.dataRoot, concat(head.replay()), o);
      if (this.kept.has(raw) || fresh.size > KEEP_MAX) return fresh;
      const ctx = await this.keep(fresh);
      const entry: Kept = { digest: raw, ctx, users: 0, evicted: false, used: 0 };
      this.kept.set(raw, entry);
      const lent = this.lend(entry);
      this.evict();
      return lent;
    } finally {
      await spool.release();
    }
  }

  /** Moves a context out of the temp root (which holds only what builds in flight use) into the kept ones. */
  private async keep(ctx: BuildContext): Promise<BuildContext> {
    const root = keptRoot(this.dataRoot);
    await mkdirp(root, 0o700);
    const dir = path.join(root, randomBytes(8).toString('hex'));
    try {
      await fsp.rename(path.dirname(ctx.dir), dir);
    } catch {
      return ctx;
    }
    return { ...ctx, dir: path.join(dir, path.basename(ctx.dir)), release: () => fsp.rm(dir, { recursive: true, force: true }) };
  }

  private lend(k: Kept): BuildContext {
    k.users++;
    k.used = performance.now();
    let released = false;
    return {
      ...k.ctx,
      hashes: (k.ctx.hashes ??= new Map()),
      release: async () => {
        if (released) return;
        released = true;
        k.users--;
        if (k.evicted && k.users === 0) await k.ctx.release();
      },
    };
  }

  /** Drops the least recently used contexts over MAX_KEPT (removed once no build uses them). */
  private evict(): void {
    const byAge = [...this.kept.values()].sort((a, b) => a.used - b.used);
    while (this.kept.size > MAX_KEPT) {
      const k = byAge.shift()!;
      this.kept.delete(k.digest);
      k.evicted = true;
      // an evicted context's temp dir: a failed removal leaves a dir the next prune takes
      if (k.users === 0) void k.ctx.release().catch(() => {});
    }
  }

  /** Removes every kept context no build uses (builder prune). */
  async clear(): Promise<void> {
    for (const k of [...this.kept.values()]) {
      this.kept.delete(k.digest);
      k.evicted = true;
      // as above: the context is gone from the cache either way
      if (k.users === 0) await k.ctx.release().catch(() => {});
    }
  }
}

/**
 * Takes the upload while hashing it, up to `max` bytes: the first MEM_MAX
 * bytes in memory (a context sent again is then never written), more in
 * `file`. When the upload is longer than `max`, stops there and `rest` is
 * the iterator of what follows.
 */
async function spoolHead(body: AsyncIterable<Uint8Array>, file: string, max: number, signal?: AbortSignal): Promise<Spooled> {
  const it = body[Symbol.asyncIterator]();
  const hash = createHash('sha256');
  let mem: Uint8Array[] = [];
  let fh: fsp.FileHandle | undefined;
  let n = 0;
  let complete = false;
  try {
    for (;;) {
      signal?.throwIfAborted();
      const r = await it.next();
      if (r.done) {
        complete = true;
        break;
      }
      hash.update(r.value);
      n += r.value.length;
      if (!fh && n <= MEM_MAX) mem.push(r.value);
      else {
        if (!fh) {
          fh = await fsp.open(file, 'wx', 0o600);
          for (const m of mem) await fh.write(m);
          mem = [];
        }
        await fh.write(r.value);
      }
      if (n >= max) break;
    }
  } catch (e) {
    await it.return?.();
    throw e;
  } finally {
    await fh?.close();
  }
  const replay = fh ? () => fs.createReadStream(file) : () => mem;
  return { complete, hash: hash.digest('hex'), replay, rest: it };
}

interface Spooled {
  complete: boolean;
  hash: string;
  /** What was taken, again. */
  replay(): AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
  rest: AsyncIterator<Uint8Array>;
}

async function* concat(head: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, rest?: AsyncIterator<Uint8Array>): AsyncGenerator<Uint8Array> {
  try {
    for await (const c of head) yield c;
    for (;;) {
      const r = await rest?.next();
      if (!r || r.done) break;
      yield r.value;
    }
  } finally {
    await rest?.return?.();
  }
}
