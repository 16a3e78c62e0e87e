import fsp from 'node:fs/promises';
import { conflict, invalid, EngineError } from '../common/errors.ts';
import { readJsonIfExists, writeJsonAtomic } from '../common/fs.ts';
import { type Cidr, contains, formatCidr, formatIp, lastAddr, overlaps, parseCidr, parseIp, size } from './addr.ts';

/** The address plan of one network, validated. */
export interface SubnetPlan {
  subnet: Cidr;
  gateway: number;
  /** Addresses are handed out from here (the subnet unless --ip-range). */
  range: Cidr;
}

/**
 * Validates --subnet/--gateway/--ip-range the way docker does: the gateway and
 * range lie inside the subnet, and the subnet overlaps no other network.
 */
export function planSubnet(subnet: string, gateway: string, ipRange: string, others: string[]): SubnetPlan {
  const sn = parseCidr(subnet, 'CIDR address');
  if (sn.prefix > 30) throw invalid(`subnet ${subnet} is too small: use a prefix of /30 or shorter`);
  for (const o of others) {
    if (o && overlaps(sn, parseCidr(o, 'CIDR address', false))) {
      throw new EngineError('CONFLICT', `Pool overlaps with other one on this address space`);
    }
  }
  const range = ipRange ? parseCidr(ipRange, 'ip-range') : sn;
  if (ipRange && (!contains(sn, range.base) || !contains(sn, lastAddr(range)))) {
    throw invalid(`ip-range ${ipRange} is not inside subnet ${subnet}`);
  }
  const gw = gateway ? parseIp(gateway) : sn.base + 1;
  if (!contains(sn, gw) || gw === sn.base || gw === lastAddr(sn)) {
    throw invalid(`gateway ${formatIp(gw)} is not a usable address of subnet ${subnet}`);
  }
  return { subnet: sn, gateway: gw, range };
}

/**
 * Picks a free subnet for a network created without --subnet: the first
 * /`prefix` block of `pool` that overlaps no keel network and no host route.
 */
export function pickSubnet(pool: string, prefix: number, taken: string[], hostRoutes: Cidr[]): string {
  const p = parseCidr(pool, 'address pool');
  const used = [...taken.filter(Boolean).map((t) => parseCidr(t, 'CIDR address', false)), ...hostRoutes];
  const step = 2 ** (32 - prefix);
  for (let base = p.base; base + step - 1 <= lastAddr(p); base += step) {
    const c = { base, prefix };
    if (!used.some((u) => overlaps(c, u))) return formatCidr(c);
  }
  throw new EngineError(
    'UNAVAILABLE',
    `could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network (pool ${pool})`,
  );
}

/** Host routes (except the default route) from /proc/net/route, so auto subnets avoid them. */
export async function hostRoutes(): Promise<Cidr[]> {
  let text = '';
  try {
    text = await fsp.readFile('/proc/net/route', 'utf8');
  } catch {
    return [];
  }
  const out: Cidr[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    // Fields are little-endian hex.
    const dst = Buffer.from(f[1]!, 'hex').readUInt32LE(0);
    const mask = Buffer.from(f[7]!, 'hex').readUInt32LE(0);
    const prefix = mask.toString(2).replace(/0/g, '').length;
    if (prefix === 0) continue;
    const be = (((dst & 255) << 24) | (((dst >>> 8) & 255) << 16) | (((dst >>> 16) & 255) << 8) | (dst >>> 24)) >>> 0;
    out.push({ base: be, prefix });
  }
  return out;
}

interface LeaseFile {
  version: 1;
  /** networkId → ip → owner (container id). */
  leases: Record<string, Record<string, string>>;
  /** networkId → last address handed out; allocation continues after it so addresses are not reused at once. */
  last: Record<string, string>;
}

export interface Lease {
  network: string;
  ip: string;
  owner: string;
}

/**
 * Address leases, one JSON file written atomically after every change, so a
 * crash never loses or duplicates a lease. One owner holds at most one
 * address per network. Callers serialize mutations (NetworkManager's mutex).
 */
export class Ipam {
  readonly file: string;
  private state: LeaseFile = { version: 1, leases: {}, last: {} };
  /** Owners whose leases stay out of the file (the spare sandbox: after a crash nothing of it should be found). */
  private readonly unsaved = new Set<string>();

  constructor(file: string) {
    this.file = file;
  }

