import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeEngine, projectOf } from './fake.ts';
import type { ComposeBackend } from './backend.ts';
import { outputTail, runHooks } from './hooks.ts';
import { down, restart, stop } from './ops.ts';
import { collectingReporter } from './reporter.ts';
import { up } from './up.ts';

const project = (yaml: string) => projectOf(yaml);

const YAML = `services:
  web:
    image: busybox
    post_start:
      - command: ./seed.sh
        user: root
        environment: {MODE: init, EMPTY: null}
      - command: ["echo", "second"]
    pre_stop:
      - command: ./drain.sh
`;

test('post_start hooks run in order after start; pre_stop before stop, restart and down', async () => {
  const e = new FakeEngine();
  const p = project(YAML);
  const t = { name: p.name, project: p };
  await up(e.backend(), p, collectingReporter());
  const start = e.calls.indexOf('start app-web-1');
  assert.deepEqual(e.calls.slice(start, start + 3), [
    'start app-web-1',
    'exec app-web-1 ./seed.sh user=root env=MODE=init,EMPTY',
    'exec app-web-1 echo second',
  ]);
  e.calls.length = 0;
  await up(e.backend(), p, collectingReporter());
  assert.deepEqual(e.calls, [], 'a no-op up runs no hook');
  await restart(e.backend(), t, collectingReporter());
  assert.deepEqual(e.calls, [
    'exec app-web-1 ./drain.sh',
    'restart app-web-1',
    'exec app-web-1 ./seed.sh user=root env=MODE=init,EMPTY',
    'exec app-web-1 echo second',
  ]);
  e.calls.length = 0;
  await stop(e.backend(), t, collectingReporter());
  assert.deepEqual(e.calls, ['exec app-web-1 ./drain.sh', 'stop app-web-1']);
  e.calls.length = 0;
  // a stopped container gets no pre_stop hook
  await down(e.backend(), t, collectingReporter());
  assert.ok(!(e.calls as string[]).some((c) => c.startsWith('exec')), e.calls.join());
});

test('a failing post_start hook fails up with the tail of its stderr; a failing pre_stop fails down', async () => {
  const e = new FakeEngine();
  const p = project(YAML);
  e.execResults.set('./seed.sh', { exitCode: 3, stdout: 'progress\n', stderr: 'step 1\r50%\r100%\nseed failed: no db\n' });
  await assert.rejects(up(e.backend(), p, collectingReporter()), /^EngineError: web hook exited with status 3: 100%\nseed failed: no db$/);
  e.execResults.set('./seed.sh', { exitCode: 0, stdout: '', stderr: '' });
  await up(e.backend(), p, collectingReporter());
  e.execResults.set('./drain.sh', { exitCode: 1, stdout: 'busy\n', stderr: '' });
  await assert.rejects(down(e.backend(), { name: p.name, project: p }, collectingReporter()), /web hook exited with status 1: busy/);
  e.execResults.set('./drain.sh', { exitCode: 0, stdout: '', stderr: '' });
  await down(e.backend(), { name: p.name, project: p }, collectingReporter());
  assert.deepEqual(e.names(), []);
});

test('outputTail keeps the last 10 lines', () => {
  const text = Array.from({ length: 30 }, (_, i) => `line ${i}`).join('\n');
  assert.equal(outputTail(`${text}\n`), Array.from({ length: 10 }, (_, i) => `line ${i + 20}`).join('\n'));
  assert.equal(outputTail(''), '');
});

test("attached up hands the hooks' lines on, by container", async () => {
  const e = new FakeEngine();
  e.execResults.set('./seed.sh', { exitCode: 0, stdout: 'seeding\ndone', stderr: '' });
  const lines: string[] = [];
  await up(e.backend(), project(YAML), collectingReporter(), { hookOutput: (c, l) => void lines.push(`${c}: ${l}`) });
  assert.deepEqual(lines, ['app-web-1: seeding', 'app-web-1: done']);
});

test('a hook that prints no newline is handed on in pieces of 64 KiB, not kept whole', async () => {
  const e = new FakeEngine();
  e.execResults.set('./seed.sh', { exitCode: 0, stdout: 'x'.repeat(200 << 10), stderr: '' });
  const lines: string[] = [];
  await up(e.backend(), project(YAML), collectingReporter(), { hookOutput: (_c, l) => void lines.push(l) });
  assert.deepEqual(
    lines.map((l) => l.length),
    [64 << 10, 64 << 10, 64 << 10, 8 << 10],
  );
  assert.equal(lines.join('').length, 200 << 10);
});

test("a hook's lines keep a character split between two chunks whole, each stream its own", async () => {
  const chunks: [number[], 1 | 2][] = [
    [[0x63, 0x61, 0x66, 0xc3], 1], // "caf" and the first byte of "é"
    [[0x65, 0x72, 0x72, 0xe2, 0x82], 2], // "err" and two bytes of "€"
    [[0xa9, 0x0a, 0x6e, 0x65, 0x78, 0x74, 0xc3], 1], // the rest of "é", a newline, "next" and half an "é"
    [[0xac], 2], // the rest of "€", no newline
  ];
  const b = {
    execOutput: async (_id: string, _s: unknown, _limit: number, onOutput?: (c: Buffer, s: 1 | 2) => void) => {
      for (const [bytes, stream] of chunks) onOutput?.(Buffer.from(bytes), stream);
      return { exitCode: 0, stdout: '', stderr: '' };
    },
  } as unknown as ComposeBackend;
  const s = project(YAML).services.web!;
  const lines: string[] = [];
  await runHooks(b, { ...s, post_start: [{ command: ['x'] }] }, 'post_start', 'id', (l) => void lines.push(l));
  assert.deepEqual(lines, ['café', 'next\ufffd', 'err€']);
});

test('an attached run: the hooks wait for the start event; a failing one fails a run that exited 0, not one that failed', async () => {
  const { withPostStartHooks } = await import('./hooks.ts');
  const p = project(YAML);
  const s = p.services.web!;
  const seen: number[] = [];
  const backend = (hookExit: number) =>
    ({
      events: async function* (_labels: string[], _signal: AbortSignal, since: number) {
        seen.push(since);
        yield { timeNano: 0, type: 'container', action: 'create', id: 'c1', attributes: {} };
        yield { timeNano: 0, type: 'container', action: 'start', id: 'other', attributes: {} };
        yield { timeNano: 0, type: 'container', action: 'start', id: 'c1', attributes: {} };
      },
      execOutput: async (_id: string, spec: { cmd: string[] }) => ({ exitCode: spec.cmd[0] === './seed.sh' ? hookExit : 0, stdout: '', stderr: 'seed broke' }),
    }) as unknown as Parameters<typeof withPostStartHooks>[0];
  assert.equal(await withPostStartHooks(backend(0), p.name, s, 'c1', async () => 0), 0);
  await assert.rejects(
    withPostStartHooks(backend(2), p.name, s, 'c1', async () => 0),
    /web hook exited with status 2: seed broke/,
  );
  assert.equal(await withPostStartHooks(backend(2), p.name, s, 'c1', async () => 7), 7);
  assert.ok(
    seen.every((t) => Math.abs(t - Date.now() / 1000) < 60),
    'the events are asked for from about now',
  );
});
