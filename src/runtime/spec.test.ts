import assert from 'node:assert/strict';
import { test } from 'node:test';
import { capsToMask, DEFAULT_CAPS, resolveCaps } from './caps.ts';
import { clampRlimits, RLIM_INFINITY, validateSysctls } from './defaults.ts';
import { parseLogLine } from './logs.ts';
import { normalizeSignal, runcAdvisories, signalNumber } from './runc.ts';
import { parseProfile, resolveProfile, x86SubArchesAbsent } from './seccomp.ts';
import { execProcess } from './process.ts';
import { buildSpec, specToJson } from './spec.ts';

const HOST = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_SYS_CHROOT',
  'CAP_SYS_ADMIN',
  'CAP_MKNOD',
  'CAP_AUDIT_WRITE',
  'CAP_SETFCAP',
];

test("default caps are docker's 14 (CapEff a80425fb)", () => {
  assert.equal(DEFAULT_CAPS.length, 14);
  assert.equal(capsToMask(resolveCaps({}, HOST)).toString(16), 'a80425fb');
});

test('cap add/drop with ALL', () => {
  assert.deepEqual(resolveCaps({ capDrop: ['all'], capAdd: ['net_admin'] }, HOST), ['CAP_NET_ADMIN']);
  assert.deepEqual(
    resolveCaps({ capAdd: ['ALL'], capDrop: ['CAP_SYS_ADMIN'] }, HOST),
    HOST.filter((c) => c !== 'CAP_SYS_ADMIN'),
  );
  assert.ok(!resolveCaps({ capDrop: ['MKNOD'] }, HOST).includes('CAP_MKNOD'));
  assert.throws(() => resolveCaps({ capAdd: ['SYS_RESOURCE'] }, HOST), /bounding set/);
  assert.throws(() => resolveCaps({ capAdd: ['BOGUS'] }, HOST), /unknown capability/);
  assert.deepEqual(resolveCaps({ privileged: true }, HOST), HOST);
});

const PROFILE = JSON.stringify({
  defaultAction: 'SCMP_ACT_ERRNO',
  defaultErrnoRet: 38,
  archMap: [
    { architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] },
    { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] },
  ],
  syscalls: [
    { names: ['read', 'write', 'mount', 'clone', 'unshare'], action: 'SCMP_ACT_ALLOW', args: [], includes: {}, excludes: {} },
    { names: ['arch_prctl'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['amd64', 'x32'] } },
    { names: ['cacheflush'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['arm', 'arm64'] } },
    { names: ['bpf'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'] } },
    { names: ['bpf'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, excludes: { caps: ['CAP_SYS_ADMIN'] } },
    { names: ['ptrace'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: '4.8' } },
    { names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 16, op: 'SCMP_CMP_NE' }], excludes: { caps: ['CAP_AUDIT_WRITE'] } },
  ],
});

