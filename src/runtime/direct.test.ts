import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { deleteStopped } from './direct.ts';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-direct-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** A runc state dir whose init is gone: this process's pid with another start time (the pid reused). */
function state(id: string, namespaces: { type: string; path?: string }[]): string {
  const dir = path.join(root, id);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'state.json'), JSON.stringify({ init_process_pid: process.pid, init_process_start: -1, config: { namespaces } }));
  return dir;
}

test('deleteStopped deletes a container with its own PID namespace; one sharing another PID namespace (or the host one) is left to runc', async () => {
  const own = state('own', [{ type: 'NEWNS' }, { type: 'NEWPID' }]);
  assert.equal(await deleteStopped(root, 'own'), true);
  assert.equal(fs.existsSync(own), false);

  // --pid container:X: processes of it may outlive its init in X's namespace; runc delete kills them through the cgroup.
  const joined = state('joined', [{ type: 'NEWNS' }, { type: 'NEWPID', path: '/proc/1234/ns/pid' }]);
  assert.equal(await deleteStopped(root, 'joined'), false);
  assert.equal(fs.existsSync(joined), true);

  const host = state('host', [{ type: 'NEWNS' }]);
  assert.equal(await deleteStopped(root, 'host'), false);
  assert.equal(fs.existsSync(host), true);
});
