import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { RootLock } from './lock.ts';
import { isAlive } from './proc.ts';

/** A zombie: `sleep 0` backgrounded by a shell that then becomes `sleep 2`, which never reaps it. */
async function zombie(): Promise<{ pid: number; parent: number; done: () => void }> {
  const p = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 2'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const pid = Number(await new Promise<string>((resolve) => p.stdout.once('data', (d) => resolve(String(d)))));
  for (let i = 0; i < 100 && !/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')); i++) await new Promise((r) => setTimeout(r, 10));
  return { pid, parent: p.pid!, done: () => p.kill() };
}

test('a zombie is not alive, and its lock is taken over', async () => {
  assert.equal(isAlive(process.pid), true);
  const z = await zombie();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lock-'));
  try {
    assert.ok(fs.existsSync(`/proc/${z.pid}`), 'the zombie is still in the process table');
    assert.equal(isAlive(z.pid), false);
    const file = path.join(dir, 'keel.lock');
    fs.writeFileSync(file, String(z.pid));
    const lock = RootLock.acquire(file, 'state root');
    assert.equal(fs.readFileSync(file, 'utf8'), String(process.pid));
    lock.release();
    assert.equal(fs.existsSync(file), false);
    // A live owner (the zombie's parent) keeps its lock.
    fs.writeFileSync(file, String(z.parent));
    assert.throws(() => RootLock.acquire(file, 'state root'), new RegExp(`state root is in use by process ${z.parent}`));
  } finally {
    z.done();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
