import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mergeConfig } from './create.ts';
import {
  goDuration,
  type HealthResult,
  type HealthState,
  healthSuffix,
  healthTiming,
  initialHealth,
  MAX_LOG,
  mergeHealthConfig,
  parseHealthConfig,
  probeCommand,
  recordResult,
} from './health.ts';
import { humanStatus, listContainers } from './query.ts';
import { type ContainerRecord, ZERO_TIME } from './types.ts';

const MS = 1_000_000;
const S = 1000 * MS;

test('request Healthcheck: dockerd validation messages, zero fields dropped', () => {
  assert.equal(parseHealthConfig(undefined, true), undefined);
  assert.equal(parseHealthConfig(null, true), undefined);
  assert.deepEqual(parseHealthConfig({ Test: ['CMD-SHELL', 'true'], Interval: 0, Timeout: 2 * S, StartPeriod: 0, Retries: 0 }, true), {
    Test: ['CMD-SHELL', 'true'],
    Timeout: 2 * S,
  });
  assert.deepEqual(parseHealthConfig({ Test: [] }, true), {});
  assert.throws(() => parseHealthConfig({ Interval: -10 * MS }, true), { message: 'Interval in Healthcheck cannot be less than 1ms' });
  assert.throws(() => parseHealthConfig({ Interval: 500_000 }, true), { message: 'Interval in Healthcheck cannot be less than 1ms' });
  assert.throws(() => parseHealthConfig({ Timeout: -100 * MS }, true), { message: 'Timeout in Healthcheck cannot be less than 1ms' });
  assert.throws(() => parseHealthConfig({ StartPeriod: 1 }, true), { message: 'StartPeriod in Healthcheck cannot be less than 1ms' });
  assert.throws(() => parseHealthConfig({ StartInterval: 1 }, true), { message: 'StartInterval in Healthcheck cannot be less than 1ms' });
  assert.throws(() => parseHealthConfig({ Retries: -1 }, true), { message: 'Retries in Healthcheck cannot be negative' });
  assert.throws(() => parseHealthConfig({ Interval: 1.5 }, true), /whole number/);
  assert.throws(() => parseHealthConfig({ Test: 'CMD true' }, true), /list of strings/);
  assert.throws(() => parseHealthConfig('x', true), /must be an object/);
  // Bounded: a huge Test is refused even from an image.
  assert.throws(() => parseHealthConfig({ Test: ['CMD', ...Array(2000).fill('x')] }, false), /more than 1024 entries/);
  assert.throws(() => parseHealthConfig({ Test: ['CMD-SHELL', 'x'.repeat(70_000)] }, false), /larger than/);
  assert.throws(() => parseHealthConfig({ Test: ['CMD', 'a\0b'] }, true), /NUL/);
});

test('image Healthcheck: bad values fall back to the defaults instead of failing create', () => {
  assert.deepEqual(parseHealthConfig({ Test: ['CMD', 'true'], Interval: -5, Timeout: 'x', Retries: -2 }, false), { Test: ['CMD', 'true'] });
  assert.equal(parseHealthConfig('junk', false), undefined);
});

test('merge: request fields override the image one by one; NONE disables', () => {
  const image = { Test: ['CMD', 'img-check'], Interval: 5 * S, Timeout: 3 * S, StartPeriod: 1 * S, Retries: 4 };
  assert.deepEqual(mergeHealthConfig(undefined, image), image);
  assert.deepEqual(mergeHealthConfig({ Interval: 1 * S }, image), { ...image, Interval: 1 * S });
  assert.deepEqual(mergeHealthConfig({ Test: ['CMD-SHELL', 'mine'], Retries: 1 }, image), { ...image, Test: ['CMD-SHELL', 'mine'], Retries: 1 });
  const none = mergeHealthConfig({ Test: ['NONE'] }, image);
  assert.deepEqual(none?.Test, ['NONE']);
  assert.equal(probeCommand(none), undefined);
  assert.deepEqual(mergeHealthConfig({ Test: ['CMD', 'x'] }, undefined), { Test: ['CMD', 'x'] });
  assert.equal(mergeHealthConfig(undefined, undefined), undefined);
  // Through the container config merge: the request's zero fields vanish, the image fills them.
  const cfg = mergeConfig({ image: 'img', cmd: ['sh'], healthcheck: { interval: 200 * MS, timeout: 0, retries: 2 } }, { Healthcheck: image }, 'a'.repeat(64));
  assert.deepEqual(cfg.Healthcheck, { Test: ['CMD', 'img-check'], Interval: 200 * MS, Timeout: 3 * S, StartPeriod: 1 * S, Retries: 2 });
  assert.equal(mergeConfig({ image: 'img', cmd: ['sh'] }, {}, 'a'.repeat(64)).Healthcheck, undefined);
});

