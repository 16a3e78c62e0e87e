import { EngineError, conflict } from '../common/errors.ts';
import type { ContainerRecord, ContainerStatus } from './types.ts';

/** What a client asks of a container that depends on its status. */
export type Operation = 'start' | 'stop' | 'kill' | 'pause' | 'unpause' | 'remove';

interface Asked {
  /** The reference the client used (docker's kill message repeats it). */
  ref: string;
  /** rm -f: a running container is killed first. */
  force?: boolean;
}

const running = (s: ContainerStatus) => s === 'running' || s === 'paused' || s === 'restarting';

/**
 * Which operation each status allows, and docker's answer when it does not
 * (dockerd 20.10's messages and codes: 304 for start-when-running and
 * stop-when-stopped, 409 for the rest). The moves themselves:
 *
 *   created ──start──▶ running ◀──unpause── paused
 *      │                │  ▲  ──pause──▶      │
 *      │              exit │ start/restart    │ kill
 *      │                ▼  │                  ▼
 *      └──────rm──▶ removing ◀──rm── exited ◀─┘
 *
 * (restarting: between an exit and the restart policy's next start.)
 */
const TABLE: Record<Operation, (s: ContainerStatus, id: string, a: Asked) => EngineError | undefined> = {
  start: (s, id) =>
    s === 'paused'
      ? conflict('cannot start a paused container, try unpause instead')
      : running(s)
        ? new EngineError('NOT_MODIFIED', 'container already started')
        : s === 'removing'
          ? conflict(`container ${id} is marked for removal and cannot be started`)
          : undefined,
  stop: (s) => (running(s) ? undefined : new EngineError('NOT_MODIFIED', 'container already stopped')),
  kill: (s, id, a) => (running(s) ? undefined : conflict(`Cannot kill container: ${a.ref}: Container ${id} is not running`)),
  pause: (s, id) => (s === 'paused' ? conflict(`Container ${id} is already paused`) : s !== 'running' ? conflict(`Container ${id} is not running`) : undefined),
  unpause: (s, id) => (s === 'paused' ? undefined : conflict(`Container ${id} is not paused`)),
  remove: (s, id, a) =>
    s === 'removing'
      ? conflict(`removal of container ${id} is already in progress`)
      : running(s) && !a.force
        ? conflict(`You cannot remove a running container ${id}. Stop the container before attempting removal or force remove`)
        : undefined,
};

/** docker's error for `op` on the container in its current status, or undefined when the status allows it. */
export function refusal(op: Operation, rec: ContainerRecord, asked: Asked): EngineError | undefined {
  return TABLE[op](rec.state.Status, rec.id, asked);
}

/** Throws docker's error unless the container's status allows `op`. */
export function checkAllowed(op: Operation, rec: ContainerRecord, asked: Asked): void {
  const no = refusal(op, rec, asked);
  if (no) throw no;
}
