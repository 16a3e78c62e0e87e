/**
 * Network mode container:<name|id> (`docker run --network container:web`):
 * the container's processes join the network namespace of another, running
 * container and use its /etc/hosts, /etc/resolv.conf and /etc/hostname (the
 * same files, bind-mounted, not copies), as dockerd does. It gets no
 * sandbox, endpoint, address or rule of its own: the network stays the other
 * container's, which alone sets it up and tears it down.
 */
import fs from 'node:fs';
import path from 'node:path';
import { conflict, invalid } from '../common/errors.ts';
import type { NamespaceMode } from '../runtime/index.ts';
import { joinedContainer } from './network.ts';
import type { ContainerStore } from './store.ts';
import { type ContainerRecord, isRunning } from './types.ts';

/** The files a container's network brings, bind-mounted over /etc. */
export interface NetworkFiles {
  hosts: string;
  hostname: string;
  resolv: string;
}

export function networkFiles(dir: string): NetworkFiles {
  return { hosts: path.join(dir, 'hosts'), hostname: path.join(dir, 'hostname'), resolv: path.join(dir, 'resolv.conf') };
}

/** What a run gets from its network: the namespace to enter and the files to mount. */
export interface RunNetwork {
  namespace: NamespaceMode;
  /** The files that still exist (a joined container's owner may be gone). */
  files: Partial<NetworkFiles>;
}

/**
 * Joins the network of the container that `rec`'s mode names, for the run
 * about to start, with dockerd's errors: 404 when it does not exist, 409
 * when it is not running. Like dockerd it copies that container's hostname
 * and domain name into rec's config, and records whose network it uses.
 */
export function joinNetwork(store: ContainerStore, rec: ContainerRecord): RunNetwork {
  const ref = joinedContainer(rec.hostConfig.NetworkMode) ?? '';
  const target = store.find(ref);
  if (target.id === rec.id) throw invalid('cannot join own network');
  if (target.state.Status === 'restarting') throw conflict(`Container ${ref} is restarting, wait until the container is running`);
  if (!isRunning(target) || !target.state.Pid) throw conflict(`cannot join network of a non running container: ${ref}`);
  // Through a chain (c joins b, which joined a) the network and its files are a's.
  const via = joinedContainer(target.hostConfig.NetworkMode) !== undefined && target.networkOwner ? store.get(target.networkOwner) : undefined;
  const owner = via ?? target;
  rec.networkOwner = owner.id;
  rec.config.Hostname = target.config.Hostname;
  rec.config.Domainname = target.config.Domainname;
  // dockerd skips a file that is gone: its owner was removed while others kept the namespace.
  const files = Object.fromEntries(Object.entries(networkFiles(store.containerDir(owner.id))).filter(([, f]) => fs.existsSync(f)));
  // The target's process holds its namespace whatever made it (bridge, none, a chain). The host's stays
  // 'host' so that, as in the target, the hostname is left alone.
  const namespace: NamespaceMode = owner.hostConfig.NetworkMode === 'host' ? 'host' : { path: `/proc/${target.state.Pid}/ns/net` };
  return { namespace, files };
}

/** Whether running containers use `id`'s network namespace (they joined it with network mode container:). */
export function hasJoiners(store: ContainerStore, id: string): boolean {
  return store.list().some((r) => r.id !== id && r.networkOwner === id && isRunning(r));
}
