import fsp from 'node:fs/promises';
import path from 'node:path';
import { EngineError, conflict, invalid, isEngineError } from '../common/errors.ts';
import { newId } from '../common/ids.ts';
import { log } from '../common/log.ts';
import { execProcess, type ExecSession, type Spec } from '../runtime/index.ts';
import { mergeEnv } from './create.ts';
import type { ContainerParts } from './parts.ts';
import type { ContainerRecord } from './types.ts';
import { resolveUserIn } from './user.ts';

export interface ExecConfig {
  User?: string;
  Privileged?: boolean;
  Tty?: boolean;
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  Detach?: boolean;
  DetachKeys?: string;
  Env?: string[] | null;
  WorkingDir?: string;
  Cmd?: string[];
}

export interface ExecRecord {
  id: string;
  containerId: string;
  config: ExecConfig;
  running: boolean;
  exitCode: number | null;
  pid: number;
  started: boolean;
  session?: ExecSession;
}

const MAX_EXECS = 10_000;

/**
 * Exec instances as docker has them: created (POST /containers/{id}/exec),
 * then started once (POST /exec/{id}/start), inspectable until the container
 * is removed.
 */
export class ExecManager {
  private readonly svc: Pick<ContainerParts, 'store' | 'runtime' | 'rootfs' | 'event'>;
  private readonly execs = new Map<string, ExecRecord>();

  constructor(svc: Pick<ContainerParts, 'store' | 'runtime' | 'rootfs' | 'event'>) {
    this.svc = svc;
  }

  create(ref: string, cfg: ExecConfig): ExecRecord {
    const rec = this.svc.store.find(ref);
    if (rec.state.Status === 'paused') throw conflict(`Container ${rec.id} is paused, unpause the container before exec`);
    if (rec.state.Status !== 'running') throw conflict(`Container ${rec.id} is not running`);
    if (!Array.isArray(cfg.Cmd) || cfg.Cmd.length === 0 || cfg.Cmd.some((c) => typeof c !== 'string')) throw invalid('No exec command specified');
    if (this.execs.size >= MAX_EXECS) this.gc();
    const e: ExecRecord = { id: newId(), containerId: rec.id, config: cfg, running: false, exitCode: null, pid: 0, started: false };
    this.execs.set(e.id, e);
    this.svc.event(`exec_create: ${cfg.Cmd.join(' ')}`, rec, { execID: e.id });
    return e;
  }

  get(id: string): ExecRecord {
    const e = this.execs.get(id);
    if (!e) throw new EngineError('NOT_FOUND', `No such exec instance: ${id}`);
    return e;
  }

  /** IDs of a container's execs (inspect's ExecIDs). */
  idsOf(containerId: string): string[] {
    return [...this.execs.values()].filter((e) => e.containerId === containerId && e.running).map((e) => e.id);
  }

  /**
   * Starts the exec. Attached: returns the session (stdio streams); the
   * exit is recorded when it ends. A command that cannot run throws with
   * exitCode set to 126/127, as docker's inspect reports it.
   */
  async start(id: string, opts: { detach?: boolean; tty?: boolean; consoleSize?: { height: number; width: number } }): Promise<ExecSession> {
    const e = this.get(id);
    if (e.started) throw conflict(`Error: Exec command ${id} has already run`);
    const rec = this.svc.store.find(e.containerId);
    if (rec.state.Status !== 'running') throw conflict(`Container ${rec.id} is not running`);
    e.started = true;
    const c = e.config;
    const tty = opts.tty ?? !!c.Tty;
    let session: ExecSession;
    try {
      const base = await this.baseProcess(rec);
      const user = c.User ? resolveUserIn(this.svc.rootfs.path(rec.id), c.User) : undefined;
      const env = mergeEnv(undefined, c.Env ?? []);
      const proc = execProcess(base, {
        args: c.Cmd!,
        env,
        cwd: c.WorkingDir || undefined,
        tty,
        privileged: !!c.Privileged,
        user: user ? { uid: user.uid, gid: user.gid, ...(user.additionalGids.length ? { additionalGids: user.additionalGids } : {}) } : undefined,
        bounding: base.capabilities?.bounding,
      });
      if (user && !env.some((x) => x.startsWith('HOME='))) proc.env = proc.env.map((x) => (x.startsWith('HOME=') ? `HOME=${user.home}` : x));
      session = await this.svc.runtime.exec(rec.id, proc, {
        tty,
        stdin: !!c.AttachStdin,
        detach: !!opts.detach,
        consoleSize: opts.consoleSize,
        execId: id.slice(0, 12),
      });
    } catch (err) {
      e.exitCode = isEngineError(err, 'COMMAND_NOT_FOUND') ? 127 : isEngineError(err, 'CANNOT_EXECUTE') ? 126 : 126;
      this.svc.event('exec_die', rec, { execID: id, exitCode: String(e.exitCode) });
      throw err;
    }
    e.session = session;
    e.running = true;
    e.pid = session.pid;
    this.svc.event(`exec_start: ${c.Cmd!.join(' ')}`, rec, { execID: id });
    void session.exitCode.then(
      (code) => {
        e.exitCode = code;
        e.running = false;
        e.session = undefined;
        this.svc.event('exec_die', rec, { execID: id, exitCode: String(code) });
      },
      (err) => {
        log.warn('exec wait failed', { id, error: String(err) });
        e.running = false;
      },
    );
    return session;
  }

  resize(id: string, size: { height: number; width: number }): void {
    const e = this.get(id);
    if (!e.session) {
      // Before start the CLI may send a size; it is applied with the start's consoleSize.
      if (!e.started) return;
      throw conflict(`Exec ${id} is not running`);
    }
    e.session.resize(size);
  }

  /** The container's process from its bundle: execs inherit caps, rlimits, no_new_privs. */
  private async baseProcess(rec: ContainerRecord): Promise<Spec['process']> {
    const spec = JSON.parse(await fsp.readFile(path.join(this.svc.rootfs.runDir(rec.id), 'config.json'), 'utf8')) as Spec;
    return spec.process;
  }

  /** Forgets finished execs and those of removed containers. */
  gc(): void {
    for (const [id, e] of this.execs) if (!e.running && (e.started || !this.svc.store.get(e.containerId))) this.execs.delete(id);
  }

  /** Drops one exec (health probes, once their result is taken). */
  forget(id: string): void {
    this.execs.delete(id);
  }

  forgetContainer(containerId: string): void {
    for (const [id, e] of this.execs) if (e.containerId === containerId) this.execs.delete(id);
  }
}
