import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { RuntimeDriver, readLog } from '../../src/runtime/index.ts';
import { cgroupParent, fixture, removeCgroupParent, uniqueId } from './helpers.ts';

test('a container outlives the process that created it (kill -9), and a new driver manages it', async () => {
  const f = fixture();
  const id = uniqueId('surv');
  const logPath = path.join(f.dir, 'surv.log');
  const creator = fileURLToPath(new URL('./creator.ts', import.meta.url));
  const child = spawn(
    process.execPath,
    [creator, path.join(f.dir, 'runc'), path.join(f.dir, 'state'), f.rootfs, f.bundle(id), id, `${cgroupParent()}/${id}`, logPath],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b));
  const signal = await new Promise<string | null>((resolve) => child.on('exit', (_c, s) => resolve(s)));
  assert.equal(signal, 'SIGKILL');
  const pid = Number(out.trim());
  assert.ok(pid > 0, `creator printed a pid: ${out}`);
  // A fresh driver over the same roots, as a restarted daemon would build.
  const driver = new RuntimeDriver({ runcRoot: path.join(f.dir, 'runc'), stateDir: path.join(f.dir, 'state') });
  try {
    await new Promise((r) => setTimeout(r, 200));
    const st = await driver.state(id);
    assert.equal(st.status, 'running');
    assert.equal(st.pid, pid);
    assert.equal(await driver.exitInfo(id), undefined);
    await driver.kill(id, 'KILL');
    const exit = await driver.wait(id);
    assert.equal(exit.exitCode, 137);
    assert.equal(exit.recorded, true);
    const lines: string[] = [];
    for await (const e of readLog(logPath)) lines.push(e.line.toString());
    assert.deepEqual(lines, ['started\n']);
  } finally {
    await driver.delete(id, { force: true });
    await removeCgroupParent();
    f.cleanup();
  }
});
