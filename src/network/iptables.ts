import { exec } from '../common/exec.ts';

/**
 * keel's packet filter and NAT rules. They live only in keel's own chains
 * (<P>-FORWARD, <P>-ISOLATION{1,2}, <P>-INPUT, <P>-DNAT, <P>-POSTROUTING),
 * reached by one jump each from the built-in chains, inserted at the top so
 * a DROP policy (dockerd sets FORWARD to DROP) never sees keel's traffic.
 *
 * The chains are rendered from keel's state as a whole and loaded with one
 * `iptables-restore --noflush`: declaring a chain in the input flushes it, so
 * a render replaces exactly keel's rules atomically and never touches anyone
 * else's. That also makes recovery after a crash trivial (render again).
 */

export interface NetRule {
  bridge: string;
  subnet: string;
  gateway: string;
  internal: boolean;
  /** Embedded DNS listens on the gateway: let queries in even under a strict INPUT policy. */
  dns: boolean;
}

export interface PortRule {
  proto: string;
  hostIp: string;
  hostPort: number;
  containerIp: string;
  containerPort: number;
}

export interface Chains {
  forward: string;
  iso1: string;
  iso2: string;
  input: string;
  dnat: string;
  post: string;
}

export function chainNames(prefix: string): Chains {
  return {
    forward: `${prefix}-FORWARD`,
    iso1: `${prefix}-ISOLATION1`,
    iso2: `${prefix}-ISOLATION2`,
    input: `${prefix}-INPUT`,
    dnat: `${prefix}-DNAT`,
    post: `${prefix}-POSTROUTING`,
  };
}

/** The jumps from built-in chains, as `iptables -A` specs (table, chain, rest). */
export function jumps(c: Chains): Array<[table: string, chain: string, spec: string]> {
  return [
    ['filter', 'FORWARD', `-j ${c.forward}`],
    ['filter', 'INPUT', `-j ${c.input}`],
    ['nat', 'PREROUTING', `-m addrtype --dst-type LOCAL -j ${c.dnat}`],
    ['nat', 'OUTPUT', `-m addrtype --dst-type LOCAL -j ${c.dnat}`],
    ['nat', 'POSTROUTING', `-j ${c.post}`],
  ];
}

/** The full iptables-restore input for keel's chains, given the active networks and published ports. */
export function render(c: Chains, nets: NetRule[], ports: PortRule[], missingJumps: Array<[string, string, string]>): string {
  const filter = [`:${c.forward} - [0:0]`, `:${c.iso1} - [0:0]`, `:${c.iso2} - [0:0]`, `:${c.input} - [0:0]`];
  const nat = [`:${c.dnat} - [0:0]`, `:${c.post} - [0:0]`];
  filter.push(`-A ${c.forward} -j ${c.iso1}`);
  // Published ports are reachable from any network, as with docker's userland proxy.
  filter.push(`-A ${c.iso1} -m conntrack --ctstate DNAT -j RETURN`);
  for (const n of nets) {
    const b = n.bridge;
    if (n.internal) {
      filter.push(`-A ${c.iso1} -i ${b} ! -o ${b} -j DROP`, `-A ${c.iso1} -o ${b} ! -i ${b} -j DROP`);
    } else {
      filter.push(`-A ${c.iso1} -i ${b} ! -o ${b} -j ${c.iso2}`);
    }
    filter.push(`-A ${c.iso2} -o ${b} -j DROP`);
    filter.push(`-A ${c.forward} -o ${b} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`);
    if (!n.internal) filter.push(`-A ${c.forward} -o ${b} -m conntrack --ctstate DNAT -j ACCEPT`);
    filter.push(`-A ${c.forward} -i ${b} -o ${b} -j ACCEPT`);
    if (!n.internal) filter.push(`-A ${c.forward} -i ${b} ! -o ${b} -j ACCEPT`);
    if (n.dns) {
      for (const p of ['udp', 'tcp']) filter.push(`-A ${c.input} -i ${b} -d ${n.gateway}/32 -p ${p} -m ${p} --dport 53 -j ACCEPT`);
    }
    if (!n.internal) nat.push(`-A ${c.post} -s ${n.subnet} ! -o ${b} -j MASQUERADE`);
    // Published ports reached via 127.0.0.1 (needs route_localnet on the bridge).
    nat.push(`-A ${c.post} -s 127.0.0.0/8 -o ${b} -j MASQUERADE`);
    // Hairpin: a container reaching a published port of its own network must
    // see the reply come back through the host, not straight from the peer.
    nat.push(`-A ${c.post} -s ${n.subnet} -o ${b} -m conntrack --ctstate DNAT -j MASQUERADE`);
  }
  for (const p of ports) {
    const dst = p.hostIp && p.hostIp !== '0.0.0.0' ? `-d ${p.hostIp}/32 ` : '';
    nat.push(`-A ${c.dnat} ${dst}-p ${p.proto} -m ${p.proto} --dport ${p.hostPort} -j DNAT --to-destination ${p.containerIp}:${p.containerPort}`);
  }
  for (const [table, chain, spec] of missingJumps) (table === 'nat' ? nat : filter).push(`-I ${chain} 1 ${spec}`);
  return ['*filter', ...filter, 'COMMIT', '*nat', ...nat, 'COMMIT', ''].join('\n');
}

/** Which of keel's jumps are missing from the live ruleset (one iptables-save). */
export async function missingJumps(c: Chains): Promise<Array<[string, string, string]>> {
  const saved = (await exec(['iptables-save'], { timeoutMs: 20_000 })).stdout;
  const have = new Set<string>();
  let table = '';
  for (const line of saved.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1).trim();
    else if (line.startsWith('-A ')) have.add(`${table} ${line.trim()}`);
  }
  return jumps(c).filter(([t, ch, spec]) => !have.has(`${t} -A ${ch} ${spec}`));
}

export async function restore(text: string): Promise<void> {
  await exec(['iptables-restore', '-w', '--noflush'], { input: text, timeoutMs: 30_000 });
}

/** Removes keel's jumps and chains, and nothing else. */
export async function removeAll(c: Chains): Promise<void> {
  const saved = (await exec(['iptables-save'], { timeoutMs: 20_000 })).stdout;
  const present = new Set<string>();
  const have = new Set<string>();
  let table = '';
  for (const line of saved.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1).trim();
    else if (line.startsWith(':')) present.add(`${table} ${line.slice(1).split(' ')[0]}`);
    else if (line.startsWith('-A ')) have.add(`${table} ${line.trim()}`);
  }
  const out: Record<string, string[]> = { filter: [], nat: [] };
  for (const [t, ch, spec] of jumps(c)) if (have.has(`${t} -A ${ch} ${spec}`)) out[t]!.push(`-D ${ch} ${spec}`);
  const mine: Array<[string, string]> = [
    ['filter', c.forward],
    ['filter', c.iso1],
    ['filter', c.iso2],
    ['filter', c.input],
    ['nat', c.dnat],
    ['nat', c.post],
  ];
  for (const [t, ch] of mine) if (present.has(`${t} ${ch}`)) out[t]!.push(`:${ch} - [0:0]`);
  for (const [t, ch] of mine) if (present.has(`${t} ${ch}`)) out[t]!.push(`-X ${ch}`);
  const text = ['*filter', ...out.filter!, 'COMMIT', '*nat', ...out.nat!, 'COMMIT', ''].join('\n');
  if (out.filter!.length || out.nat!.length) await restore(text);
}
