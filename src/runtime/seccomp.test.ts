import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ALL_CAPS, DEFAULT_CAPS } from './caps.ts';
import { KEEL_RULES, overrideProfile, parseProfile, pruneDefaultRules, resolveProfile } from './seccomp.ts';
import { buildSpec } from './spec.ts';
import type { Seccomp } from './spec-types.ts';

/**
 * What the compiled filter answers for one call: the unconditional rule for
 * the name if there is one, else the first conditional rule whose every
 * argument test holds, else the default. (libseccomp refuses a name with
 * conflicting unconditional rules; the consistency test below rules them out.)
 */
function decide(sc: Seccomp, name: string, args: number[] = []): string {
  const rules = (sc.syscalls ?? []).filter((r) => r.names.includes(name));
  const label = (action: string, errno?: number) => (action === 'SCMP_ACT_ALLOW' ? 'allow' : `errno ${errno ?? sc.defaultErrnoRet}`);
  const plain = rules.find((r) => !r.args?.length);
  if (plain) return label(plain.action, plain.errnoRet);
  for (const r of rules) {
    const ok = r.args!.every((a) => {
      const v = args[a.index] ?? 0;
      switch (a.op) {
        case 'SCMP_CMP_EQ':
          return v === a.value;
        case 'SCMP_CMP_NE':
          return v !== a.value;
        case 'SCMP_CMP_LT':
          return v < a.value;
        case 'SCMP_CMP_GT':
          return v > a.value;
        case 'SCMP_CMP_MASKED_EQ':
          return (v & a.value) >>> 0 === (a.valueTwo ?? 0);
        default:
          throw new Error(`op ${a.op}`);
      }
    });
    if (ok) return label(r.action, r.errnoRet);
  }
  return label(sc.defaultAction, sc.defaultErrnoRet);
}

const spec = (capAdd: string[] = []) => buildSpec({ rootfs: '/r', args: ['true'], capAdd }).linux.seccomp!;
const EPERM = 'errno 1';

test('default errno is EPERM, as moby: a syscall no rule names is refused, not reported missing', () => {
  const sc = spec();
  assert.equal(sc.defaultAction, 'SCMP_ACT_ERRNO');
  assert.equal(sc.defaultErrnoRet, 1);
  assert.equal(decide(sc, 'add_key'), EPERM);
  assert.equal(decide(sc, 'request_key'), EPERM);
  assert.equal(decide(sc, 'kexec_load'), EPERM);
});

test('socket: every family but AF_ALG (38) and AF_VSOCK (40)', () => {
  for (const sc of [spec(), spec(['ALL'])]) {
    for (const fam of [1, 2, 10, 16, 17, 37, 39, 41, 44]) assert.equal(decide(sc, 'socket', [fam]), 'allow', `family ${fam}`);
    assert.equal(decide(sc, 'socket', [38]), EPERM);
    assert.equal(decide(sc, 'socket', [40]), EPERM);
  }
  // The 2022 profile's audit-socket special case (EINVAL without CAP_AUDIT_WRITE) is gone, as in moby.
  assert.equal(decide(buildSpec({ rootfs: '/r', args: ['x'], capDrop: ['AUDIT_WRITE'] }).linux.seccomp!, 'socket', [16, 3, 9]), 'allow');
});

test('kernel keyring, pivot_root and obsolete multiplexers are refused to everyone', () => {
  for (const sc of [spec(), spec(['ALL'])]) {
    for (const n of [
      'keyctl',
      'add_key',
      'request_key',
      'pivot_root',
      'query_module',
      'readdir',
      'sigaction',
      'signal',
      'sigpending',
      'sigsuspend',
      'syscall',
      'timerfd',
    ]) {
      assert.equal(decide(sc, n), EPERM, n);
    }
  }
});

test('syscalls newer than the 2022 profile that moby allows are allowed', () => {
  const sc = spec();
  for (const n of [
    'cachestat',
    'fchmodat2',
    'futex_requeue',
    'futex_wait',
    'futex_waitv',
    'futex_wake',
    'getxattrat',
    'io_pgetevents',
    'io_pgetevents_time64',
    'listmount',
    'listxattrat',
    'map_shadow_stack',
    'mseal',
    'removexattrat',
    'setxattrat',
    'statmount',
    'uretprobe',
    'vmsplice',
    'name_to_handle_at',
  ]) {
    assert.equal(decide(sc, n), 'allow', n);
  }
  assert.equal(
    decide(
      resolveProfile(overrideProfile(parseProfile('{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38}'), KEEL_RULES), { caps: [], arch: 'riscv64' }),
      'riscv_hwprobe',
    ),
    'allow',
  );
});

