import fs from 'node:fs';
import os from 'node:os';
import zlib from 'node:zlib';
import { EngineError, errnoCode, invalid } from '../common/errors.ts';
import type { Seccomp, SeccompArg, SeccompSyscall } from './spec-types.ts';

/**
 * Seccomp profiles in docker's format (the one containers-common ships at
 * /usr/share/containers/seccomp.json) carry conditions: a rule may apply only
 * on some architectures, with some capabilities, or on newer kernels. runc
 * takes only the resolved OCI form, so each container's filter is resolved
 * here from its own capability set, as moby's profiles/seccomp does.
 */
export const DEFAULT_PROFILE_PATH = '/usr/share/containers/seccomp.json';
const MAX_PROFILE_BYTES = 1 << 20;
const MAX_RULES = 4096;

export interface ProfileRule {
  name?: string;
  names?: string[];
  action: string;
  errnoRet?: number;
  args?: SeccompArg[] | null;
  includes?: { caps?: string[]; arches?: string[]; minKernel?: string };
  excludes?: { caps?: string[]; arches?: string[]; minKernel?: string };
}

export interface Profile {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  archMap?: { architecture: string; subArchitectures?: string[] }[];
  flags?: string[];
  syscalls?: ProfileRule[];
}

/** Node's arch → (Go arch name used in profile conditions, native SCMP arch). */
const ARCHES: Record<string, [string, string]> = {
  x64: ['amd64', 'SCMP_ARCH_X86_64'],
  arm64: ['arm64', 'SCMP_ARCH_AARCH64'],
  arm: ['arm', 'SCMP_ARCH_ARM'],
  ia32: ['386', 'SCMP_ARCH_X86'],
  ppc64: ['ppc64le', 'SCMP_ARCH_PPC64LE'],
  s390x: ['s390x', 'SCMP_ARCH_S390X'],
  riscv64: ['riscv64', 'SCMP_ARCH_RISCV64'],
};

export interface ResolveContext {
  /** Capabilities in the container's bounding set (CAP_ names). */
  caps: readonly string[];
  /** Node's process.arch; defaults to this host's. */
  arch?: string;
  /** Kernel release such as "6.1.0"; defaults to this host's. */
  kernel?: string;
  /** Sub-architectures the kernel cannot run; defaults to this host's (see absentSubArches). */
  absentArches?: ReadonlySet<string>;
}

const profileCache = new Map<string, { mtimeMs: number; profile: Profile }>();

/** Loads and checks a docker-format (or OCI-format) profile from a file. */
export function loadProfile(file: string): Profile {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') {
      throw new EngineError(
        'UNAVAILABLE',
        `seccomp profile ${file} does not exist` + (file === DEFAULT_PROFILE_PATH ? ' (install the Debian package golang-github-containers-common)' : ''),
      );
    }
    throw e;
  }
  const hit = profileCache.get(file);
  if (hit && hit.mtimeMs === st.mtimeMs) return hit.profile;
  if (st.size > MAX_PROFILE_BYTES) throw invalid(`seccomp profile ${file} is larger than ${MAX_PROFILE_BYTES} bytes`);
  const profile = parseProfile(fs.readFileSync(file, 'utf8'), file);
  profileCache.set(file, { mtimeMs: st.mtimeMs, profile });
  return profile;
}

