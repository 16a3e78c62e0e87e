import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { run, TestDaemon } from '../helpers/daemon.ts';

/**
 * Health checks through the docker and keel CLIs against a keel daemon:
 * the state machine on real probes (execs under runc/conmon), ps, inspect,
 * events, the image's HEALTHCHECK, timeouts, stop/start, pause, daemon kill
 * -9, and no leftovers after rm -f.
 */
let d: TestDaemon;
const IMG = 'busybox:local';
const HC_IMG = 'busybox:health';
const NET = ['--network', 'none'];

interface Health {
  Status: string;
  FailingStreak: number;
  Log: { Start: string; End: string; ExitCode: number; Output: string }[];
}

before(async () => {
  d = new TestDaemon('keel-health');
  await d.start();
  await d.importBusybox(IMG);
  await d.importBusybox(HC_IMG, ['HEALTHCHECK --interval=100ms --retries=1 CMD ["false"]']);
});

after(async () => {
  const ids = (await d.docker(['ps', '-aq'])).stdout.split('\n').filter(Boolean);
  if (ids.length) await d.docker(['rm', '-f', ...ids]);
  await d.cleanup();
});

async function health(name: string): Promise<Health | null> {
  const r = await d.docker(['inspect', '-f', '{{json .State.Health}}', name]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** Polls until `ok` holds (generous: probes run every few hundred ms). */
async function until<T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let v = await get();
  while (!ok(v)) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}; last: ${JSON.stringify(v)}\n${d.log.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
    v = await get();
  }
  return v;
}

const status = (name: string) => async () => (await health(name))?.Status;

