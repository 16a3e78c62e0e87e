/**
 * The worker-thread side of offthread.ts: runs applyLayer, the same code and
 * the same guards as on the main thread, on chunks the main thread posts.
 *
 * Protocol (one job at a time per worker; a worker is reused for later jobs):
 *   in:  start {dest, opts} · data {chunk} · end · abort
 *   out: ack {bytes} (a chunk was consumed) · done {result} · failed {code, message}
 * A job always ends with exactly one `done` or `failed`, and only once
 * applyLayer has returned: by then no file of the layer is open and nothing
 * more is written under dest, so the caller may delete it.
 */
import { parentPort } from 'node:worker_threads';
import { EngineError, isEngineError } from '../common/errors.ts';
import { applyLayer, type ApplyOptions } from './apply.ts';

export type JobOptions = Omit<ApplyOptions, 'signal'>;

export type ToWorker = { type: 'start'; dest: string; opts: JobOptions } | { type: 'data'; chunk: Uint8Array } | { type: 'end' } | { type: 'abort' };

export type FromWorker =
  | { type: 'ack'; bytes: number }
  | { type: 'done'; result: { diffId: string; size: number; entries: number } }
  | { type: 'failed'; code: string; message: string };

const port = parentPort!;
const post = (m: FromWorker) => port.postMessage(m);

/** The current job's input: chunks queue here until applyLayer pulls them. */
class Inbox implements AsyncIterable<Uint8Array> {
  private readonly queue: Uint8Array[] = [];
  private ended = false;
  private wake: (() => void) | null = null;
  readonly abort = new AbortController();

  push(m: ToWorker): void {
    if (m.type === 'data') this.queue.push(m.chunk);
    else if (m.type === 'end') this.ended = true;
    else if (m.type === 'abort') this.abort.abort();
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    for (;;) {
      if (this.abort.signal.aborted) throw new EngineError('CANCELLED', 'layer apply was cancelled');
      const c = this.queue.shift();
      if (c) {
        post({ type: 'ack', bytes: c.byteLength });
        yield c;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = null;
    }
  }
}

let inbox: Inbox | null = null;

port.on('message', (m: ToWorker) => {
  if (m.type !== 'start') {
    inbox?.push(m);
    return;
  }
  const job = (inbox = new Inbox());
  applyLayer(m.dest, job, { ...m.opts, signal: job.abort.signal })
    .then(
      (r) => post({ type: 'done', result: r }),
      (e: unknown) => post({ type: 'failed', code: isEngineError(e) ? e.code : 'INTERNAL', message: e instanceof Error ? e.message : String(e) }),
    )
    .finally(() => {
      if (inbox === job) inbox = null;
    });
});
