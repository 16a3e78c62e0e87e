/**
 * Container health checks, as dockerd 20.10 runs them (moby daemon/health.go).
 *
 * Config (Config.Healthcheck, durations in nanoseconds, zero = default):
 *   { Test: ["CMD", argv...] | ["CMD-SHELL", "cmd"] | ["NONE"], Interval, Timeout, StartPeriod, StartInterval, Retries }
 * The request's fields override the image's one by one (dockerd's merge);
 * ["NONE"], an empty or unknown Test means no health check at all.
 *
 * State (State.Health in inspect, kept on the record):
 *   { Status: "starting" | "healthy" | "unhealthy", FailingStreak, Log: [{ Start, End, ExitCode, Output }] }
 * Each start resets Status to starting and the streak to 0 (the log stays).
 * Every Interval (after the previous probe ended) the Test runs as an exec
 * in the container with the container's user, env and working dir; exit 0
 * is healthy, anything else a failure, Retries failures in a row make it
 * unhealthy. While still starting, failures within StartPeriod of the start
 * do not count. A probe running longer than Timeout is killed and counts as
 * a failure. Output is cut at 4096 bytes, the log at 5 results. A status
 * change publishes `health_status: <status>`.
 */
import { invalid } from '../common/errors.ts';
import { log } from '../common/log.ts';
import { killProcessTree, processStartTime } from '../runtime/index.ts';
import type { HealthConfig } from '../oci/types.ts';
import type { ContainerParts } from './parts.ts';
import type { ContainerRecord } from './types.ts';

export type { HealthConfig };

export type HealthStatus = 'starting' | 'healthy' | 'unhealthy';

export interface HealthResult {
  Start: string;
  End: string;
  ExitCode: number;
  Output: string;
}

export interface HealthState {
  Status: HealthStatus;
  FailingStreak: number;
  Log: HealthResult[];
}

const NS_PER_MS = 1_000_000;
export const DEFAULT_INTERVAL_NS = 30_000 * NS_PER_MS;
export const DEFAULT_TIMEOUT_NS = 30_000 * NS_PER_MS;
export const DEFAULT_RETRIES = 3;
/** Docker's MinimumDuration: shorter non-zero durations are refused. */
const MIN_DURATION_NS = NS_PER_MS;
export const MAX_OUTPUT = 4096;
export const MAX_LOG = 5;
/** Bounds on what a request or an image may ask for. */
const MAX_TEST_ARGS = 1024;
const MAX_TEST_BYTES = 64 * 1024;
/** setTimeout's limit (~24.8 days); longer intervals are probed at this pace. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** How long to wait for a killed probe's output streams to close before giving up on them. */
const KILL_GRACE_MS = 5_000;

/** The values `ps --filter health=` accepts. */
export const HEALTH_FILTER_VALUES = ['starting', 'healthy', 'unhealthy', 'none'];

const DURATIONS = ['Interval', 'Timeout', 'StartPeriod', 'StartInterval'] as const;

/**
 * Checks a Healthcheck and drops its zero fields (Go's omitempty, so
 * inspect shows what docker shows). `strict` (an API request) refuses bad
 * values with dockerd's messages; otherwise (an image config, which dockerd
 * does not check) a bad duration or retry count means the default. A Test
 * too large to be a command is refused either way.
 */
