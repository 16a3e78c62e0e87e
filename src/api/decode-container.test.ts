import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import { mergeConfig } from '../containers/create.ts';
import { endpointsOf, hostConfigOf } from '../containers/record.ts';
import { buildRequestFrom } from './build.ts';
import { decodeCreateContainer, decodeUpdateContainer } from './decode-container.ts';

const bad = (message: string | RegExp) => ({ code: 'INVALID_ARGUMENT', message });

/** What docker CLI 28 sends for `docker run -d --name web -p 127.0.0.1:8080:80 -v data:/data --mount ... --tmpfs ... busybox sh -c ...`. */
const CLI_BODY = {
  Hostname: '',
  Domainname: '',
  User: '',
  AttachStdin: false,
  AttachStdout: false,
  AttachStderr: false,
  ExposedPorts: { '80/tcp': {} },
  Tty: false,
  OpenStdin: false,
  StdinOnce: false,
  Env: ['A=1'],
  Cmd: ['sh', '-c', 'sleep 1'],
  Image: 'busybox',
  Volumes: {},
  WorkingDir: '',
  Entrypoint: null,
  OnBuild: null,
  Labels: { team: 'core' },
  StopSignal: 'SIGUSR1',
  Healthcheck: { Test: ['CMD', 'true'], Interval: 1_000_000_000, Retries: 3 },
  HostConfig: {
    Binds: ['data:/data'],
    ContainerIDFile: '',
    LogConfig: { Type: 'json-file', Config: { 'max-size': '1m' } },
    NetworkMode: 'default',
    PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '8080' }] },
    RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 3 },
    AutoRemove: false,
    VolumeDriver: '',
    VolumesFrom: null,
    ConsoleSize: [24, 80],
    CapAdd: ['NET_ADMIN'],
    CapDrop: null,
    CgroupnsMode: '',
    Dns: [],
    DnsOptions: [],
    DnsSearch: [],
    ExtraHosts: ['db:10.0.0.2'],
    GroupAdd: null,
    IpcMode: '',
    Cgroup: '',
    Links: null,
    OomScoreAdj: 0,
    PidMode: '',
    Privileged: false,
    PublishAllPorts: false,
    ReadonlyRootfs: true,
    SecurityOpt: null,
    Tmpfs: { '/run': 'size=1m' },
    UTSMode: '',
    UsernsMode: '',
    ShmSize: 0,
    Isolation: '',
    CpuShares: 0,
    Memory: 67108864,
    NanoCpus: 1500000000,
    CgroupParent: '',
    BlkioWeight: 0,
    BlkioWeightDevice: [],
    CpuPeriod: 0,
    CpuQuota: 0,
    CpusetCpus: '',
    CpusetMems: '',
    Devices: [],
    DeviceCgroupRules: null,
    DeviceRequests: null,
    MemoryReservation: 0,
    MemorySwap: 0,
    MemorySwappiness: null,
    OomKillDisable: null,
    PidsLimit: 50,
    Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 2048 }],
    Mounts: [{ Type: 'volume', Target: '/cache', VolumeOptions: { NoCopy: true } }],
    MaskedPaths: null,
    ReadonlyPaths: null,
    NotADockerField: { big: 'x' },
  },
  NetworkingConfig: { EndpointsConfig: { default: { Aliases: ['web'] } } },
};