test('probe command: CMD execs, CMD-SHELL goes through /bin/sh -c, the rest is no check', () => {
  assert.deepEqual(probeCommand({ Test: ['CMD', 'cat', '/x'] }), ['cat', '/x']);
  assert.deepEqual(probeCommand({ Test: ['CMD-SHELL', 'test -f /tmp/ok'] }), ['/bin/sh', '-c', 'test -f /tmp/ok']);
  assert.equal(probeCommand({ Test: ['CMD'] }), undefined);
  assert.equal(probeCommand({ Test: ['NONE'] }), undefined);
  assert.equal(probeCommand({ Test: ['HTTP', 'x'] }), undefined);
  assert.equal(probeCommand({}), undefined);
  assert.equal(probeCommand(undefined), undefined);
});

test('defaults: interval 30s, timeout 30s, start period 0, retries 3; timers stay in range', () => {
  assert.deepEqual(healthTiming({ Test: ['CMD', 'x'] }), { intervalMs: 30_000, timeoutMs: 30_000, startPeriodMs: 0, startIntervalMs: 0, retries: 3 });
  assert.deepEqual(healthTiming({ Interval: 200 * MS, Timeout: 1 * S, StartPeriod: 2 * S, StartInterval: 50 * MS, Retries: 2 }), {
    intervalMs: 200,
    timeoutMs: 1000,
    startPeriodMs: 2000,
    startIntervalMs: 50,
    retries: 2,
  });
  assert.equal(healthTiming({ Interval: 1e18 }).intervalMs, 2 ** 31 - 1);
});

const result = (code: number, atMs: number): HealthResult => ({
  Start: new Date(atMs).toISOString(),
  End: new Date(atMs + 10).toISOString(),
  ExitCode: code,
  Output: `exit ${code}`,
});

test('state machine: starting → unhealthy after `retries` failures → healthy on a success', () => {
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  const t = { retries: 2, startPeriodMs: 0 };
  const h: HealthState = initialHealth(undefined);
  assert.deepEqual(h, { Status: 'starting', FailingStreak: 0, Log: [] });
  recordResult(h, result(1, t0 + 100), t, t0);
  assert.equal(h.Status, 'starting');
  assert.equal(h.FailingStreak, 1);
  recordResult(h, result(1, t0 + 200), t, t0);
  assert.equal(h.Status, 'unhealthy');
  assert.equal(h.FailingStreak, 2);
  recordResult(h, result(0, t0 + 300), t, t0);
  assert.equal(h.Status, 'healthy');
  assert.equal(h.FailingStreak, 0);
  // Any non-zero exit is a failure (dockerd no longer treats 2 specially); healthy survives until the streak reaches retries.
  recordResult(h, result(2, t0 + 400), t, t0);
  assert.equal(h.Status, 'healthy');
  recordResult(h, result(-1, t0 + 500), t, t0);
  assert.equal(h.Status, 'unhealthy');
  assert.equal(h.Log.length, MAX_LOG);
  assert.deepEqual(
    h.Log.map((r) => r.ExitCode),
    [1, 1, 0, 2, -1],
  );
  recordResult(h, result(0, t0 + 600), t, t0);
  assert.deepEqual(
    h.Log.map((r) => r.ExitCode),
    [1, 0, 2, -1, 0],
    'only the last 5 results are kept',
  );
  // A restart resets status and streak, keeps the log.
  const again = initialHealth(h);
  assert.equal(again.Status, 'starting');
  assert.equal(again.FailingStreak, 0);
  assert.equal(again.Log.length, MAX_LOG);
});

