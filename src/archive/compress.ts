/**
 * Layer compression: gzip and zstd through node:zlib (Node 24), and sniffing
 * of the magic bytes for 'auto'.
 */
import { Readable, type Transform } from 'node:stream';
import zlib from 'node:zlib';
import { invalid } from '../common/errors.ts';

export type Compression = 'none' | 'gzip' | 'zstd';

/** Detects the compression from a stream's first bytes. */
export function sniffCompression(head: Uint8Array): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  if (head[0] === 0xfd && head[1] === 0x37 && head[2] === 0x7a && head[3] === 0x58)
    throw invalid('xz-compressed layers are not supported: recompress with gzip or zstd');
  if (head[0] === 0x42 && head[1] === 0x5a && head[2] === 0x68) throw invalid('bzip2-compressed layers are not supported: recompress with gzip or zstd');
  return 'none';
}

function decompressor(kind: Compression): Transform | null {
  // Decompressed output is consumed in chunks; the size cap is enforced by the reader.
  if (kind === 'gzip') return zlib.createGunzip({ chunkSize: 256 * 1024 });
  if (kind === 'zstd') return zlib.createZstdDecompress({ chunkSize: 256 * 1024 });
  return null;
}

/**
 * Yields the decompressed bytes of a stream. 'auto' looks at the first bytes
 * (read before choosing, then replayed) to pick gzip, zstd or none.
 */
export async function* decompressChunks(source: AsyncIterable<Uint8Array>, kind: Compression | 'auto' = 'auto'): AsyncGenerator<Buffer> {
  const it = source[Symbol.asyncIterator]();
  let head = Buffer.alloc(0);
  const first: Buffer[] = [];
  while (head.length < 4) {
    const r = await it.next();
    if (r.done) break;
    const b = Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
    first.push(b);
    head = Buffer.concat([head, b]);
  }
  const chosen = kind === 'auto' ? sniffCompression(head) : kind;
  async function* replay(): AsyncGenerator<Buffer> {
    yield* first;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
    }
  }
  const d = decompressor(chosen);
  try {
    if (!d) {
      yield* replay();
      return;
    }
    const input = Readable.from(replay(), { objectMode: false });
    input.on('error', (e) => d.destroy(e));
    input.pipe(d);
    try {
      for await (const chunk of d) yield chunk as Buffer;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? '';
      if (
        code.startsWith('Z_') ||
        code.startsWith('ERR_ZSTD') ||
        code === 'ZSTD_error' ||
        /zlib|zstd|incorrect header|unexpected end/i.test(String((e as Error).message))
      ) {
        throw invalid(`layer is not valid ${chosen} data: ${(e as Error).message}`);
      }
      throw e;
    } finally {
      input.destroy();
      d.destroy();
    }
  } finally {
    // Close the caller's source (e.g. a registry response) when we stop early.
    await it.return?.();
  }
}

/** Decompressed bytes of a stream as a Readable (see decompressChunks). */
export function decompress(source: AsyncIterable<Uint8Array>, kind: Compression | 'auto' = 'auto'): Readable {
  return Readable.from(decompressChunks(source, kind), { objectMode: false });
}

/** Compresses a stream ('none' passes it through). */
export function compress(stream: Readable, kind: Compression): Readable {
  if (kind === 'none') return stream;
  const z = kind === 'gzip' ? zlib.createGzip({ level: 6 }) : zlib.createZstdCompress();
  stream.on('error', (e) => z.destroy(e));
  return stream.pipe(z);
}
