/**
 * Test helpers: build (possibly hostile) layer tars in memory. tar-stream's
 * pack writes whatever names it is given, which is what hostile-layer tests
 * need; rawTar uses keel's own encoder for binary PAX xattrs.
 */
import tarStream from 'tar-stream';
import { encodeHeader, padding, type TarHeader } from './tarformat.ts';

export interface TestEntry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo';
  body?: string | Buffer;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: Date;
  pax?: Record<string, string>;
  devmajor?: number;
  devminor?: number;
}

export async function packTar(entries: TestEntry[]): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  for (const e of entries) {
    const type = e.type ?? 'file';
    const mode = e.mode ?? (type === 'directory' ? 0o755 : 0o644);
    const header = { ...e, type, mode, mtime: e.mtime ?? new Date(1_600_000_000_000), uid: e.uid ?? 0, gid: e.gid ?? 0 };
    delete (header as { body?: unknown }).body;
    await new Promise<void>((res, rej) => {
      pack.entry(header, e.body ?? (type === 'file' ? '' : Buffer.alloc(0)), (err) => (err ? rej(err) : res()));
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** A tar from keel's encoder: entries as TarHeaders with optional bodies. */
export function rawTar(entries: Array<Partial<TarHeader> & { name: string; body?: Buffer }>): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const body = e.body ?? Buffer.alloc(0);
    const h: TarHeader = {
      type: 'file',
      mode: 0o644,
      uid: 0,
      gid: 0,
      size: body.length,
      mtime: 1_600_000_000,
      linkname: '',
      devmajor: 0,
      devminor: 0,
      ...e,
    };
    parts.push(encodeHeader(h), body, Buffer.alloc(padding(body.length)));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** One raw 512-byte header with a valid checksum, for entry types keel's encoder never writes. */
export function rawBlock(name: string, flag: string, size: number): Buffer {
  const b = Buffer.alloc(512);
  b.write(name, 0, 100, 'utf8');
  b.write('0000644\0', 100, 'latin1');
  b.write('0000000\0', 108, 'latin1');
  b.write('0000000\0', 116, 'latin1');
  b.write(size.toString(8).padStart(11, '0') + '\0', 124, 'latin1');
  b.write('00000000000\0', 136, 'latin1');
  b.write(flag, 156, 'latin1');
  b.write('ustar\x0000', 257, 'latin1');
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const c of b) sum += c;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return b;
}
