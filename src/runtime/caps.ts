import fs from 'node:fs';
import { invalid } from '../common/errors.ts';

/** Linux capabilities by bit number (capability.h, up to 6.x kernels). */
export const ALL_CAPS: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER',
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
];

/** Docker's default set (moby oci/caps/defaults.go): CapEff 00000000a80425fb. */
export const DEFAULT_CAPS: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

/** `sys_admin`, `CAP_SYS_ADMIN`, `Sys_Admin` → `CAP_SYS_ADMIN`; `all` → `ALL`. */
export function normalizeCap(name: string): string {
  const up = name.trim().toUpperCase();
  if (up === 'ALL' || up === 'CAP_ALL') return 'ALL';
  const full = up.startsWith('CAP_') ? up : `CAP_${up}`;
  if (!ALL_CAPS.includes(full)) throw invalid(`unknown capability "${name}"`);
  return full;
}

let hostBounding: string[] | undefined;

/**
 * The capabilities this process may hand to a container: its own bounding
 * set. On some hosts (these VMs) CAP_SYS_RESOURCE is missing from it, and
 * asking runc for a cap outside it fails, so "privileged" means this set.
 */
export function hostBoundingSet(): string[] {
  if (hostBounding) return hostBounding;
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(status);
  hostBounding = m ? capsFromMask(BigInt('0x' + m[1])) : [...ALL_CAPS];
  return hostBounding;
}

export function capsFromMask(mask: bigint): string[] {
  return ALL_CAPS.filter((_, bit) => (mask >> BigInt(bit)) & 1n);
}

export function capsToMask(caps: readonly string[]): bigint {
  let m = 0n;
  for (const c of caps) {
    const bit = ALL_CAPS.indexOf(c);
    if (bit >= 0) m |= 1n << BigInt(bit);
  }
  return m;
}

/**
 * Docker's cap-add/cap-drop rules: ALL in add means every host cap minus the
 * drops; ALL in drop means only the adds; otherwise defaults − drops + adds.
 * Result is in bit order so specs are stable.
 */
export function resolveCaps(opts: { capAdd?: string[]; capDrop?: string[]; privileged?: boolean }, host = hostBoundingSet()): string[] {
  if (opts.privileged) return [...host];
  const adds = (opts.capAdd ?? []).map(normalizeCap);
  const drops = (opts.capDrop ?? []).map(normalizeCap);
  let caps: Set<string>;
  if (adds.includes('ALL')) {
    caps = new Set(host.filter((c) => !drops.includes(c)));
  } else {
    caps = new Set(drops.includes('ALL') ? [] : DEFAULT_CAPS.filter((c) => !drops.includes(c)));
    for (const c of adds) {
      if (!host.includes(c)) throw invalid(`capability ${c} cannot be added: this host does not have it in its bounding set`);
      caps.add(c);
    }
  }
  return ALL_CAPS.filter((c) => caps.has(c) && host.includes(c));
}
