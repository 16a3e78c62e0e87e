import { log } from '../common/log.ts';

/**
 * One thing made ahead of need: a default-bridge sandbox (netns pinned, veth
 * on the bridge, address leased and configured), so that starting a
 * container on the default network runs no process on its critical path.
 * Making one costs two processes and ~10 ms; it is done after the previous
 * one was taken, while that container starts and runs.
 *
 * The spare is not a container's: it is not in the runtime state file, and
 * its lease is owned by its own id. After a crash, reconcile removes its
 * netns file (no sandbox owns it) and frees its lease (no live owner), the
 * same sweep as for any container that died with the daemon.
 */
export class Spare<T> {
  private ready?: T;
  private making?: Promise<void>;
  private closed = false;
  /** After a failure, no new attempt before this time (ms since epoch): a broken bridge is not retried per container. */
  private retryAfter = 0;
  private readonly make: () => Promise<T>;
  private readonly discard: (s: T) => Promise<void>;

  constructor(make: () => Promise<T>, discard: (s: T) => Promise<void>) {
    this.make = make;
    this.discard = discard;
  }

  /** The spare, once the one being made is done; undefined when there is none. The caller owns what it gets. */
  async take(): Promise<T | undefined> {
    if (this.ready === undefined && this.making) await this.making;
    const s = this.ready;
    this.ready = undefined;
    return s;
  }

  /** Starts making a spare unless one is ready or on its way. */
  refill(): void {
    if (this.ready !== undefined || this.making || this.closed || Date.now() < this.retryAfter) return;
    this.making = this.make().then(
      async (s) => {
        if (this.closed) await this.discard(s).catch(() => {});
        else this.ready = s;
      },
      (e) => {
        this.retryAfter = Date.now() + 10_000;
        log.warn('could not prepare a network sandbox ahead of time (containers still start, slower)', { error: String(e) });
      },
    ).finally(() => (this.making = undefined));
  }

  /** Waits for a spare being made (tests count host objects after it). */
  async settle(): Promise<void> {
    await this.making;
  }

  /** Removes the spare and makes no more (daemon shutdown). */
  async close(): Promise<void> {
    this.closed = true;
    await this.making;
    const s = this.ready;
    this.ready = undefined;
    if (s !== undefined) await this.discard(s);
  }
}