test('namespace and mount calls need CAP_SYS_ADMIN; clone may not create namespaces without it', () => {
  const admin = [
    'bpf',
    'fanotify_init',
    'fsconfig',
    'fsmount',
    'fsopen',
    'fspick',
    'lookup_dcookie',
    'mount',
    'mount_setattr',
    'move_mount',
    'open_tree',
    'perf_event_open',
    'quotactl',
    'quotactl_fd',
    'setdomainname',
    'sethostname',
    'setns',
    'syslog',
    'umount',
    'umount2',
    'unshare',
  ];
  const plain = spec();
  const sys = spec(['SYS_ADMIN']);
  for (const n of admin) {
    assert.equal(decide(plain, n), EPERM, n);
    assert.equal(decide(sys, n), 'allow', n);
  }
  assert.equal(decide(plain, 'clone', [0x11]), 'allow');
  assert.equal(decide(plain, 'clone', [0x10000000]), EPERM, 'CLONE_NEWUSER');
  assert.equal(decide(plain, 'clone3'), 'errno 38', 'clone3 reports ENOSYS so libc falls back to clone');
  assert.equal(decide(sys, 'clone', [0x10000000]), 'allow');
  assert.equal(decide(sys, 'clone3'), 'allow');
  const s390 = resolveProfile(overrideProfile(parseProfile('{"defaultAction":"SCMP_ACT_ERRNO"}'), KEEL_RULES), { caps: [], arch: 's390x' });
  assert.equal(decide(s390, 'clone', [0x10000000, 0]), 'allow');
  assert.equal(decide(s390, 'clone', [0, 0x10000000]), EPERM);
});

test('calls moby ties to a capability follow it', () => {
  const cases: [string, string[]][] = [
    ['CAP_SYS_BOOT', ['reboot']],
    ['CAP_SYS_PTRACE', ['kcmp', 'pidfd_getfd', 'process_madvise']],
    ['CAP_SYS_NICE', ['get_mempolicy', 'mbind', 'set_mempolicy', 'set_mempolicy_home_node']],
    ['CAP_SYSLOG', ['syslog']],
    ['CAP_BPF', ['bpf']],
    ['CAP_PERFMON', ['perf_event_open']],
    ['CAP_SYS_MODULE', ['init_module', 'finit_module', 'delete_module']],
    ['CAP_SYS_TIME', ['settimeofday', 'clock_settime']],
  ];
  for (const [cap, names] of cases) {
    const sc = spec([cap.slice(4)].filter((c) => ALL_CAPS.includes(`CAP_${c}`)));
    for (const n of names) {
      assert.equal(decide(spec(), n), EPERM, `${n} without ${cap}`);
      assert.equal(decide(sc, n), 'allow', `${n} with ${cap}`);
    }
  }
  // ptrace and process_vm_* are allowed to everyone on kernels from 4.8 (where ptrace cannot bypass seccomp).
  for (const n of ['ptrace', 'process_vm_readv', 'process_vm_writev']) assert.equal(decide(spec(), n), 'allow', n);
});

test('no syscall is both allowed and denied outright, and no rule repeats the default', () => {
  for (const caps of [[], ['ALL'], ['SYS_ADMIN'], ['SYS_PTRACE', 'SYS_NICE']]) {
    const sc = spec(caps);
    const allow = new Set<string>();
    const deny = new Set<string>();
    for (const r of sc.syscalls!) {
      if (r.args?.length) continue;
      for (const n of r.names) (r.action === 'SCMP_ACT_ALLOW' ? allow : deny).add(n);
      assert.ok(!(r.action === sc.defaultAction && (r.errnoRet ?? 1) === sc.defaultErrnoRet), `redundant rule for ${r.names.join(',')}`);
    }
    assert.deepEqual(
      [...allow].filter((n) => deny.has(n)),
      [],
      `caps ${caps.join(',')}`,
    );
    // A name with an unconditional rule has no conditional ones to contradict it.
    const conditional = new Set(sc.syscalls!.filter((r) => r.args?.length).flatMap((r) => r.names));
    assert.deepEqual(
      [...conditional].filter((n) => allow.has(n) || deny.has(n)),
      [],
      `caps ${caps.join(',')}`,
    );
  }
});

test('pruneDefaultRules keeps conditional and non-default rules', () => {
  const sc: Seccomp = {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 1,
    syscalls: [
      { names: ['a'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 },
      { names: ['b'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 },
      { names: ['c'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ' }] },
      { names: ['d'], action: 'SCMP_ACT_ALLOW' },
    ],
  };
  assert.deepEqual(
    pruneDefaultRules(sc).syscalls!.map((r) => r.names[0]),
    ['b', 'c', 'd'],
  );
  assert.equal(DEFAULT_CAPS.includes('CAP_SYS_ADMIN'), false);
});
