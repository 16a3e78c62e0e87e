import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { conflict, EngineError, errnoCode, isEngineError } from '../common/errors.ts';
import { exec } from '../common/exec.ts';
import { mkdirp, writeFileAtomic } from '../common/fs.ts';
import { isAlive } from '../common/proc.ts';
import { connectAttach, type AttachSession } from './attach.ts';
import { type ConmonProcess, DEFAULT_CONMON, signalStart, spawnConmon } from './conmon.ts';
import { deleteStopped, signalInit } from './direct.ts';
import { startCreated } from './execfifo.ts';
import { DEFAULT_RUNC, Runc, checkId, cleanRuncError, parseRuncFailure, RuntimeError, signalNumber, type RuncState } from './runc.ts';
import { execInContainer, type ExecOptions, type ExecSession } from './exec.ts';
import type { OciRuntime } from './oci-runtime.ts';
import { specToJson } from './spec.ts';
import type { Process, Spec } from './spec-types.ts';

export interface RuntimeDriverOptions {
  /** runc's --root (state of all containers), e.g. <exec-root>/runc. */
  runcRoot: string;
  /** Per-container conmon dirs, exit files and exec sessions, e.g. <exec-root>/containers. */
  stateDir: string;
  runcPath?: string;
  conmonPath?: string;
  /** conmon's --log-level (its messages go to /dev/null unless syslog is used). */
  conmonLogLevel?: 'error' | 'warn' | 'info' | 'debug';
}

export interface CreateOptions {
  /** Allocate a pseudo-TTY (the spec's process.terminal must agree). */
  tty?: boolean;
  /** Keep a pipe to the container's stdin, written through attach(). */
  stdin?: boolean;
  /** Keep stdin open when an attached client disconnects (docker's StdinOnce=false). */
  leaveStdinOpen?: boolean;
  /** k8s-file log path; absent = no log (output only reaches attach clients). */
  logPath?: string;
  /** Rotate the log (conmon truncates) past this many bytes. */
  logSizeMax?: number;
  /** Container name for conmon's messages. */
  name?: string;
  timeoutMs?: number;
}

export type ContainerStatus = 'created' | 'running' | 'paused' | 'stopped';

export interface ContainerState {
  id: string;
  status: ContainerStatus;
  /** Host pid of the container's pid 1 (0 when stopped). */
  pid: number;
  bundle: string;
  created: string;
}

export interface ExitInfo {
  exitCode: number;
  oomKilled: boolean;
  /** When conmon recorded the exit. */
  finishedAt: Date;
  /** False when conmon died before recording it and the code is unknown (-1). */
  recorded: boolean;
}

/**
 * Runs OCI bundles with runc under one conmon per container, the way podman
 * does. All state lives in files (runc root, conmon's pid/exit/oom files), so
 * any later process with the same roots can pick containers up again.
 */
export class RuntimeDriver implements OciRuntime {
  readonly runc: Runc;
  readonly stateDir: string;
  readonly conmonPath: string;
  readonly runcPath: string;
  private readonly logLevel: string;

  constructor(opts: RuntimeDriverOptions) {
    this.runcPath = opts.runcPath ?? DEFAULT_RUNC;
    this.conmonPath = opts.conmonPath ?? DEFAULT_CONMON;
    this.runc = new Runc({ root: opts.runcRoot, binary: this.runcPath });
    this.stateDir = opts.stateDir;
    this.logLevel = opts.conmonLogLevel ?? 'error';
  }

  /** conmon's persist dir for a container: conmon.pid, pidfile, exit, oom, bundle. */
  containerDir(id: string): string {
    checkId(id);
    return path.join(this.stateDir, id);
  }

  has(id: string): boolean {
    return fs.existsSync(this.containerDir(id));
  }

  async ids(): Promise<string[]> {
    return (await fsp.readdir(this.stateDir).catch(() => [] as string[])).filter((n) => n !== 'exits');
  }

  exec(id: string, proc: Process, opts?: ExecOptions): Promise<ExecSession> {
    return execInContainer(this, id, proc, opts);
  }

