/**
 * `up` without -d: after converging, show every container's output with
 * its prefix until they all exit, or until the user interrupts (the
 * `interrupt` signal: the front end's Ctrl-C), which stops the project, as
 * docker compose does. `--abort-on-container-exit` stops everything when
 * the first container exits; `--exit-code-from` picks whose code to return.
 */
import { EngineError } from '../common/errors.ts';
import type { ComposeBackend } from './backend.ts';
import type { LogPrinter } from './logs.ts';
import { shortName } from './logs.ts';
import * as L from './labels.ts';
import { containersOf, stop, type Target } from './ops.ts';
import type { Reporter } from './reporter.ts';
import type { Project } from './types.ts';

export interface AttachOptions {
  /** The services `up` brought up (the named ones and their dependencies). */
  services: string[];
  /** The services named on the command line (none: all of `services`): what Ctrl-C and an abort stop, as docker compose does. */
  named?: string[];
  /** The services whose output is shown (`--attach`, `--no-attach`, `attach: false`); default: all of `services` but `attach: false` ones. */
  attach?: string[];
  /** --abort-on-container-exit: stop everything when the first container exits. */
  abortOnExit?: boolean;
  /** --abort-on-container-failure: stop everything when a container exits with a non-zero code. */
  abortOnFailure?: boolean;
  exitCodeFrom?: string;
  timeout?: number;
  /** --timestamps: each line with the time the engine logged it. */
  timestamps?: boolean;
  /** Unix seconds: show output from this time on (the moment `up` began). */
  since: number;
  interrupt: AbortSignal;
  /** Where "Gracefully stopping..." goes. */
  notice: (line: string) => void;
}

/**
 * The services whose output `up` shows, as docker compose picks them:
 * `--attach` (each one among the services brought up), else the named
 * services (with their dependencies when attachDependencies), else all;
 * then without `attach: false` services (unless named by --attach) and
 * without `--no-attach` ones.
 */
export function attachedServices(
  p: Project,
  o: { services: string[]; named: string[]; attach?: string[]; noAttach?: string[]; attachDependencies?: boolean },
): string[] {
  let out: string[];
  if (o.attach?.length) {
    const unknown = o.attach.filter((a) => !o.services.includes(a));
    if (unknown.length) throw new EngineError('INVALID_ARGUMENT', `cannot attach to services not included in up: ${unknown.join(', ')}`);
    out = o.attach;
  } else {
    out = (o.named.length && !o.attachDependencies ? o.named : o.services).filter((n) => p.services[n]?.attach !== false);
  }
  return [...new Set(out)].filter((n) => !o.noAttach?.includes(n));
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
  const attach = o.attach ?? o.services.filter((n) => t.project?.services[n]?.attach !== false);
  // what `up` waits for: the named services, else the attached ones (docker compose's monitor)
  const watched = o.named?.length ? o.named : attach.length ? attach : o.services;
  const all = await containersOf(b, t, [...new Set([...watched, ...attach])]);
  const containers = all.filter((c) => watched.includes(c.labels[L.SERVICE] ?? ''));
  const shown = all.filter((c) => attach.includes(c.labels[L.SERVICE] ?? ''));
  printer.register(shown.map(shortName));
  const logsDone = new AbortController();
  // a log stream that fails (the container went) only stops that container's output
  const streams = new Map(
    shown.map((c) => [c.id, printer.follow(b, c, { follow: true, since: String(o.since), timestamps: o.timestamps }, logsDone.signal).catch(() => {})]),
  );
  let exitCode = 0;
  let captured = false;
  let stopping: Promise<void> | undefined;
  const stopAll = (why: string) => {
    if (!stopping) {
      o.notice(why);
      stopping = stop(b, t, r, o.named?.length ? o.named : o.services, o.timeout);
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
        // the first exit (the first failure, with abortOnFailure) stops the project and gives its code
        const aborts = !stopping && !o.interrupt.aborted && (o.abortOnExit || (o.abortOnFailure && code !== 0));
        if (aborts && !o.exitCodeFrom) exitCode = code;
        if (o.exitCodeFrom && svc === o.exitCodeFrom && !captured) {
          exitCode = code;
          captured = true;
        }
        if (aborts) await stopAll('Aborting on container exit...');
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
