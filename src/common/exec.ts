import { type ChildProcess, fork, spawn, type SpawnOptions } from 'node:child_process';
import type net from 'node:net';
import { EngineError, ExecError } from './errors.ts';

export interface ExecOptions {
  /** Bytes written to the child's stdin, then closed. */
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  signal?: AbortSignal;
  /** Kill the child after this many milliseconds. */
  timeoutMs?: number;
  /** Resolve with the result instead of throwing on a non-zero exit. */
  allowFailure?: boolean;
  /** Cap on captured output per stream (default 16 MiB). */
  maxOutput?: number;
}

export interface ExecResult {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** What running a program gave: its exit, or why it could not run. */
type Outcome = { code: number | null; signal: NodeJS.Signals | null; stdout: Buffer; stderr: Buffer } | { error: { code?: string; message: string } };

/**
 * Runs a program with an argv array (never through a shell) and captures its
 * output. A non-zero exit throws an ExecError carrying the program's argv,
 * exit and output, unless allowFailure is set. In the daemon the program is started by the
 * process helper (useSpawnHelper), elsewhere by this process.
 */
export async function exec(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const [file, ...args] = argv;
  if (!file) throw new EngineError('INVALID_ARGUMENT', 'exec: empty argv');
  const max = opts.maxOutput ?? 16 << 20;
  const o = wanted ? await viaHelper(startHelper(), file, args, opts, max) : await direct(file, args, opts, max);
  if ('error' in o) {
    if (o.error.code === 'ENOENT') throw new EngineError('UNAVAILABLE', `${file} is not installed or not on PATH`);
    if (o.error.code === 'ABORT_ERR') throw new EngineError('CANCELLED', `${file} was cancelled`);
    throw new EngineError('INTERNAL', `cannot run ${file}: ${o.error.message}`);
  }
  const res: ExecResult = { code: o.code ?? 128, signal: o.signal, stdout: o.stdout.toString('utf8'), stderr: o.stderr.toString('utf8') };
  if (res.code !== 0 && !opts.allowFailure) {
    const why = res.stderr.trim() || res.stdout.trim() || (o.signal ? `killed by ${o.signal}` : `exit status ${res.code}`);
    throw new ExecError(`${[file, ...args].slice(0, 4).join(' ')}: ${why}`, {
      argv,
      exitCode: res.code,
      signal: res.signal,
      stdout: res.stdout,
      stderr: res.stderr,
    });
  }
  return res;
}

function direct(file: string, args: string[], opts: ExecOptions, max: number): Promise<Outcome> {
  const spawnOpts: SpawnOptions = {
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    signal: opts.signal,
    timeout: opts.timeoutMs,
    stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  };
  return new Promise((resolve) => {
    const child = spawn(file, args, spawnOpts);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    let settled = false;
    const settle = (o: Outcome) => {
      if (!settled) resolve(o);
      settled = true;
    };
    child.stdout!.on('data', (b: Buffer) => (outLen < max && out.push(b), (outLen += b.length)));
    child.stderr!.on('data', (b: Buffer) => (errLen < max && err.push(b), (errLen += b.length)));
    child.on('error', (e) => settle({ error: { code: (e as NodeJS.ErrnoException).code, message: e.message } }));
    child.on('close', (code, signal) => settle({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err) }));
    if (opts.input !== undefined) child.stdin!.end(opts.input);
  });
}

// ---- detached programs with pipes (conmon) ---------------------------------

export interface PipedProcess {
  /** This process's ends of the program's fds 2, 3, ...: stream sockets. */
  pipes: net.Socket[];
  /** When the program's first process exits (conmon's exits right after it daemonizes). */
  exit: Promise<{ code: number | null; error?: string }>;
}

/**
 * Starts a program detached (own session, no stdio of ours) with pipes on
 * fds 2 .. 2+pipes-1, the way conmon is started. In the daemon the process
 * helper forks it and passes the pipe ends back (see spawn-helper.ts), so the
 * fork costs the same whatever this process's memory, and never blocks its
 * event loop. Rejects when the program cannot be started.
 */
export function spawnPiped(file: string, args: string[], o: { cwd?: string; env?: NodeJS.ProcessEnv; pipes: number }): Promise<PipedProcess> {
  return wanted ? pipedViaHelper(startHelper(), file, args, o) : pipedDirect(file, args, o);
}

function pipedDirect(file: string, args: string[], o: { cwd?: string; env?: NodeJS.ProcessEnv; pipes: number }): Promise<PipedProcess> {
  const child = spawn(file, args, {
    cwd: o.cwd,
    env: o.env ?? process.env,
    detached: true,
    stdio: ['ignore', 'ignore', ...Array<'pipe'>(o.pipes).fill('pipe')],
  });
  return new Promise((resolve, reject) => {
    child.on('error', (e) => reject(new EngineError('UNAVAILABLE', `cannot run ${file}: ${e.message}`)));
    if (child.pid === undefined) return;
    const exit = new Promise<{ code: number | null }>((r) => child.on('exit', (code) => r({ code })));
    child.unref();
    resolve({ pipes: child.stdio.slice(2) as net.Socket[], exit });
  });
}