test('a full docker CLI body decodes into a typed spec, and the record encoder gives back the HostConfig and Config inspect shows', () => {
  const spec = decodeCreateContainer(structuredClone(CLI_BODY), 'web');
  assert.equal(spec.image, 'busybox');
  assert.equal(spec.name, 'web');
  assert.deepEqual(spec.cmd, ['sh', '-c', 'sleep 1']);
  assert.equal(spec.entrypoint, undefined, "a null Entrypoint is the image's");
  assert.deepEqual(spec.exposedPorts, ['80/tcp']);
  assert.deepEqual(spec.mounts, [
    { kind: 'volume-flag', spec: 'data:/data' },
    { kind: 'mount', mount: { type: 'volume', target: '/cache', volume: { noCopy: true } } },
    { kind: 'tmpfs-flag', target: '/run', options: 'size=1m' },
  ]);
  assert.deepEqual(spec.portBindings, { '80/tcp': [{ hostIp: '127.0.0.1', hostPort: '8080' }] });
  assert.deepEqual(spec.restartPolicy, { name: 'on-failure', maximumRetryCount: 3 });
  assert.deepEqual(spec.resources?.ulimits, [{ name: 'nofile', soft: 1024, hard: 2048 }]);
  assert.equal(spec.resources?.nanoCpus, 1.5e9);
  assert.deepEqual(spec.healthcheck, { test: ['CMD', 'true'], interval: 1e9, retries: 3 });
  assert.deepEqual(spec.endpoints, { default: { aliases: ['web'] } });

  const h = hostConfigOf(spec);
  const sent = CLI_BODY.HostConfig;
  // Every docker field the client sent comes back as sent (LogConfig and ShmSize get docker's defaults filled in).
  for (const [k, v] of Object.entries(sent)) {
    if (k === 'NotADockerField' || k === 'ShmSize' || k === 'LogConfig' || k === 'IpcMode' || k === 'CgroupnsMode') continue;
    assert.deepEqual(h[k], v, k);
  }
  assert.equal('NotADockerField' in h, false, "a key that is not docker's is dropped, as dockerd's struct decoding does");
  assert.equal(h.ShmSize, 64 << 20);
  assert.equal(h.IpcMode, 'private');
  assert.equal(h.CgroupnsMode, 'host', "dockerd's default on a cgroup v1 host");
  assert.equal('CgroupParent' in (spec.inspectOnly ?? {}), false, 'acted on, not kept for inspect only');
  assert.deepEqual(h.LogConfig, { Type: 'json-file', Config: { 'max-size': '1m' } });
  assert.deepEqual(endpointsOf(spec, h.NetworkMode), { bridge: { Aliases: ['web'] } });

  const c = mergeConfig(spec, { Env: ['PATH=/bin'], Cmd: ['sh'] }, 'a'.repeat(64));
  assert.deepEqual(c.Env, ['PATH=/bin', 'A=1']);
  assert.deepEqual(c.ExposedPorts, { '80/tcp': {} });
  assert.deepEqual(c.Volumes, {});
  assert.equal(c.StopSignal, 'SIGUSR1');
  assert.deepEqual(c.Labels, { team: 'core' });
  assert.deepEqual(c.Healthcheck, { Test: ['CMD', 'true'], Interval: 1e9, Retries: 3 });
});

test('a minimal body: docker defaults, nothing invented', () => {
  const spec = decodeCreateContainer({ Image: 'busybox', Cmd: 'true' });
  assert.deepEqual(spec.cmd, ['true'], 'a lone string is a list of one');
  const h = hostConfigOf(spec);
  assert.equal(h.NetworkMode, 'default');
  assert.equal(h.Binds, null);
  assert.deepEqual([h.Dns, h.Devices, h.Ulimits], [[], [], []]);
  for (const k of ['Mounts', 'Tmpfs', 'PortBindings', 'Links', 'PidsLimit', 'Sysctls']) assert.equal(k in h, false, k);
  assert.deepEqual(endpointsOf(spec, h.NetworkMode), { bridge: {} });
  const joined = decodeCreateContainer({ Image: 'x', HostConfig: { NetworkMode: 'host' }, NetworkingConfig: { EndpointsConfig: { host: {} } } });
  assert.deepEqual(endpointsOf(joined, 'host'), {});
});

