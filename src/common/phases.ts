import { log } from './log.ts';

/**
 * Wall-clock phases of one operation, logged at debug level: where a clone or
 * a start spends its time (`--log-level debug` shows them; the speed work on
 * clones and pools was measured with these).
 */
export class Phases {
  private last = performance.now();
  private readonly start = this.last;
  private readonly ms: Record<string, number> = {};

  /** Ends the phase running now under `name`. */
  mark(name: string): void {
    const now = performance.now();
    this.ms[name] = Math.round((now - this.last) * 10) / 10;
    this.last = now;
  }

  log(msg: string, fields: Record<string, unknown> = {}): void {
    log.debug(msg, { ...fields, totalMs: Math.round(performance.now() - this.start), ...this.ms });
  }
}