test('seccomp resolution per arch, cap and kernel', () => {
  const p = parseProfile(PROFILE);
  const plain = resolveProfile(p, { caps: ['CAP_CHOWN'], arch: 'x64', kernel: '6.1.0', absentArches: new Set() });
  assert.deepEqual(plain.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
  assert.equal(plain.defaultErrnoRet, 38);
  const names = (s: typeof plain) => s.syscalls!.map((r) => `${r.action}:${r.names.join(',')}`);
  assert.deepEqual(names(plain), [
    'SCMP_ACT_ALLOW:read,write,mount,clone,unshare',
    'SCMP_ACT_ALLOW:arch_prctl',
    'SCMP_ACT_ERRNO:bpf',
    'SCMP_ACT_ALLOW:ptrace',
    'SCMP_ACT_ALLOW:socket',
  ]);
  assert.deepEqual(plain.syscalls!.at(-1)!.args, [{ index: 0, value: 16, valueTwo: 0, op: 'SCMP_CMP_NE' }]);
  const admin = resolveProfile(p, { caps: ['CAP_SYS_ADMIN', 'CAP_AUDIT_WRITE'], arch: 'arm64', kernel: '4.4.0' });
  assert.deepEqual(admin.architectures, ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
  assert.deepEqual(names(admin), ['SCMP_ACT_ALLOW:read,write,mount,clone,unshare', 'SCMP_ACT_ALLOW:cacheflush', 'SCMP_ACT_ALLOW:bpf']);
});

test('seccomp lists only the sub-architectures the kernel can run', () => {
  const p = parseProfile(PROFILE);
  const noX32 = resolveProfile(p, { caps: [], arch: 'x64', kernel: '6.1.0', absentArches: new Set(['SCMP_ARCH_X32']) });
  assert.deepEqual(noX32.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86']);
  const cfg = (...lines: string[]) => lines.join('\n') + '\n';
  const both = cfg('CONFIG_IA32_EMULATION=y', 'CONFIG_X86_X32_ABI=y');
  assert.deepEqual([...x86SubArchesAbsent(both, 'quiet', '6.1.0')], []);
  assert.deepEqual([...x86SubArchesAbsent(cfg('CONFIG_IA32_EMULATION=y', '# CONFIG_X86_X32_ABI is not set'), '', '6.18.4')], ['SCMP_ARCH_X32']);
  // Debian: x32 built in but off unless booted with syscall.x32=y.
  const debian = cfg('CONFIG_IA32_EMULATION=y', 'CONFIG_X86_X32_ABI=y', 'CONFIG_X86_X32_DISABLED=y');
  assert.deepEqual([...x86SubArchesAbsent(debian, 'ro quiet', '6.1.0')], ['SCMP_ARCH_X32']);
  assert.deepEqual([...x86SubArchesAbsent(debian, 'ro syscall.x32=y quiet', '6.1.0')], []);
  // ia32_emulation= counts from 6.7 on, in either direction.
  assert.deepEqual([...x86SubArchesAbsent(both, 'ia32_emulation=false', '6.8.0')], ['SCMP_ARCH_X86']);
  assert.deepEqual([...x86SubArchesAbsent(both, 'ia32_emulation=false', '6.1.0')], []);
  const dflOff = cfg('CONFIG_IA32_EMULATION=y', 'CONFIG_IA32_EMULATION_DEFAULT_DISABLED=y', 'CONFIG_X86_X32_ABI=y');
  assert.deepEqual([...x86SubArchesAbsent(dflOff, '', '6.8.0')], ['SCMP_ARCH_X86']);
  assert.deepEqual([...x86SubArchesAbsent(dflOff, 'ia32_emulation=1', '6.8.0')], []);
});

test("the installed containers-common profile resolves for docker's default caps", () => {
  const spec = buildSpec({ rootfs: '/r', args: ['true'] });
  const sc = spec.linux.seccomp!;
  assert.equal(sc.defaultAction, 'SCMP_ACT_ERRNO');
  const allowed = new Set(sc.syscalls!.filter((r) => r.action === 'SCMP_ACT_ALLOW' && !r.args?.length).flatMap((r) => r.names));
  for (const n of ['read', 'execve', 'chroot']) assert.ok(allowed.has(n), n);
  for (const n of ['mount', 'unshare', 'bpf', 'clone3']) assert.ok(!allowed.has(n), n);
});

test('spec defaults: docker mounts, masked paths, devices, namespaces, env', () => {
  const s = buildSpec({ rootfs: '/r', args: ['sh'], tty: true, namespaces: { network: { path: '/run/netns/n1' }, ipc: 'host' } });
  assert.deepEqual(
    s.mounts.map((m) => m.destination),
    ['/proc', '/dev', '/dev/pts', '/sys', '/sys/fs/cgroup', '/dev/mqueue', '/dev/shm'],
  );
  assert.ok(s.mounts.find((m) => m.destination === '/sys')!.options!.includes('ro'));
  assert.ok(s.linux.maskedPaths!.includes('/proc/kcore'));
  assert.deepEqual(s.linux.readonlyPaths, ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']);
  assert.deepEqual(s.linux.namespaces, [{ type: 'mount' }, { type: 'pid' }, { type: 'uts' }, { type: 'network', path: '/run/netns/n1' }]);
  assert.deepEqual(s.linux.resources!.devices![0], { allow: false, access: 'rwm' });
  assert.ok(s.process.env.includes('TERM=xterm'));
  assert.ok(s.process.env[0]!.startsWith('PATH='));
  // an entry without '=' unsets its variable (as dockerd; runc refuses one), for a container and an exec alike
  const bare = buildSpec({ rootfs: '/r', args: ['sh'], env: ['A', 'PATH=/bin', 'B=1'] });
  assert.deepEqual(bare.process.env, ['PATH=/bin', 'B=1']);
  assert.deepEqual(execProcess(bare.process, { args: ['sh'], env: ['B', 'C=2'] }).env, ['PATH=/bin', 'C=2']);
  assert.deepEqual(s.process.capabilities!.inheritable, []);
  assert.deepEqual(s.process.capabilities!.ambient, []);
  const p = buildSpec({ rootfs: '/r', args: ['sh'], privileged: true });
  assert.equal(p.linux.seccomp, undefined);
  assert.deepEqual(p.linux.maskedPaths, []);
  assert.deepEqual(p.linux.resources!.devices, [{ allow: true, access: 'rwm' }]);
});

test('resources: cpus, memory+swap, pids; user mounts replace defaults', () => {
  const s = buildSpec({
    rootfs: '/r',
    args: ['x'],
    resources: { cpus: 1.5, memory: 100 << 20, pidsLimit: 50, cpuShares: 512 },
    shmSize: 1 << 20,
    mounts: [{ destination: '/dev/shm', type: 'tmpfs', source: 'tmpfs', options: ['size=2m'] }],
  });
  assert.deepEqual(s.linux.resources!.cpu, { period: 100000, quota: 150000, shares: 512 });
  assert.equal(s.linux.resources!.memory!.limit, 100 << 20);
  assert.deepEqual(s.linux.resources!.pids, { limit: 50 });
  assert.deepEqual(
    s.mounts.filter((m) => m.destination === '/dev/shm'),
    [{ destination: '/dev/shm', type: 'tmpfs', source: 'tmpfs', options: ['size=2m'] }],
  );
  assert.throws(() => buildSpec({ rootfs: '/r', args: ['x'], resources: { memory: 1000 } }), /minimum memory/);
  assert.throws(() => buildSpec({ rootfs: '/r', args: [] }), /no command/);
  assert.throws(() => buildSpec({ rootfs: 'rel', args: ['x'] }), /absolute/);
});

test('namespaces joined by path, a private cgroup namespace, no /dev/shm; IPC sysctls refused in a joined IPC namespace', () => {
  const s = buildSpec({
    rootfs: '/r',
    args: ['x'],
    namespaces: { pid: { path: '/proc/7/ns/pid' }, ipc: { path: '/proc/7/ns/ipc' }, cgroup: 'private' },
    noShm: true,
  });
  assert.deepEqual(s.linux.namespaces, [
    { type: 'mount' },
    { type: 'pid', path: '/proc/7/ns/pid' },
    { type: 'ipc', path: '/proc/7/ns/ipc' },
    { type: 'uts' },
    { type: 'network' },
    { type: 'cgroup' },
  ]);
  assert.equal(
    s.mounts.some((m) => m.destination === '/dev/shm'),
    false,
  );
  assert.equal(
    buildSpec({ rootfs: '/r', args: ['x'], namespaces: { cgroup: 'host' } }).linux.namespaces.some((n) => n.type === 'cgroup'),
    false,
  );
  assert.throws(
    () => buildSpec({ rootfs: '/r', args: ['x'], namespaces: { ipc: { path: '/proc/7/ns/ipc' } }, sysctls: { 'kernel.shmmax': '1' } }),
    /not allowed with the host IPC namespace or another container's/,
  );
});

test('sysctls: only namespaced ones', () => {
  validateSysctls({ 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '1', 'fs.mqueue.msg_max': '10' }, { hostNet: false, hostIpc: false, hostUts: false });
  assert.throws(() => validateSysctls({ 'net.ipv4.ip_forward': '1' }, { hostNet: true, hostIpc: false, hostUts: false }), /host network/);
  assert.throws(() => validateSysctls({ 'kernel.panic': '1' }, { hostNet: false, hostIpc: false, hostUts: false }), /not namespaced/);
  assert.throws(() => validateSysctls({ 'vm.swappiness': '1' }, { hostNet: false, hostIpc: false, hostUts: false }), /not namespaced/);
});

test('rlimits are clamped to the inherited hard limit; infinity serializes exactly', () => {
  const hard = new Map([
    ['RLIMIT_NOFILE', 20000],
    ['RLIMIT_CORE', RLIM_INFINITY],
  ]);
  assert.deepEqual(clampRlimits([{ type: 'nofile', soft: 65536, hard: 65536 }], hard), [{ type: 'RLIMIT_NOFILE', soft: 20000, hard: 20000 }]);
  assert.deepEqual(clampRlimits([{ type: 'core', soft: RLIM_INFINITY, hard: RLIM_INFINITY }], hard), [
    { type: 'RLIMIT_CORE', soft: RLIM_INFINITY, hard: RLIM_INFINITY },
  ]);
  assert.throws(() => clampRlimits([{ type: 'bogus', soft: 1, hard: 1 }], hard), /unknown ulimit/);
  const s = buildSpec({ rootfs: '/r', args: ['x'], rlimits: [{ type: 'core', soft: 0, hard: RLIM_INFINITY }] });
  assert.match(specToJson(s), /"hard":18446744073709551615/);
});

test('k8s-file log lines parse with nanoseconds and partials', () => {
  const e = parseLogLine(Buffer.from('2024-05-01T10:00:00.123456789+02:00 stderr F boom'))!;
  assert.equal(e.stream, 'stderr');
  assert.equal(e.line.toString(), 'boom\n');
  assert.equal(e.timeNs, BigInt(Date.parse('2024-05-01T08:00:00Z')) * 1_000_000n + 123456789n);
  const p = parseLogLine(Buffer.from('2024-05-01T10:00:00Z stdout P part'))!;
  assert.equal(p.partial, true);
  assert.equal(p.line.toString(), 'part');
  assert.equal(parseLogLine(Buffer.from('garbage')), undefined);
});

test('signals and runc advisories', () => {
  assert.equal(normalizeSignal('sigterm'), 'TERM');
  assert.equal(normalizeSignal(9), '9');
  assert.equal(signalNumber('KILL'), 9);
  assert.equal(signalNumber('SIGUSR1'), 10);
  assert.throws(() => normalizeSignal('FOO'), /invalid signal/);
  const deb = runcAdvisories({ version: '1.1.5+ds1', commit: '1.1.5+ds1-1+deb12u1' }).map((a) => a.cve);
  assert.ok(!deb.includes('CVE-2024-21626'));
  assert.ok(deb.includes('CVE-2025-31133'));
  const plain = runcAdvisories({ version: '1.1.5' }).map((a) => a.cve);
  assert.ok(plain.includes('CVE-2024-21626'));
  assert.ok(runcAdvisories({ version: '1.0.0-rc6' }).some((a) => a.cve === 'CVE-2019-5736'));
  assert.deepEqual(runcAdvisories({ version: '1.3.3' }), []);
});