export function parseHealthConfig(v: unknown, strict: boolean): HealthConfig | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) {
    if (strict) throw invalid('Healthcheck must be an object');
    return undefined;
  }
  const src = v as Record<string, unknown>;
  const out: HealthConfig = {};
  if (src.Test !== undefined && src.Test !== null) {
    const t = src.Test;
    if (!Array.isArray(t) || t.some((x) => typeof x !== 'string')) {
      if (strict) throw invalid('Healthcheck Test must be a list of strings');
    } else {
      if (t.length > MAX_TEST_ARGS) throw invalid(`Healthcheck Test has more than ${MAX_TEST_ARGS} entries`);
      if (t.reduce((n, s: string) => n + Buffer.byteLength(s), 0) > MAX_TEST_BYTES) throw invalid(`Healthcheck Test is larger than ${MAX_TEST_BYTES} bytes`);
      if (t.some((s: string) => s.includes('\0'))) throw invalid('Healthcheck Test cannot contain NUL bytes');
      if (t.length) out.Test = [...(t as string[])];
    }
  }
  for (const k of DURATIONS) {
    const n = wholeNumber(src[k], k, strict);
    if (n !== 0 && n < MIN_DURATION_NS) {
      if (strict) throw invalid(`${k} in Healthcheck cannot be less than 1ms`);
      continue;
    }
    if (n) out[k] = n;
  }
  const retries = wholeNumber(src.Retries, 'Retries', strict);
  if (retries < 0 && strict) throw invalid('Retries in Healthcheck cannot be negative');
  if (retries > 0) out.Retries = retries;
  return out;
}

function wholeNumber(v: unknown, what: string, strict: boolean): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  if (strict) throw invalid(`${what} in Healthcheck must be a whole number${what === 'Retries' ? '' : ' of nanoseconds'}`);
  return 0;
}

/** dockerd's create-time merge: each zero field of the request takes the image's value. */
export function mergeHealthConfig(req: HealthConfig | undefined, image: HealthConfig | undefined): HealthConfig | undefined {
  if (!image) return req;
  if (!req) return { ...image, ...(image.Test ? { Test: [...image.Test] } : {}) };
  const out: HealthConfig = { ...req };
  if (!out.Test?.length && image.Test) out.Test = [...image.Test];
  for (const k of [...DURATIONS, 'Retries'] as const) if (!out[k] && image[k]) out[k] = image[k];
  return out;
}

/** The probe's argv, or undefined when the container has no health check (none, NONE, empty or unknown type). */
export function probeCommand(cfg: HealthConfig | undefined): string[] | undefined {
  const t = cfg?.Test;
  if (!t?.length) return undefined;
  if (t[0] === 'CMD') return t.length > 1 ? t.slice(1) : undefined;
  if (t[0] === 'CMD-SHELL') return ['/bin/sh', '-c', ...t.slice(1)];
  return undefined;
}

export interface HealthTiming {
  intervalMs: number;
  timeoutMs: number;
  startPeriodMs: number;
  startIntervalMs: number;
  retries: number;
}

/** The config with docker's defaults filled in, in milliseconds, clamped to what a timer can wait. */
export function healthTiming(cfg: HealthConfig | undefined): HealthTiming {
  const ms = (ns: number | undefined, dflt: number) => Math.min(MAX_TIMER_MS, Math.max(1, Math.round((ns || dflt) / NS_PER_MS)));
  return {
    intervalMs: ms(cfg?.Interval, DEFAULT_INTERVAL_NS),
    timeoutMs: ms(cfg?.Timeout, DEFAULT_TIMEOUT_NS),
    startPeriodMs: Math.round((cfg?.StartPeriod ?? 0) / NS_PER_MS),
    startIntervalMs: cfg?.StartInterval ? ms(cfg.StartInterval, 0) : 0,
    retries: cfg?.Retries && cfg.Retries > 0 ? cfg.Retries : DEFAULT_RETRIES,
  };
}

/** A fresh state for a (re)started container: starting, no failures, the previous log kept (as dockerd). */
export function initialHealth(prev: HealthState | undefined): HealthState {
  return { Status: 'starting', FailingStreak: 0, Log: prev?.Log ?? [] };
}

/**
 * Adds one probe result to the state (handleProbeResult). `startedAtMs` is
 * the container's start: failures of a still-starting container within the
 * start period are logged but not counted.
 */
