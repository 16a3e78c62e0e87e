import { EventEmitter } from 'node:events';
import { EngineError } from '../common/errors.ts';

/**
 * Who waits for containers to end: the monitor of each running container
 * (a promise that settles once its exit is handled), the exit and removal
 * notifications wait() and logs -f listen to, and the daemon's shutdown,
 * which stops the monitors (containers keep running under their conmon).
 */
export class ExitWatcher {
  private readonly monitors = new Map<string, Promise<void>>();
  /** exit:<id> (code) and removed:<id> (code). */
  private readonly bus = new EventEmitter().setMaxListeners(0);
  private readonly closing = new AbortController();

  /** Records the container's monitor; it is forgotten when it settles. */
  track(id: string, p: Promise<void>): void {
    this.monitors.set(id, p);
    void p.finally(() => {
      if (this.monitors.get(id) === p) this.monitors.delete(id);
    });
  }

  /** Settles once the running container's exit has been handled (undefined: none is watched). */
  done(id: string): Promise<void> | undefined {
    return this.monitors.get(id);
  }

  exited(id: string, code: number): void {
    this.bus.emit(`exit:${id}`, code);
  }

  removed(id: string, code: number): void {
    this.bus.emit(`removed:${id}`, code);
  }

  /** Calls `fn` once at the container's next exit; returns the unsubscribe. */
  onceExited(id: string, fn: (code: number) => void): () => void {
    this.bus.once(`exit:${id}`, fn);
    return () => void this.bus.off(`exit:${id}`, fn);
  }

  /** The exit code at the next exit (or removal); CANCELLED when `signal` aborts first. */
  next(what: 'exit' | 'removed', id: string, signal?: AbortSignal): Promise<number> {
    const ev = `${what === 'exit' ? 'exit' : 'removed'}:${id}`;
    return new Promise((resolve, reject) => {
      const on = (code: number) => {
        signal?.removeEventListener('abort', abort);
        resolve(code);
      };
      const abort = () => {
        this.bus.off(ev, on);
        reject(new EngineError('CANCELLED', 'wait cancelled'));
      };
      this.bus.once(ev, on);
      signal?.addEventListener('abort', abort, { once: true });
    });
  }

  get shuttingDown(): boolean {
    return this.closing.signal.aborted;
  }

  /** Aborted by close(): monitors stop waiting. */
  get signal(): AbortSignal {
    return this.closing.signal;
  }

  close(): void {
    this.closing.abort();
  }
}
