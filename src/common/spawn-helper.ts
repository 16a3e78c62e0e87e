/**
 * The daemon's process helper: a small child process that runs exec()'s
 * programs (mount, ip, iptables-restore, runc ...) and conmon on the daemon's behalf.
 *
 * Why: Node starts a program with fork+exec, and fork's cost grows with the
 * forking process's memory (page tables to copy, then a write fault on every
 * anonymous page the parent touches again). The daemon's heap grows with its
 * work — after a large pull it holds ~200 MB — and a container start forks
 * four or five programs, so a busy daemon started containers ~40 ms slower
 * on the default bridge than a fresh one (measured: 126 → 173 ms). The
 * helper stays small, so starting a program costs the same whatever the
 * daemon has done, and the fork no longer blocks the daemon's event loop.
 *
 * Protocol over the IPC channel (advanced serialization, so Buffers pass as
 * they are): the daemon sends { id, file, args, env?, cwd?, input?,
 * timeoutMs?, max } and { cancel: id }; the helper answers { id, code,
 * signal, stdout, stderr } or { id, error: { code, message } }.
 *
 * A detached program with pipes (conmon): the daemon sends { piped: id, file,
 * args, env?, cwd?, pipes: n }; the helper starts it with pipes on fds 2 ..
 * 2+n-1 and hands their ends to the daemon, one { id, fd } message each with
 * the socket attached (Node passes the descriptor over the channel), then
 * { id, exit: code } when that first process exits, or { id, error }.
 *
 * The helper exits when the daemon goes away (its IPC channel closes).
 */
import { spawn, type SpawnOptions } from 'node:child_process';
import type net from 'node:net';

interface Job {
  id: number;
  file: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  input?: string | Buffer;
  timeoutMs?: number;
  max: number;
}

interface PipedJob {
  piped: number;
  file: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  pipes: number;
}

if (process.send) {
  const running = new Map<number, AbortController>();
  const reply = (m: unknown, handle?: net.Socket) => process.send?.(m, handle);
  process.on('disconnect', () => process.exit(0));
  const piped = (m: PipedJob) => {
    const child = spawn(m.file, m.args, {
      env: m.env ?? process.env,
      cwd: m.cwd,
      detached: true,
      stdio: ['ignore', 'ignore', ...Array<'pipe'>(m.pipes).fill('pipe')],
    });
    child.on('error', (e) => reply({ id: m.piped, error: { code: (e as NodeJS.ErrnoException).code, message: e.message } }));
    if (child.pid === undefined) return; // 'error' follows
    for (let fd = 2; fd < 2 + m.pipes; fd++) reply({ id: m.piped, fd }, child.stdio[fd] as net.Socket);
    child.on('exit', (code) => reply({ id: m.piped, exit: code }));
    child.unref();
  };
  process.on('message', (m: Job | PipedJob | { cancel: number }) => {
    if ('cancel' in m) return void running.get(m.cancel)?.abort();
    if ('piped' in m) return piped(m);
    const ac = new AbortController();
    running.set(m.id, ac);
    const opts: SpawnOptions = {
      env: m.env ?? process.env,
      cwd: m.cwd,
      signal: ac.signal,
      timeout: m.timeoutMs,
      stdio: [m.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    };
    const child = spawn(m.file, m.args, opts);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    child.stdout!.on('data', (b: Buffer) => (outLen < m.max && out.push(b), (outLen += b.length)));
    child.stderr!.on('data', (b: Buffer) => (errLen < m.max && err.push(b), (errLen += b.length)));
    child.on('error', (e) => {
      running.delete(m.id);
      reply({ id: m.id, error: { code: (e as NodeJS.ErrnoException).code, message: e.message } });
    });
    child.on('close', (code, signal) => {
      if (!running.delete(m.id)) return; // 'error' answered already
      reply({ id: m.id, code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err) });
    });
    if (m.input !== undefined) child.stdin!.end(m.input);
  });
}
