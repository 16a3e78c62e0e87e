import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { PassThrough, Writable } from 'node:stream';
import { EngineError } from '../common/errors.ts';
import { mkdirp, writeFileAtomic } from '../common/fs.ts';
import { procStat } from '../common/proc.ts';
import { connectAttach } from './attach.ts';
import { signalStart, spawnConmon } from './conmon.ts';
import type { RuntimeDriver } from './driver.ts';
import { writeCtl } from './driver.ts';
import { cleanRuncError, parseRuncFailure } from './runc.ts';
import type { Process } from './spec-types.ts';

export interface ExecOptions {
  /** Allocate a TTY (process.terminal is set to match). */
  tty?: boolean;
  /** Keep a pipe to the process's stdin (write to session.stdin, end() closes it). */
  stdin?: boolean;
  /** Run in the background: no stdio, survives this process; exit code via execExitCode(). */
  detach?: boolean;
  /** Initial TTY size, applied before the process starts. */
  consoleSize?: { height: number; width: number };
  /** Session id (default: random 12 hex). */
  execId?: string;
  timeoutMs?: number;
}

export interface ExecSession {
  execId: string;
  /** Host pid of the exec'd process. */
  pid: number;
  stdin: Writable | undefined;
  stdout: PassThrough | undefined;
  stderr: PassThrough | undefined;
  /** Resolves with the exit code; the session's files are removed then (attached sessions). */
  exitCode: Promise<number>;
  resize(size: { height: number; width: number }): void;
}

/** Exec session dirs live inside the container's conmon dir, so delete() removes them too. */
export function execDir(driver: RuntimeDriver, id: string, execId: string): string {
  return path.join(driver.containerDir(id), 'exec', execId);
}

/**
 * Runs a process in a running container the way podman does: a conmon with
 * --exec, which runs `runc exec --detach --process <spec>` and relays stdio
 * through its attach socket (and a TTY through a console socket). Attached:
 * conmon signals on the attach pipe once the socket listens, we connect, then
 * release it, so no output is lost. The exit code arrives on the sync pipe.
 */
export async function execInContainer(driver: RuntimeDriver, id: string, proc: Process, opts: ExecOptions = {}): Promise<ExecSession> {
  const execId = opts.execId ?? randomBytes(6).toString('hex');
  if (!/^[a-zA-Z0-9_-]{1,64}$/.test(execId)) throw new EngineError('INVALID_ARGUMENT', `invalid exec id ${execId}`);
  if (!proc.args?.length) throw new EngineError('INVALID_ARGUMENT', 'exec needs a command');
  const dir = execDir(driver, id, execId);
  await mkdirp(path.dirname(dir), 0o700);
  await fsp.mkdir(dir, { mode: 0o700 });
  const processFile = path.join(dir, 'process.json');
  const p: Process = { ...proc, terminal: !!opts.tty };
  if (opts.tty && opts.consoleSize) p.consoleSize = opts.consoleSize;
  await writeFileAtomic(processFile, JSON.stringify(p), 0o600);
  const args = [
    '--api-version',
    '1',
    '-c',
    id,
    '-u',
    execId,
    '-n',
    id,
    '-r',
    driver.runcPath,
    '-b',
    dir,
    '-p',
    path.join(dir, 'pid'),
    '-P',
    path.join(dir, 'conmon.pid'),
    '--exit-dir',
    dir,
    '--persist-dir',
    dir,
    '--socket-dir-path',
    dir,
    '--full-attach',
    '-l',
    'none',
    '--log-level',
    'error',
    '--runtime-arg',
    `--root=${driver.runc.root}`,
    '-e',
    '--exec-process-spec',
    processFile,
  ];
  if (opts.tty) args.push('-t');
  if (opts.stdin && !opts.detach) args.push('-i');
  const attached = !opts.detach;
  if (attached) args.push('--exec-attach');
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const cm = await spawnConmon(driver.conmonPath, args, { cwd: dir, attachPipe: attached }).catch(async (e: unknown) => {
    await fsp.rm(dir, { recursive: true, force: true });
    throw e;
  });
  const fail = async (e: unknown): Promise<never> => {
    cm.release();
    await fsp.rm(dir, { recursive: true, force: true });
    throw e;
  };
  await signalStart(cm).catch(() => {}); // conmon that died is seen on the sync pipe next
  let session: Awaited<ReturnType<typeof connectAttach>> | undefined;
  if (attached) {
    const ready = await cm.attach!.next(timeoutMs, `starting exec in ${id}`).catch(fail);
    if (!ready) {
      const parent = await cm.parentExit;
      return fail(new EngineError('INTERNAL', `exec in ${id} failed: ${parent.stderr.trim() || 'conmon exited early'}`));
    }
    if (opts.tty && opts.consoleSize) {
      try {
        writeCtl(path.join(dir, 'ctl'), opts.consoleSize);
      } catch {
        // the spec's consoleSize covers it
      }
    }
    session = await connectAttach(dir).catch(fail);
    await signalStart(cm).catch(() => {}); // conmon that died is seen on the sync pipe next
  }
  const first = await cm.sync.next(timeoutMs, `starting exec in ${id}`).catch(fail);
  if (!first || first.data < 0) {
    session?.close();
    const why = cleanRuncError(first?.message ?? '') || 'the exec process did not start';
    const f = parseRuncFailure(why);
    return fail(new EngineError(f.exec ?? (f.inactive ? 'CONFLICT' : 'INTERNAL'), `exec in ${id} failed: ${why}`));
  }
  const pid = first.data;
  if (!attached) {
    cm.release();
    return {
      execId,
      pid,
      stdin: undefined,
      stdout: undefined,
      stderr: undefined,
      exitCode: waitDetachedExec(dir),
      resize: (size) => writeCtl(path.join(dir, 'ctl'), size),
    };
  }
  const exitCode = (async () => {
    const last = await cm.sync.next(0, `running exec in ${id}`);
    await session!.done.catch(() => {}); // the exit code comes from the sync pipe; a broken attach only ends the output early
    cm.release();
    await fsp.rm(dir, { recursive: true, force: true });
    if (!last) return -1;
    return last.data;
  })();
  return {
    execId,
    pid,
    stdin: opts.stdin ? session!.stdin : undefined,
    stdout: session!.stdout,
    stderr: session!.stderr,
    exitCode,
    resize: (size) => writeCtl(path.join(dir, 'ctl'), size),
  };
}