test('bad bodies and bad types are 400s with the messages clients see', () => {
  for (const body of [undefined, null, 'x', [1]])
    assert.throws(() => decodeCreateContainer(body), bad('config cannot be empty in order to create a container'));
  assert.throws(() => decodeCreateContainer({}), bad(/no image given/));
  assert.throws(() => decodeCreateContainer({ Image: 7 }), bad(/no image given/));
  assert.throws(() => decodeCreateContainer({ Image: 'x', Cmd: [1] }), bad('Cmd must be a list of strings'));
  assert.throws(() => decodeCreateContainer({ Image: 'x', Entrypoint: { a: 1 } }), bad('Entrypoint must be a list of strings'));
  assert.throws(() => decodeCreateContainer({ Image: 'x', Env: [null] }), bad('Env must be a list of strings'));
  assert.throws(() => decodeCreateContainer({ Image: 'x', StopTimeout: 'soon' }), bad('StopTimeout must be a number'));
  assert.throws(() => decodeCreateContainer({ Image: 'x', Healthcheck: { Interval: -1 } }), bad('Interval in Healthcheck cannot be less than 1ms'));
  assert.throws(() => decodeCreateContainer({ Image: 'x', Healthcheck: 'curl' }), bad('Healthcheck must be an object'));
  const host = (h: object) => () => decodeCreateContainer({ Image: 'x', HostConfig: h });
  // A lone string is one bind; its grammar (and its errors) are the volume layer's, at create.
  assert.deepEqual(host({ Binds: 'a:/b' })().mounts, [{ kind: 'volume-flag', spec: 'a:/b' }]);
  assert.throws(host({ Binds: [1] }), bad('Binds must be a list of strings'));
  assert.throws(host({ CapAdd: [1] }), bad('CapAdd must be a list of strings'));
  assert.throws(host({ Memory: 'lots' }), bad('Memory must be a number'));
  assert.throws(host({ PidsLimit: 'x' }), bad('PidsLimit must be a number'));
  assert.throws(host({ RestartPolicy: { Name: 'sometimes' } }), bad("invalid restart policy 'sometimes'"));
  assert.throws(host({ RestartPolicy: { Name: 'on-failure', MaximumRetryCount: -1 } }), bad('maximum retry count cannot be negative'));
  assert.throws(host({ RestartPolicy: { Name: 'always', MaximumRetryCount: 2 } }), bad("maximum retry count cannot be used with restart policy 'always'"));
  assert.throws(host({ AutoRemove: true, RestartPolicy: { Name: 'always' } }), bad("can't create 'AutoRemove' container with restart policy"));
  assert.throws(host({ Mounts: {} }), bad('Mounts must be a list'));
  assert.throws(host({ Mounts: [7] }), bad('invalid mount: expected an object'));
  assert.throws(host({ Mounts: [{ Type: 'bind', Source: 1, Target: '/x' }] }), bad('invalid mount: Source must be a string'));
  assert.throws(host({ Mounts: [{ Type: 'npipe', Target: '/x' }] }), bad('invalid mount config for type "npipe": mount type unknown'));
  assert.throws(
    host({ Mounts: [{ Type: 'tmpfs', Target: '/x', TmpfsOptions: { SizeBytes: '1m' } }] }),
    bad('invalid mount config for type "tmpfs": invalid tmpfs size 1m'),
  );
  assert.throws(host({ Tmpfs: 'x' }), bad('tmpfs mount points must be absolute paths'));
  assert.throws(host({ Tmpfs: { '/t': 1 } }), bad('Tmpfs must be an object of mount point → options'));
  assert.throws(host({ VolumesFrom: [1] }), bad('VolumesFrom must be a list of strings'));
  assert.throws(host({ PortBindings: [] }), bad('PortBindings must be an object of port → bindings'));
  assert.throws(host({ PortBindings: { '80/tcp': 'x' } }), bad('PortBindings for 80/tcp must be a list'));
  assert.throws(host({ Sysctls: ['a'] }), bad('Sysctls must be an object of strings'));
  assert.throws(host({ Ulimits: [{ Soft: 1 }] }), bad(/Ulimits must be a list/));
  assert.throws(
    () => decodeCreateContainer({ Image: 'x', NetworkingConfig: { EndpointsConfig: { n: { Aliases: [1] } } } }),
    bad('Aliases must be a list of strings'),
  );
});

test('limits: long lists, many labels and many endpoints are bounded', () => {
  assert.throws(() => decodeCreateContainer({ Image: 'x', Cmd: Array(4097).fill('a') }), bad('Cmd has more than 4096 entries'));
  assert.throws(() => decodeCreateContainer({ Image: 'x', Env: Array(4097).fill('A=1') }), bad('Env has more than 4096 entries'));
  const labels = Object.fromEntries(Array.from({ length: 4097 }, (_, i) => [`l${i}`, 'v']));
  assert.throws(() => decodeCreateContainer({ Image: 'x', Labels: labels }), bad('more than 4096 labels'));
  assert.throws(() => decodeCreateContainer({ Image: 'x', HostConfig: { Mounts: Array(1001).fill({ Type: 'tmpfs', Target: '/t' }) } }), bad(/too many mounts/));
  const eps = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`n${i}`, {}]));
  const spec = decodeCreateContainer({ Image: 'x', HostConfig: { NetworkMode: 'n0' }, NetworkingConfig: { EndpointsConfig: eps } });
  assert.equal(Object.keys(spec.endpoints ?? {}).length, 64);
});

test("what keel does not support is refused at create, not in the wire decoder (the engine's callers get the same check)", () => {
  const spec = decodeCreateContainer({ Image: 'x', HostConfig: { SecurityOpt: ['apparmor=docker-default'], UsernsMode: 'private' } });
  assert.throws(() => hostConfigOf(spec), bad(/keel does not apply AppArmor profiles/));
  assert.throws(() => hostConfigOf(decodeCreateContainer({ Image: 'x', HostConfig: { UsernsMode: 'private' } })), bad(/host user namespace only/));
  assert.throws(() => hostConfigOf(decodeCreateContainer({ Image: 'x', HostConfig: { LogConfig: { Type: 'syslog' } } })), bad(/not supported by keel/));
  assert.throws(() => hostConfigOf(decodeCreateContainer({ Image: 'x', HostConfig: { NetworkMode: 'container:' } })), bad(/invalid container format/));
  assert.throws(() => hostConfigOf(decodeCreateContainer({ Image: 'x', HostConfig: { NanoCpus: 1e9, CpuQuota: 5 } })), bad(/Conflicting options/));
});

