import type { RestartPolicy } from './types.ts';

export interface ExitContext {
  policy: RestartPolicy;
  exitCode: number;
  /** Restarts so far (since the last manual start). */
  restartCount: number;
  /** docker stop / kill by the user. */
  manuallyStopped: boolean;
  /** The daemon is shutting down: nothing is restarted then. */
  shuttingDown?: boolean;
}

/** Docker's restart manager decision after a container exits. */
export function shouldRestart(c: ExitContext): boolean {
  if (c.shuttingDown || c.manuallyStopped) return false;
  switch (c.policy.Name) {
    case 'always':
    case 'unless-stopped':
      return true;
    case 'on-failure':
      return c.exitCode !== 0 && (c.policy.MaximumRetryCount === 0 || c.restartCount < c.policy.MaximumRetryCount);
    default:
      return false;
  }
}

/** When the daemon starts: which stopped containers it brings back up. */
export function startOnDaemonStart(policy: RestartPolicy, manuallyStopped: boolean, wasRunning: boolean): boolean {
  if (policy.Name === 'always') return true;
  if (policy.Name === 'unless-stopped') return !manuallyStopped;
  // on-failure containers that were running when the daemon died come back too (docker does this).
  if (policy.Name === 'on-failure') return wasRunning && !manuallyStopped;
  return false;
}

/** Docker's back-off: 100 ms doubling per restart, capped at one minute. */
export function restartDelayMs(restartCount: number): number {
  return Math.min(100 * 2 ** Math.min(restartCount, 20), 60_000);
}

/**
 * Restarts by policy that are scheduled: a container whose restart is
 * pending counts as restarting (inspect, wait, attach), and stop or rm
 * cancels it.
 */
export class RestartManager {
  private readonly pending = new Set<string>();
  /** Restarts whose timer fired and that are starting the container now. */
  private readonly starting = new Set<string>();

  /**
   * Marks the restart pending and runs `fn` after `delayMs`; `fn` calls
   * done() once it holds the container's mutex, and checks that the
   * container still wants the restart (cancel() does not stop the timer).
   */
  schedule(id: string, delayMs: number, fn: () => void): void {
    this.pending.add(id);
    setTimeout(fn, delayMs).unref();
  }

  /** Cancels a scheduled restart (stop, rm); whether one was pending. */
  cancel(id: string): boolean {
    return this.pending.delete(id);
  }

  /**
   * The timer fired and the restart holds the mutex: it stays pending (inspect shows
   * "restarting", wait waits) until end(), as docker's state stays restarting until the
   * process runs. A new restart scheduled meanwhile (the process exited at once) is kept.
   */
  begin(id: string): void {
    this.pending.delete(id);
    this.starting.add(id);
  }

  end(id: string): void {
    this.starting.delete(id);
  }

  isPending(id: string): boolean {
    return this.pending.has(id) || this.starting.has(id);
  }
}
