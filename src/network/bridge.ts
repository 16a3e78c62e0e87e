import { createHash } from 'node:crypto';
import fsp from 'node:fs/promises';
import { exists } from '../common/fs.ts';
import { ipBatch } from './netns.ts';

/**
 * Linux bridge and veth plumbing, expressed as `ip -batch` lines so one
 * process does a whole step. Bridges are created lazily on first use.
 */

export function linkExists(name: string): Promise<boolean> {
  return exists(`/sys/class/net/${name}`);
}

/** Creates the bridge with the gateway address if it is missing; returns true if it created it. */
export async function ensureBridge(name: string, gatewayCidr: string, mtu: number): Promise<boolean> {
  if (await linkExists(name)) {
    await setSysctls(name);
    return false;
  }
  await ipBatch([`link add ${name} mtu ${mtu} type bridge`, `addr add ${gatewayCidr} dev ${name}`, `link set ${name} up`]);
  await setSysctls(name);
  return true;
}

async function setSysctls(bridge: string): Promise<void> {
  // route_localnet lets DNAT'd packets from 127.0.0.1 (published ports on
  // loopback) leave through the bridge; POSTROUTING masquerades them.
  await writeSysctl(`/proc/sys/net/ipv4/conf/${bridge}/route_localnet`, '1');
}

export async function writeSysctl(file: string, value: string): Promise<void> {
  const cur = await fsp.readFile(file, 'utf8').catch(() => '');
  if (cur.trim() !== value) await fsp.writeFile(file, value);
}

export async function removeBridge(name: string): Promise<void> {
  if (await linkExists(name)) await ipBatch([`link del ${name}`], true);
}

/**
 * Host-side veth name for (container, network): deterministic, so teardown
 * after a crash finds it without any state, and ≤ 15 chars (IFNAMSIZ).
 */
export function hostIfName(prefix: string, containerId: string, networkId: string): string {
  const h = createHash('sha256').update(`${containerId}/${networkId}`).digest('hex');
  return `${prefix}${h}`.slice(0, 15);
}

export interface VethPlan {
  hostIf: string;
  ifName: string;
  mac: string;
  cidr: string;
  gateway: string;
  defaultRoute: boolean;
  mtu: number;
}

/**
 * Lines run inside the container netns: create the veth there (so its eth
 * end never appears on the host), push the peer to the daemon's netns by pid,
 * address it and route.
 */
export function vethInsideBatch(v: VethPlan, hostPid: number, loUp: boolean): string[] {
  const b: string[] = [];
  if (loUp) b.push('link set lo up');
  b.push(`link add ${v.ifName} mtu ${v.mtu} address ${v.mac} type veth peer name ${v.hostIf} mtu ${v.mtu} netns ${hostPid}`);
  b.push(`addr add ${v.cidr} dev ${v.ifName}`);
  b.push(`link set ${v.ifName} up`);
  if (v.defaultRoute) b.push(`route add default via ${v.gateway} dev ${v.ifName}`);
  return b;
}

/** Lines run on the host: enslave the peer to the bridge, hairpin on (a container may reach itself through a published port). */
export function vethHostBatch(hostIf: string, bridge: string): string[] {
  return [`link set ${hostIf} master ${bridge}`, `link set ${hostIf} type bridge_slave hairpin on`, `link set ${hostIf} up`];
}
