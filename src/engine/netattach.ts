import { EngineError, invalid } from '../common/errors.ts';
import { type ContainerNetworking, emptyEndpoint, joinedContainer, type LiveNetworkSettings, type NetworkAttachment } from '../containers/network.ts';
import type { ContainerParts } from '../containers/parts.ts';
import { type ContainerRecord, type EndpointConfig, isRunning } from '../containers/types.ts';
import type { EndpointOptions, NetworkManager, PortBindings } from '../network/index.ts';
import type { ContainerNetworks } from './engine.ts';

/**
 * The glue between containers/ and network/: how a container's record turns
 * into network endpoints at start (ContainerNetworking, injected into the
 * container service) and how network connect/disconnect change a container
 * (ContainerNetworks, used by the engine). host and none are handled by
 * containers/ itself (BasicNetworking); this is the bridge-network part.
 */

/** The record's networks in join order: NetworkMode's network first (it gets eth0, the default route and the ports). */
export function joinList(rec: ContainerRecord): Array<[string, EndpointConfig]> {
  const mode = rec.hostConfig.NetworkMode === 'default' ? 'bridge' : rec.hostConfig.NetworkMode;
  const eps = rec.endpoints ?? { [mode]: {} };
  return Object.entries(eps).sort(([a], [b]) => (a === mode ? -1 : b === mode ? 1 : 0));
}

function endpointOptions(network: string, c: EndpointConfig): EndpointOptions {
  return { network, aliases: c.Aliases ?? undefined, ip: c.IPAMConfig?.IPv4Address || undefined, mac: c.MacAddress || undefined };
}

/** Publishes a network event (connect/disconnect) with docker's attributes. */
export type NetworkEventSink = (action: 'connect' | 'disconnect', networkId: string, attrs: Record<string, string>) => void;

export class BridgeNetworking implements ContainerNetworking {
  private readonly nm: NetworkManager;
  private readonly onEvent: NetworkEventSink;

  /** onEvent: dockerd reports a network connect per network when a container starts, a disconnect when it stops. */
  constructor(nm: NetworkManager, onEvent: NetworkEventSink = () => {}) {
    this.nm = nm;
    this.onEvent = onEvent;
  }

  async attach(rec: ContainerRecord): Promise<NetworkAttachment> {
    const mode = rec.hostConfig.NetworkMode;
    if (mode === 'host') return { namespace: 'host', networks: { host: emptyEndpoint() } };
    if (mode === 'none') return { namespace: 'private', networks: { none: emptyEndpoint() } };
    const join = joinList(rec);
    const hc = rec.hostConfig;
    const sb = await this.nm.attach(rec.id, {
      containerName: rec.name,
      // Disconnected from every network: lo only, as docker, and `network connect` can still add one.
      mode: 'bridge',
      networks: join.map(([n, c]) => endpointOptions(n, c)),
      hostname: rec.config.Hostname,
      portBindings: (hc.PortBindings as PortBindings | null | undefined) ?? undefined,
      publishAll: !!hc.PublishAllPorts,
      exposedPorts: Object.keys(rec.config.ExposedPorts ?? {}),
      dns: hc.Dns ?? [],
      dnsSearch: hc.DnsSearch ?? [],
      dnsOptions: hc.DnsOptions ?? [],
      extraHosts: hc.ExtraHosts ?? [],
    });
    for (const e of Object.values(sb.Endpoints)) this.onEvent('connect', e.NetworkId, { container: rec.id, name: e.NetworkName, type: 'bridge' });
    return attachment(sb);
  }

  async detach(rec: ContainerRecord, o: { shared?: boolean } = {}): Promise<void> {
    if (rec.hostConfig.NetworkMode === 'host' || rec.hostConfig.NetworkMode === 'none') return;
    const eps = Object.values(this.nm.sandbox(rec.id)?.Endpoints ?? {});
    await this.nm.detach(rec.id, o);
    for (const e of eps) this.onEvent('disconnect', e.NetworkId, { container: rec.id, name: e.NetworkName, type: 'bridge' });
  }

  settings(rec: ContainerRecord): LiveNetworkSettings | undefined {
    const sb = this.nm.sandbox(rec.id);
    if (!sb) return undefined;
    return {
      networks: Object.fromEntries(Object.values(sb.Endpoints).map((e) => [e.NetworkName, { endpoint: e }])),
      ports: sb.Ports,
      sandboxKey: sb.NetnsPath,
    };
  }
}

