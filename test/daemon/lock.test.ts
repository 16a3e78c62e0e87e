import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { keelBin, TestDaemon } from '../helpers/daemon.ts';

const d = new TestDaemon('keel-lock');
after(() => d.cleanup());

function daemonArgs(): string[] {
  fs.writeFileSync(path.join(d.dir, 'daemon.json'), '{}');
  return [
    'daemon',
    '--config-file',
    path.join(d.dir, 'daemon.json'),
    '--data-root',
    d.dataRoot,
    '--exec-root',
    d.execRoot,
    '--cgroup-parent',
    d.cgroupParent,
    '--bridge',
    d.bridge,
    '--bip',
    `10.${d.octet}.0.1/24`,
    '--default-address-pool',
    `base=10.${d.octet}.128.0/17,size=24`,
    '--network-prefix',
    d.prefix,
  ];
}

interface Started {
  child: ChildProcess;
  out: string;
  exited: Promise<number | null>;
}

const started: ChildProcess[] = [];
// A failed round leaves its daemons running: stop them, or the file never ends.
after(() => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

function startDaemon(): Started {
  const child = spawn(process.execPath, [keelBin, ...daemonArgs()], { stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(child);
  const s: Started = { child, out: '', exited: new Promise((r) => child.once('exit', (code) => r(code))) };
  child.stdout!.on('data', (b) => (s.out += b));
  child.stderr!.on('data', (b) => (s.out += b));
  return s;
}

test('two daemons started at once on one root: one serves, the other exits with a clear message and leaves the socket alone', async () => {
  for (let round = 0; round < 3; round++) {
    const both = [startDaemon(), startDaemon()];
    // The loser exits by itself; the winner keeps running.
    const loser = await Promise.race(both.map((s) => s.exited.then(() => s)));
    const winner = both.find((s) => s !== loser)!;
    assert.notEqual(loser.child.exitCode, 0);
    assert.match(loser.out, new RegExp(`state root ${d.dataRoot.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is in use by process ${winner.child.pid}`));
    let up = false;
    for (let i = 0; i < 400 && !up; i++) {
      up = await d.ping();
      if (!up) await new Promise((r) => setTimeout(r, 25));
    }
    assert.ok(up, `the winner answers on the socket:\n${winner.out}`);
    assert.equal(winner.child.exitCode, null);
    // Still answering a moment later: the loser removed nothing on its way out.
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(await d.ping());
    assert.equal(Number(fs.readFileSync(path.join(d.execRoot, 'keel.pid'), 'utf8')), winner.child.pid);
    if (round < 2) {
      // The next round starts on the files a kill -9 leaves behind.
      winner.child.kill('SIGKILL');
      await winner.exited;
    } else d.child = winner.child;
  }
});