test("build's resource flags become the RUN containers' ResourcesSpec (cgroupparent accepted, unused)", () => {
  const q = new URLSearchParams({ memory: '67108864', memswap: '-1', cpushares: '512', cpusetcpus: '0', cgroupparent: '/x' });
  q.set('ulimits', JSON.stringify([{ Name: 'nofile', Soft: 10, Hard: 20 }]));
  const r = buildRequestFrom({ headers: {} } as IncomingMessage, q);
  assert.deepEqual(r.resources, { memory: 64 << 20, memorySwap: -1, cpuShares: 512, cpusetCpus: '0', ulimits: [{ name: 'nofile', soft: 10, hard: 20 }] });
  assert.equal(hostConfigOf({ image: 'x', resources: r.resources }).Memory, 64 << 20);
});

test('update body: the limits and restart policy become an UpdateSpec; bad types are refused; other keys are not limits', () => {
  assert.deepEqual(decodeUpdateContainer(null), { resources: {} });
  const u = decodeUpdateContainer({
    Memory: 64 << 20,
    CpuShares: 512,
    CpusetCpus: '0',
    PidsLimit: 50,
    BlkioWeight: 300,
    RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 3 },
  });
  assert.equal(u.resources.memory, 64 << 20);
  assert.equal(u.resources.cpuShares, 512);
  assert.equal(u.resources.cpusetCpus, '0');
  assert.equal(u.resources.pidsLimit, 50);
  assert.equal('blkioWeight' in u.resources && u.resources.blkioWeight !== undefined, false);
  assert.deepEqual(u.restartPolicy, { name: 'on-failure', maximumRetryCount: 3 });
  assert.throws(() => decodeUpdateContainer({ Memory: 'lots' }), /Memory must be a number/);
  assert.throws(() => decodeUpdateContainer({ RestartPolicy: { Name: 7 } }), /RestartPolicy.Name must be a string/);
  assert.throws(() => decodeUpdateContainer([1]), /must be a JSON object/);
});

test('namespace modes and the cgroup parent: decoded into the spec, checked at create with clear messages', () => {
  const spec = decodeCreateContainer({
    Image: 'x',
    HostConfig: { IpcMode: 'container:db', PidMode: 'container:db', CgroupParent: '/mine', CgroupnsMode: 'private', UTSMode: 'host', UsernsMode: 'host' },
  });
  assert.equal(spec.ipcMode, 'container:db');
  assert.equal(spec.pidMode, 'container:db');
  assert.equal(spec.cgroupParent, '/mine');
  assert.equal(spec.cgroupnsMode, 'private');
  assert.equal(spec.inspectOnly, undefined);
  const h = hostConfigOf(spec);
  assert.deepEqual(
    [h.IpcMode, h.PidMode, h.CgroupParent, h.CgroupnsMode, h.UTSMode, h.UsernsMode],
    ['container:db', 'container:db', '/mine', 'private', 'host', 'host'],
  );
  for (const ipc of ['private', 'shareable', 'none', 'host'])
    assert.equal(hostConfigOf(decodeCreateContainer({ Image: 'x', HostConfig: { IpcMode: ipc } })).IpcMode, ipc);

  const host = (hc: object) => () => hostConfigOf(decodeCreateContainer({ Image: 'x', HostConfig: hc }));
  assert.throws(host({ IpcMode: 'bogus' }), bad('Invalid IPC mode: bogus'));
  assert.throws(host({ IpcMode: 'container:' }), bad(/^Invalid IPC mode: invalid container format container:<name\|id>/));
  assert.throws(host({ PidMode: 'bogus' }), bad('Invalid PID mode: bogus'));
  assert.throws(host({ PidMode: 'container:a b' }), bad(/^Invalid PID mode: invalid container format/));
  assert.throws(host({ CgroupnsMode: 'bogus' }), bad('invalid cgroup namespace mode: bogus'));
  assert.throws(host({ CgroupParent: '/a/../b' }), bad(/^invalid cgroup parent "\/a\/..\/b"/));
  assert.throws(host({ CgroupParent: 7 }), bad('CgroupParent must be a string'));
  assert.throws(host({ IpcMode: ['host'] }), bad('IpcMode must be a string'));
  assert.throws(host({ UsernsMode: 'private' }), bad(/keel runs containers in the host user namespace only/));
});

test('a client older than API 1.40 gets the IPC mode that was the default then: shareable', () => {
  assert.equal(decodeCreateContainer({ Image: 'x' }, undefined, 1.39).ipcMode, 'shareable');
  assert.equal(decodeCreateContainer({ Image: 'x', HostConfig: { IpcMode: 'private' } }, undefined, 1.25).ipcMode, 'private');
  assert.equal(decodeCreateContainer({ Image: 'x' }, undefined, 1.41).ipcMode, undefined);
  assert.equal(hostConfigOf(decodeCreateContainer({ Image: 'x' }, undefined, 1.4)).IpcMode, 'private');
});
