import path from 'node:path';
import { EngineError, invalid } from '../common/errors.ts';
import { newId } from '../common/ids.ts';
import type { KeyedMutex } from '../common/lock.ts';
import { log } from '../common/log.ts';
import { macForIp, parseIp, parseMac } from './addr.ts';
import { hostIfName } from './bridge.ts';
import { type Ipam, planSubnet } from './ipam.ts';
import { removeNetns } from './netns.ts';
import { deleteLinks, plumbEndpoint, plumbSandbox, unplumb, type EndpointPlumbing } from './plumbing.ts';
import { type PortAllocator, portRequests } from './ports.ts';
import { SpareSandbox } from './spare.ts';
import type { RuntimeState } from './state.ts';
import type { NetworkStore } from './store.ts';
import type { AttachOptions, EndpointOptions, EndpointRecord, NetworkRecord, SandboxRecord } from './types.ts';

/** What sandboxes need from the network manager that owns them. */
export interface SandboxHost {
  netnsDir: string;
  vethPrefix: string;
  mtu: number;
  store: NetworkStore;
  ipam: Ipam;
  state: RuntimeState;
  /** Per-container locks, and 'state' for every change of store, leases, state and rules. */
  mu: KeyedMutex;
  ports(): PortAllocator;
  /** Bridge, rules and DNS of a network, set up on first use. Caller holds 'state'. */
  activate(n: NetworkRecord): Promise<void>;
  /** Reloads keel's iptables chains from the state. Caller holds 'state'. */
  applyRules(): Promise<void>;
}

/**
 * Containers' network sandboxes: attach at start (a netns with its
 * endpoints and published ports), connect/disconnect while running, detach
 * after the container stopped. The NetworkManager facade delegates here.
 */
export class Sandboxes {
  private readonly host: SandboxHost;
  private readonly spare: SpareSandbox;
  /** Unmounts of released netns pins still running, by container id (see teardown). */
  private readonly unpinning = new Map<string, Promise<void>>();

  constructor(host: SandboxHost) {
    this.host = host;
    this.spare = new SpareSandbox({
      netnsDir: host.netnsDir,
      ipam: host.ipam,
      inState: (fn) => host.mu.run('state', fn),
      newEndpoint: (sb, w, i) => this.newEndpoint(sb, w, i),
      bridgeName: (id) => host.store.get(id).BridgeName,
    });
  }

  private get store() {
    return this.host.store;
  }

  private get ipam() {
    return this.host.ipam;
  }

  private get state() {
    return this.host.state;
  }

  private get mu() {
    return this.host.mu;
  }

  /** Waits until the netns pins that detach released are unmounted. */
  async unpinned(): Promise<void> {
    await Promise.all(this.unpinning.values());
  }

