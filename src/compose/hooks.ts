/**
 * Lifecycle hooks, as docker compose (v2.30+) runs them (pkg/compose/hook.go):
 * `post_start` commands run in the container by exec right after it starts
 * (up, start, restart, run -d), `pre_stop` ones right before it is stopped
 * (stop, down, restart, a recreate or a scale-down); each with its own
 * `user`, `privileged`, `working_dir` and `environment`, one after another.
 * A hook that exits non-zero fails the command, its error holding the last
 * lines of the hook's stderr (else stdout). A pre_stop hook that finds the
 * container already stopped or gone is no error.
 */
import { EngineError } from '../common/errors.ts';
import type { ComposeBackend, ContainerSummary } from './backend.ts';
import { PROJECT } from './labels.ts';
import type { Service } from './types.ts';

const TAIL_LINES = 10;
const TAIL_BYTES = 2048;
/** A hook's output is the container's: a line longer than this (a hook that prints no newline) is passed on in pieces. */
const MAX_LINE = 64 << 10;

/** The last lines of a hook's output, as docker compose's outputTail keeps them (a progress bar's `\r` rewinds keep the last segment). */
export function outputTail(text: string): string {
  const lines = text
    .slice(-TAIL_BYTES)
    .split('\n')
    .map((l) => l.replace(/\r$/, '').split('\r').pop()!)
    .filter((l, i, all) => l !== '' || i < all.length - 1);
  return lines.slice(-TAIL_LINES).join('\n').trim();
}

/**
 * `run` attached: the engine starts and attaches in one step, so the
 * post_start hooks wait for its start event (as docker compose's
 * runPostStartHooksOnEvent), asked for from `since` on so one that came
 * before the events were listened to is not missed.
 */
async function postStartOnEvent(b: ComposeBackend, project: string, s: Service, id: string, since: number, signal: AbortSignal): Promise<void> {
  if (!s.post_start?.length) return;
  for await (const e of b.events([`${PROJECT}=${project}`], signal, since)) {
    if (e.type === 'container' && e.action === 'start' && e.id === id) return runHooks(b, s, 'post_start', id);
  }
}

/** How long an attached run's hooks may still wait for the start event once the run is over (a run that never started has none). */
const START_EVENT_GRACE_MS = 5000;

/** Runs `run` (an attached start) with the service's post_start hooks beside it; a hook's failure fails a run that exited 0, as in docker compose. */
export async function withPostStartHooks(b: ComposeBackend, project: string, s: Service, id: string, run: () => Promise<number>): Promise<number> {
  if (!s.post_start?.length) return run();
  const stop = new AbortController();
  const hooks = postStartOnEvent(b, project, s, id, Math.floor(Date.now() / 1000), stop.signal).then(
    () => undefined,
    (e: unknown) => e,
  );
  const settle = async () => {
    const timer = setTimeout(() => stop.abort(), START_EVENT_GRACE_MS);
    try {
      return await hooks;
    } finally {
      clearTimeout(timer);
    }
  };
  let code: number;
  try {
    code = await run();
  } catch (e) {
    await settle();
    throw e;
  }
  const failed = await settle();
  if (failed && code === 0) throw failed;
  return code;
}

/** Stops a container, after its service's pre_stop hooks when it runs (they run by exec). */
export async function stopWithHooks(b: ComposeBackend, s: Service | undefined, c: ContainerSummary, timeout?: number): Promise<void> {
  if (c.state === 'running') await runHooks(b, s, 'pre_stop', c.id);
  await b.stopContainer(c.id, timeout);
}

/** Restarts a container between its service's pre_stop hooks (when it runs) and post_start hooks. */
export async function restartWithHooks(b: ComposeBackend, s: Service | undefined, c: ContainerSummary, timeout?: number): Promise<void> {
  if (c.state === 'running') await runHooks(b, s, 'pre_stop', c.id);
  await b.restartContainer(c.id, timeout);
  await runHooks(b, s, 'post_start', c.id);
}

/** Runs the service's hooks of this kind, one after another; `onLine`: each line they print, both streams (attached `up` shows them). */
export async function runHooks(
  b: ComposeBackend,
  s: Service | undefined,
  kind: 'post_start' | 'pre_stop',
  id: string,
  onLine?: (line: string) => void,
): Promise<void> {
  for (const h of s?.[kind] ?? []) {
    // the unfinished line of each stream (stdout, stderr), and its decoder (a character may span two chunks)
    const partial = ['', ''];
    const decoders = [new TextDecoder(), new TextDecoder()];
    const onOutput = onLine
      ? (chunk: Buffer, stream: 1 | 2) => {
          const lines = (partial[stream - 1] + decoders[stream - 1]!.decode(chunk, { stream: true })).split('\n');
          let rest = lines.pop()!;
          for (const l of lines) onLine(l.replace(/\r$/, ''));
          for (; rest.length > MAX_LINE; rest = rest.slice(MAX_LINE)) onLine(rest.slice(0, MAX_LINE));
          partial[stream - 1] = rest;
        }
      : undefined;
    let r: { exitCode: number; stdout: string; stderr: string };
    try {
      r = await b.execOutput(
        id,
        {
          cmd: h.command ?? [],
          user: h.user,
          privileged: h.privileged,
          workingDir: h.working_dir,
          // a variable without a value passes the name alone (docker compose's ToMobyEnv)
          env: Object.entries(h.environment ?? {}).map(([k, v]) => (v === null ? k : `${k}=${v}`)),
        },
        TAIL_BYTES,
        onOutput,
      );
      partial.forEach((p, i) => {
        const last = p + decoders[i]!.decode();
        if (last) onLine?.(last);
      });
    } catch (e) {
      if (kind === 'pre_stop' && e instanceof EngineError && (e.code === 'NOT_FOUND' || e.code === 'CONFLICT')) return;
      throw e;
    }
    if (r.exitCode !== 0) {
      const out = outputTail(r.stderr) || outputTail(r.stdout);
      throw new EngineError('CANNOT_EXECUTE', `${s!.name} hook exited with status ${r.exitCode}${out ? `: ${out}` : ''}`);
    }
  }
}
