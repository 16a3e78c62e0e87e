import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestDaemon } from '../helpers/daemon.ts';
import { startRegistry } from '../registry/helpers.ts';
import { daemonWithBusybox, ok } from './helpers.ts';
import { until } from '../helpers/wait.ts';

let d: TestDaemon;
before(async () => {
  d = await daemonWithBusybox('keel-cli-run');
});
after(() => d.cleanup());

describe('keel run', () => {
  test('stdout and stderr go to their own streams and the exit code is the process status', async () => {
    const r = await d.keel(['run', '--rm', 'busybox:local', 'sh', '-c', 'echo out; echo err >&2; exit 7']);
    assert.equal(r.code, 7);
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.stderr, 'err\n');
    assert.equal(await ok(d, ['ps', '-aq']), '', '--rm removed the container');
  });

  test('-i pipes stdin and the container sees EOF', async () => {
    const r = await d.keel(['run', '-i', '--rm', 'busybox:local', 'sh', '-c', 'cat; echo done'], { input: 'line1\nline2\n' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'line1\nline2\ndone\n');
  });

  test('flags become config: env, env-file, workdir, user, hostname, labels, entrypoint', async () => {
    const envFile = path.join(d.dir, 'env.list');
    fs.writeFileSync(envFile, '# comment\nFROM_FILE=yes\n\nKEEL_PASSTHRU\n');
    const out = await d.keel(
      [
        'run',
        '--rm',
        '-e',
        'A=1',
        '--env-file',
        envFile,
        '-w',
        '/tmp',
        '-u',
        '65534',
        '-h',
        'box',
        '-l',
        'team=keel',
        '--entrypoint',
        'sh',
        'busybox:local',
        '-c',
        'echo $A $FROM_FILE $KEEL_PASSTHRU; pwd; id -u; hostname',
      ],
      { env: { KEEL_PASSTHRU: 'through' } },
    );
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stdout, '1 yes through\n/tmp\n65534\nbox\n');
  });

  test("-e KEY with KEY unset: run leaves it out, exec unsets the container's (as dockerd; runc refuses a bare KEY)", async () => {
    const run = await d.keel(['run', '--rm', '-e', 'KEEL_T_UNSET', 'busybox:local', 'sh', '-c', 'echo ${KEEL_T_UNSET-unset}']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'unset\n');
    await ok(d, ['run', '-d', '--name', 'envx', '-e', 'KEEL_T_UNSET=1', 'busybox:local', 'sleep', '300']);
    const show = ['envx', 'sh', '-c', 'echo ${KEEL_T_UNSET-unset}'];
    assert.equal(await ok(d, ['exec', ...show]), '1\n');
    assert.equal(await ok(d, ['exec', '-e', 'KEEL_T_UNSET', ...show]), 'unset\n');
    assert.equal((await d.keel(['exec', '-e', 'KEEL_T_UNSET', ...show], { env: { KEEL_T_UNSET: '7' } })).stdout, '7\n');
    await ok(d, ['rm', '-f', 'envx']);
  });

  test('create body: limits, restart policy, ports, tmpfs, labels reach inspect', async () => {
    const id = (
      await ok(d, [
        'create',
        '--name',
        'cfg',
        '-m',
        '64m',
        '--cpus',
        '1.5',
        '--pids-limit',
        '50',
        '--restart',
        'on-failure:3',
        '-p',
        '127.0.0.1:18555:80/tcp',
        '--tmpfs',
        '/run:size=1m',
        '-l',
        'a=b',
        '--init',
        '--read-only',
        '--stop-signal',
        'SIGUSR1',
        '--ulimit',
        'nofile=512:1024',
        'busybox:local',
        'true',
      ])
    ).trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    const [c] = JSON.parse(await ok(d, ['inspect', 'cfg']));
    assert.equal(c.HostConfig.Memory, 64 * 1024 * 1024);
    assert.equal(c.HostConfig.NanoCpus, 1.5e9);
    assert.equal(c.HostConfig.PidsLimit, 50);
    assert.deepEqual(c.HostConfig.RestartPolicy, { Name: 'on-failure', MaximumRetryCount: 3 });
    assert.deepEqual(c.HostConfig.PortBindings['80/tcp'], [{ HostIp: '127.0.0.1', HostPort: '18555' }]);
    assert.equal(c.HostConfig.ReadonlyRootfs, true);
    assert.equal(c.Config.StopSignal, 'SIGUSR1');
    assert.equal(c.Config.Labels.a, 'b');
    assert.equal(await ok(d, ['inspect', '-f', '{{.Name}} {{.State.Status}}', 'cfg']), '/cfg created\n');
    await ok(d, ['rm', 'cfg']);
  });

  test('errors: bad flag value → 125 with a teaching message; missing command → 127; no image with --pull never → 125', async () => {
    const bad = await d.keel(['run', '-m', 'abc', 'busybox:local', 'true']);
    assert.equal(bad.code, 125);
    assert.match(bad.stderr, /invalid argument "abc" for "-m, --memory" flag: invalid size: 'abc'/);
    const port = await d.keel(['run', '-p', '99999:80', 'busybox:local', 'true']);
    assert.equal(port.code, 125);
    const missing = await d.keel(['run', '--rm', 'busybox:local', '/nonexistent']);
    assert.equal(missing.code, 127, missing.stderr);
    assert.match(missing.stderr, /Error response from daemon: .*\n\nRun 'keel run --help' for more information\n$/);
    const noimg = await d.keel(['run', '--rm', '--pull', 'never', 'nosuch/image:1', 'true']);
    assert.equal(noimg.code, 125);
    assert.match(noimg.stderr, /No such image/i);
    const unknown = await d.keel(['run', '--no-such-flag', 'busybox:local']);
    assert.equal(unknown.code, 125);
  });

  test('-d prints the full ID; logs demuxes; exec returns the command status', async () => {
    const id = (await ok(d, ['run', '-d', '--name', 'bg', 'busybox:local', 'sh', '-c', 'echo out1; echo err1 >&2; exec sleep 600'])).trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    const logs = await until('both lines in the log', async () => {
      const l = await d.keel(['logs', 'bg']);
      return l.stdout && l.stderr ? l : undefined;
    });
    assert.equal(logs.stdout, 'out1\n');
    assert.equal(logs.stderr, 'err1\n');
    const tail = await d.keel(['logs', '--tail', '1', '-t', 'bg']);
    assert.match(tail.stdout + tail.stderr, /^\d{4}-\d\d-\d\dT[\d:.]+Z (out1|err1)\n$/);
    const ex = await d.keel(['exec', 'bg', 'sh', '-c', 'echo o; echo e >&2; exit 4']);
    assert.equal(ex.code, 4);
    assert.equal(ex.stdout, 'o\n');
    assert.equal(ex.stderr, 'e\n');
    const exi = await d.keel(['exec', '-i', '-e', 'X=42', '-w', '/tmp', 'bg', 'sh', '-c', 'cat; echo $X; pwd'], { input: 'in\n' });
    assert.equal(exi.stdout, 'in\n42\n/tmp\n');
    await ok(d, ['exec', '-d', 'bg', 'touch', '/tmp/from-exec-d']);
    await until('the detached exec to make its file', async () => (await d.keel(['exec', 'bg', 'ls', '/tmp/from-exec-d'])).code === 0);
    await ok(d, ['rm', '-f', 'bg']);
  });

  test('start -a attaches, starts and returns the exit code', async () => {
    await ok(d, ['create', '--name', 'sa', 'busybox:local', 'sh', '-c', 'echo started; exit 5']);
    const r = await d.keel(['start', '-a', 'sa']);
    assert.equal(r.code, 5);
    assert.equal(r.stdout, 'started\n');
    assert.equal(await ok(d, ['wait', 'sa']), '5\n');
    await ok(d, ['rm', 'sa']);
  });

  test('a missing image is pulled through the daemon, with progress on stderr', async () => {
    const reg = await startRegistry();
    try {
      const ref = `${reg.host}/cli/bb:1`;
      await ok(d, ['tag', 'busybox:local', ref]);
      await ok(d, ['push', ref]);
      await ok(d, ['rmi', ref]);
      const r = await d.keel(['run', '--rm', ref, 'echo', 'pulled']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'pulled\n');
      assert.match(r.stderr, new RegExp(`^Unable to find image '${ref}' locally\n`));
      assert.match(r.stderr, /Status: Downloaded newer image for /);
      const again = await d.keel(['run', '--rm', '--pull', 'always', '-q', ref, 'echo', 'again']);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.stdout, 'again\n');
      assert.equal(again.stderr, '');
    } finally {
      await d.keel(['rmi', '-f', `${reg.host}/cli/bb:1`]);
      await reg.stop();
    }
  });
});
