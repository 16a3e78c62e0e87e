/**
 * `up` without -d: after converging, show every container's output with
 * its prefix until they all exit, or until the user interrupts (the
 * `interrupt` signal: the front end's Ctrl-C), which stops the project, as
 * docker compose does. `--abort-on-container-exit` stops everything when
 * the first container exits; `--exit-code-from` picks whose code to return.
 */
import type { ComposeBackend } from './backend.ts';
import type { LogPrinter } from './logs.ts';
import { shortName } from './logs.ts';
import * as L from './labels.ts';
import { containersOf, stop, type Target } from './ops.ts';
import type { Reporter } from './reporter.ts';

export interface AttachOptions {
  services: string[];
  abortOnExit?: boolean;
  exitCodeFrom?: string;
  timeout?: number;
  /** Unix seconds: show output from this time on (the moment `up` began). */
  since: number;
  interrupt: AbortSignal;
  /** Where "Gracefully stopping..." goes. */
  notice: (line: string) => void;
}

const LOG_DRAIN_MS = 2000;

/** Waits for p (if any) to settle, or ms at most. */
async function settled(p: Promise<unknown> | undefined, ms: number): Promise<void> {
  if (!p) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise((res) => (timer = setTimeout(res, ms)))]);
  clearTimeout(timer);
}

export async function attachedUp(b: ComposeBackend, t: Target, printer: LogPrinter, r: Reporter, o: AttachOptions): Promise<number> {
  const containers = await containersOf(b, t, o.services);
  // a service with `attach: false` runs, and counts for --abort-on-container-exit, without its output shown
  const shown = containers.filter((c) => t.project?.services[c.labels[L.SERVICE] ?? '']?.attach !== false);
  printer.register(shown.map(shortName));
  const logsDone = new AbortController();
  // a log stream that fails (the container went) only stops that container's output
  const streams = new Map(shown.map((c) => [c.id, printer.follow(b, c, { follow: true, since: String(o.since) }, logsDone.signal).catch(() => {})]));
  let exitCode = 0;
  let stopping: Promise<void> | undefined;
  const stopAll = (why: string) => {
    if (!stopping) {
      o.notice(why);
      stopping = stop(b, t, r, o.services, o.timeout);
    }
    return stopping;
  };
  const onInterrupt = () => void stopAll('Gracefully stopping... (press Ctrl+C again to force)');
  o.interrupt.addEventListener('abort', onInterrupt, { once: true });
  try {
    await Promise.all(
      containers.map(async (c) => {
        const code = await b.waitContainer(c.id).catch(() => -1);
        // a followed log ends when its container stops: its last lines come before the exit line
        // (bounded, for an engine whose stream outlives the container, e.g. one restarting)
        await settled(streams.get(c.id), LOG_DRAIN_MS);
        o.notice(`${shortName(c)} exited with code ${code}`);
        const svc = c.labels[L.SERVICE];
        if (o.exitCodeFrom ? svc === o.exitCodeFrom : o.abortOnExit && !stopping) exitCode = code;
        if (o.abortOnExit) await stopAll('Aborting on container exit...');
      }),
    );
    if (stopping) await stopping;
  } finally {
    o.interrupt.removeEventListener('abort', onInterrupt);
    logsDone.abort();
    await Promise.all(streams.values());
  }
  return o.interrupt.aborted && !o.exitCodeFrom ? 130 : exitCode;
}
