/**
 * The build context: the request body of POST /build (a tar, plain or
 * gzip/zstd/bzip2/xz compressed) unpacked into a private directory under the
 * data root. It streams: bytes go from the socket through the decompressor
 * into the same guarded tar applier that unpacks image layers (nothing lands
 * outside the directory, sizes and entry counts are bounded), and the tar is
 * hashed on the way. Nothing of it is held in memory.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { applyLayer } from '../archive/apply.ts';
import { cleanEntryPath } from '../archive/resolve.ts';
import { EngineError, invalid } from '../common/errors.ts';
import { mkdirp } from '../common/fs.ts';

/** Default bound on the uncompressed context (the issue's 1 GB context must fit). */
export const DEFAULT_MAX_CONTEXT_BYTES = 8 * 1024 ** 3;
export const MAX_DOCKERFILE_BYTES = 4 << 20;

export interface BuildContext {
  /** The unpacked context (root-owned, 0700 parent). */
  dir: string;
  /** sha256 of the uncompressed context tar. */
  digest: string;
  size: number;
  /** Content hashes of its files by absolute path, kept with a context reused by later builds (ctxcache.ts). */
  hashes?: Map<string, string>;
  release(): Promise<void>;
}

/** Where contexts are unpacked; anything left there by a crash is removed at the next start. */
export function contextRoot(dataRoot: string): string {
  return path.join(dataRoot, 'build', 'tmp');
}

export async function cleanContextRoot(dataRoot: string): Promise<void> {
  const root = contextRoot(dataRoot);
  await fsp.rm(root, { recursive: true, force: true });
  await mkdirp(root, 0o700);
}

/** A fresh private temp dir under the build root. */
export async function tempDir(dataRoot: string, prefix: string): Promise<{ dir: string; release: () => Promise<void> }> {
  const root = contextRoot(dataRoot);
  await mkdirp(root, 0o700);
  const dir = path.join(root, `${prefix}-${randomBytes(8).toString('hex')}`);
  await fsp.mkdir(dir, { mode: 0o700 });
  return { dir, release: () => fsp.rm(dir, { recursive: true, force: true }) };
}

/**
 * Unpacks a context stream. The first bytes pick the decompressor: gzip and
 * zstd in-process, bzip2 and xz through Debian's programs (streamed through
 * their pipes, killed on abort).
 */
export async function receiveContext(
  dataRoot: string,
  body: AsyncIterable<Uint8Array>,
  o: { maxBytes?: number; signal?: AbortSignal } = {},
): Promise<BuildContext> {
  const t = await tempDir(dataRoot, 'context');
  const dir = path.join(t.dir, 'ctx');
  await fsp.mkdir(dir, { mode: 0o755 });
  try {
    const { kind, stream } = await sniff(body);
    const input = kind === 'bzip2' || kind === 'xz' ? external(kind === 'bzip2' ? 'bzip2' : 'xz', stream, o.signal) : stream;
    const max = o.maxBytes ?? DEFAULT_MAX_CONTEXT_BYTES;
    let r;
    try {
      r = await applyLayer(dir, input, { whiteouts: false, overlayWhiteouts: false, maxUncompressedBytes: max, signal: o.signal });
    } catch (e) {
      if (e instanceof EngineError && /larger than \d+ bytes|over the layer size limit/.test(e.message))
        throw invalid(`build context is larger than the limit of ${max} bytes`);
      if (e instanceof EngineError && e.code === 'INVALID_ARGUMENT') throw invalid(`invalid build context: ${e.message}`);
      throw e;
    }
    return { dir, digest: r.diffId, size: r.size, release: t.release };
  } catch (e) {
    await t.release();
    throw e;
  }
}

type Kind = 'plain' | 'bzip2' | 'xz';

