import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { computeStats, displayPorts, ellipsis } from './commands/ps.ts';
import { Command } from 'commander';
import { addCreateFlags, buildCreate, type CreateFlags } from './createflags.ts';
import { Demuxer, EscapeDetector } from './hijack.ts';
import {
  envValue,
  FlagError,
  parseAddHost,
  parseCpus,
  parseDetachKeys,
  parseDevice,
  parseDuration,
  parseMemory,
  parseMount,
  parsePublish,
  parseRestart,
  parseUlimit,
  parseVolumes,
} from './opts.ts';
import { startErrorStatus } from './session.ts';
import { EngineError, type ErrorCode } from '../common/errors.ts';

describe('flag parsers', () => {
  test('memory sizes are binary, like go-units RAMInBytes', () => {
    assert.equal(parseMemory('512m'), 512 * 1024 ** 2);
    assert.equal(parseMemory('1g'), 1024 ** 3);
    assert.equal(parseMemory('1.5GiB'), 1.5 * 1024 ** 3);
    assert.equal(parseMemory('100'), 100);
    assert.throws(() => parseMemory('abc'), new FlagError("invalid size: 'abc'"));
  });

  test('cpus, durations, restart policies, ulimits, devices, add-host, detach keys', () => {
    assert.equal(parseCpus('1.5'), 1_500_000_000);
    assert.throws(() => parseCpus('x'), FlagError);
    assert.equal(parseDuration('1m30s'), 90e9);
    assert.equal(parseDuration('500ms'), 5e8);
    assert.throws(() => parseDuration('5'), FlagError);
    assert.deepEqual(parseRestart('on-failure:3'), { Name: 'on-failure', MaximumRetryCount: 3 });
    assert.throws(() => parseRestart('always:3'), /only be used with 'on-failure'/);
    assert.deepEqual(parseUlimit('nofile=512:1024'), { Name: 'nofile', Soft: 512, Hard: 1024 });
    assert.throws(() => parseUlimit('nofile=2048:1024'), /soft limit/);
    assert.deepEqual(parseDevice('/dev/fuse'), { PathOnHost: '/dev/fuse', PathInContainer: '/dev/fuse', CgroupPermissions: 'rwm' });
    assert.deepEqual(parseDevice('/dev/a:/dev/b:r'), { PathOnHost: '/dev/a', PathInContainer: '/dev/b', CgroupPermissions: 'r' });
    assert.equal(parseAddHost('db=10.0.0.2'), 'db:10.0.0.2');
    assert.equal(parseAddHost('v6:[::1]'), 'v6:::1');
    assert.deepEqual([...parseDetachKeys('ctrl-p,ctrl-q')], [16, 17]);
    assert.deepEqual([...parseDetachKeys('a,ctrl-@,ctrl-[')], [97, 0, 27]);
    assert.throws(() => parseDetachKeys('ctrl-xx'), /Unknown character/);
  });

  test('-p: host IP, ranges, protocols, IPv6 in brackets', () => {
    const r = parsePublish(['127.0.0.1:8080:80', '9000-9001:9000-9001/udp', '[::1]:53:53/udp', '443', '7000-7002:7000'], ['5000-5001']);
    assert.deepEqual(r.bindings['80/tcp'], [{ HostIp: '127.0.0.1', HostPort: '8080' }]);
    assert.deepEqual(r.bindings['9001/udp'], [{ HostIp: '', HostPort: '9001' }]);
    assert.deepEqual(r.bindings['53/udp'], [{ HostIp: '::1', HostPort: '53' }]);
    assert.deepEqual(r.bindings['443/tcp'], [{ HostIp: '', HostPort: '' }]);
    assert.deepEqual(r.bindings['7000/tcp'], [{ HostIp: '', HostPort: '7000-7002' }]);
    assert.deepEqual(Object.keys(r.exposed).sort(), ['443/tcp', '5000/tcp', '5001/tcp', '53/udp', '7000/tcp', '80/tcp', '9000/udp', '9001/udp']);
    assert.throws(() => parsePublish(['99999:80']), /invalid port range/);
    assert.throws(() => parsePublish(['80/icmp']), /invalid proto/);
    assert.throws(() => parsePublish(['1-3:1-2']), /invalid ranges/);
  });

  test('-v and --mount', () => {
    assert.deepEqual(parseVolumes(['/data', 'vol:/v', '/h:/c:ro']), { volumes: { '/data': {} }, binds: ['vol:/v', '/h:/c:ro'] });
    assert.throws(() => parseVolumes(['relative']), /mount path must be absolute/);
    assert.deepEqual(parseMount('type=bind,source=/a,target=/b,readonly,bind-propagation=rshared'), {
      Type: 'bind',
      Source: '/a',
      Target: '/b',
      ReadOnly: true,
      BindOptions: { Propagation: 'rshared' },
    });
    assert.deepEqual(parseMount('type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1777'), {
      Type: 'tmpfs',
      Target: '/t',
      TmpfsOptions: { SizeBytes: 1024 * 1024, Mode: 0o1777 },
    });
    assert.deepEqual(parseMount('src=v,dst=/d,volume-nocopy'), { Type: 'volume', Source: 'v', Target: '/d', VolumeOptions: { NoCopy: true } });
    assert.throws(() => parseMount('type=bind,target=/b'), /source is required/);
    assert.throws(() => parseMount('type=bind,source=/a,target=/b,bogus=1'), /unexpected key 'bogus'/);
  });
});