export function recordResult(h: HealthState, r: HealthResult, t: Pick<HealthTiming, 'retries' | 'startPeriodMs'>, startedAtMs: number): void {
  h.Log = [...h.Log, r].slice(-MAX_LOG);
  if (r.ExitCode === 0) {
    h.FailingStreak = 0;
    h.Status = 'healthy';
    return;
  }
  if (h.Status === 'starting' && Date.parse(r.Start) - startedAtMs < t.startPeriodMs) return;
  h.FailingStreak++;
  if (h.FailingStreak >= t.retries) h.Status = 'unhealthy';
}

/** What `ps` shows after "Up 5 seconds". */
export function healthSuffix(h: HealthState | undefined): string {
  if (!h) return '';
  return h.Status === 'starting' ? ' (health: starting)' : ` (${h.Status})`;
}

/** Go's time.Duration.String() ("1.5s", "2m0s", "500ms"), for dockerd's timeout message. */
export function goDuration(ns: number): string {
  if (ns === 0) return '0s';
  const sign = ns < 0 ? '-' : '';
  let u = Math.abs(Math.round(ns));
  const frac = (v: number, div: number) => {
    const whole = Math.floor(v / div);
    const rest = v % div;
    if (!rest) return String(whole);
    return `${whole}.${String(rest)
      .padStart(String(div).length - 1, '0')
      .replace(/0+$/, '')}`;
  };
  if (u < 1e3) return `${sign}${u}ns`;
  if (u < 1e6) return `${sign}${frac(u, 1e3)}µs`;
  if (u < 1e9) return `${sign}${frac(u, 1e6)}ms`;
  const h = Math.floor(u / 3600e9);
  u -= h * 3600e9;
  const m = Math.floor(u / 60e9);
  u -= m * 60e9;
  return `${sign}${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${frac(u, 1e9)}s`;
}

/** Keeps the first MAX_OUTPUT bytes of a probe's stdout and stderr together; "..." marks a cut. */
class ProbeOutput {
  private readonly parts: Buffer[] = [];
  private size = 0;
  private truncated = false;

  add(b: Buffer): void {
    const keep = Math.min(MAX_OUTPUT - this.size, b.length);
    if (keep > 0) {
      this.parts.push(b.subarray(0, keep));
      this.size += keep;
    }
    if (keep < b.length) this.truncated = true;
  }

  text(): string {
    return Buffer.concat(this.parts).toString('utf8') + (this.truncated ? '...' : '');
  }
}

/** Resolves true after ms, false at once if the signal aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const done = (v: boolean) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      resolve(v);
    };
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(true), ms);
    timer.unref();
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * One probe loop per running, unpaused container with a health check.
 * start() at each start of the container (and for running containers when
 * the daemon starts again), stop() when it exits or is paused, resume()
 * when it is unpaused.
 */
export class HealthMonitor {
  private readonly svc: Pick<ContainerParts, 'store' | 'mutex' | 'exits' | 'execs' | 'event'>;
  private readonly loops = new Map<string, AbortController>();

  constructor(svc: Pick<ContainerParts, 'store' | 'mutex' | 'exits' | 'execs' | 'event'>) {
    this.svc = svc;
  }

  /** Resets the state to starting and begins probing (dockerd's initHealthMonitor). */
  start(rec: ContainerRecord): void {
    this.stop(rec.id);
    if (!probeCommand(rec.config.Healthcheck)) return;
    rec.state.Health = initialHealth(rec.state.Health);
    this.resume(rec);
  }

  /** Probes again (after unpause) without touching the state. */
  resume(rec: ContainerRecord): void {
    const argv = probeCommand(rec.config.Healthcheck);
    if (!argv || !rec.state.Health || rec.state.Status !== 'running' || this.loops.has(rec.id) || this.svc.exits.shuttingDown) return;
    const ac = new AbortController();
    this.loops.set(rec.id, ac);
    void this.loop(rec, argv, ac.signal)
      .catch((e) => log.warn('health check loop failed', { id: rec.id, error: String(e) }))
      .finally(() => {
        if (this.loops.get(rec.id) === ac) this.loops.delete(rec.id);
      });
  }