async function waitDetachedExec(dir: string): Promise<number> {
  for (;;) {
    try {
      const text = await fsp.readFile(path.join(dir, 'exit'), 'utf8');
      return Number.parseInt(text.trim(), 10);
    } catch {
      // not yet
    }
    try {
      await fsp.access(dir);
    } catch {
      return -1;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Runs a command to completion and collects its output (health checks, tests). */
export async function execCollect(
  driver: RuntimeDriver,
  id: string,
  proc: Process,
  opts: { input?: string | Buffer; timeoutMs?: number; maxOutput?: number } = {},
): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const s = await execInContainer(driver, id, proc, { stdin: opts.input !== undefined, timeoutMs: opts.timeoutMs });
  const max = opts.maxOutput ?? 1 << 20;
  const collect = (r: PassThrough | undefined) => {
    const parts: Buffer[] = [];
    let n = 0;
    r?.on('data', (b: Buffer) => {
      if (n < max) parts.push(b);
      n += b.length;
    });
    return new Promise<string>((resolve) => (r ? r.on('end', () => resolve(Buffer.concat(parts).toString('utf8'))) : resolve('')));
  };
  const out = collect(s.stdout);
  const err = collect(s.stderr);
  if (opts.input !== undefined) s.stdin?.end(opts.input);
  const exitCode = await s.exitCode;
  return { exitCode, stdout: await out, stderr: await err };
}

/**
 * A process's start time (/proc/<pid>/stat field 22, clock ticks since
 * boot). With the pid it names one process, even after the pid is reused.
 */
export function processStartTime(pid: number): string | undefined {
  return procStat(pid)?.[19];
}

/**
 * SIGKILLs an exec'd process and everything it started, if `pid` is still
 * the process that started at `startTime`. Killing only the process would
 * leave a shell's children holding its output open (a hung health probe).
 */
export function killProcessTree(pid: number, startTime: string): void {
  if (processStartTime(pid) !== startTime) return;
  const children = new Map<number, number[]>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const ppid = Number(procStat(name)?.[1]); // NaN: gone meanwhile
    const list = children.get(ppid) ?? [];
    list.push(Number(name));
    children.set(ppid, list);
  }
  const victims: number[] = [];
  const queue = [pid];
  while (queue.length && victims.length < 100_000) {
    const p = queue.shift()!;
    victims.push(p);
    queue.push(...(children.get(p) ?? []));
  }
  for (const p of victims) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