const flags = (o: Partial<CreateFlags>): CreateFlags => {
  const lists = [
    'env',
    'envFile',
    'label',
    'labelFile',
    'publish',
    'expose',
    'volume',
    'mount',
    'tmpfs',
    'addHost',
    'dns',
    'dnsSearch',
    'dnsOption',
    'capAdd',
    'capDrop',
    'securityOpt',
    'device',
    'sysctl',
    'ulimit',
    'volumesFrom',
    'networkAlias',
    'groupAdd',
    'logOpt',
    'link',
    'attach',
    'storageOpt',
  ];
  return { ...Object.fromEntries(lists.map((k) => [k, []])), restart: 'no', memorySwappiness: '-1', ...o } as CreateFlags;
};

describe('create body', () => {
  test('matches what the docker CLI sends for `run -d --name x -p 8080:80 busybox:local /bin/sleep 600`', () => {
    const { body, name } = buildCreate('busybox:local', ['/bin/sleep', '600'], flags({ name: 'x', publish: ['8080:80'] }), true, false, undefined);
    assert.equal(name, 'x');
    assert.deepEqual(body.ExposedPorts, { '80/tcp': {} });
    assert.equal(body.AttachStdout, false);
    assert.equal(body.Env, null);
    assert.deepEqual(body.Labels, {});
    const hc = body.HostConfig as Record<string, unknown>;
    assert.deepEqual(hc.PortBindings, { '80/tcp': [{ HostIp: '', HostPort: '8080' }] });
    assert.equal(hc.NetworkMode, 'default');
    assert.deepEqual(hc.RestartPolicy, { Name: 'no', MaximumRetryCount: 0 });
    assert.equal(hc.MemorySwappiness, -1);
    assert.deepEqual(Object.keys((body.NetworkingConfig as { EndpointsConfig: object }).EndpointsConfig), ['default']);
  });

  test('-it --rm: stdin attached once, console size, auto-remove; named networks carry aliases', () => {
    const { body } = buildCreate(
      'img',
      [],
      flags({ interactive: true, tty: true, network: 'net1', networkAlias: ['web'], capAdd: ['net_admin'] }),
      false,
      true,
      [30, 100],
    );
    assert.equal(body.Cmd, null);
    assert.equal(body.OpenStdin, true);
    assert.equal(body.StdinOnce, true);
    const hc = body.HostConfig as Record<string, unknown>;
    assert.deepEqual(hc.ConsoleSize, [30, 100]);
    assert.equal(hc.AutoRemove, true);
    assert.deepEqual(hc.CapAdd, ['CAP_NET_ADMIN']);
    const ep = (body.NetworkingConfig as { EndpointsConfig: Record<string, { Aliases: string[] }> }).EndpointsConfig;
    assert.deepEqual(ep.net1!.Aliases, ['web']);
  });

  test('--network and --net both set the network mode; container:<name> takes no alias', () => {
    for (const flag of ['--network', '--net']) {
      const c = addCreateFlags(new Command()).exitOverride();
      c.parse(['node', 'run', flag, 'container:web'], { from: 'node' });
      const { body } = buildCreate('img', [], c.opts() as CreateFlags, true, false, undefined);
      assert.equal((body.HostConfig as Record<string, unknown>).NetworkMode, 'container:web', flag);
      assert.deepEqual((body.NetworkingConfig as { EndpointsConfig: object }).EndpointsConfig, {});
    }
    assert.throws(() => buildCreate('img', [], flags({ network: 'container:web', networkAlias: ['a'] }), true, false, undefined), {
      message: 'network-scoped aliases are only supported for user-defined networks',
    });
  });

  test('flag errors name the flag as docker does', () => {
    assert.throws(() => buildCreate('img', [], flags({ memory: 'abc' }), false, false, undefined), {
      message: `invalid argument "abc" for "-m, --memory" flag: invalid size: 'abc'`,
    });
    assert.throws(() => buildCreate('img', [], flags({ healthcheck: false, healthCmd: 'x' }), false, false, undefined), /conflicts/);
  });

  test("health flags: docker's request shape and its checks", () => {
    const hc = (o: Partial<CreateFlags>) => buildCreate('img', [], flags(o), false, false, undefined).body.Healthcheck;
    assert.deepEqual(hc({ healthCmd: 'test -f /tmp/ok', healthInterval: '200ms', healthRetries: '2' }), {
      Test: ['CMD-SHELL', 'test -f /tmp/ok'],
      Interval: 200e6,
      Timeout: 0,
      StartPeriod: 0,
      StartInterval: 0,
      Retries: 2,
    });
    assert.deepEqual(hc({ healthTimeout: '1s' }), { Test: null, Interval: 0, Timeout: 1e9, StartPeriod: 0, StartInterval: 0, Retries: 0 });
    assert.deepEqual(hc({ healthcheck: false }), { Test: ['NONE'] });
    assert.equal(hc({}), undefined);
    // Zero values are no setting, as in docker: no conflict with --no-healthcheck, no Healthcheck sent.
    assert.equal(hc({ healthInterval: '0s', healthCmd: '' }), undefined);
    assert.deepEqual(hc({ healthcheck: false, healthRetries: '0' }), { Test: ['NONE'] });
    assert.throws(() => hc({ healthInterval: '-1s' }), { message: '--health-interval cannot be negative' });
    assert.throws(() => hc({ healthTimeout: '-1s' }), { message: '--health-timeout cannot be negative' });
    assert.throws(() => hc({ healthRetries: '-1' }), { message: '--health-retries cannot be negative' });
    assert.throws(() => hc({ healthStartPeriod: '-1ms' }), { message: '--health-start-period cannot be negative' });
    assert.throws(() => hc({ healthStartInterval: '-1ms' }), { message: '--health-start-interval cannot be negative' });
    assert.throws(() => hc({ healthInterval: '5' }), { message: 'invalid argument "5" for "--health-interval" flag: time: missing unit in duration "5"' });
    assert.throws(() => hc({ healthTimeout: 'soon' }), { message: 'invalid argument "soon" for "--health-timeout" flag: time: invalid duration "soon"' });
  });
});

