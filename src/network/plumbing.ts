import { exists } from '../common/fs.ts';
import { linkExists, vethHostBatch, vethInsideBatch, type VethPlan } from './bridge.ts';
import { createNetns, ipBatch, ipInNetns, removeNetns } from './netns.ts';
import type { EndpointRecord, SandboxRecord } from './types.ts';

/**
 * Kernel side of a sandbox: netns + veths. Creating a sandbox with one
 * endpoint costs two processes (unshare→ip inside, ip on the host);
 * tearing down keel's own netns costs one (umount of its pin; the kernel
 * then removes the veths), a shared one also an `ip link del`.
 */

export interface EndpointPlumbing {
  ep: EndpointRecord;
  bridge: string;
  defaultRoute: boolean;
  mtu: number;
}

function plan(p: EndpointPlumbing): VethPlan {
  return {
    hostIf: p.ep.HostIfName,
    ifName: p.ep.IfName,
    mac: p.ep.MacAddress,
    cidr: `${p.ep.IPAddress}/${p.ep.IPPrefixLen}`,
    gateway: p.ep.Gateway,
    defaultRoute: p.defaultRoute,
    mtu: p.mtu,
  };
}

/** Sets up the netns (created when sb.OwnNetns) with lo up and the given endpoints. */
export async function plumbSandbox(sb: SandboxRecord, eps: EndpointPlumbing[]): Promise<void> {
  const inside = eps.flatMap((p, i) => vethInsideBatch(plan(p), process.pid, i === 0));
  if (sb.OwnNetns) await createNetns(sb.NetnsPath, inside.length ? inside : ['link set lo up']);
  else await ipInNetns(sb.NetnsPath, inside.length ? inside : ['link set lo up']);
  try {
    await ipBatch(eps.flatMap((p) => vethHostBatch(p.ep.HostIfName, p.bridge)));
  } catch (e) {
    await unplumb(
      sb,
      eps.map((p) => p.ep),
    ).catch(() => {}); // undoing a failed plumb: its own error is the one to report
    throw e;
  }
}

/** Adds one endpoint to an existing netns (network connect). */
export async function plumbEndpoint(netns: string, p: EndpointPlumbing): Promise<void> {
  await ipInNetns(netns, vethInsideBatch(plan(p), process.pid, false));
  try {
    await ipBatch(vethHostBatch(p.ep.HostIfName, p.bridge));
  } catch (e) {
    await deleteLinks([p.ep.HostIfName]).catch(() => {}); // undoing a failed plumb: its own error is the one to report
    throw e;
  }
}

export async function deleteLinks(hostIfs: string[]): Promise<void> {
  const present: string[] = [];
  for (const h of hostIfs) if (await linkExists(h)) present.push(h);
  // Deleting one end of a veth deletes both, so the netns is left with lo only.
  await ipBatch(
    present.map((h) => `link del ${h}`),
    true,
  );
}

/**
 * Removes the veths and, when keel created it, the netns. Idempotent.
 * For keel's own netns only the pin is removed: once the container's
 * processes are gone the kernel destroys the namespace and both ends of
 * every veth in it. `ip link del` of a veth measured ~20 ms here (it waits
 * for an RCU grace period); the unmount ~3 ms. A `shared` netns still has
 * other processes in it, so it lives on: its veths must go explicitly, or
 * they would keep a released address on the bridge and block the host-side
 * name the container's next start needs.
 */
export async function unplumb(sb: SandboxRecord, eps: EndpointRecord[], shared = false): Promise<void> {
  if (sb.OwnNetns && sb.NetnsPath) {
    if (shared) await deleteLinks(eps.map((e) => e.HostIfName));
    return removeNetns(sb.NetnsPath);
  }
  // A netns given as /proc/<pid>/ns/net dies with its process, veths and all:
  // once the process is gone there is nothing left to delete.
  if (sb.NetnsPath.startsWith('/proc/') && !(await exists(sb.NetnsPath))) return;
  await deleteLinks(eps.map((e) => e.HostIfName));
}
