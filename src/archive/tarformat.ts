/**
 * The tar wire format, both directions: 512-byte header blocks (ustar, GNU,
 * v7), PAX extended records and GNU long names. Kept byte-exact on purpose:
 * PAX values such as SCHILY.xattr.security.capability are binary, so records
 * are parsed into Buffers, never decoded as UTF-8 (the npm parsers do, which
 * corrupts file capabilities).
 */
import { invalid } from '../common/errors.ts';

export const BLOCK = 512;

/** Entry kinds keel understands; everything else in a layer is refused. */
export type EntryType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarHeader {
  name: string;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch, may carry a fraction (PAX). */
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  /** Extended attributes from PAX SCHILY.xattr.* records, values as raw bytes. */
  xattrs?: Map<string, Buffer>;
}

/** What one raw header block says, before PAX/GNU overrides are applied. */
export interface RawHeader extends TarHeader {
  flag: string;
}

const TYPES: Record<string, EntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'link',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};

/** Length of a NUL-terminated field (the whole field when it has no NUL). */
function fieldEnd(buf: Uint8Array, off: number, len: number): number {
  let end = off;
  const lim = off + len;
  while (end < lim && buf[end] !== 0) end++;
  return end;
}

function text(buf: Uint8Array, off: number, len: number, encoding: 'utf8' | 'latin1'): string {
  return Buffer.from(buf.buffer, buf.byteOffset + off, fieldEnd(buf, off, len) - off).toString(encoding);
}

/** Whitespace String.prototype.trim() removes, among latin1 bytes. */
function isSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d) || c === 0xa0;
}

/**
 * Octal (space/NUL terminated, surrounding whitespace allowed) or GNU
 * base-256 numbers. Parsed from the bytes: a header has seven numeric fields
 * and a layer thousands of headers, so no string or view is made per field.
 */
function num(buf: Uint8Array, off: number, len: number, field: string): number {
  if (buf[off]! & 0x80) {
    if (buf[off] === 0xff) throw invalid(`tar header has a negative ${field}`);
    let v = buf[off]! & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + buf[off + i]!;
    if (!Number.isSafeInteger(v)) throw invalid(`tar header ${field} is too large`);
    return v;
  }
  let start = off;
  let end = fieldEnd(buf, off, len);
  while (start < end && isSpace(buf[start]!)) start++;
  while (end > start && isSpace(buf[end - 1]!)) end--;
  let v = 0;
  for (let i = start; i < end; i++) {
    const c = buf[i]!;
    if (c < 0x30 || c > 0x37) {
      const s = Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString('latin1');
      throw invalid(`tar header has an invalid ${field} field ${JSON.stringify(s)}`);
    }
    v = v * 8 + (c - 0x30);
  }
  return v;
}

/** True for the all-zero block that marks the end of an archive. */
export function isZeroBlock(b: Uint8Array): boolean {
  for (let i = 0; i < BLOCK; i++) if (b[i] !== 0) return false;
  return true;
}

/** The POSIX magic "ustar\0" at offset 257 (GNU writes "ustar  \0"). */
function isUstar(b: Uint8Array): boolean {
  return b[257] === 0x75 && b[258] === 0x73 && b[259] === 0x74 && b[260] === 0x61 && b[261] === 0x72 && b[262] === 0;
}

/** The header sum with bytes as signed chars (some old writers); only needed when the unsigned sum misses. */
function signedSum(b: Uint8Array): number {
  let sum = 8 * 32;
  for (let i = 0; i < BLOCK; i++) {
    if (i >= 148 && i < 156) continue;
    const c = b[i]!;
    sum += c > 127 ? c - 256 : c;
  }
  return sum;
}

export function decodeHeader(b: Uint8Array): RawHeader {
  // The checksum field counts as spaces; accept both unsigned and signed sums like Go does.
  let unsigned = 8 * 32;
  for (let i = 0; i < 148; i++) unsigned += b[i]!;
  for (let i = 156; i < BLOCK; i++) unsigned += b[i]!;
  let want = -1;
  try {
    want = num(b, 148, 8, 'checksum');
  } catch {
    // reported below as not-a-tar
  }
  if (want !== unsigned && want !== signedSum(b))
    throw invalid('not a tar archive (header checksum mismatch): the data is corrupt or in an unsupported format');
  const flag = String.fromCharCode(b[156]!);
  let name = text(b, 0, 100, 'utf8');
  // Only POSIX ustar has a prefix field; in old GNU headers those bytes hold atime/ctime.
  if (isUstar(b) && b[345] !== 0) name = text(b, 345, 155, 'utf8') + '/' + name;
  let type = TYPES[flag];
  if (type === 'file' && flag !== '7' && name.endsWith('/')) type = 'dir'; // v7 directories
  return {
    flag,
    name,
    type: type ?? 'file',
    mode: num(b, 100, 8, 'mode') & 0o7777,
    uid: num(b, 108, 8, 'uid'),
    gid: num(b, 116, 8, 'gid'),
    size: num(b, 124, 12, 'size'),
    mtime: num(b, 136, 12, 'mtime'),
    linkname: b[157] === 0 ? '' : text(b, 157, 100, 'utf8'),
    devmajor: num(b, 329, 8, 'devmajor'),
    devminor: num(b, 337, 8, 'devminor'),
  };
}

