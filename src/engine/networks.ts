import { EngineError } from '../common/errors.ts';
import type { CreateNetworkOptions, EndpointOptions, EndpointRecord, NetworkFilters, NetworkManager, NetworkRecord } from '../network/index.ts';
import type { EventBus } from './events.ts';

/**
 * What network connect/disconnect need from the containers layer. A running
 * container is changed at once (NetworkManager.connect/disconnect); a created
 * or stopped one only has its record changed, and the network is attached
 * when it starts.
 */
export interface ContainerNetworks {
  /** Resolves a container reference; throws NOT_FOUND "No such container: <ref>". */
  find(ref: string): { id: string; name: string };
  /** Adds the network (by name) with its aliases/ip to the container. */
  connect(id: string, ep: EndpointOptions): Promise<void>;
  disconnect(id: string, network: string, force: boolean): Promise<void>;
}

/** The engine's network operations (Engine delegates to this); each publishes its event. */
export class EngineNetworks {
  private readonly networks: NetworkManager;
  private readonly events: EventBus;
  private readonly containerNetworking: () => ContainerNetworks | undefined;

  constructor(o: { networks: NetworkManager; events: EventBus; containers: () => ContainerNetworks | undefined }) {
    this.networks = o.networks;
    this.events = o.events;
    this.containerNetworking = o.containers;
  }

  async createNetwork(o: CreateNetworkOptions): Promise<{ Id: string; Warning: string }> {
    const out = await this.networks.createNetwork(o);
    this.events.publish('network', 'create', out.Id, { name: o.Name, type: o.Driver || 'bridge' });
    return out;
  }

  async removeNetwork(ref: string): Promise<void> {
    const n = this.networks.store.get(ref);
    await this.networks.removeNetwork(n.Id);
    this.events.publish('network', 'destroy', n.Id, { name: n.Name, type: n.Driver });
  }

  listNetworks(filters: NetworkFilters = {}): NetworkRecord[] {
    return this.networks.listNetworks(filters);
  }

  inspectNetwork(ref: string): { network: NetworkRecord; endpoints: EndpointRecord[] } {
    return this.networks.inspect(ref);
  }

  /** `network prune`: user networks without endpoints; returns their names. */
  async pruneNetworks(filters: NetworkFilters = {}): Promise<string[]> {
    const before = new Map(this.networks.store.list().map((n) => [n.Name, n]));
    const gone = await this.networks.prune(filters);
    for (const name of gone) this.events.publish('network', 'destroy', before.get(name)?.Id ?? name, { name, type: 'bridge' });
    this.events.publish('network', 'prune', '', { reclaimed: '0' });
    return gone;
  }

  /**
   * `network connect`: a running container gets the endpoint now; a created
   * one keeps it in its record and gets it at start (docker-compose v1 does
   * disconnect + connect between create and start).
   */
  async connectNetwork(netRef: string, containerRef: string, ep: Omit<EndpointOptions, 'network'>): Promise<void> {
    const n = this.networks.store.get(netRef);
    const c = this.containers().find(containerRef);
    await this.containers().connect(c.id, { ...ep, network: n.Name });
    this.events.publish('network', 'connect', n.Id, { container: c.id, name: n.Name, type: n.Driver });
  }

  async disconnectNetwork(netRef: string, containerRef: string, force = false): Promise<void> {
    const n = this.networks.store.get(netRef);
    const c = this.containers().find(containerRef);
    await this.containers().disconnect(c.id, n.Name, force);
    this.events.publish('network', 'disconnect', n.Id, { container: c.id, name: n.Name, type: n.Driver });
  }

  private containers(): ContainerNetworks {
    const c = this.containerNetworking();
    if (!c) throw new EngineError('UNAVAILABLE', 'containers are not available in this engine');
    return c;
  }
}