function pipedViaHelper(h: Helper, file: string, args: string[], o: { cwd?: string; env?: NodeJS.ProcessEnv; pipes: number }): Promise<PipedProcess> {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    const pipes: net.Socket[] = [];
    let exited!: (x: { code: number | null; error?: string }) => void;
    const exit = new Promise<{ code: number | null; error?: string }>((r) => (exited = r));
    h.piped.set(id, {
      pipe: (fd, sock) => {
        pipes[fd - 2] = sock;
        if (pipes.filter(Boolean).length === o.pipes) resolve({ pipes, exit });
      },
      end: (code, error) => {
        h.piped.delete(id);
        if (!h.pending.size && !h.piped.size) h.proc.channel?.unref();
        if (pipes.filter(Boolean).length < o.pipes) {
          for (const p of pipes) p?.destroy();
          reject(new EngineError('UNAVAILABLE', `cannot run ${file}: ${error ?? `it exited (${code}) before its pipes were set up`}`));
        }
        exited(error === undefined ? { code } : { code, error });
      },
    });
    h.proc.channel?.ref();
    h.proc.send({ piped: id, file, args, env: o.env, cwd: o.cwd, pipes: o.pipes });
  });
}

// ---- the process helper (see spawn-helper.ts) ------------------------------

interface Helper {
  proc: ChildProcess;
  /** Calls in flight, by id: each answer goes to its caller. */
  pending: Map<number, (o: Outcome) => void>;
  /** spawnPiped calls until their program's first process exits: its pipe ends, then its exit. */
  piped: Map<number, { pipe: (fd: number, sock: net.Socket) => void; end: (code: number | null, error?: string) => void }>;
}

let helper: Helper | undefined;
let wanted = false;
let nextId = 1;

/**
 * From now on exec() starts programs through a small helper process, so the
 * cost of starting one no longer grows with this process's memory. For the
 * daemon. A helper that dies is replaced at the next call; the calls it had
 * in flight fail (whether their programs ran is unknown).
 */
export function useSpawnHelper(): void {
  wanted = true;
  startHelper();
}

/** Stops the helper (daemon shutdown, tests); exec() runs programs itself again. */
export function stopSpawnHelper(): void {
  wanted = false;
  helper?.proc.kill();
  helper = undefined;
}

function startHelper(): Helper {
  if (helper) return helper;
  const proc = fork(new URL('./spawn-helper.ts', import.meta.url), [], {
    serialization: 'advanced',
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    // None of this process's own flags (inspector, profiling): the helper only needs Node's type stripping.
    execArgv: [],
  });
  const h: Helper = { proc, pending: new Map(), piped: new Map() };
  helper = h;
  proc.on('message', (m: Outcome & { id: number; fd?: number; exit?: number | null }, handle?: unknown) => {
    const p = h.piped.get(m.id);
    if (p) {
      if (m.fd !== undefined && handle) p.pipe(m.fd, handle as net.Socket);
      else if ('error' in m) p.end(null, m.error.message);
      else p.end(m.exit ?? null);
      return;
    }
    const done = h.pending.get(m.id);
    h.pending.delete(m.id);
    if (!h.pending.size && !h.piped.size) proc.channel?.unref();
    done?.(m);
  });
  // Gone (exited, or could not start or be written to): its calls in flight fail, the next call starts another.
  const lost = () => {
    if (helper === h) helper = undefined;
    for (const done of h.pending.values()) done({ error: { message: 'the process helper exited while it ran the program' } });
    h.pending.clear();
    for (const p of [...h.piped.values()]) p.end(null, 'the process helper exited while it started the program');
  };
  proc.on('exit', lost);
  proc.on('error', lost);
  // The helper keeps this process alive only while it runs something for it (see viaHelper).
  proc.unref();
  proc.channel?.unref();
  return h;
}

function viaHelper(h: Helper, file: string, args: string[], opts: ExecOptions, max: number): Promise<Outcome> {
  if (opts.signal?.aborted) return Promise.resolve({ error: { code: 'ABORT_ERR', message: 'aborted' } });
  const id = nextId++;
  return new Promise((resolve) => {
    const onAbort = () => h.proc.send({ cancel: id });
    h.pending.set(id, (o) => {
      opts.signal?.removeEventListener('abort', onAbort);
      resolve(o);
    });
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    h.proc.channel?.ref();
    h.proc.send({ id, file, args, env: opts.env, cwd: opts.cwd, input: opts.input, timeoutMs: opts.timeoutMs, max });
  });
}
