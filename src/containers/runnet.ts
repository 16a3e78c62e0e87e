import fsp from 'node:fs/promises';
import { BasicNetworking, type ContainerNetworking, hostsContent, type LiveNetworkSettings, type NetworkEndpoint, resolvContent } from './network.ts';
import { hasJoiners, joinNetwork, networkFiles, type RunNetwork } from './netshare.ts';
import type { ContainerStore } from './store.ts';
import type { ContainerRecord } from './types.ts';
import { joinedContainer } from './network.ts';

/**
 * The network of each run: attached before the process starts (its own, or
 * the one of the container it joins), released after it stopped, and the
 * network settings of the current run for inspect.
 */
export class RunNetworks {
  private readonly networking: ContainerNetworking;
  private readonly store: ContainerStore;
  /** Network settings of the current run, by container ID. */
  private readonly current = new Map<string, Record<string, NetworkEndpoint>>();

  constructor(store: ContainerStore, networking?: ContainerNetworking) {
    this.store = store;
    this.networking = new BasicNetworking(networking);
  }

  /** The run's namespace and the hosts/hostname/resolv.conf files that go with it. */
  attach(rec: ContainerRecord): Promise<RunNetwork> {
    return joinedContainer(rec.hostConfig.NetworkMode) !== undefined ? Promise.resolve(joinNetwork(this.store, rec)) : this.attachOwn(rec);
  }

  private async attachOwn(rec: ContainerRecord): Promise<RunNetwork> {
    const att = await this.networking.attach(rec);
    this.current.set(rec.id, att.networks);
    const files = networkFiles(this.store.containerDir(rec.id));
    await Promise.all([
      fsp.writeFile(files.hosts, hostsContent(rec, att), { mode: 0o644 }),
      fsp.writeFile(files.hostname, `${rec.config.Hostname}\n`, { mode: 0o644 }),
      fsp.writeFile(files.resolv, resolvContent(rec, att), { mode: 0o644 }),
    ]);
    return { namespace: att.namespace, files };
  }

  /** Releases a run's network. Containers that joined its namespace outlive this run in it. */
  detach(rec: ContainerRecord): Promise<void> {
    return this.networking.detach(rec, { shared: hasJoiners(this.store, rec.id) });
  }

  /** The networks of the current run (network connect/disconnect change them). */
  get(id: string): Record<string, NetworkEndpoint> | undefined {
    return this.current.get(id);
  }

  set(id: string, nets: Record<string, NetworkEndpoint>): void {
    this.current.set(id, nets);
  }

  forget(id: string): void {
    this.current.delete(id);
  }

  /** What the network layer holds for a running container. */
  settings(rec: ContainerRecord): LiveNetworkSettings | undefined {
    return this.networking.settings?.(rec);
  }
}
