/**
 * ADD <http(s) URL>: a bounded, timed download into a private temp file,
 * verified against --checksum when given. The file name is the URL path's
 * last component; the mtime comes from Last-Modified, as docker does.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { EngineError, invalid } from '../common/errors.ts';

export const MAX_DOWNLOAD_BYTES = 4 * 1024 ** 3;
const TIMEOUT_MS = 10 * 60_000;

export async function downloadUrl(
  url: string,
  file: string,
  o: { checksum?: string; signal?: AbortSignal; maxBytes?: number } = {},
): Promise<{ name: string; size: number; mtime: Date; digest: string }> {
  let want: string | undefined;
  if (o.checksum) {
    const m = /^sha256:([a-f0-9]{64})$/.exec(o.checksum);
    if (!m) throw invalid(`invalid checksum ${JSON.stringify(o.checksum)}: expected sha256:<64 hex digits>`);
    want = m[1];
  }
  const signals = [AbortSignal.timeout(TIMEOUT_MS), ...(o.signal ? [o.signal] : [])];
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.any(signals), redirect: 'follow' });
  } catch (e) {
    throw new EngineError('UNAVAILABLE', `failed to download ${url}: ${(e as Error).message}`);
  }
  if (!res.ok || !res.body) throw new EngineError('UNAVAILABLE', `failed to download ${url}: HTTP ${res.status}`);
  const max = o.maxBytes ?? MAX_DOWNLOAD_BYTES;
  const hash = createHash('sha256');
  const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
  let size = 0;
  try {
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      size += chunk.length;
      if (size > max) throw invalid(`download of ${url} is larger than ${max} bytes`);
      hash.update(chunk);
      let off = 0;
      while (off < chunk.length) off += fs.writeSync(fd, chunk, off, chunk.length - off);
    }
  } catch (e) {
    if (e instanceof EngineError) throw e;
    throw new EngineError('UNAVAILABLE', `failed to download ${url}: ${(e as Error).message}`);
  } finally {
    fs.closeSync(fd);
  }
  const digest = hash.digest('hex');
  if (want && digest !== want) throw invalid(`checksum mismatch for ${url}: expected sha256:${want}, got sha256:${digest}`);
  const lm = res.headers.get('last-modified');
  const mtime = lm && !Number.isNaN(Date.parse(lm)) ? new Date(lm) : new Date();
  const name = decodeURIComponent(new URL(url).pathname.split('/').filter(Boolean).pop() ?? '');
  return { name, size, mtime, digest };
}