/** Parses PAX records `"<len> <key>=<value>\n"`; values stay raw bytes. */
export function parsePax(data: Buffer, where: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let off = 0;
  while (off < data.length) {
    if (data[off] === 0) break; // some writers pad the record block with NULs
    const sp = data.indexOf(0x20, off);
    const lenStr = sp < 0 ? '' : data.toString('latin1', off, sp);
    const len = /^[1-9][0-9]{0,9}$/.test(lenStr) ? parseInt(lenStr, 10) : NaN;
    if (!(len > 0) || off + len > data.length || data[off + len - 1] !== 0x0a) {
      throw invalid(`malformed PAX header before ${where}`);
    }
    const rec = data.subarray(sp + 1, off + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw invalid(`malformed PAX record before ${where}`);
    out.set(rec.toString('utf8', 0, eq), Buffer.from(rec.subarray(eq + 1)));
    off += len;
  }
  return out;
}

function paxInt(v: Buffer, key: string, where: string, max: number): number {
  const s = v.toString('latin1');
  if (!/^[0-9]{1,16}$/.test(s) || Number(s) > max) throw invalid(`invalid PAX ${key}=${JSON.stringify(s.slice(0, 40))} for ${where}`);
  return Number(s);
}

/** Applies PAX overrides (path, linkpath, size, uid, gid, mtime, xattrs) to a header. */
export function applyPax(h: TarHeader, pax: Map<string, Buffer>): void {
  const where = JSON.stringify(h.name);
  for (const [k, v] of pax) {
    if (k === 'path') h.name = v.toString('utf8');
    else if (k === 'linkpath') h.linkname = v.toString('utf8');
    else if (k === 'size') h.size = paxInt(v, k, where, Number.MAX_SAFE_INTEGER);
    else if (k === 'uid' || k === 'gid') h[k] = paxInt(v, k, where, 0xfffffffe);
    else if (k === 'mtime') {
      const s = v.toString('latin1');
      if (!/^-?[0-9]{1,15}(\.[0-9]+)?$/.test(s)) throw invalid(`invalid PAX mtime for ${where}`);
      h.mtime = Number(s);
    } else if (k.startsWith('SCHILY.xattr.')) (h.xattrs ??= new Map()).set(k.slice(13), v);
    else if (k.startsWith('GNU.sparse.')) throw invalid(`sparse file ${where} in layer: sparse tar entries are not supported`);
  }
}

// ---- writing ----

function octal(buf: Buffer, off: number, len: number, v: number): boolean {
  const s = Math.floor(v).toString(8);
  if (v < 0 || s.length > len - 1) return false;
  buf.write(s.padStart(len - 1, '0') + '\0', off, len, 'latin1');
  return true;
}

function paxRecord(key: string, value: Buffer | string): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), Buffer.isBuffer(value) ? value : Buffer.from(value, 'utf8'), Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len), 'latin1'), body]);
}

const FLAGS: Record<EntryType, string> = { file: '0', link: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };

function block(name: string, flag: string, h: Omit<TarHeader, 'name' | 'type' | 'xattrs'>): { buf: Buffer; ok: boolean } {
  const buf = Buffer.alloc(BLOCK);
  let ok = Buffer.byteLength(name) <= 100 && Buffer.byteLength(h.linkname) <= 100;
  buf.write(name, 0, 100, 'utf8');
  ok = octal(buf, 100, 8, h.mode & 0o7777) && ok;
  ok = octal(buf, 108, 8, h.uid) && ok;
  ok = octal(buf, 116, 8, h.gid) && ok;
  ok = octal(buf, 124, 12, h.size) && ok;
  ok = octal(buf, 136, 12, Math.max(0, h.mtime)) && ok;
  buf.write(flag, 156, 1, 'latin1');
  buf.write(h.linkname, 157, 100, 'utf8');
  buf.write('ustar\x0000', 257, 8, 'latin1');
  octal(buf, 329, 8, h.devmajor);
  octal(buf, 337, 8, h.devminor);
  buf.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += buf[i]!;
  buf.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return { buf, ok };
}

/**
 * Encodes an entry's header block(s): a PAX header first when a field does
 * not fit ustar (long or non-ASCII names, big sizes/ids) or xattrs exist.
 */
export function encodeHeader(h: TarHeader): Buffer {
  const plain = block(h.name, FLAGS[h.type], h);
  const ascii = /^[\x20-\x7e]*$/.test(h.name + h.linkname);
  if (plain.ok && ascii && !h.xattrs?.size && Number.isInteger(h.mtime)) return plain.buf;
  const recs: Buffer[] = [paxRecord('path', h.name)];
  if (h.linkname) recs.push(paxRecord('linkpath', h.linkname));
  recs.push(paxRecord('size', String(h.size)), paxRecord('uid', String(h.uid)), paxRecord('gid', String(h.gid)));
  recs.push(paxRecord('mtime', String(h.mtime)));
  for (const [k, v] of h.xattrs ?? []) recs.push(paxRecord(`SCHILY.xattr.${k}`, v));
  const pax = Buffer.concat(recs);
  const short = (s: string) =>
    Buffer.from(s, 'utf8')
      .subarray(0, 99)
      .toString('latin1')
      .replace(/[^\x20-\x7e]/g, '_');
  const clamp = (v: number, max: number) => (v > max ? 0 : v);
  const ph = block('PaxHeader/' + short(h.name).slice(0, 80), 'x', {
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: pax.length,
    mtime: 0,
    linkname: '',
    devmajor: 0,
    devminor: 0,
  });
  const main = block(short(h.name), FLAGS[h.type], {
    ...h,
    linkname: short(h.linkname),
    uid: clamp(h.uid, 0o7777777),
    gid: clamp(h.gid, 0o7777777),
    size: clamp(h.size, 0o77777777777),
    mtime: Math.floor(h.mtime),
  });
  return Buffer.concat([ph.buf, pax, Buffer.alloc(padding(pax.length)), main.buf]);
}

export function padding(size: number): number {
  const r = size % BLOCK;
  return r === 0 ? 0 : BLOCK - r;
}
