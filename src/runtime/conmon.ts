import type { Readable, Writable } from 'node:stream';
import { EngineError } from '../common/errors.ts';
import { exec, spawnPiped } from '../common/exec.ts';

export const DEFAULT_CONMON = '/usr/bin/conmon';

/**
 * conmon's sync protocol (api-version 1): one JSON object per line on the
 * _OCI_SYNCPIPE fd, `{"data": N, "message": "..."}`. For a create, N is the
 * container pid, or negative with runc's stderr as message. For an exec,
 * the first N is the pid and the second the exit code. _OCI_STARTPIPE: conmon
 * blocks on one read before forking, and (exec attach) once more before
 * running runc. _OCI_ATTACHPIPE: conmon says `{"data":0}` when the attach
 * socket listens.
 */
export interface SyncMessage {
  data: number;
  message?: string;
}

export class LineReader {
  private buf = '';
  private waiters: { resolve: (m: SyncMessage | undefined) => void }[] = [];
  private queue: (SyncMessage | undefined)[] = [];
  private ended = false;
  readonly stream: Readable;

  constructor(stream: Readable) {
    this.stream = stream;
    stream.setEncoding('utf8');
    stream.on('data', (s: string) => {
      this.buf += s;
      if (this.buf.length > 1 << 20) this.buf = this.buf.slice(-(1 << 16));
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        let msg: SyncMessage | undefined;
        try {
          const o = JSON.parse(line) as SyncMessage;
          if (typeof o.data === 'number') msg = o;
        } catch {
          // conmon only writes JSON here; ignore anything else.
        }
        if (msg) this.push(msg);
      }
    });
    const end = () => {
      if (this.ended) return;
      this.ended = true;
      this.push(undefined);
    };
    stream.on('end', end);
    stream.on('close', end);
    stream.on('error', end);
  }

  private push(m: SyncMessage | undefined): void {
    const w = this.waiters.shift();
    if (w) w.resolve(m);
    else this.queue.push(m);
    if (m === undefined) for (const x of this.waiters.splice(0)) x.resolve(undefined);
  }

  /** Next message, or undefined when the other end closed without one. */
  next(timeoutMs: number, what: string): Promise<SyncMessage | undefined> {
    if (this.queue.length) return Promise.resolve(this.queue.shift());
    if (this.ended) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      const timer =
        timeoutMs > 0
          ? setTimeout(() => {
              this.waiters = this.waiters.filter((w) => w !== waiter);
              reject(new EngineError('TIMEOUT', `conmon did not answer within ${timeoutMs} ms while ${what}`));
            }, timeoutMs)
          : undefined;
      const waiter = {
        resolve: (m: SyncMessage | undefined) => {
          if (timer) clearTimeout(timer);
          resolve(m);
        },
      };
      this.waiters.push(waiter);
    });
  }

  close(): void {
    this.stream.destroy();
  }
}

export interface ConmonProcess {
  /** conmon's first process, which exits right after its daemonizing fork. */
  parentExit: Promise<{ code: number | null; stderr: string }>;
  sync: LineReader;
  start: Writable;
  attach?: LineReader;
  /** Closes our ends of the pipes; conmon itself goes on. */
  release(): void;
}

/**
 * Starts conmon detached: its own process group (and session, by its own
 * setsid), no stdio of ours, double-forked by conmon itself (no --sync), so
 * the monitor and the container outlive this process even under kill -9.
 * In the daemon the process helper forks it (spawnPiped).
 */
export async function spawnConmon(binary: string, args: string[], opts: { cwd: string; attachPipe?: boolean }): Promise<ConmonProcess> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    _OCI_SYNCPIPE: '3',
    _OCI_STARTPIPE: '4',
  };
  if (opts.attachPipe) env._OCI_ATTACHPIPE = '5';
  if (process.env.XDG_RUNTIME_DIR) env.XDG_RUNTIME_DIR = process.env.XDG_RUNTIME_DIR;
  // Pipes on fds 2 (stderr), 3 (sync), 4 (start) and 5 (attach): AF_UNIX stream socketpairs; conmon only read()s and write()s them.
  const child = await spawnPiped(binary, args, { cwd: opts.cwd, env, pipes: opts.attachPipe ? 4 : 3 });
  const [errPipe, syncPipe, startPipe, attachPipe] = child.pipes as unknown as [Readable, Readable, Writable, Readable | undefined];
  const sync = new LineReader(syncPipe);
  const attach = attachPipe ? new LineReader(attachPipe) : undefined;
  let stderr = '';
  errPipe.setEncoding('utf8');
  errPipe.on('data', (s: string) => {
    if (stderr.length < 65536) stderr += s;
  });
  errPipe.on('error', () => {});
  // conmon's daemon child still holds stderr open until it switches to /dev/null: wait for its end only briefly.
  const errEnd = new Promise<void>((resolve) => errPipe.once('close', resolve));
  const parentExit = child.exit.then(async ({ code, error }) => {
    if (error) return { code: -1, stderr: `cannot run ${binary}: ${error}` };
    await Promise.race([errEnd, new Promise((r) => setTimeout(r, 100).unref())]);
    return { code, stderr };
  });
  startPipe.on('error', () => {});
  return {
    parentExit,
    sync,
    start: startPipe,
    attach,
    release() {
      sync.close();
      attach?.close();
      startPipe.destroy();
      errPipe.destroy();
    },
  };
}

/** Writes one byte on the start pipe. */
export function signalStart(p: ConmonProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    p.start.write(Buffer.from([0]), (e) => (e ? reject(new EngineError('INTERNAL', `conmon start pipe: ${e.message}`)) : resolve()));
  });
}

export async function conmonVersion(binary = DEFAULT_CONMON): Promise<string> {
  const res = await exec([binary, '--version'], { timeoutMs: 10_000 });
  return /conmon version\s+(\S+)/.exec(res.stdout)?.[1] ?? res.stdout.trim();
}
