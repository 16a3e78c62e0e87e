import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type net from 'node:net';
import { ExecError } from './errors.ts';
import { exec, spawnPiped, stopSpawnHelper, useSpawnHelper } from './exec.ts';

after(() => stopSpawnHelper());

/** The same calls, run by this process and then by the helper, must give the same results and errors. */
for (const mode of ['directly', 'through the process helper'] as const) {
  test(`exec ${mode}: output, input, exit codes, errors, timeouts, aborts`, async () => {
    if (mode === 'directly') stopSpawnHelper();
    else useSpawnHelper();
    assert.deepEqual(await exec(['sh', '-c', 'echo out; echo err >&2']), { code: 0, signal: null, stdout: 'out\n', stderr: 'err\n' });
    assert.equal((await exec(['cat'], { input: Buffer.from('piped\n') })).stdout, 'piped\n');
    assert.equal((await exec(['sh', '-c', 'pwd; echo "$X"'], { cwd: '/tmp', env: { X: 'from-env', PATH: '/usr/bin:/bin' } })).stdout, '/tmp\nfrom-env\n');
    assert.equal((await exec(['sh', '-c', 'exit 3'], { allowFailure: true })).code, 3);
    await assert.rejects(exec(['sh', '-c', 'echo nope >&2; exit 2']), /sh -c echo nope >&2; exit 2: nope/);
    await assert.rejects(
      exec(['sh', '-c', 'echo o; echo e >&2; exit 4']),
      (e: unknown) =>
        e instanceof ExecError &&
        e.exitCode === 4 &&
        e.stderr === 'e\n' &&
        e.stdout === 'o\n' &&
        e.argv.join(' ') === 'sh -c echo o; echo e >&2; exit 4' &&
        e.code === 'INTERNAL',
    );
    await assert.rejects(
      exec(['/no/such/program']),
      (e: Error & { code?: string }) => e.code === 'UNAVAILABLE' && /not installed or not on PATH/.test(e.message),
    );
    assert.equal((await exec(['sh', '-c', 'head -c 100000 /dev/zero'], { maxOutput: 1000 })).stdout.length < 100000, true);
    const slow = await exec(['sleep', '10'], { timeoutMs: 100, allowFailure: true });
    assert.equal(slow.signal, 'SIGTERM');
    const ac = new AbortController();
    const aborted = exec(['sleep', '10'], { signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    await assert.rejects(aborted, (e: Error & { code?: string }) => e.code === 'CANCELLED');
    // Side by side, each answer reaches its own caller.
    const many = await Promise.all([1, 2, 3, 4, 5].map((n) => exec(['sh', '-c', `sleep 0.0${n}; echo ${n}`])));
    assert.deepEqual(
      many.map((r) => r.stdout),
      ['1\n', '2\n', '3\n', '4\n', '5\n'],
    );
  });

  test(`spawnPiped ${mode}: pipes on fds 2.. reach this process, the exit is reported, a missing program rejects`, async () => {
    if (mode === 'directly') stopSpawnHelper();
    else useSpawnHelper();
    const read = (s: net.Socket) =>
      new Promise<string>((resolve) => {
        let b = '';
        s.setEncoding('utf8')
          .on('data', (d) => (b += d))
          .on('end', () => resolve(b));
      });
    // fd 4 in, fd 3 and 2 out, like conmon's start, sync and stderr pipes.
    const p = await spawnPiped('sh', ['-c', 'read x <&4; echo "sync $x $PWD $Y" >&3; echo oops >&2; exit 7'], {
      cwd: '/tmp',
      env: { Y: 'env', PATH: '/usr/bin:/bin' },
      pipes: 3,
    });
    assert.equal(p.pipes.length, 3);
    const [err, sync, start] = p.pipes as [net.Socket, net.Socket, net.Socket];
    const out = read(sync);
    const errText = read(err);
    start.end('go\n');
    assert.equal(await out, 'sync go /tmp env\n');
    assert.equal(await errText, 'oops\n');
    assert.deepEqual(await p.exit, { code: 7 });
    await assert.rejects(spawnPiped('/no/such/program', [], { pipes: 2 }), /cannot run \/no\/such\/program/);
  });
}

test('a helper that dies fails the calls it was running, and the next call gets a new helper', async () => {
  useSpawnHelper();
  await exec(['true']);
  // This process's children: the helper is the one running spawn-helper.ts.
  const fs = await import('node:fs');
  const children = fs
    .readdirSync(`/proc/${process.pid}/task`)
    .flatMap((t) => fs.readFileSync(`/proc/${process.pid}/task/${t}/children`, 'utf8').split(' ').filter(Boolean));
  const helperPid = children.map(Number).find((p) => fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('spawn-helper'));
  assert.ok(helperPid, 'the helper runs as a child of this process');
  const running = exec(['sleep', '5']);
  await new Promise((r) => setTimeout(r, 100));
  process.kill(helperPid, 'SIGKILL');
  await assert.rejects(running, /process helper exited/);
  assert.equal((await exec(['echo', 'again'])).stdout, 'again\n');
});