  /** Gives a container its network: netns (one made for it at <netnsDir>/<id>, or the spare sandbox's, unless given), endpoints, ports. */
  async attach(containerId: string, o: AttachOptions): Promise<SandboxRecord> {
    return this.mu.run(containerId, async () => {
      // Its previous run's netns file (same path) must be gone first.
      await this.unpinning.get(containerId);
      if (this.state.sandboxes.has(containerId)) throw new EngineError('CONFLICT', `container ${containerId.slice(0, 12)} already has a network sandbox`);
      const mode = o.mode ?? 'bridge';
      const own = (mode === 'bridge' || mode === 'none') && !o.netnsPath;
      const sb: SandboxRecord = {
        ContainerId: containerId,
        ContainerName: o.containerName.replace(/^\//, ''),
        Mode: mode,
        NetnsPath: own ? path.join(this.host.netnsDir, containerId) : (o.netnsPath ?? ''),
        OwnNetns: own,
        Hostname: o.hostname ?? containerId.slice(0, 12),
        Dns: o.dns ?? [],
        DnsSearch: o.dnsSearch ?? [],
        DnsOptions: o.dnsOptions ?? [],
        ExtraHosts: o.extraHosts ?? [],
        Ports: [],
        Endpoints: {},
      };
      for (const dns of sb.Dns) parseIp(dns);
      if (mode === 'container' && !o.netnsPath) throw invalid("container network mode needs the other container's netns path");
      if (mode === 'host' || mode === 'container') {
        await this.mu.run('state', async () => (this.state.sandboxes.set(containerId, sb), this.state.save()));
        return sb;
      }
      // An explicit empty list is a container disconnected from everything (lo only) that may be connected later.
      const wanted = mode === 'none' ? [] : (o.networks ?? [{ network: 'bridge' }]);
      const reqs = portRequests(o.portBindings, !!o.publishAll, o.exposedPorts ?? []);
      const fitsSpare = own && this.fitsSpare(wanted);
      const spare = fitsSpare ? await this.spare.take() : undefined;
      let adopted = false;
      const plumbs: EndpointPlumbing[] = [];
      try {
        await this.mu.run('state', async () => {
          if (spare) (this.spare.adopt(sb, spare), (adopted = true));
          else for (const [i, w] of wanted.entries()) plumbs.push(await this.newEndpoint(sb, w, i));
          const first = Object.values(sb.Endpoints)[0];
          // Ports are published to the first network's address; an internal network publishes nothing (as docker).
          if (first && reqs.length && !this.store.get(first.NetworkId).Internal) {
            sb.Ports = await this.host.ports().allocate(containerId, sb.ContainerName, reqs, first.IPAddress);
          }
          this.state.sandboxes.set(containerId, sb);
          // Leases and sandboxes are separate files: write them side by side.
          await Promise.all([this.ipam.save(), this.state.save()]);
        });
        if (!adopted) await plumbSandbox(sb, plumbs);
        if (sb.Ports.length) await this.mu.run('state', () => this.host.applyRules());
        if (fitsSpare) this.spare.refill();
        return sb;
      } catch (e) {
        if (spare && !adopted) await this.spare.discard(spare).catch(() => {}); // undoing a failed attach: its own error is the one to report
        await this.teardown(sb).catch((e2) => log.warn('network attach rollback failed', { container: containerId, error: String(e2) }));
        throw e;
      }
    });
  }

  /** Only a plain default-bridge endpoint can be made ahead (spare.ts): no --ip, --mac-address or alias to honour. */
  private fitsSpare(wanted: EndpointOptions[]): boolean {
    const w = wanted[0];
    return wanted.length === 1 && !!w && this.store.find(w.network)?.Name === 'bridge' && !w.ip && !w.mac && !w.aliases?.length;
  }

  /** Waits until the spare being made (if any) is ready and released namespaces are unpinned: tests count host objects after it. */
  async settled(): Promise<void> {
    await Promise.all([this.spare.settle(), ...this.unpinning.values()]);
  }

  /** Daemon shutdown: removes the spare (and makes no more) and finishes releasing namespaces. */
  async shutdown(): Promise<void> {
    await Promise.all([this.spare.close(), ...this.unpinning.values()]);
  }

  /**
   * Removes everything attach/connect added for the container. Missing
   * pieces are fine. shared: other processes (containers that joined with
   * network mode container:) stay in its netns, which then outlives it.
   */
  async detach(containerId: string, o: { shared?: boolean } = {}): Promise<void> {
    await this.mu.run(containerId, async () => {
      const sb = this.state.sandboxes.get(containerId);
      if (sb) await this.teardown(sb, !!o.shared);
    });
  }

  /**
   * A netns keel pinned only needs its pin removed: its processes are gone,
   * so the kernel then destroys it with its veths (asynchronously, as it
   * always does). That unmount (~5 ms) runs after the state is released, off
   * the caller's path (`run --rm` answers meanwhile); the container's next
   * attach, settled() and shutdown wait for it. A crash before it is done
   * leaves a netns file no sandbox owns: reconcile removes it.
   */
  private async teardown(sb: SandboxRecord, shared = false): Promise<void> {
    const unpinLater = sb.OwnNetns && !!sb.NetnsPath && !shared;
    if (!unpinLater) await unplumb(sb, Object.values(sb.Endpoints), shared);
    await this.mu.run('state', async () => {
      const hadPorts = sb.Ports.length > 0;
      this.host.ports().release(sb.ContainerId);
      this.state.sandboxes.delete(sb.ContainerId);
      // Two different files: write them side by side (each write is an fsync).
      await Promise.all([this.ipam.releaseOwner(sb.ContainerId, Object.keys(sb.Endpoints)), this.state.save()]);
      if (hadPorts) await this.host.applyRules();
    });
    if (!unpinLater) return;
    const p = removeNetns(sb.NetnsPath)
      .catch((e) => log.warn('removing a network namespace failed', { container: sb.ContainerId, netns: sb.NetnsPath, error: String(e) }))
      .finally(() => this.unpinning.delete(sb.ContainerId));
    this.unpinning.set(sb.ContainerId, p);
  }

  /** docker network connect: adds an endpoint (eth1, eth2, ...) to a running container's netns. */
  async connect(containerId: string, w: EndpointOptions): Promise<EndpointRecord> {
    return this.mu.run(containerId, async () => {
      const sb = this.state.sandboxes.get(containerId);
      if (!sb) throw new EngineError('CONFLICT', `container ${containerId.slice(0, 12)} is not running`);
      if (sb.Mode !== 'bridge') throw new EngineError('FORBIDDEN', `container cannot be connected to a network in network mode ${sb.Mode}`);
      let p: EndpointPlumbing | undefined;
      try {
        p = await this.mu.run('state', async () => {
          const r = await this.newEndpoint(sb, w, Object.keys(sb.Endpoints).length);
          await Promise.all([this.ipam.save(), this.state.save()]);
          return r;
        });
        await plumbEndpoint(sb.NetnsPath, p);
        return p.ep;
      } catch (e) {
        if (p) await this.dropEndpoint(sb, p.ep).catch(() => {}); // undoing a failed connect: its own error is the one to report
        throw e;
      }
    });
  }

  async disconnect(containerId: string, network: string): Promise<void> {
    await this.mu.run(containerId, async () => {
      const n = this.store.get(network);
      const sb = this.state.sandboxes.get(containerId);
      const ep = sb?.Endpoints[n.Id];
      if (!sb || !ep) throw new EngineError('NOT_FOUND', `container ${containerId.slice(0, 12)} is not connected to network ${n.Name}`);
      await deleteLinks([ep.HostIfName]);
      await this.dropEndpoint(sb, ep);
    });
  }

  private async dropEndpoint(sb: SandboxRecord, ep: EndpointRecord): Promise<void> {
    await this.mu.run('state', async () => {
      delete sb.Endpoints[ep.NetworkId];
      await this.ipam.release(ep.NetworkId, sb.ContainerId);
      await this.state.save();
    });
  }

  /** Validates one endpoint request, activates its network and leases an address. Caller holds 'state'. */
  private async newEndpoint(sb: SandboxRecord, w: EndpointOptions, index: number): Promise<EndpointPlumbing> {
    const n = this.store.get(w.network);
    if (n.Driver !== 'bridge')
      throw invalid(`container cannot be connected to network ${n.Name} (driver ${n.Driver}): use --network ${n.Name === 'none' ? 'none' : 'host'} alone`);
    if (sb.Endpoints[n.Id]) throw new EngineError('FORBIDDEN', `endpoint with name ${sb.ContainerName} already exists in network ${n.Name}`);
    const isDefault = n.Name === 'bridge';
    if (isDefault && w.ip) throw invalid('user specified IP address is supported on user defined networks only');
    if (isDefault && w.aliases?.length) throw invalid('network-scoped alias is supported only for containers in user defined networks');
    const plan = planSubnet(n.Subnet, n.Gateway, n.IPRange, []);
    await this.host.activate(n);
    const ip = await this.ipam.allocate(n.Id, plan, sb.ContainerId, w.ip, false);
    const ifNames = new Set(Object.values(sb.Endpoints).map((e) => e.IfName));
    let k = 0;
    while (ifNames.has(`eth${k}`)) k++;
    const ep: EndpointRecord = {
      EndpointId: newId(),
      NetworkId: n.Id,
      NetworkName: n.Name,
      ContainerId: sb.ContainerId,
      ContainerName: sb.ContainerName,
      IfName: `eth${k}`,
      HostIfName: hostIfName(this.host.vethPrefix, sb.ContainerId, n.Id),
      IPAddress: ip,
      IPPrefixLen: plan.subnet.prefix,
      Gateway: n.Gateway,
      MacAddress: w.mac ? parseMac(w.mac) : macForIp(parseIp(ip)),
      RequestedIp: w.ip ?? '',
      Aliases: isDefault ? [] : [...new Set(w.aliases ?? [])],
    };
    sb.Endpoints[n.Id] = ep;
    return { ep, bridge: n.BridgeName, defaultRoute: index === 0 && !n.Internal, mtu: this.host.mtu };
  }
}