describe('streams and display', () => {
  test('the demuxer splits frames across chunk boundaries', () => {
    const got: [number, string][] = [];
    const dm = new Demuxer((s, d) => got.push([s, d.toString()]));
    const frame = (s: number, t: string) => Buffer.concat([Buffer.from([s, 0, 0, 0, 0, 0, 0, t.length]), Buffer.from(t)]);
    const all = Buffer.concat([frame(1, 'out'), frame(2, 'err'), frame(1, '')]);
    for (let i = 0; i < all.length; i += 3) dm.push(all.subarray(i, i + 3));
    assert.deepEqual(got, [
      [1, 'out'],
      [2, 'err'],
      [1, ''],
    ]);
  });

  test('the escape detector holds a partial sequence and flushes it on mismatch', () => {
    const e = new EscapeDetector(Buffer.from([16, 17]));
    assert.deepEqual(e.feed(Buffer.from('ab\x10')), { forward: Buffer.from('ab'), detach: false });
    assert.deepEqual(e.feed(Buffer.from('c')), { forward: Buffer.from('\x10c'), detach: false });
    assert.equal(e.feed(Buffer.from('\x10\x11')).detach, true);
  });

  test('ports column and command ellipsis like docker ps', () => {
    assert.equal(
      displayPorts([
        { IP: '0.0.0.0', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' },
        { IP: '::', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' },
        { IP: '0.0.0.0', PrivatePort: 9000, PublicPort: 9000, Type: 'udp' },
        { IP: '0.0.0.0', PrivatePort: 9001, PublicPort: 9001, Type: 'udp' },
        { PrivatePort: 443, Type: 'tcp' },
      ]),
      '443/tcp, 0.0.0.0:9000-9001->9000-9001/udp, 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp',
    );
    assert.equal(ellipsis('/bin/sh -c while true; do sleep 1; done', 20), '/bin/sh -c while tr…');
  });

  test('stats are computed from two samples like the docker CLI', () => {
    const row = computeStats(
      {
        id: 'a'.repeat(64),
        name: '/web',
        cpu_stats: { cpu_usage: { total_usage: 2_000_000_000 }, system_cpu_usage: 20_000_000_000, online_cpus: 4 },
        precpu_stats: { cpu_usage: { total_usage: 1_000_000_000 }, system_cpu_usage: 10_000_000_000 },
        memory_stats: { usage: 10 * 1024 * 1024, limit: 100 * 1024 * 1024, stats: { total_inactive_file: 5 * 1024 * 1024 } },
        networks: { eth0: { rx_bytes: 1500, tx_bytes: 500 } },
        blkio_stats: {
          io_service_bytes_recursive: [
            { op: 'Read', value: 4096 },
            { op: 'Write', value: 2_000_000 },
          ],
        },
        pids_stats: { current: 3 },
      },
      false,
      'web',
    );
    assert.deepEqual(row, {
      Container: 'web',
      ID: 'aaaaaaaaaaaa',
      Name: 'web',
      CPUPerc: '40.00%',
      MemUsage: '5MiB / 100MiB',
      MemPerc: '5.00%',
      NetIO: '1.5kB / 500B',
      BlockIO: '4.1kB / 2MB',
      PIDs: '3',
    });
  });

  test('start errors map to docker run exit codes', () => {
    const e = (message: string, code: ErrorCode = 'INTERNAL') => new EngineError(code, message);
    assert.equal(startErrorStatus(e('exec: "nope": executable file not found in $PATH')), 127);
    assert.equal(startErrorStatus(e('stat /x: no such file or directory')), 127);
    assert.equal(startErrorStatus(e('exec /etc: permission denied')), 126);
    assert.equal(startErrorStatus(e('cgroup busted')), 125);
    // keel's daemon sends the code: it decides, whatever the message says.
    assert.equal(startErrorStatus(e('cannot create container: runc said so', 'COMMAND_NOT_FOUND')), 127);
    assert.equal(startErrorStatus(e('cannot create container: runc said so', 'CANNOT_EXECUTE')), 126);
  });
});

test('-e KEY takes its value from the environment given, only from its own keys', () => {
  const env = { A: '1', EMPTY: '' };
  assert.equal(envValue('A=2', env), 'A=2');
  assert.equal(envValue('A', env), 'A=1');
  assert.equal(envValue('EMPTY', env), 'EMPTY=');
  assert.equal(envValue('B', env), 'B');
  assert.equal(envValue('constructor', env), 'constructor', 'a key of Object.prototype is not set');
  assert.throws(() => envValue('=x', env), FlagError);
});
