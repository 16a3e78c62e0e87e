import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { keelBin } from '../helpers/daemon.ts';
import { busyboxDaemon, eventually, project } from './helpers.ts';

/** `up` in the foreground: prefixed output, exit codes, --abort-on-container-exit, Ctrl-C stopping the project. */
const d = busyboxDaemon('keel-compose-attached');

test("attached up prints each container's lines with its prefix and ends when all exit", async () => {
  const p = project(d, 'att', {
    'compose.yaml': `services:
  one:
    image: busybox:local
    command: ["sh", "-c", "echo first; sleep 0.5; echo second"]
  two:
    image: busybox:local
    command: ["sh", "-c", "echo other; exit 0"]
`,
  });
  const r = await p.compose(['up']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^one-1 {2}\| first$/m);
  assert.match(r.stdout, /^one-1 {2}\| second$/m);
  assert.match(r.stdout, /^two-1 {2}\| other$/m);
  assert.match(r.stdout, /^one-1 exited with code 0$/m);
  assert.match(r.stdout, /^two-1 exited with code 0$/m);
  assert.equal((await p.compose(['down'])).code, 0);
});

test('--exit-code-from stops the project when the service exits and returns its code', async () => {
  const p = project(d, 'exitfrom', {
    'compose.yaml': `services:
  test:
    image: busybox:local
    command: ["sh", "-c", "echo testing; exit 7"]
  server:
    image: busybox:local
    command: ["sleep", "300"]
    stop_signal: SIGKILL
`,
  });
  const r = await p.compose(['up', '--exit-code-from', 'test']);
  assert.equal(r.code, 7, r.stderr);
  assert.match(r.stdout, /Aborting on container exit/);
  const ps = await p.compose(['ps', '-a', '--format', 'json', 'server']);
  assert.equal(JSON.parse(ps.stdout).State, 'exited');
  assert.equal((await p.compose(['down'])).code, 0);
});

test('attach: false runs a service without showing its output; --exit-code-from an unknown service is refused', async () => {
  const p = project(d, 'noattach', {
    'compose.yaml': `services:
  shown:
    image: busybox:local
    command: ["sh", "-c", "echo visible"]
  quiet:
    image: busybox:local
    attach: false
    command: ["sh", "-c", "echo hidden"]
`,
  });
  const bad = await p.compose(['up', '--exit-code-from', 'nope']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /no such service: nope/);
  for (const [flags, error] of [
    [['--wait', '--abort-on-container-exit'], /--wait cannot be combined with --abort-on-container-exit/],
    [['--wait', '--wait-timeout', '-1'], /--wait-timeout must be a non-negative integer/],
    [['--force-recreate', '--no-recreate'], /--force-recreate and --no-recreate are incompatible/],
  ] as const) {
    const r = await p.compose(['up', ...flags]);
    assert.notEqual(r.code, 0, flags.join(' '));
    assert.match(r.stderr, error);
    assert.equal((await p.compose(['ps', '-a', '-q'])).stdout.trim(), '', `${flags.join(' ')}: nothing created`);
  }
  assert.equal((await p.compose(['ps', '-a', '-q'])).stdout.trim(), '', 'nothing created');
  const r = await p.compose(['up']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^shown-1 {2}\| visible$/m);
  assert.doesNotMatch(r.stdout, /hidden/);
  const logs = await p.compose(['logs', 'quiet']);
  assert.match(logs.stdout, /hidden/, 'it ran');
  assert.equal((await p.compose(['down'])).code, 0);
});

test('Ctrl-C (SIGINT) stops the project gracefully', async () => {
  const p = project(d, 'sigint', {
    'compose.yaml': `services:
  loop:
    image: busybox:local
    command: ["sh", "-c", "trap 'echo got-term; exit 0' TERM; echo looping; while true; do sleep 0.1; done"]
`,
  });
  const child = spawn(process.execPath, [keelBin, '-H', `unix://${d.socket}`, 'compose', 'up'], { cwd: p.dir, env: { ...process.env, NO_COLOR: '1' } });
  let out = '';
  child.stdout.on('data', (b) => (out += b));
  child.stderr.on('data', (b) => (out += b));
  await eventually(async () => out.includes('loop-1  | looping'), `the container's output, got: ${out}`);
  child.kill('SIGINT');
  const code = await new Promise((res) => child.on('close', res));
  assert.equal(code, 130, out);
  assert.match(out, /Gracefully stopping\.\.\./);
  assert.match(out, /loop-1 {2}\| got-term/);
  const ps = await p.compose(['ps', '-a', '--format', 'json']);
  assert.equal(JSON.parse(ps.stdout).State, 'exited');
  assert.equal((await p.compose(['down'])).code, 0);
});