test('state machine: failures in the start period do not count; a success there makes it healthy', () => {
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  const t = { retries: 1, startPeriodMs: 1000 };
  const h = initialHealth(undefined);
  recordResult(h, result(1, t0 + 500), t, t0);
  assert.equal(h.Status, 'starting');
  assert.equal(h.FailingStreak, 0);
  assert.equal(h.Log.length, 1, 'still logged');
  recordResult(h, result(1, t0 + 1500), t, t0);
  assert.equal(h.Status, 'unhealthy', 'after the start period it counts');
  const h2 = initialHealth(undefined);
  recordResult(h2, result(0, t0 + 100), t, t0);
  assert.equal(h2.Status, 'healthy');
  // Once healthy, the start period no longer shields failures.
  recordResult(h2, result(1, t0 + 200), t, t0);
  assert.equal(h2.Status, 'unhealthy');
});

test('Go duration strings for the timeout message', () => {
  assert.equal(goDuration(0), '0s');
  assert.equal(goDuration(1 * S), '1s');
  assert.equal(goDuration(1500 * MS), '1.5s');
  assert.equal(goDuration(500 * MS), '500ms');
  assert.equal(goDuration(120 * S), '2m0s');
  assert.equal(goDuration(3723 * S), '1h2m3s');
  assert.equal(goDuration(1500), '1.5µs');
});

function rec(name: string, health?: HealthState['Status'], status: ContainerRecord['state']['Status'] = 'running'): ContainerRecord {
  return {
    id: name.padEnd(64, '0'),
    name,
    created: '2026-01-01T00:00:00Z',
    imageId: 'sha256:x' as ContainerRecord['imageId'],
    path: 'sh',
    args: [],
    config: { Labels: {} } as ContainerRecord['config'],
    hostConfig: { NetworkMode: 'none' } as ContainerRecord['hostConfig'],
    state: {
      Status: status,
      Pid: 1,
      ExitCode: 0,
      Error: '',
      StartedAt: new Date(Date.now() - 5000).toISOString(),
      FinishedAt: ZERO_TIME,
      OOMKilled: false,
      ...(health ? { Health: { Status: health, FailingStreak: 0, Log: [] } } : {}),
    },
    restartCount: 0,
    manuallyStopped: false,
    hasBeenStarted: true,
  };
}

test('ps: health in the status column and the health filter', () => {
  assert.equal(healthSuffix(undefined), '');
  assert.equal(humanStatus(rec('a', 'healthy')), 'Up 5 seconds (healthy)');
  assert.equal(humanStatus(rec('a', 'unhealthy')), 'Up 5 seconds (unhealthy)');
  assert.equal(humanStatus(rec('a', 'starting')), 'Up 5 seconds (health: starting)');
  assert.equal(humanStatus(rec('a')), 'Up 5 seconds');
  assert.equal(humanStatus(rec('a', 'healthy', 'paused')), 'Up 5 seconds (Paused)');
  const all = [rec('h', 'healthy'), rec('u', 'unhealthy'), rec('s', 'starting'), rec('n')];
  const names = (v: string[]) =>
    listContainers(all, { filters: { health: v } })
      .map((r) => r.name)
      .sort();
  assert.deepEqual(names(['healthy']), ['h']);
  assert.deepEqual(names(['unhealthy']), ['u']);
  assert.deepEqual(names(['starting']), ['s']);
  assert.deepEqual(names(['none']), ['n']);
  assert.deepEqual(names(['healthy', 'none']), ['h', 'n']);
  assert.throws(() => names(['sick']), { message: 'Unrecognised filter value for health: sick' });
});