test('starting → unhealthy → healthy: ps, inspect, filters and events', async () => {
  const since = Math.floor(Date.now() / 1000) - 1;
  const r = await d.docker([
    'run',
    '-d',
    '--name',
    'hc',
    ...NET,
    '--health-cmd',
    'test -f /tmp/ok || { echo not yet; exit 3; }',
    '--health-interval',
    '200ms',
    '--health-retries',
    '2',
    IMG,
    'sleep',
    '1000',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const id = r.stdout.trim();
  const first = await health('hc');
  assert.equal(first?.Status, 'starting');
  assert.equal(first?.FailingStreak, 0);
  const cfg = JSON.parse((await d.docker(['inspect', '-f', '{{json .Config.Healthcheck}}', 'hc'])).stdout);
  assert.deepEqual(cfg, { Test: ['CMD-SHELL', 'test -f /tmp/ok || { echo not yet; exit 3; }'], Interval: 200_000_000, Retries: 2 });

  const sick = await until(
    'unhealthy',
    () => health('hc'),
    (h) => h?.Status === 'unhealthy',
  );
  assert.ok(sick!.FailingStreak >= 2);
  const last = sick!.Log.at(-1)!;
  assert.equal(last.ExitCode, 3);
  assert.equal(last.Output, 'not yet\n');
  assert.ok(Date.parse(last.End) >= Date.parse(last.Start));
  assert.match((await d.docker(['ps', '--filter', 'name=hc', '--format', '{{.Status}}'])).stdout, /^Up .* \(unhealthy\)\n$/);
  assert.equal((await d.docker(['ps', '-q', '--filter', 'health=unhealthy'])).stdout.trim(), id.slice(0, 12));
  assert.equal((await d.docker(['ps', '-q', '--filter', 'health=healthy'])).stdout.trim(), '');

  const touch = await d.docker(['exec', 'hc', 'touch', '/tmp/ok']);
  assert.equal(touch.code, 0, touch.stderr);
  const well = await until(
    'healthy',
    () => health('hc'),
    (h) => h?.Status === 'healthy',
  );
  assert.equal(well!.FailingStreak, 0);
  assert.equal(well!.Log.at(-1)!.ExitCode, 0);
  assert.ok(well!.Log.length <= 5);
  assert.match((await d.docker(['ps', '--filter', 'name=hc', '--format', '{{.Status}}'])).stdout, /^Up .* \(healthy\)\n$/);
  assert.equal((await d.docker(['ps', '-q', '--filter', 'health=healthy'])).stdout.trim(), id.slice(0, 12));
  assert.match((await d.keel(['ps', '--filter', 'health=healthy'])).stdout, /\(healthy\)/);
  const badFilter = await d.docker(['ps', '--filter', 'health=sick']);
  assert.notEqual(badFilter.code, 0);
  assert.match(badFilter.stderr, /Unrecognised filter value for health: sick/);

  const ev = await d.docker([
    'events',
    '--since',
    String(since),
    '--until',
    String(Math.floor(Date.now() / 1000) + 1),
    '--filter',
    'container=hc',
    '--format',
    '{{.Action}}',
  ]);
  const actions = ev.stdout.split('\n');
  assert.ok(actions.includes('health_status: unhealthy'), ev.stdout);
  assert.ok(actions.includes('health_status: healthy'), ev.stdout);
  assert.ok(actions.indexOf('health_status: unhealthy') < actions.indexOf('health_status: healthy'));
  assert.ok(actions.includes('exec_create: /bin/sh -c test -f /tmp/ok || { echo not yet; exit 3; }'), ev.stdout);
  assert.ok(actions.includes('exec_start: /bin/sh -c test -f /tmp/ok || { echo not yet; exit 3; }'), ev.stdout);
  await d.docker(['rm', '-f', 'hc']);
});

test('the image HEALTHCHECK applies, flags override its fields, --no-healthcheck removes it', async () => {
  const img = JSON.parse((await d.docker(['image', 'inspect', '-f', '{{json .Config.Healthcheck}}', HC_IMG])).stdout);
  assert.deepEqual(img, { Test: ['CMD', 'false'], Interval: 100_000_000, Retries: 1 });

  assert.equal((await d.docker(['run', '-d', '--name', 'fromimg', ...NET, HC_IMG, 'sleep', '1000'])).code, 0);
  await until('image check → unhealthy', status('fromimg'), (s) => s === 'unhealthy');

  // Only the command is overridden: interval and retries still come from the image.
  assert.equal((await d.docker(['run', '-d', '--name', 'override', ...NET, '--health-cmd', 'true', HC_IMG, 'sleep', '1000'])).code, 0);
  const cfg = JSON.parse((await d.docker(['inspect', '-f', '{{json .Config.Healthcheck}}', 'override'])).stdout);
  assert.deepEqual(cfg, { Test: ['CMD-SHELL', 'true'], Interval: 100_000_000, Retries: 1 });
  await until('overridden check → healthy', status('override'), (s) => s === 'healthy');

  assert.equal((await d.docker(['run', '-d', '--name', 'nohc', ...NET, '--no-healthcheck', HC_IMG, 'sleep', '1000'])).code, 0);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(await health('nohc'), null);
  assert.deepEqual(JSON.parse((await d.docker(['inspect', '-f', '{{json .Config.Healthcheck.Test}}', 'nohc'])).stdout), ['NONE']);
  assert.match((await d.docker(['ps', '--filter', 'name=nohc', '--format', '{{.Status}}'])).stdout, /^Up [^(]*\n$/);
  assert.ok((await d.docker(['ps', '--filter', 'health=none', '--format', '{{.Names}}'])).stdout.split('\n').includes('nohc'));
  // keel's own CLI: the same flag.
  assert.equal((await d.keel(['run', '-d', '--name', 'nohc2', ...NET, '--no-healthcheck', HC_IMG, 'sleep', '1000'])).code, 0);
  assert.equal(await health('nohc2'), null);
  // commit keeps a container's health check in the new image.
  assert.equal((await d.docker(['commit', 'override', 'busybox:committed'])).code, 0);
  const committed = JSON.parse((await d.docker(['image', 'inspect', '-f', '{{json .Config.Healthcheck}}', 'busybox:committed'])).stdout);
  assert.deepEqual(committed.Test, ['CMD-SHELL', 'true']);
  await d.docker(['rm', '-f', 'fromimg', 'override', 'nohc', 'nohc2']);
  await d.docker(['rmi', 'busybox:committed']);
});

test('a probe that hangs is killed at its timeout and counted as a failure', async () => {
  // The shell stays as the parent of sleep: killing only the shell would leave sleep holding the output open.
  const r = await d.docker([
    'run',
    '-d',
    '--name',
    'hang',
    ...NET,
    '--health-cmd',
    'sleep 60; true',
    '--health-timeout',
    '300ms',
    '--health-interval',
    '200ms',
    '--health-retries',
    '2',
    IMG,
    'sleep',
    '1000',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const h = await until(
    'timeouts → unhealthy',
    () => health('hang'),
    (x) => x?.Status === 'unhealthy',
  );
  for (const e of h!.Log) {
    assert.equal(e.ExitCode, -1);
    assert.equal(e.Output, 'Health check exceeded timeout (300ms)');
    const took = Date.parse(e.End) - Date.parse(e.Start);
    assert.ok(took >= 300 && took < 10_000, `probe took ${took} ms`);
  }
  // Killed probes do not pile up: at most the one in flight is there.
  const ps = await d.docker(['exec', 'hang', 'ps', '-o', 'pid,args']);
  const sleeps = ps.stdout.split('\n').filter((l) => /sleep 60/.test(l) && !/ps -o/.test(l));
  assert.ok(sleeps.length <= 2, ps.stdout);
  await d.docker(['rm', '-f', 'hang']);
});

test('stop ends the probes (state kept), start resets to starting; pause suspends them', async () => {
  assert.equal((await d.docker(['run', '-d', '--name', 'cyc', ...NET, '--health-cmd', 'true', '--health-interval', '300ms', IMG, 'sleep', '1000'])).code, 0);
  await until('healthy', status('cyc'), (s) => s === 'healthy');
  assert.equal((await d.docker(['stop', '-t', '0', 'cyc'])).code, 0);
  const stopped = await health('cyc');
  assert.equal(stopped?.Status, 'healthy');
  await new Promise((r) => setTimeout(r, 1000));
  assert.deepEqual(await health('cyc'), stopped, 'no probe runs while stopped');
  assert.equal((await d.docker(['ps', '-aq', '--filter', 'name=cyc', '--filter', 'health=healthy'])).stdout.trim().length, 12);

  assert.equal((await d.docker(['start', 'cyc'])).code, 0);
  const restarted = await health('cyc');
  assert.equal(restarted?.Status, 'starting');
  assert.equal(restarted?.FailingStreak, 0);
  assert.deepEqual(restarted?.Log, stopped?.Log, 'the log survives a restart, as in dockerd');
  await until('healthy again', status('cyc'), (s) => s === 'healthy');

  assert.equal((await d.docker(['pause', 'cyc'])).code, 0);
  await new Promise((r) => setTimeout(r, 700)); // a probe in flight at pause time may still finish
  const paused = await health('cyc');
  await new Promise((r) => setTimeout(r, 1000));
  assert.deepEqual(await health('cyc'), paused, 'no probe runs while paused');
  assert.equal((await d.docker(['unpause', 'cyc'])).code, 0);
  const lastEnd = Date.parse(paused!.Log.at(-1)!.End);
  await until(
    'probes after unpause',
    () => health('cyc'),
    (h) => Date.parse(h!.Log.at(-1)!.End) > lastEnd,
  );
  await d.docker(['rm', '-f', 'cyc']);
});

test('probes resume after the daemon is killed and started again', async () => {
  assert.equal(
    (
      await d.docker([
        'run',
        '-d',
        '--name',
        'surv',
        ...NET,
        '--health-cmd',
        'test -f /tmp/ok',
        '--health-interval',
        '200ms',
        '--health-retries',
        '1',
        IMG,
        'sh',
        '-c',
        'touch /tmp/ok; exec sleep 1000',
      ])
    ).code,
    0,
  );
  await until('healthy', status('surv'), (s) => s === 'healthy');
  await d.kill9();
  const restartedAt = Date.now();
  await d.start();
  assert.equal((await d.docker(['exec', 'surv', 'rm', '/tmp/ok'])).code, 0);
  const h = await until(
    'unhealthy after restart',
    () => health('surv'),
    (x) => x?.Status === 'unhealthy',
  );
  assert.ok(Date.parse(h!.Log.at(-1)!.Start) >= restartedAt - 1000);
  assert.match((await d.docker(['ps', '--filter', 'name=surv', '--format', '{{.Status}}'])).stdout, /\(unhealthy\)/);
  await d.docker(['rm', '-f', 'surv']);
});

test('nothing is left after rm -f: no probe, exec session or process', async () => {
  const r = await d.docker([
    'run',
    '-d',
    '--name',
    'leak',
    ...NET,
    '--health-cmd',
    'sleep 60',
    '--health-timeout',
    '5s',
    '--health-interval',
    '100ms',
    IMG,
    'sleep',
    '1000',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const id = r.stdout.trim();
  // Wait until a probe is in flight, then remove the container under it.
  await until(
    'a probe running',
    async () => (await d.docker(['inspect', '-f', '{{json .ExecIDs}}', 'leak'])).stdout.trim(),
    (s) => s !== 'null',
  );
  assert.equal((await d.docker(['rm', '-f', 'leak'])).code, 0);
  assert.notEqual((await d.docker(['inspect', 'leak'])).code, 0);
  // The bracket keeps pgrep's own shell from matching.
  await until(
    'no process naming the container',
    async () => (await run(['sh', '-c', `pgrep -af '[${id[0]}]${id.slice(1)}' || true`])).stdout.trim(),
    (s) => s === '',
  );
  assert.equal(fs.existsSync(path.join(d.execRoot, 'conmon', id)), false);
  assert.equal(fs.existsSync(path.join(d.execRoot, 'containers', id)), false);
  assert.doesNotMatch(d.log, /health check loop failed/);
});

test('health flag errors: docker CLI and keel CLI, client and daemon checks', async () => {
  for (const cli of ['docker', 'keel'] as const) {
    const go = (args: string[]) => d[cli](['run', '--rm', ...NET, ...args, IMG, 'true']);
    const neg = await go(['--health-interval=-1s']);
    assert.notEqual(neg.code, 0);
    assert.match(neg.stderr, /--health-interval cannot be negative/, cli);
    const conflict = await go(['--no-healthcheck', '--health-cmd', 'true']);
    assert.notEqual(conflict.code, 0);
    assert.match(conflict.stderr, /--no-healthcheck conflicts with --health-\* options/, cli);
    const tiny = await go(['--health-cmd', 'true', '--health-interval', '500us']);
    assert.equal(tiny.code, 125, cli);
    assert.match(tiny.stderr, /Interval in Healthcheck cannot be less than 1ms/, cli);
    const tinyTimeout = await go(['--health-cmd', 'true', '--health-timeout', '10us']);
    assert.match(tinyTimeout.stderr, /Timeout in Healthcheck cannot be less than 1ms/, cli);
  }
  assert.equal((await d.docker(['ps', '-aq'])).stdout.trim(), '');
});