export function parseProfile(text: string, what = 'seccomp profile'): Profile {
  let p: unknown;
  try {
    p = JSON.parse(text);
  } catch (e) {
    throw invalid(`${what} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof p !== 'object' || p === null || Array.isArray(p)) throw invalid(`${what} must be a JSON object`);
  const o = p as Profile;
  if (typeof o.defaultAction !== 'string' || !o.defaultAction.startsWith('SCMP_ACT_')) throw invalid(`${what} has no valid defaultAction`);
  if (o.syscalls !== undefined && o.syscalls !== null && !Array.isArray(o.syscalls)) throw invalid(`${what}: "syscalls" must be an array`);
  if ((o.syscalls?.length ?? 0) > MAX_RULES) throw invalid(`${what} has more than ${MAX_RULES} rules`);
  for (const r of o.syscalls ?? []) {
    if (typeof r !== 'object' || r === null || typeof r.action !== 'string') throw invalid(`${what}: every rule needs an "action"`);
    const names = r.names ?? (r.name ? [r.name] : undefined);
    if (!Array.isArray(names) || names.some((n) => typeof n !== 'string')) throw invalid(`${what}: every rule needs "names"`);
  }
  return o;
}

function kernelAtLeast(kernel: string, min: string): boolean {
  const a = kernel.split(/[.-]/).map((x) => parseInt(x, 10) || 0);
  const b = min.split(/[.-]/).map((x) => parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  }
  return true;
}

/**
 * Turns a conditional profile into the OCI `linux.seccomp` for one container:
 * keeps the native arch and its sub-arches, and only the rules whose
 * includes all hold (every listed cap present, arch listed, kernel new
 * enough) and whose excludes none hold (no listed cap present, arch not listed).
 */
export function resolveProfile(profile: Profile, ctx: ResolveContext): Seccomp {
  const [goArch, nativeArch] = ARCHES[ctx.arch ?? process.arch] ?? ['amd64', 'SCMP_ARCH_X86_64'];
  const kernel = ctx.kernel ?? os.release();
  const caps = new Set(ctx.caps);
  let architectures: string[] = [];
  if (profile.archMap?.length) {
    const absent = ctx.absentArches ?? ((ctx.arch ?? process.arch) === process.arch ? absentSubArches() : new Set<string>());
    for (const a of profile.archMap) {
      if (a.architecture === nativeArch) architectures.push(a.architecture, ...(a.subArchitectures ?? []).filter((s) => !absent.has(s)));
    }
  } else if (profile.architectures?.length) {
    architectures = [...profile.architectures];
  }
  const syscalls: SeccompSyscall[] = [];
  for (const r of profile.syscalls ?? []) {
    const inc = r.includes ?? {};
    const exc = r.excludes ?? {};
    if (inc.arches?.length && !inc.arches.includes(goArch)) continue;
    if (exc.arches?.length && exc.arches.includes(goArch)) continue;
    if (inc.caps?.length && !inc.caps.every((c) => caps.has(c))) continue;
    if (exc.caps?.length && exc.caps.some((c) => caps.has(c))) continue;
    if (inc.minKernel && !kernelAtLeast(kernel, inc.minKernel)) continue;
    if (exc.minKernel && kernelAtLeast(kernel, exc.minKernel)) continue;
    const names = r.names ?? (r.name ? [r.name] : []);
    if (names.length === 0) continue;
    const out: SeccompSyscall = { names: [...names], action: r.action };
    if (typeof r.errnoRet === 'number') out.errnoRet = r.errnoRet;
    if (r.args?.length) out.args = r.args.map((a) => ({ index: a.index, value: a.value, valueTwo: a.valueTwo ?? 0, op: a.op }));
    syscalls.push(out);
  }
  const res: Seccomp = { defaultAction: profile.defaultAction, architectures, syscalls };
  if (typeof profile.defaultErrnoRet === 'number') res.defaultErrnoRet = profile.defaultErrnoRet;
  if (profile.flags?.length) res.flags = [...profile.flags];
  return res;
}

let absentCache: ReadonlySet<string> | undefined;

/**
 * The sub-architectures whose syscalls this kernel cannot execute at all.
 * runc (libseccomp) compiles the filter once per listed architecture, ~10 ms
 * each on these machines, on every container start; a syscall of an ABI the
 * kernel lacks fails before any handler whatever the filter says, so listing
 * it buys nothing. Only a kernel config that positively says so counts:
 * x32 not built in, or Debian's build-time default off without
 * `syscall.x32=y`; 32-bit x86 built out, or off by default (6.7+) without
 * `ia32_emulation=true`, or switched off with `ia32_emulation=false`. When the
 * config cannot be read, every sub-architecture stays.
 */
export function absentSubArches(): ReadonlySet<string> {
  if (absentCache) return absentCache;
  const config = process.arch === 'x64' ? readKernelConfig() : undefined;
  let cmdline = '';
  try {
    cmdline = fs.readFileSync('/proc/cmdline', 'utf8');
  } catch {
    // no /proc/cmdline: boot switches count as unset
  }
  absentCache = config ? x86SubArchesAbsent(config, cmdline, os.release()) : new Set();
  return absentCache;
}

/** absentSubArches for an x86-64 kernel, from its build config, boot command line and release. */
export function x86SubArchesAbsent(config: string, cmdline: string, release: string): Set<string> {
  const absent = new Set<string>();
  const built = (opt: string) => new RegExp(`^${opt}=y$`, 'm').test(config);
  const param = (name: string) => new RegExp(`(?:^|\\s)${name.replace('.', '\\.')}=(\\S+)`).exec(cmdline)?.[1];
  const on = (v: string | undefined) => v !== undefined && /^(1|y|yes|true|on)$/i.test(v);
  const off = (v: string | undefined) => v !== undefined && /^(0|n|no|false|off)$/i.test(v);
  if (!built('CONFIG_X86_X32_ABI') || (built('CONFIG_X86_X32_DISABLED') && !on(param('syscall.x32')))) absent.add('SCMP_ARCH_X32');
  // ia32_emulation= exists from 6.7 on; older kernels ignore it.
  const ia32 = kernelAtLeast(release, '6.7') ? param('ia32_emulation') : undefined;
  if (!built('CONFIG_IA32_EMULATION') || off(ia32) || (built('CONFIG_IA32_EMULATION_DEFAULT_DISABLED') && !on(ia32))) absent.add('SCMP_ARCH_X86');
  return absent;
}

/** The running kernel's build config (/proc/config.gz or /boot/config-<release>), or undefined. */
function readKernelConfig(): string | undefined {
  try {
    const text = zlib.gunzipSync(fs.readFileSync('/proc/config.gz'), { maxOutputLength: 16 << 20 }).toString('utf8');
    if (text.includes('CONFIG_')) return text;
  } catch {
    // not built with IKCONFIG_PROC: try the distribution's copy
  }
  try {
    const text = fs.readFileSync(`/boot/config-${os.release()}`, 'utf8');
    if (text.includes('CONFIG_')) return text;
  } catch {
    // none readable
  }
  return undefined;
}

const EPERM = 1;
const ENOSYS = 38;
const ALLOW = 'SCMP_ACT_ALLOW';
/** CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET: clone may not create namespaces without CAP_SYS_ADMIN. */
const CLONE_NS_FLAGS = 0x7e020000;
/** AF_ALG (38, the kernel crypto API) and AF_VSOCK (40, host/hypervisor sockets): kernel attack surface moby blocks. */
const AF_ALG = 38;
const AF_VSOCK = 40;

/**
 * keel's own rules over the 2022 containers-common profile: every place where
 * moby's current default profile (github.com/moby/profiles seccomp/default.json,
 * head of 2026-06-30, which docker 28/29 load) decides a syscall differently.
 * Each name listed here drops every rule the loaded profile has for it, and
 * these rules (same conditional format) replace them. Unknown syscalls fail
 * with EPERM as in moby (defaultErrnoRet 1; the 2022 profile says ENOSYS),
 * so a rule that only denies with EPERM means "not allowed to anyone".
 */
export const KEEL_RULES: readonly ProfileRule[] = [
  // Syscalls of kernels 5.16-6.13 the 2022 profile does not know, and two it denies that moby allows.
  {
    names: [
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
      'riscv_hwprobe',
      'setxattrat',
      'statmount',
      'uretprobe',
      'vmsplice',
    ],
    action: ALLOW,
  },
  // Every socket family but AF_ALG and AF_VSOCK (the 2022 profile allows all of them).
  { names: ['socket'], action: ALLOW, args: [{ index: 0, value: AF_ALG, op: 'SCMP_CMP_LT' }] },
  { names: ['socket'], action: ALLOW, args: [{ index: 0, value: AF_ALG + 1, op: 'SCMP_CMP_EQ' }] },
  { names: ['socket'], action: ALLOW, args: [{ index: 0, value: AF_VSOCK, op: 'SCMP_CMP_GT' }] },
  // Namespace, mount and kernel-facing calls only with CAP_SYS_ADMIN (the 2022 profile allows most to everyone).
  {
    names: [
      'bpf',
      'clone',
      'clone3',
      'fanotify_init',
      'fsconfig',
      'fsmount',
      'fsopen',
      'fspick',
      'lookup_dcookie',
      'lsm_get_self_attr',
      'lsm_list_modules',
      'lsm_set_self_attr',
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
    ],
    action: ALLOW,
    includes: { caps: ['CAP_SYS_ADMIN'] },
  },
  {
    names: ['clone'],
    action: ALLOW,
    args: [{ index: 0, value: CLONE_NS_FLAGS, op: 'SCMP_CMP_MASKED_EQ' }],
    excludes: { caps: ['CAP_SYS_ADMIN'], arches: ['s390', 's390x'] },
  },
  // s390 swaps clone's first two arguments.
  {
    names: ['clone'],
    action: ALLOW,
    args: [{ index: 1, value: CLONE_NS_FLAGS, op: 'SCMP_CMP_MASKED_EQ' }],
    includes: { arches: ['s390', 's390x'] },
    excludes: { caps: ['CAP_SYS_ADMIN'] },
  },
  // clone3 passes its flags in a struct seccomp cannot read: ENOSYS makes libc fall back to clone.
  { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS, excludes: { caps: ['CAP_SYS_ADMIN'] } },
  { names: ['bpf'], action: ALLOW, includes: { caps: ['CAP_BPF'] } },
  { names: ['perf_event_open'], action: ALLOW, includes: { caps: ['CAP_PERFMON'] } },
  { names: ['syslog'], action: ALLOW, includes: { caps: ['CAP_SYSLOG'] } },
  { names: ['reboot'], action: ALLOW, includes: { caps: ['CAP_SYS_BOOT'] } },
  { names: ['process_vm_readv', 'process_vm_writev', 'ptrace'], action: ALLOW, includes: { minKernel: '4.8' } },
  {
    names: ['kcmp', 'pidfd_getfd', 'process_madvise', 'process_vm_readv', 'process_vm_writev', 'ptrace'],
    action: ALLOW,
    includes: { caps: ['CAP_SYS_PTRACE'] },
  },
  { names: ['get_mempolicy', 'mbind', 'set_mempolicy', 'set_mempolicy_home_node'], action: ALLOW, includes: { caps: ['CAP_SYS_NICE'] } },
  { names: ['swapcontext'], action: ALLOW, includes: { arches: ['ppc64le'] } },
  { names: ['riscv_flush_icache'], action: ALLOW, includes: { arches: ['riscv64'] } },
  // Allowed to no one: the kernel keyring is not namespaced (keys leak across containers), pivot_root
  // and query_module have no use in a container, the rest are multiplexers or ABIs x86-64 lacks.
  {
    names: [
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
    ],
    action: 'SCMP_ACT_ERRNO',
    errnoRet: EPERM,
  },
];

/** A profile with `rules` in place of every rule it has for the names they list, and moby's default errno. */
export function overrideProfile(profile: Profile, rules: readonly ProfileRule[], defaultErrnoRet = EPERM): Profile {
  const replaced = new Set(rules.flatMap((r) => r.names ?? (r.name ? [r.name] : [])));
  const kept: ProfileRule[] = [];
  for (const r of profile.syscalls ?? []) {
    const names = (r.names ?? (r.name ? [r.name] : [])).filter((n) => !replaced.has(n));
    if (names.length) kept.push({ ...r, name: undefined, names });
  }
  return { ...profile, defaultErrnoRet, syscalls: [...kept, ...rules] };
}

/**
 * Drops the unconditional rules that only repeat the default action: each
 * costs a comparison in the filter runc compiles at every container start.
 */
export function pruneDefaultRules(sc: Seccomp): Seccomp {
  const isDefault = (r: SeccompSyscall) => !r.args?.length && r.action === sc.defaultAction && (r.errnoRet ?? sc.defaultErrnoRet) === sc.defaultErrnoRet;
  return { ...sc, syscalls: (sc.syscalls ?? []).filter((r) => !isDefault(r)) };
}

/** The filter keel gives a container with these caps: moby's default profile, from the installed one plus KEEL_RULES. */
export function defaultSeccomp(caps: readonly string[], profilePath = DEFAULT_PROFILE_PATH, arch = process.arch): Seccomp {
  const loaded = loadProfile(profilePath);
  let merged = overridden.get(loaded);
  if (!merged) overridden.set(loaded, (merged = overrideProfile(loaded, KEEL_RULES)));
  return pruneDefaultRules(resolveProfile(merged, { caps, arch }));
}

const overridden = new WeakMap<Profile, Profile>();
