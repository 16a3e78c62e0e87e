import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { RootLock } from './lock.ts';
import { isAlive } from './proc.ts';

/** A zombie: `sleep 0` backgrounded by a shell that then becomes `sleep 60` (killed when the test ends), which never reaps it. */
async function zombie(): Promise<{ pid: number; parent: number; done: () => void }> {
  const p = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 60'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const pid = Number(await new Promise<string>((resolve) => p.stdout.once('data', (d) => resolve(String(d)))));
  for (let i = 0; i < 100 && !/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')); i++) await new Promise((r) => setTimeout(r, 10));
  return { pid, parent: p.pid!, done: () => p.kill() };
}

test('a zombie is not alive', async () => {
  assert.equal(isAlive(process.pid), true);
  const z = await zombie();
  try {
    assert.ok(fs.existsSync(`/proc/${z.pid}`), 'the zombie is still in the process table');
    assert.equal(isAlive(z.pid), false);
  } finally {
    z.done();
  }
});

const LOCK_TS = fileURLToPath(new URL('./lock.ts', import.meta.url));

/** A process that takes the lock, says "locked <pid>" or "busy: <message>", then holds it until killed. */
function contender(file: string, startAt = 0): { child: ChildProcess; said: Promise<string> } {
  // All contenders spin until one instant, so their attempts really overlap.
  const code = `import { RootLock } from ${JSON.stringify(LOCK_TS)};
    while (Date.now() < ${startAt});
    try { RootLock.acquire(${JSON.stringify(file)}, 'state root'); console.log('locked ' + process.pid); setInterval(() => {}, 1000); }
    catch (e) { console.log('busy: ' + e.message); }`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const said = new Promise<string>((resolve) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(out.trim());
    });
    child.on('exit', () => resolve(out.trim()));
  });
  return { child, said };
}

test("the lock is the kernel's: a live holder keeps it, kill -9 frees it at once, whatever the file says", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lock-'));
  const file = path.join(dir, 'keel.lock');
  let a: ReturnType<typeof contender> | undefined;
  try {
    // A pid left in the file by a dead owner means nothing.
    fs.writeFileSync(file, '999999999');
    const mine = RootLock.acquire(file, 'state root');
    assert.equal(fs.readFileSync(file, 'utf8'), String(process.pid));
    mine.release();
    a = contender(file);
    assert.match(await a.said, /^locked \d+$/);
    assert.throws(() => RootLock.acquire(file, 'state root'), { code: 'CONFLICT', message: new RegExp(`state root is in use by process ${a.child.pid} `) });
    // The moments a pid-file lock gets wrong: the holder has created the file but not written its pid
    // yet (empty), or a contender read a dead owner's pid just before the holder took over.
    for (const content of ['', '999999999']) {
      fs.writeFileSync(file, content);
      assert.throws(
        () => RootLock.acquire(file, 'state root'),
        { code: 'CONFLICT', message: /state root is in use by (another process|process 999999999)/ },
        JSON.stringify(content),
      );
    }
    const holder = a.child;
    holder.kill('SIGKILL');
    await new Promise((r) => holder.once('exit', r));
    RootLock.acquire(file, 'state root').release();
  } finally {
    a?.child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('of many contenders started at once, exactly one holds the lock', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lock-'));
  const file = path.join(dir, 'keel.lock');
  try {
    for (let round = 0; round < 3; round++) {
      // Round 0 starts on no file, later rounds on the file a killed holder left (a stale pid).
      const startAt = Date.now() + 1500;
      const all = Array.from({ length: 4 }, () => contender(file, startAt));
      const said = await Promise.all(all.map((c) => c.said));
      assert.equal(said.filter((s) => s.startsWith('locked')).length, 1, said.join('\n'));
      assert.equal(said.filter((s) => /^busy: state root is in use by/.test(s)).length, 3, said.join('\n'));
      for (const c of all) c.child.kill('SIGKILL');
      await Promise.all(all.map((c) => (c.child.exitCode !== null || c.child.signalCode !== null ? undefined : new Promise((r) => c.child.once('exit', r)))));
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