  /** Stops probing; a probe in flight is killed and its result dropped. */
  stop(id: string): void {
    this.loops.get(id)?.abort();
    this.loops.delete(id);
  }

  close(): void {
    for (const id of [...this.loops.keys()]) this.stop(id);
  }

  /** Containers being probed (tests, leak checks). */
  active(): string[] {
    return [...this.loops.keys()];
  }

  private async loop(rec: ContainerRecord, argv: string[], signal: AbortSignal): Promise<void> {
    const t = healthTiming(rec.config.Healthcheck);
    const startedAt = Date.parse(rec.state.StartedAt);
    for (;;) {
      const h = rec.state.Health;
      const inStartPeriod = Date.now() - startedAt < t.startPeriodMs;
      const delay = t.startIntervalMs && h?.Status === 'starting' && inStartPeriod ? t.startIntervalMs : t.intervalMs;
      if (!(await sleep(delay, signal))) return;
      const start = new Date();
      let r: { exitCode: number; output: string };
      try {
        r = await this.probe(rec, argv, t.timeoutMs, signal);
      } catch (e) {
        r = { exitCode: -1, output: e instanceof Error ? e.message : String(e) };
      }
      const health = rec.state.Health;
      if (signal.aborted || !health) return;
      const before = health.Status;
      recordResult(health, { Start: start.toISOString(), End: new Date().toISOString(), ExitCode: r.exitCode, Output: r.output }, t, startedAt);
      if (health.Status !== before) this.changed(rec);
    }
  }

  /** Publishes the change and writes it to the record (best effort, like dockerd: only status changes are written). */
  private changed(rec: ContainerRecord): void {
    this.svc.event(`health_status: ${rec.state.Health!.Status}`, rec);
    void this.svc.mutex
      .run(rec.id, async () => {
        if (this.svc.store.get(rec.id) && rec.state.Status !== 'removing') await this.svc.store.save(rec);
      })
      .catch((e) => log.warn('saving health status failed', { id: rec.id, error: String(e) }));
  }

  /**
   * Runs the probe as an exec (so it shows in events and ExecIDs like
   * dockerd's), collects its output and enforces the timeout by killing
   * the probe and what it started.
   */
  private async probe(rec: ContainerRecord, argv: string[], timeoutMs: number, signal: AbortSignal): Promise<{ exitCode: number; output: string }> {
    const execs = this.svc.execs;
    const e = execs.create(rec.id, { Cmd: argv, AttachStdout: true, AttachStderr: true });
    try {
      const s = await execs.start(e.id, {});
      const started = processStartTime(s.pid);
      const out = new ProbeOutput();
      const streams = [s.stdout, s.stderr].map(
        (st) =>
          st &&
          new Promise<void>((resolve) => {
            st.on('data', (b: Buffer) => out.add(b));
            st.once('end', resolve);
            st.once('close', resolve);
            st.once('error', () => resolve());
          }),
      );
      const finished = Promise.all([s.exitCode, ...streams]).then(([code]) => code);
      let timer: NodeJS.Timeout | undefined;
      let onAbort: (() => void) | undefined;
      const cut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
        onAbort = () => resolve('timeout');
        signal.addEventListener('abort', onAbort, { once: true });
      });
      const outcome = await Promise.race([finished, cut]);
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort!);
      if (outcome !== 'timeout') return { exitCode: outcome, output: out.text() };
      if (started) killProcessTree(s.pid, started);
      // Its streams close once the killed processes are gone; don't wait forever on one that escaped.
      await Promise.race([finished.catch(() => {}), new Promise((r) => setTimeout(r, KILL_GRACE_MS).unref())]);
      return { exitCode: -1, output: `Health check exceeded timeout (${goDuration(rec.config.Healthcheck?.Timeout || DEFAULT_TIMEOUT_NS)})` };
    } finally {
      execs.forget(e.id);
    }
  }
}
