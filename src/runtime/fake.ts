import { EngineError, notFound } from '../common/errors.ts';
import type { AttachSession } from './attach.ts';
import type { ContainerState, ExitInfo } from './driver.ts';
import type { ExecSession } from './exec.ts';
import type { OciRuntime } from './oci-runtime.ts';
import { parseRuncFailure, RuntimeError, signalNumber } from './runc.ts';

interface FakeContainer {
  status: ContainerState['status'];
  exit?: ExitInfo;
  waiters: ((i: ExitInfo) => void)[];
}

/**
 * An OciRuntime in memory, for unit tests of the containers layer (no root,
 * no runc): containers are put in a status with `adopt()`, a signal that
 * ends the process records an exit of 128+n, and `exit()` ends one as the
 * process itself would. create() and start() make a container that runs
 * nothing until `exit()` ends it; `failCreate` makes the next create fail
 * as runc does for a missing command. exec and attach refuse.
 */
export class FakeRuntime implements OciRuntime {
  readonly containers = new Map<string, FakeContainer>();
  /** Every signal sent, in order: [id, signal]. */
  readonly signals: [string, string | number][] = [];
  readonly deleted: string[] = [];

  /** A container the runtime already holds (as a restarted daemon finds it). */
  adopt(id: string, status: ContainerState['status'], exit?: Partial<ExitInfo>): void {
    this.containers.set(id, { status, waiters: [], exit: exit && { exitCode: 0, oomKilled: false, finishedAt: new Date(), recorded: true, ...exit } });
  }

  /** The container's process exits with `code`. */
  exit(id: string, code: number): void {
    const c = this.containers.get(id);
    if (!c || c.exit) return;
    c.status = 'stopped';
    c.exit = { exitCode: code, oomKilled: false, finishedAt: new Date(), recorded: true };
    for (const w of c.waiters.splice(0)) w(c.exit);
  }

  /** Every create, in order: the container ID. */
  readonly created: string[] = [];
  /** The next create fails with this error (then it is cleared). */
  failCreate?: Error;

  async create(id: string): Promise<{ pid: number; conmonPid: number }> {
    const fail = this.failCreate;
    this.failCreate = undefined;
    if (fail) throw fail;
    this.created.push(id);
    this.containers.set(id, { status: 'created', waiters: [] });
    return { pid: 4242, conmonPid: 4241 };
  }

  async start(id: string): Promise<void> {
    this.get(id).status = 'running';
  }

  async state(id: string): Promise<ContainerState> {
    const c = this.get(id);
    return { id, status: c.status, pid: c.status === 'stopped' ? 0 : 4242, bundle: '/nonexistent', created: '' };
  }

  async kill(id: string, signal: string | number = 'KILL'): Promise<void> {
    const c = this.get(id);
    if (c.status === 'stopped') throw new RuntimeError('INTERNAL', 'runc kill failed: container not running', parseRuncFailure('container not running'));
    this.signals.push([id, signal]);
    const n = signalNumber(signal);
    // SIGKILL always ends it; SIGTERM and SIGINT too (a process without handlers); others are caught.
    if (n === 9 || n === 15 || n === 2) this.exit(id, 128 + n);
  }

  async pause(id: string): Promise<void> {
    this.get(id).status = 'paused';
  }

  async resume(id: string): Promise<void> {
    this.get(id).status = 'running';
  }

  async exitInfo(id: string): Promise<ExitInfo | undefined> {
    return this.containers.get(id)?.exit;
  }

  wait(id: string, signal?: AbortSignal): Promise<ExitInfo> {
    const c = this.get(id);
    if (c.exit) return Promise.resolve(c.exit);
    return new Promise((resolve, reject) => {
      c.waiters.push(resolve);
      signal?.addEventListener('abort', () => reject(new EngineError('CANCELLED', `wait for ${id} was cancelled`)), { once: true });
    });
  }

  async resize(): Promise<void> {}

  async attach(): Promise<AttachSession> {
    throw new EngineError('INTERNAL', 'the fake runtime has no stdio');
  }

  async delete(id: string): Promise<void> {
    this.deleted.push(id);
    this.containers.delete(id);
  }

  has(id: string): boolean {
    return this.containers.has(id);
  }

  async ids(): Promise<string[]> {
    return [...this.containers.keys()];
  }

  async exec(): Promise<ExecSession> {
    throw new EngineError('INTERNAL', 'the fake runtime runs nothing');
  }

  async update(): Promise<void> {}

  private get(id: string): FakeContainer {
    const c = this.containers.get(id);
    if (!c) throw notFound(`no such container in the runtime: ${id}`);
    return c;
  }
}
