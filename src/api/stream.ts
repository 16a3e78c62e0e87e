/**
 * Streaming responses that end with their client. Every endpoint that
 * streams (save, export, archive, logs, stats, events, progress) goes
 * through here, so one rule holds everywhere: when the client goes away
 * (the router's ctx.signal aborts), the work producing the stream is
 * destroyed, which runs its own cleanup (unmount, thaw, temp files), and no
 * error of either side is left without a listener (an 'error' without one
 * would take the whole daemon down).
 */
import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { log } from '../common/log.ts';

/** True for the errors a stream ends with when its client hung up or the request was aborted. */
export function isClientGone(e: unknown, signal?: AbortSignal): boolean {
  if (signal?.aborted) return true;
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return (
    (e as Error | undefined)?.name === 'AbortError' ||
    ['ERR_STREAM_PREMATURE_CLOSE', 'ERR_STREAM_DESTROYED', 'ECONNRESET', 'EPIPE', 'ABORT_ERR'].includes(code ?? '')
  );
}

/**
 * Sends `source` as the response body after `headers` (status 200).
 * Resolves when the body is complete or the client is gone; never rejects:
 * once the headers are out, an error can only cut the body short (docker
 * does the same), and it is logged once unless the client caused it.
 */
export async function sendStream(res: ServerResponse, source: Readable, signal: AbortSignal, headers: Record<string, string | number>): Promise<void> {
  if (!res.headersSent) res.writeHead(200, headers);
  try {
    await pipeline(source, res, { signal });
  } catch (e) {
    if (!isClientGone(e, signal)) log.warn('response stream failed', { error: (e as Error).message });
    source.destroy();
    res.destroy();
  }
}

/** Resolves when the client has gone away (the request's signal aborted). */
export function clientGone(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/** Waits `ms`, or less if the client goes away first. */
export function sleepUnlessGone(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Writes one chunk of a long-lived response (logs, stats, events) and waits
 * while the client's socket is full, so a client that stops reading holds
 * at most one socket buffer of the daemon's memory. Returns false once the
 * client is gone.
 */
export async function writeOrWait(res: ServerResponse, chunk: string | Buffer, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted || res.destroyed || res.writableEnded) return false;
  if (res.write(chunk)) return true;
  await new Promise<void>((resolve) => {
    const done = () => {
      res.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    res.once('drain', done);
    signal.addEventListener('abort', done, { once: true });
  });
  return !signal.aborted;
}
