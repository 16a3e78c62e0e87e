import type { AttachSession } from './attach.ts';
import type { ContainerState, CreateOptions, ExitInfo } from './driver.ts';
import type { ExecOptions, ExecSession } from './exec.ts';
import type { Process } from './spec-types.ts';

/**
 * What containers/ needs from an OCI runtime: run a bundle, signal it, watch
 * it exit, reach its stdio, run processes in it. RuntimeDriver (runc under
 * one conmon per container) is the real one; containers/ is written against
 * this interface so its state machine can be tested with a fake (no root).
 *
 * Every method names the container by the id the caller chose at create().
 * State lives outside the process (runc's root, conmon's files), so a new
 * runtime object on the same roots sees the containers of an earlier one:
 * that is how a restarted daemon reconciles (ids(), exitInfo(), state()).
 *
 * Errors are EngineErrors: NOT_FOUND when the runtime has no such container,
 * COMMAND_NOT_FOUND / CANNOT_EXECUTE when the process cannot be executed
 * (docker's exit codes 127 and 126), CONFLICT for a container that exists.
 */
export interface OciRuntime {
  /**
   * Creates the container from the bundle (config.json inside) and returns
   * its pid; the process waits until start(). On failure nothing is left.
   */
  create(id: string, bundleDir: string, opts?: CreateOptions): Promise<{ pid: number; conmonPid: number }>;
  start(id: string): Promise<void>;
  state(id: string): Promise<ContainerState>;
  kill(id: string, signal?: string | number, all?: boolean): Promise<void>;
  pause(id: string): Promise<void>;
  resume(id: string): Promise<void>;
  /** The exit the monitor recorded, or undefined while the container has not exited. */
  exitInfo(id: string): Promise<ExitInfo | undefined>;
  /** Resolves with the exit; rejects with CANCELLED when `signal` aborts. */
  wait(id: string, signal?: AbortSignal): Promise<ExitInfo>;
  /** Window size of the container's TTY. */
  resize(id: string, size: { height: number; width: number }): Promise<void>;
  /** A new connection to the container's stdio. */
  attach(id: string): Promise<AttachSession>;
  /** Forgets the container (force: kills it first) and removes what the runtime made for it. */
  delete(id: string, opts?: { force?: boolean }): Promise<void>;
  /** Whether the runtime holds any state for the container (even a stopped one). */
  has(id: string): boolean;
  /** IDs of every container the runtime holds state for. */
  ids(): Promise<string[]>;
  /** Runs a process in the running container. */
  exec(id: string, proc: Process, opts?: ExecOptions): Promise<ExecSession>;
  /** Changes the resources of a running container (runc update's flags); INVALID_ARGUMENT with the runtime's reason. */
  update(id: string, args: string[]): Promise<void>;
}
