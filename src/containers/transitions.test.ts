import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Operation, refusal } from './transitions.ts';
import type { ContainerRecord, ContainerStatus } from './types.ts';

const STATUSES: ContainerStatus[] = ['created', 'running', 'paused', 'restarting', 'removing', 'exited', 'dead'];
const rec = (Status: ContainerStatus) => ({ id: 'c1', state: { Status } }) as unknown as ContainerRecord;

/** op → status → the answer: '' allowed, else "<code> <message>". */
const EXPECTED: Record<Operation, Record<ContainerStatus, string>> = {
  start: {
    created: '',
    exited: '',
    dead: '',
    running: 'NOT_MODIFIED container already started',
    restarting: 'NOT_MODIFIED container already started',
    paused: 'CONFLICT cannot start a paused container, try unpause instead',
    removing: 'CONFLICT container c1 is marked for removal and cannot be started',
  },
  stop: {
    running: '',
    paused: '',
    restarting: '',
    created: 'NOT_MODIFIED container already stopped',
    exited: 'NOT_MODIFIED container already stopped',
    dead: 'NOT_MODIFIED container already stopped',
    removing: 'NOT_MODIFIED container already stopped',
  },
  kill: {
    running: '',
    paused: '',
    restarting: '',
    created: 'CONFLICT Cannot kill container: web: Container c1 is not running',
    exited: 'CONFLICT Cannot kill container: web: Container c1 is not running',
    dead: 'CONFLICT Cannot kill container: web: Container c1 is not running',
    removing: 'CONFLICT Cannot kill container: web: Container c1 is not running',
  },
  pause: {
    running: '',
    paused: 'CONFLICT Container c1 is already paused',
    created: 'CONFLICT Container c1 is not running',
    restarting: 'CONFLICT Container c1 is not running',
    exited: 'CONFLICT Container c1 is not running',
    dead: 'CONFLICT Container c1 is not running',
    removing: 'CONFLICT Container c1 is not running',
  },
  unpause: {
    paused: '',
    created: 'CONFLICT Container c1 is not paused',
    running: 'CONFLICT Container c1 is not paused',
    restarting: 'CONFLICT Container c1 is not paused',
    exited: 'CONFLICT Container c1 is not paused',
    dead: 'CONFLICT Container c1 is not paused',
    removing: 'CONFLICT Container c1 is not paused',
  },
  remove: {
    created: '',
    exited: '',
    dead: '',
    running: 'CONFLICT You cannot remove a running container c1. Stop the container before attempting removal or force remove',
    paused: 'CONFLICT You cannot remove a running container c1. Stop the container before attempting removal or force remove',
    restarting: 'CONFLICT You cannot remove a running container c1. Stop the container before attempting removal or force remove',
    removing: 'CONFLICT removal of container c1 is already in progress',
  },
};

test("every operation in every status gets docker's answer", () => {
  for (const [op, byStatus] of Object.entries(EXPECTED) as [Operation, Record<ContainerStatus, string>][]) {
    for (const s of STATUSES) {
      const e = refusal(op, rec(s), { ref: 'web' });
      assert.equal(e ? `${e.code} ${e.message}` : '', byStatus[s], `${op} when ${s}`);
    }
  }
});

test('rm -f is allowed on a running container, not on one being removed', () => {
  for (const s of ['running', 'paused', 'restarting'] as const) assert.equal(refusal('remove', rec(s), { ref: 'web', force: true }), undefined);
  assert.equal(refusal('remove', rec('removing'), { ref: 'web', force: true })?.code, 'CONFLICT');
});
