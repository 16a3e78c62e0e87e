import type { Writable } from 'node:stream';
import { EngineError } from '../common/errors.ts';
import type { BlobWriter } from '../content/store.ts';
import type { Descriptor } from '../oci/types.ts';
import { header, type RepositoryClient } from './client.ts';
import { isTransientNetworkError } from './http.ts';

export interface DownloadOptions {
  signal?: AbortSignal;
  /** Also receives every byte, in order (the layer extractor). Closed by the caller. */
  sink?: Writable;
  /** Resolves when the sink stops reading (extraction finished or failed): bytes after that only go to the store. */
  sinkDone?: Promise<unknown>;
  onBytes?: (current: number) => void;
}

/** Attempts without progress before a download gives up (in addition to the client's own retries). */
const MAX_STALLED_ATTEMPTS = 4;
const MAX_ATTEMPTS = 50;

/**
 * Streams a blob into a content-store writer from `writer.offset` on. A
 * connection dropped mid-blob is resumed with a Range request from the
 * bytes already written (a registry that ignores Range gets the prefix
 * skipped), so the sink sees one continuous stream. The writer checks the
 * declared size as bytes arrive; the caller commits (digest check).
 */
export async function downloadBlob(client: RepositoryClient, desc: Descriptor, w: BlobWriter, o: DownloadOptions = {}): Promise<void> {
  let sinkOpen = o.sink !== undefined;
  o.sinkDone?.then(
    () => (sinkOpen = false),
    () => (sinkOpen = false),
  );
  const feed = async (c: Buffer): Promise<void> => {
    if (!sinkOpen || !o.sink || o.sink.destroyed) return;
    if (o.sink.write(c)) return;
    const sink = o.sink;
    await new Promise<void>((resolve) => {
      const done = () => {
        sink.off('drain', done);
        sink.off('close', done);
        resolve();
      };
      sink.on('drain', done);
      sink.on('close', done);
      o.sinkDone?.then(done, done);
    });
  };
  // Bytes go to the sink as they arrive; the store gets them in 1 MiB
  // batches written in the background (one writev, no copy), so extraction
  // never waits for a disk write and the store never waits for extraction.
  let batch: Buffer[] = [];
  let batchLen = 0;
  let pending: Promise<void> = Promise.resolve();
  const flush = async (): Promise<void> => {
    await pending;
    if (!batchLen) return;
    const b = batch;
    batch = [];
    batchLen = 0;
    pending = w.writev(b);
    pending.catch(() => {}); // observed by the next flush
  };
  const settle = async (): Promise<void> => {
    await flush();
    await pending;
  };
  let stalled = 0;
  for (let attempt = 0; ; attempt++) {
    const start = w.offset;
    try {
      const res = await client.getBlob(desc.digest, start, o.signal);
      let skip = 0;
      if (start > 0) {
        if (res.statusCode === 206) {
          const m = /^bytes (\d+)-/.exec(header(res, 'content-range') ?? '');
          if (!m || Number(m[1]) !== start) {
            res.destroy();
            throw new EngineError(
              'UNAVAILABLE',
              `registry answered a Range request for ${desc.digest} at ${start} with ${header(res, 'content-range') ?? 'no Content-Range'}`,
            );
          }
        } else skip = start;
      }
      let received = start;
      for await (const chunk of res) {
        let c = chunk as Buffer;
        if (skip) {
          if (c.length <= skip) {
            skip -= c.length;
            continue;
          }
          c = c.subarray(skip);
          skip = 0;
        }
        received += c.length;
        if (received > desc.size) throw new EngineError('INVALID_ARGUMENT', `blob ${desc.digest} is larger than its declared size ${desc.size}`);
        batch.push(c);
        batchLen += c.length;
        if (batchLen >= 1 << 20) await flush();
        await feed(c);
        o.onBytes?.(received);
      }
      await settle();
      if (w.offset < desc.size) {
        throw Object.assign(new Error(`blob ${desc.digest} truncated: got ${w.offset} of ${desc.size} bytes`), { code: 'ECONNRESET', truncated: true });
      }
      return;
    } catch (e) {
      // Bytes that arrived before the failure were already fed to the sink: store them too, so a
      // resume continues exactly where the sink stopped.
      await settle();
      if (o.signal?.aborted) throw new EngineError('CANCELLED', `download of ${desc.digest} was cancelled`, { cause: e });
      stalled = w.offset > start ? 0 : stalled + 1;
      if (!isTransientNetworkError(e) || stalled > MAX_STALLED_ATTEMPTS || attempt >= MAX_ATTEMPTS) {
        if ((e as { truncated?: boolean }).truncated) throw new EngineError('UNAVAILABLE', (e as Error).message);
        if (e instanceof EngineError) throw e;
        throw new EngineError(
          'UNAVAILABLE',
          `downloading ${desc.digest} from ${client.endpoint.base.host} failed after ${attempt + 1} attempts: ${(e as Error).message}`,
          { cause: e },
        );
      }
      await client.backoff(Math.min(stalled, 6), undefined, o.signal);
    }
  }
}