  async load(): Promise<void> {
    const s = await readJsonIfExists<LeaseFile>(this.file);
    if (s && s.version === 1 && s.leases) this.state = { version: 1, leases: s.leases, last: s.last ?? {} };
  }

  /** Writes the leases now (after allocate(..., false)). */
  async save(): Promise<void> {
    if (!this.unsaved.size) return writeJsonAtomic(this.file, this.state);
    const leases = Object.fromEntries(
      Object.entries(this.state.leases).map(([net, l]) => [net, Object.fromEntries(Object.entries(l).filter(([, o]) => !this.unsaved.has(o)))]),
    );
    await writeJsonAtomic(this.file, { ...this.state, leases });
  }

  /** Keeps `owner`'s leases in memory only, until they are transferred or released. */
  keepUnsaved(owner: string): void {
    this.unsaved.add(owner);
  }

  /** Reserves an address for `owner`: `requested` exactly, or the next free one after the last handed out. */
  async allocate(network: string, plan: SubnetPlan, owner: string, requested?: string, persist = true): Promise<string> {
    const leases = (this.state.leases[network] ??= {});
    const mine = Object.entries(leases).find(([, o]) => o === owner);
    if (mine && (!requested || mine[0] === requested)) return mine[0];
    const free = (ip: number) => ip !== plan.subnet.base && ip !== lastAddr(plan.subnet) && ip !== plan.gateway && !(formatIp(ip) in leases);
    let ip: number | undefined;
    if (requested) {
      const r = parseIp(requested);
      if (!contains(plan.subnet, r)) throw invalid(`no configured subnet or ip-range contain the IP address ${requested}`);
      if (!free(r)) throw conflict(`Address already in use`);
      ip = r;
    } else {
      const n = size(plan.range);
      const last = this.state.last[network];
      const start = last && contains(plan.range, parseIp(last)) ? parseIp(last) - plan.range.base + 1 : 0;
      for (let i = 0; i < n; i++) {
        const cand = plan.range.base + ((start + i) % n);
        if (free(cand)) {
          ip = cand;
          break;
        }
      }
      if (ip === undefined) throw new EngineError('UNAVAILABLE', `no available IPv4 addresses on network ${network.slice(0, 12)} (${formatCidr(plan.range)})`);
      this.state.last[network] = formatIp(ip);
    }
    if (mine) delete leases[mine[0]];
    leases[formatIp(ip)] = owner;
    if (persist) await this.save();
    return formatIp(ip);
  }

  async release(network: string, owner: string): Promise<void> {
    const leases = this.state.leases[network];
    if (!leases) return;
    let changed = false;
    for (const [ip, o] of Object.entries(leases)) if (o === owner) (delete leases[ip], (changed = true));
    if (changed) await this.save();
  }

  /** Hands `from`'s lease of `ip` to `to` (in memory: the caller saves). */
  transfer(network: string, ip: string, from: string, to: string): void {
    const leases = this.state.leases[network];
    if (leases?.[ip] !== from) throw new EngineError('INTERNAL', `address ${ip} is not leased to ${from.slice(0, 12)}`);
    leases[ip] = to;
    this.unsaved.delete(from);
  }

  /** Frees the owner's leases on the given networks with one write. */
  async releaseOwner(owner: string, networks: string[]): Promise<void> {
    this.unsaved.delete(owner);
    let changed = false;
    for (const net of networks) {
      const leases = this.state.leases[net] ?? {};
      for (const [ip, o] of Object.entries(leases)) if (o === owner) (delete leases[ip], (changed = true));
    }
    if (changed) await this.save();
  }

  /** Frees every lease whose owner is not in `live`; returns how many were freed. */
  async reconcile(live: Set<string>): Promise<number> {
    let n = 0;
    for (const leases of Object.values(this.state.leases)) {
      for (const [ip, o] of Object.entries(leases)) if (!live.has(o)) (delete leases[ip], n++);
    }
    if (n) await this.save();
    return n;
  }

  async dropNetwork(network: string): Promise<void> {
    delete this.state.leases[network];
    delete this.state.last[network];
    await this.save();
  }

  list(network?: string): Lease[] {
    const out: Lease[] = [];
    for (const [net, leases] of Object.entries(this.state.leases)) {
      if (network && net !== network) continue;
      for (const [ip, owner] of Object.entries(leases)) out.push({ network: net, ip, owner });
    }
    return out;
  }
}