/** Reads the first bytes to find the compression; gzip and zstd are left to the applier's own sniffing. */
async function sniff(body: AsyncIterable<Uint8Array>): Promise<{ kind: Kind; stream: AsyncIterable<Uint8Array> }> {
  const it = body[Symbol.asyncIterator]();
  const first: Uint8Array[] = [];
  let n = 0;
  while (n < 4) {
    const r = await it.next();
    if (r.done) break;
    first.push(r.value);
    n += r.value.length;
  }
  const head = Buffer.concat(first);
  const kind: Kind =
    head[0] === 0x42 && head[1] === 0x5a && head[2] === 0x68
      ? 'bzip2'
      : head[0] === 0xfd && head[1] === 0x37 && head[2] === 0x7a && head[3] === 0x58
        ? 'xz'
        : 'plain';
  const compressed =
    kind !== 'plain' || (head[0] === 0x1f && head[1] === 0x8b) || (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd);
  async function* replay(): AsyncGenerator<Uint8Array> {
    let n = head.length;
    if (head.length) yield head;
    try {
      for (;;) {
        const r = await it.next();
        if (r.done) break;
        n += r.value.length;
        yield r.value;
      }
    } finally {
      await it.return?.();
    }
    // The docker CLI's `build -f- DIR` (legacy) ends its tar right after the last entry's data, with
    // neither padding nor end-of-archive blocks; dockerd takes it, so a plain tar is completed here.
    if (!compressed) yield Buffer.alloc(((512 - (n % 512)) % 512) + 1024);
  }
  return { kind, stream: replay() };
}

/** Pipes a stream through `bzip2 -dc` or `xz -dc`. */
export function external(prog: string, input: AsyncIterable<Uint8Array>, signal?: AbortSignal): Readable {
  const child = spawn(prog, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => {
    if (stderr.length < 4096) stderr += b.toString();
  });
  const src = Readable.from(input, { objectMode: false });
  src.on('error', () => child.kill('SIGKILL'));
  child.stdin.on('error', () => {});
  src.pipe(child.stdin);
  const onAbort = () => child.kill('SIGKILL');
  signal?.addEventListener('abort', onAbort, { once: true });
  const out = child.stdout;
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  async function* read(): AsyncGenerator<Buffer> {
    try {
      for await (const c of out) yield c as Buffer;
      const code = await exited;
      if (code !== 0) throw invalid(`build context is not valid ${prog} data: ${stderr.trim() || `exit ${code}`}`);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      if (child.exitCode === null) child.kill('SIGKILL');
      src.destroy();
    }
  }
  child.on('error', () => {});
  return Readable.from(read(), { objectMode: false });
}

/**
 * Resolves a path the client named inside the context (the Dockerfile) to a
 * file in it: lexically confined to the context root, and never through a
 * symlink. Returns undefined when missing.
 */
export function contextFile(ctxDir: string, rel: string): string | undefined {
  const comps = cleanEntryPath(rel.replace(/^\.\//, ''), 'path');
  let cur = ctxDir;
  for (const c of comps) {
    cur = path.join(cur, c);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(cur);
    } catch {
      return undefined;
    }
    if (st.isSymbolicLink()) {
      // Docker follows a symlinked Dockerfile inside the context; we resolve it scoped and refuse escapes.
      const real = fs.realpathSync(cur);
      if (real !== ctxDir && !real.startsWith(ctxDir + '/')) throw invalid(`${rel} is a symlink that leaves the build context`);
      cur = real;
    }
  }
  return cur;
}

/** Reads a small file of the context (Dockerfile, .dockerignore), bounded. */
export async function readContextFile(ctxDir: string, rel: string, max = MAX_DOCKERFILE_BYTES): Promise<string | undefined> {
  let abs: string | undefined;
  try {
    abs = contextFile(ctxDir, rel);
  } catch (e) {
    if (e instanceof EngineError) throw e;
    return undefined;
  }
  if (!abs) return undefined;
  const st = await fsp.stat(abs).catch(() => undefined);
  if (!st?.isFile()) return undefined;
  if (st.size > max) throw invalid(`${rel} is larger than ${max} bytes`);
  return fsp.readFile(abs, 'utf8');
}
