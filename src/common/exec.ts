import { spawn, type SpawnOptions } from 'node:child_process';
import { EngineError } from './errors.ts';

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

/**
 * Runs a program with an argv array (never through a shell) and captures its
 * output. A non-zero exit throws an EngineError carrying the program's stderr,
 * unless allowFailure is set.
 */
export function exec(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const [file, ...args] = argv;
  if (!file) throw new EngineError('INVALID_ARGUMENT', 'exec: empty argv');
  const max = opts.maxOutput ?? 16 << 20;
  const spawnOpts: SpawnOptions = {
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    signal: opts.signal,
    timeout: opts.timeoutMs,
    stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  };
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, spawnOpts);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    child.stdout!.on('data', (b: Buffer) => {
      if (outLen < max) out.push(b);
      outLen += b.length;
    });
    child.stderr!.on('data', (b: Buffer) => {
      if (errLen < max) err.push(b);
      errLen += b.length;
    });
    child.on('error', (e) => {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') reject(new EngineError('UNAVAILABLE', `${file} is not installed or not on PATH`, { cause: e }));
      else if (code === 'ABORT_ERR') reject(new EngineError('CANCELLED', `${file} was cancelled`, { cause: e }));
      else reject(new EngineError('INTERNAL', `cannot run ${file}: ${e.message}`, { cause: e }));
    });
    child.on('close', (code, signal) => {
      const res: ExecResult = {
        code: code ?? 128,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      };
      if (res.code !== 0 && !opts.allowFailure) {
        const why = res.stderr.trim() || res.stdout.trim() || (signal ? `killed by ${signal}` : `exit status ${res.code}`);
        reject(new EngineError('INTERNAL', `${[file, ...args].slice(0, 4).join(' ')}: ${why}`));
      } else resolve(res);
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
  });
}
