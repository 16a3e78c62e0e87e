import path from 'node:path';
import { emptyEndpoint, joinedContainer, type LiveNetworkSettings, type NetworkEndpoint, networkName } from './network.ts';
import type { ContainerParts } from './parts.ts';
import { type ContainerRecord, type ContainerStatus, isRunning } from './types.ts';

type Viewed = Pick<ContainerParts, 'store' | 'nets' | 'images' | 'restarts' | 'rootfs'>;

/**
 * What inspect and ps show of a container beyond its record: the live
 * network view and the paths of its files. Plain data, so front ends
 * encode it without reaching into the service.
 */
export interface ContainerView {
  record: ContainerRecord;
  /** Its networks (network name → endpoint). */
  networks: Record<string, NetworkEndpoint>;
  /** Published ports while it runs. */
  ports?: LiveNetworkSettings['ports'];
  /** The network namespace path while it runs. */
  sandboxKey?: string;
  /** Restarting, or its restart by policy is scheduled. */
  restarting: boolean;
  /** Its status as docker shows it: "restarting" from an exit until the policy's restart runs it. */
  status: ContainerStatus;
  /** The folder of its hosts, hostname and resolv.conf (the network owner's for a container on another's network). */
  filesDir: string;
  logPath: string;
  upperDir: string;
  workDir: string;
  rootfs: string;
}

function networksOf(svc: Viewed, r: ContainerRecord, live: LiveNetworkSettings | undefined): Record<string, NetworkEndpoint> {
  if (joinedContainer(r.hostConfig.NetworkMode) !== undefined) return {}; // another container's network: none of its own (as docker)
  if (live) return live.networks; // the network layer's view is the truth while it runs, even with no network left
  const current = svc.nets.get(r.id);
  if (current && Object.keys(current).length) return current;
  if (r.endpoints && Object.keys(r.endpoints).length)
    return Object.fromEntries(Object.keys(r.endpoints).map((n) => [n, emptyEndpoint(r.endpoints![n]!.Aliases ?? null)]));
  return { [networkName(r)]: emptyEndpoint() };
}

/** A container's status as docker shows it: "restarting" from an exit until the policy's restart runs it. */
export function shownStatus(svc: Pick<ContainerParts, 'restarts'>, r: ContainerRecord): ContainerStatus {
  return r.state.Status === 'exited' && svc.restarts.isPending(r.id) ? 'restarting' : r.state.Status;
}

export function containerView(svc: Viewed, r: ContainerRecord): ContainerView {
  const live = isRunning(r) ? svc.nets.settings(r) : undefined;
  const upperDir = svc.images.snapshots.upperDir(r.id);
  const status = shownStatus(svc, r);
  return {
    record: r,
    networks: networksOf(svc, r, live),
    ports: live?.ports,
    sandboxKey: live?.sandboxKey,
    restarting: r.state.Status === 'restarting' || svc.restarts.isPending(r.id),
    status,
    filesDir: svc.store.containerDir(r.networkOwner ?? r.id),
    logPath: svc.store.logPath(r.id),
    upperDir,
    workDir: path.join(path.dirname(upperDir), 'work'),
    rootfs: svc.rootfs.path(r.id),
  };
}