function attachment(sb: NonNullable<ReturnType<NetworkManager['sandbox']>>): NetworkAttachment {
  const eps = Object.values(sb.Endpoints);
  const first = eps[0];
  return {
    namespace: { path: sb.NetnsPath },
    networks: Object.fromEntries(eps.map((e) => [e.NetworkName, { endpoint: e }])),
    ip: first?.IPAddress,
    // User networks resolve container names through the embedded DNS on their gateway.
    nameservers: first && first.NetworkName !== 'bridge' ? [first.Gateway] : undefined,
  };
}

/**
 * network connect/disconnect on a container: a running one gets or loses the
 * endpoint now; any container has its record changed, so the next start
 * joins the same networks (docker-compose v1 connects created containers).
 */
export class EngineContainerNetworks implements ContainerNetworks {
  private readonly nm: NetworkManager;
  private readonly containers: Pick<ContainerParts, 'store' | 'mutex' | 'nets'>;

  constructor(nm: NetworkManager, containers: Pick<ContainerParts, 'store' | 'mutex' | 'nets'>) {
    this.nm = nm;
    this.containers = containers;
  }

  find(ref: string): { id: string; name: string } {
    const rec = this.containers.store.find(ref);
    return { id: rec.id, name: rec.name };
  }

  async connect(id: string, ep: EndpointOptions): Promise<void> {
    await this.containers.mutex.run(id, async () => {
      const rec = this.record(id);
      const mode = rec.hostConfig.NetworkMode;
      // dockerd's messages (runconfig.ErrConflictSharedNetwork, ErrConflictHostNetwork, ErrConflictNoNetwork).
      if (joinedContainer(mode) !== undefined)
        throw new EngineError('FORBIDDEN', 'container sharing network namespace with another container or host cannot be connected to any other network');
      const n = this.nm.store.get(ep.network);
      if (mode === 'host' || n.Driver === 'host')
        throw new EngineError('FORBIDDEN', 'container cannot be disconnected from host network or connected to host network');
      if (mode === 'none' || n.Driver === 'null')
        throw new EngineError('FORBIDDEN', 'container cannot be connected to multiple networks with one of the networks in private (none) mode');
      const eps = { ...(rec.endpoints ?? Object.fromEntries(joinList(rec))) };
      if (eps[n.Name]) throw new EngineError('FORBIDDEN', `endpoint with name ${rec.name} already exists in network ${n.Name}`);
      if (n.Name === 'bridge' && (ep.ip || ep.aliases?.length)) {
        throw invalid(
          ep.ip
            ? 'user specified IP address is supported on user defined networks only'
            : 'network-scoped alias is supported only for containers in user defined networks',
        );
      }
      const cfg: EndpointConfig = {
        ...(ep.aliases?.length ? { Aliases: [...ep.aliases] } : {}),
        ...(ep.ip ? { IPAMConfig: { IPv4Address: ep.ip } } : {}),
        ...(ep.mac ? { MacAddress: ep.mac } : {}),
      };
      if (isRunning(rec)) {
        const e = await this.nm.connect(id, { ...ep, network: n.Id });
        this.containers.nets.set(id, { ...(this.containers.nets.get(id) ?? {}), [n.Name]: { endpoint: e } });
      }
      rec.endpoints = { ...eps, [n.Name]: cfg };
      await this.containers.store.save(rec);
    });
  }

  async disconnect(id: string, network: string, force: boolean): Promise<void> {
    await this.containers.mutex.run(id, async () => {
      const rec = this.record(id);
      const n = this.nm.store.get(network);
      const eps = { ...(rec.endpoints ?? Object.fromEntries(joinList(rec))) };
      if (!eps[n.Name] && !force) throw new EngineError('FORBIDDEN', `container ${id} is not connected to network ${n.Name}`);
      if (isRunning(rec) && this.nm.sandbox(id)?.Endpoints[n.Id]) {
        await this.nm.disconnect(id, n.Id);
        const nets = { ...(this.containers.nets.get(id) ?? {}) };
        delete nets[n.Name];
        this.containers.nets.set(id, nets);
      }
      delete eps[n.Name];
      rec.endpoints = eps;
      await this.containers.store.save(rec);
    });
  }

  private record(id: string): ContainerRecord {
    const rec = this.containers.store.get(id);
    if (!rec) throw new EngineError('NOT_FOUND', `No such container: ${id}`);
    return rec;
  }
}