  async update(id: string, args: string[]): Promise<void> {
    checkId(id);
    const r = await exec([this.runcPath, '--root', this.runc.root, 'update', ...args, id], { allowFailure: true, timeoutMs: 30_000 });
    if (r.code !== 0) throw new EngineError('INVALID_ARGUMENT', r.stderr.trim().replace(/^time=.*?msg="?/, ''));
  }

  exitFile(id: string): string {
    return path.join(this.stateDir, 'exits', id);
  }

  /** Writes config.json into a bundle directory (created if needed). */
  async writeBundle(bundleDir: string, spec: Spec): Promise<void> {
    await mkdirp(bundleDir, 0o700);
    await writeFileAtomic(path.join(bundleDir, 'config.json'), specToJson(spec), 0o600);
  }

  /**
   * Creates the container (runc create under a new conmon) and returns its
   * pid; the process waits on runc's exec fifo until start(). On failure
   * nothing is left behind.
   */
  async create(id: string, bundleDir: string, opts: CreateOptions = {}): Promise<{ pid: number; conmonPid: number }> {
    checkId(id);
    if (!path.isAbsolute(bundleDir)) throw new EngineError('INVALID_ARGUMENT', `bundle path must be absolute: ${bundleDir}`);
    const dir = this.containerDir(id);
    try {
      await fsp.mkdir(dir, { recursive: false, mode: 0o700 });
    } catch (e) {
      if (errnoCode(e) === 'EEXIST') throw conflict(`container ${id} already exists in the runtime`);
      if (errnoCode(e) !== 'ENOENT') throw e;
      await mkdirp(this.stateDir, 0o700);
      await fsp.mkdir(dir, { mode: 0o700 });
    }
    await mkdirp(path.dirname(this.exitFile(id)), 0o700);
    await fsp.rm(this.exitFile(id), { force: true });
    await fsp.writeFile(path.join(dir, 'bundle'), bundleDir);
    const args = [
      '--api-version',
      '1',
      '-c',
      id,
      '-u',
      id,
      '-n',
      opts.name ?? id,
      '-r',
      this.runcPath,
      '-b',
      bundleDir,
      '-p',
      path.join(dir, 'pidfile'),
      '-P',
      path.join(dir, 'conmon.pid'),
      '--exit-dir',
      path.dirname(this.exitFile(id)),
      '--persist-dir',
      dir,
      '--socket-dir-path',
      dir,
      '--full-attach',
      '-l',
      opts.logPath ? `k8s-file:${opts.logPath}` : 'none',
      '--log-level',
      this.logLevel,
      '--runtime-arg',
      `--root=${this.runc.root}`,
    ];
    if (opts.logSizeMax && opts.logSizeMax > 0) args.push('--log-size-max', String(Math.floor(opts.logSizeMax)));
    if (opts.tty) args.push('-t');
    if (opts.stdin) args.push('-i');
    if (opts.stdin && opts.leaveStdinOpen) args.push('--leave-stdin-open');
    const timeoutMs = opts.timeoutMs ?? 60_000;
    let cm: ConmonProcess | undefined;
    try {
      cm = await spawnConmon(this.conmonPath, args, { cwd: dir });
      await signalStart(cm).catch(() => {}); // conmon that died is seen on the sync pipe next
      const msg = await cm.sync.next(timeoutMs, `creating container ${id}`);
      if (!msg || msg.data < 0) {
        const parent = await cm.parentExit;
        const why = cleanRuncError(msg?.message ?? '') || parent.stderr.trim() || 'conmon exited without a reason';
        const failure = parseRuncFailure(why);
        throw new RuntimeError(failure.exec ?? 'INTERNAL', `cannot create container ${id}: ${why}`, failure);
      }
      const conmonPid = Number((await fsp.readFile(path.join(dir, 'conmon.pid'), 'utf8').catch(() => '0')).trim());
      return { pid: msg.data, conmonPid };
    } catch (e) {
      await this.cleanup(id, true).catch(() => {}); // undoing a failed create: its own error is the one to report
      throw e;
    } finally {
      cm?.release();
    }
  }

  async start(id: string): Promise<void> {
    checkId(id);
    const pid = Number(await fsp.readFile(path.join(this.containerDir(id), 'pidfile'), 'utf8').catch(() => '0'));
    const started = await startCreated(path.join(this.runc.root, id, 'exec.fifo'), () => isAlive(pid));
    if (!started) await this.runc.start(id);
  }

  async state(id: string): Promise<ContainerState> {
    const s: RuncState = await this.runc.state(id);
    const status: ContainerStatus = s.status === 'creating' ? 'created' : s.status;
    return { id: s.id, status, pid: status === 'stopped' ? 0 : s.pid, bundle: s.bundle, created: s.created };
  }

  async kill(id: string, signal: string | number = 'KILL', all = false): Promise<void> {
    checkId(id);
    if (!all && (await signalInit(this.runc.root, id, signalNumber(signal)))) return;
    await this.runc.kill(id, signal, all);
  }

  async pause(id: string): Promise<void> {
    await this.runc.pause(id);
  }

  async resume(id: string): Promise<void> {
    await this.runc.resume(id);
  }

  conmonPid(id: string): number {
    try {
      return Number(fs.readFileSync(path.join(this.containerDir(id), 'conmon.pid'), 'utf8').trim()) || 0;
    } catch {
      return 0;
    }
  }

  /** The exit conmon recorded, or undefined while the container has not exited. */
  async exitInfo(id: string): Promise<ExitInfo | undefined> {
    const dir = this.containerDir(id);
    let text: string;
    let st: fs.Stats;
    try {
      text = await fsp.readFile(path.join(dir, 'exit'), 'utf8');
      st = await fsp.stat(path.join(dir, 'exit'));
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return undefined;
      throw e;
    }
    const code = Number.parseInt(text.trim(), 10);
    const oomKilled = fs.existsSync(path.join(dir, 'oom'));
    return { exitCode: Number.isNaN(code) ? -1 : code, oomKilled, finishedAt: st.mtime, recorded: true };
  }

  /** Shorthand: the exit code, or undefined while running. */
  async exitCode(id: string): Promise<number | undefined> {
    return (await this.exitInfo(id))?.exitCode;
  }

  /**
   * Waits for the container to exit: an inotify watch on its conmon dir, plus
   * a slow check that conmon is alive (if it was killed, nothing would ever
   * write the exit file, so runc's state decides).
   */
  async wait(id: string, signal?: AbortSignal): Promise<ExitInfo> {
    const dir = this.containerDir(id);
    for (;;) {
      const info = await this.exitInfo(id);
      if (info) return info;
      if (signal?.aborted) throw new EngineError('CANCELLED', `wait for ${id} was cancelled`);
      const cpid = this.conmonPid(id);
      if (cpid && !isAlive(cpid)) {
        const again = await this.exitInfo(id);
        if (again) return again;
        let stopped = false;
        try {
          stopped = (await this.state(id)).status === 'stopped';
        } catch (e) {
          if (!isEngineError(e, 'NOT_FOUND')) throw e;
          stopped = true;
        }
        if (stopped) return { exitCode: -1, oomKilled: false, finishedAt: new Date(), recorded: false };
      }
      await new Promise<void>((resolve) => {
        let w: fs.FSWatcher | undefined;
        const done = () => {
          clearTimeout(t);
          w?.close();
          signal?.removeEventListener('abort', done);
          resolve();
        };
        const t = setTimeout(done, 1000);
        signal?.addEventListener('abort', done, { once: true });
        try {
          w = fs.watch(dir, (_ev, name) => {
            if (name === 'exit') done();
          });
          w.on('error', done);
        } catch {
          // dir vanished: the loop re-checks
        }
        // The exit may have landed between the check and the watch.
        if (fs.existsSync(path.join(dir, 'exit'))) done();
      });
    }
  }

  /** Sends a window size to the container's TTY through conmon's control fifo. */
  async resize(id: string, size: { height: number; width: number }): Promise<void> {
    const bundle = await this.bundleOf(id);
    writeCtl(path.join(bundle, 'ctl'), size);
  }

  /** Connects to the container's stdio (conmon's attach socket in the bundle). */
  async attach(id: string): Promise<AttachSession> {
    return connectAttach(await this.bundleOf(id));
  }

  async bundleOf(id: string): Promise<string> {
    try {
      return (await fsp.readFile(path.join(this.containerDir(id), 'bundle'), 'utf8')).trim();
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') throw new EngineError('NOT_FOUND', `no such container in the runtime: ${id}`);
      throw e;
    }
  }

  /**
   * Deletes the container from runc (force kills a running one first) and
   * removes everything the driver made: conmon's dir, the exit file, the
   * attach socket and fifos in the bundle, and a leftover cgroup. Read
   * exitInfo() before this: it goes too.
   */
  async delete(id: string, opts: { force?: boolean } = {}): Promise<void> {
    checkId(id);
    if (!opts.force) {
      try {
        const s = await this.state(id);
        if (s.status !== 'stopped') throw conflict(`container ${id} is ${s.status}: stop it first or force the removal`);
      } catch (e) {
        if (!isEngineError(e, 'NOT_FOUND')) throw e;
      }
    }
    await this.cleanup(id, true);
  }

  private async cleanup(id: string, force: boolean): Promise<void> {
    const dir = this.containerDir(id);
    let bundle: string | undefined;
    try {
      bundle = (await fsp.readFile(path.join(dir, 'bundle'), 'utf8')).trim();
    } catch {
      bundle = undefined;
    }
    let cgroupsPath: string | undefined;
    if (bundle) {
      try {
        cgroupsPath = (JSON.parse(await fsp.readFile(path.join(bundle, 'config.json'), 'utf8')) as Spec).linux?.cgroupsPath;
      } catch {
        cgroupsPath = undefined;
      }
    }
    try {
      if (!(await deleteStopped(this.runc.root, id))) await this.runc.delete(id, force);
    } catch (e) {
      if (!isEngineError(e, 'NOT_FOUND')) throw e;
    }
    // conmon exits once it has recorded the exit; give it a moment (~2 s, checked
    // from 1 ms on: it is usually gone within a few ms), then make sure.
    const cpid = this.conmonPid(id);
    for (let i = 0, waited = 0; cpid && isAlive(cpid) && waited < 2000; i++) {
      const ms = Math.min(1 << i, 20);
      await new Promise((r) => setTimeout(r, ms));
      waited += ms;
    }
    if (cpid && isAlive(cpid) && isConmon(cpid)) {
      try {
        process.kill(cpid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    await fsp.rm(dir, { recursive: true, force: true });
    await fsp.rm(this.exitFile(id), { force: true });
    if (bundle) for (const f of ['attach', 'ctl', 'winsz', 'oom']) await fsp.rm(path.join(bundle, f), { force: true });
    if (cgroupsPath) await removeCgroup(cgroupsPath);
  }
}

function isConmon(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'conmon';
  } catch {
    return false;
  }
}

/** Writes a WIN_RESIZE_EVENT (type 1) line to conmon's ctl fifo. */
export function writeCtl(fifo: string, size: { height: number; width: number }): void {
  const h = Math.floor(size.height);
  const w = Math.floor(size.width);
  if (!(h > 0 && w > 0 && h < 65536 && w < 65536)) throw new EngineError('INVALID_ARGUMENT', `invalid terminal size ${size.height}x${size.width}`);
  let fd: number;
  try {
    fd = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    const c = errnoCode(e);
    if (c === 'ENOENT' || c === 'ENXIO') throw conflict('cannot resize: the container is not running with a TTY');
    throw e;
  }
  try {
    fs.writeSync(fd, `1 ${h} ${w}\n`);
  } finally {
    fs.closeSync(fd);
  }
}

/** Removes a container's cgroup dirs that runc left (e.g. after a crash); leaf first, v1 and v2. */
export async function removeCgroup(cgroupsPath: string): Promise<void> {
  if (!cgroupsPath.startsWith('/') || cgroupsPath.split('/').includes('..') || cgroupsPath === '/') return;
  let roots: string[];
  try {
    const unified = fs.existsSync('/sys/fs/cgroup/cgroup.controllers');
    roots = unified ? ['/sys/fs/cgroup'] : (await fsp.readdir('/sys/fs/cgroup')).map((c) => path.join('/sys/fs/cgroup', c));
  } catch {
    return;
  }
  for (const root of roots) {
    const p = path.join(root, cgroupsPath);
    try {
      await fsp.rmdir(p);
    } catch {
      // absent, or still has processes (then runc reported the error already)
    }
  }
}
