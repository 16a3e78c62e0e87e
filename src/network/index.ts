import fsp from 'node:fs/promises';
import path from 'node:path';
import { EngineError, invalid } from '../common/errors.ts';
import { mkdirp } from '../common/fs.ts';
import { NAME_PATTERN, newId } from '../common/ids.ts';
import { KeyedMutex } from '../common/lock.ts';
import { log } from '../common/log.ts';
import { formatCidr, formatIp, macForIp, parseCidr, parseIp, parseMac } from './addr.ts';
import { ensureBridge, hostIfName, removeBridge, writeSysctl } from './bridge.ts';
import { DnsServer } from './dns.ts';
import { hostsFile, parseResolvConf, resolvConf, type HostResolv } from './files.ts';
import { chainNames, missingJumps, removeAll, render, restore, type Chains } from './iptables.ts';
import { hostRoutes, Ipam, pickSubnet, planSubnet, type SubnetPlan } from './ipam.ts';
import { listNetns, removeNetns } from './netns.ts';
import { deleteLinks, plumbEndpoint, plumbSandbox, unplumb, type EndpointPlumbing } from './plumbing.ts';
import { ephemeralRange, PortAllocator, portRequests } from './ports.ts';
import { SpareSandbox } from './spare.ts';
import { RuntimeState } from './state.ts';
import { NetworkStore } from './store.ts';
import type { AttachOptions, CreateNetworkOptions, EndpointOptions, EndpointRecord, NetworkRecord, SandboxRecord } from './types.ts';
import { filterNetworks, type NetworkFilters } from './filters.ts';

export type * from './types.ts';
export { parsePortSpecs } from './ports.ts';
export { toDockerNetwork, toEndpointSettings, toNetworkSettings, toPortMap } from './docker.ts';
export { hostsFile, resolvConf, parseResolvConf, parseExtraHost } from './files.ts';
export type { NetworkFilters } from './filters.ts';

export interface NetworkManagerOptions {
  /** Persistent records: <data-root>/network. */
  dataDir: string;
  /** Runtime state (leases, sandboxes): <exec-root>/network. */
  runDir: string;
  /** Where keel pins the netns files it creates: <exec-root>/netns. */
  netnsDir: string;
  /** Default bridge: keel0, 10.80.0.0/16 (docker has 172.17/16, podman 10.88/16 and user nets from 10.89/24). */
  defaultBridge?: { bridgeName?: string; subnet?: string; gateway?: string };
  /** Pool for user networks created without --subnet, carved in /poolPrefix blocks. */
  pool?: string;
  poolPrefix?: number;
  /** Prefix of keel's iptables chains (KEEL → KEEL-FORWARD, ...). */
  chainPrefix?: string;
  /** Prefix of host veth names (≤ 4 chars) and user bridge names. */
  vethPrefix?: string;
  bridgePrefix?: string;
  mtu?: number;
  /** The host's resolver configuration (default /etc/resolv.conf). */
  resolvConfPath?: string;
  /** Upstreams of the embedded DNS ("ip" or "ip:port"); default: the host's nameservers. */
  dnsUpstreams?: string[];
  dnsPort?: number;
}

/** What attach/connect report per network: enough for NetworkSettings. */
export type AttachResult = SandboxRecord;

/**
 * The network layer's facade. containers/ calls attach() before starting a
 * container (and puts sandbox.NetnsPath into the OCI spec), detach() after
 * it stops, and reconcile() when the daemon starts.
 */
export class NetworkManager {
  readonly opts: Required<Omit<NetworkManagerOptions, 'defaultBridge' | 'dnsUpstreams'>> & { dnsUpstreams?: string[] };
  readonly store: NetworkStore;
  readonly ipam: Ipam;
  readonly state: RuntimeState;
  readonly chains: Chains;
  private dflt: { bridgeName: string; subnet: string; gateway: string };
  private ports = new PortAllocator([32768, 60999]);
  private mu = new KeyedMutex();
  private dns = new Map<string, DnsServer>();
  private jumpsOk = false;
  private hostResolv: HostResolv = { nameservers: [], search: [], options: [] };
  private readonly spare: SpareSandbox;
  /** Unmounts of released netns pins still running, by container id (see teardown). */
  private readonly unpinning = new Map<string, Promise<void>>();

  constructor(o: NetworkManagerOptions) {
    this.opts = {
      pool: '10.81.0.0/16', poolPrefix: 24, chainPrefix: 'KEEL', vethPrefix: 'veth', bridgePrefix: 'kl-', mtu: 1500,
      resolvConfPath: '/etc/resolv.conf', dnsPort: 53, ...o,
    };
    const sn = o.defaultBridge?.subnet ?? '10.80.0.0/16';
    const c = parseCidr(sn);
    this.dflt = { bridgeName: o.defaultBridge?.bridgeName ?? 'keel0', subnet: sn, gateway: o.defaultBridge?.gateway ?? formatIp(c.base + 1) };
    this.store = new NetworkStore(o.dataDir);
    this.ipam = new Ipam(path.join(o.runDir, 'leases.json'));
    this.state = new RuntimeState(path.join(o.runDir, 'state.json'));
    this.chains = chainNames(this.opts.chainPrefix);
    this.spare = new SpareSandbox({
      netnsDir: this.opts.netnsDir, ipam: this.ipam,
      inState: (fn) => this.mu.run('state', fn),
      newEndpoint: (sb, w, i) => this.newEndpoint(sb, w, i),
      bridgeName: (id) => this.store.get(id).BridgeName,
    });
  }

  async init(): Promise<void> {
    await mkdirp(this.opts.dataDir);
    await mkdirp(this.opts.runDir);
    await mkdirp(this.opts.netnsDir, 0o711);
    await this.store.load(this.dflt);
    await this.ipam.load();
    await this.state.load();
    this.ports = new PortAllocator(await ephemeralRange());
    this.hostResolv = parseResolvConf(await fsp.readFile(this.opts.resolvConfPath, 'utf8').catch(() => ''));
    for (const sb of this.state.sandboxes.values()) await this.ports.adopt(sb.ContainerId, sb.Ports);
    for (const id of [...this.state.active]) {
      const n = this.store.find(id);
      if (!n) this.state.active.delete(id);
      else await this.activate(n, true);
    }
    if (this.state.active.size) await this.applyRules();
  }

  /** Stops the daemon-side services (DNS, port holders); containers keep their networking. */
  close(): void {
    for (const d of this.dns.values()) d.close();
    this.dns.clear();
    this.ports.closeAll();
  }

  // ---- networks -------------------------------------------------------

  async createNetwork(o: CreateNetworkOptions): Promise<{ Id: string; Warning: string }> {
    return this.mu.run('state', async () => {
      if (!NAME_PATTERN.test(o.Name)) throw invalid(`invalid network name "${o.Name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
      const driver = o.Driver || 'bridge';
      if (driver !== 'bridge') {
        if (driver === 'host' || driver === 'null') throw new EngineError('FORBIDDEN', `only one instance of "${driver}" network is allowed`);
        throw new EngineError('NOT_FOUND', `plugin "${driver}" not found`);
      }
      if (this.store.byName(o.Name)) throw new EngineError('CONFLICT', `network with name ${o.Name} already exists`);
      const others = this.store.list().map((n) => n.Subnet);
      const subnet = o.Subnet || pickSubnet(this.opts.pool, this.opts.poolPrefix, others, await hostRoutes());
      if (!o.Subnet && (o.Gateway || o.IPRange)) throw invalid('gateway and ip-range need a --subnet');
      const plan = planSubnet(subnet, o.Gateway ?? '', o.IPRange ?? '', others);
      const id = newId();
      const options = { ...(o.Options ?? {}) };
      const bridgeName = options['com.docker.network.bridge.name'] || `${this.opts.bridgePrefix}${id}`.slice(0, 15);
      if (bridgeName.length > 15 || !/^[a-zA-Z0-9_.-]+$/.test(bridgeName)) throw invalid(`invalid bridge name ${bridgeName}`);
      if (this.store.list().some((n) => n.BridgeName === bridgeName)) throw new EngineError('CONFLICT', `bridge name ${bridgeName} is already in use`);
      const rec: NetworkRecord = {
        Id: id, Name: o.Name, Driver: 'bridge', Subnet: formatCidr(plan.subnet), Gateway: formatIp(plan.gateway),
        IPRange: o.IPRange ? formatCidr(plan.range) : '', Internal: !!o.Internal, Labels: { ...(o.Labels ?? {}) },
        Created: new Date().toISOString(), Options: options, BridgeName: bridgeName, Predefined: false,
      };
      await this.store.put(rec);
      return { Id: id, Warning: '' };
    });
  }

  async removeNetwork(idOrName: string): Promise<void> {
    await this.mu.run('state', async () => {
      const n = this.store.get(idOrName);
      if (n.Predefined) throw new EngineError('FORBIDDEN', `${n.Name} is a pre-defined network and cannot be removed`);
      if (this.state.endpointsOf(n.Id).length) {
        throw new EngineError('FORBIDDEN', `error while removing network: network ${n.Name} id ${n.Id} has active endpoints`);
      }
      await this.deactivate(n);
      await this.ipam.dropNetwork(n.Id);
      await this.store.remove(n.Id);
    });
  }

  listNetworks(filters: NetworkFilters = {}): NetworkRecord[] {
    return filterNetworks(this.store.list(), filters, (id) => this.state.endpointsOf(id).length > 0);
  }

  inspect(idOrName: string): { network: NetworkRecord; endpoints: EndpointRecord[] } {
    const network = this.store.get(idOrName);
    return { network, endpoints: this.state.endpointsOf(network.Id).map((e) => e.endpoint) };
  }

  /** Removes user networks without endpoints (matching filters); returns their names. */
  async prune(filters: NetworkFilters = {}): Promise<string[]> {
    const gone: string[] = [];
    for (const n of this.listNetworks({ ...filters, type: ['custom'] })) {
      if (this.state.endpointsOf(n.Id).length) continue;
      await this.removeNetwork(n.Id).then(() => gone.push(n.Name), () => {});
    }
    return gone;
  }

  // ---- sandboxes ------------------------------------------------------

  sandbox(containerId: string): SandboxRecord | undefined {
    return this.state.sandboxes.get(containerId);
  }

  /** Gives a container its network: netns (created at <netnsDir>/<id> unless given), endpoints, ports. */
  async attach(containerId: string, o: AttachOptions): Promise<SandboxRecord> {
    return this.mu.run(containerId, async () => {
      // Its previous run's netns file (same path) must be gone first.
      await this.unpinning.get(containerId);
      if (this.state.sandboxes.has(containerId)) throw new EngineError('CONFLICT', `container ${containerId.slice(0, 12)} already has a network sandbox`);
      const mode = o.mode ?? 'bridge';
      const own = (mode === 'bridge' || mode === 'none') && !o.netnsPath;
      const sb: SandboxRecord = {
        ContainerId: containerId, ContainerName: o.containerName.replace(/^\//, ''), Mode: mode,
        NetnsPath: own ? path.join(this.opts.netnsDir, containerId) : (o.netnsPath ?? ''), OwnNetns: own,
        Hostname: o.hostname ?? containerId.slice(0, 12), Dns: o.dns ?? [], DnsSearch: o.dnsSearch ?? [], DnsOptions: o.dnsOptions ?? [],
        ExtraHosts: o.extraHosts ?? [], Ports: [], Endpoints: {},
      };
      for (const dns of sb.Dns) parseIp(dns);
      if (mode === 'container' && !o.netnsPath) throw invalid('container network mode needs the other container\'s netns path');
      if (mode === 'host' || mode === 'container') {
        await this.mu.run('state', async () => (this.state.sandboxes.set(containerId, sb), this.state.save()));
        return sb;
      }
      // An explicit empty list is a container disconnected from everything (lo only) that may be connected later.
      const wanted = mode === 'none' ? [] : o.networks ?? [{ network: 'bridge' }];
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
            sb.Ports = await this.ports.allocate(containerId, sb.ContainerName, reqs, first.IPAddress);
          }
          this.state.sandboxes.set(containerId, sb);
          // Leases and sandboxes are separate files: write them side by side.
          await Promise.all([this.ipam.save(), this.state.save()]);
        });
        if (!adopted) await plumbSandbox(sb, plumbs);
        if (sb.Ports.length) await this.mu.run('state', () => this.applyRules());
        if (fitsSpare) this.spare.refill();
        return sb;
      } catch (e) {
        if (spare && !adopted) await this.spare.discard(spare).catch(() => {});
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
      this.ports.release(sb.ContainerId);
      this.state.sandboxes.delete(sb.ContainerId);
      // Two different files: write them side by side (each write is an fsync).
      await Promise.all([this.ipam.releaseOwner(sb.ContainerId, Object.keys(sb.Endpoints)), this.state.save()]);
      if (hadPorts) await this.applyRules();
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
        if (p) await this.dropEndpoint(sb, p.ep).catch(() => {});
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
    if (n.Driver !== 'bridge') throw invalid(`container cannot be connected to network ${n.Name} (driver ${n.Driver}): use --network ${n.Name === 'none' ? 'none' : 'host'} alone`);
    if (sb.Endpoints[n.Id]) throw new EngineError('FORBIDDEN', `endpoint with name ${sb.ContainerName} already exists in network ${n.Name}`);
    const isDefault = n.Name === 'bridge';
    if (isDefault && w.ip) throw invalid('user specified IP address is supported on user defined networks only');
    if (isDefault && w.aliases?.length) throw invalid('network-scoped alias is supported only for containers in user defined networks');
    const plan = this.plan(n);
    await this.activate(n);
    const ip = await this.ipam.allocate(n.Id, plan, sb.ContainerId, w.ip, false);
    const ifNames = new Set(Object.values(sb.Endpoints).map((e) => e.IfName));
    let k = 0;
    while (ifNames.has(`eth${k}`)) k++;
    const ep: EndpointRecord = {
      EndpointId: newId(), NetworkId: n.Id, NetworkName: n.Name, ContainerId: sb.ContainerId, ContainerName: sb.ContainerName,
      IfName: `eth${k}`, HostIfName: hostIfName(this.opts.vethPrefix, sb.ContainerId, n.Id),
      IPAddress: ip, IPPrefixLen: plan.subnet.prefix, Gateway: n.Gateway,
      MacAddress: w.mac ? parseMac(w.mac) : macForIp(parseIp(ip)), RequestedIp: w.ip ?? '',
      Aliases: isDefault ? [] : [...new Set(w.aliases ?? [])],
    };
    sb.Endpoints[n.Id] = ep;
    return { ep, bridge: n.BridgeName, defaultRoute: index === 0 && !n.Internal, mtu: this.opts.mtu };
  }

  private plan(n: NetworkRecord): SubnetPlan {
    return planSubnet(n.Subnet, n.Gateway, n.IPRange, []);
  }

  /** Bridge, rules and DNS of a network, set up on first use. Caller holds 'state' (or is init). */
  private async activate(n: NetworkRecord, restarting = false): Promise<void> {
    const wasActive = this.state.active.has(n.Id);
    await ensureBridge(n.BridgeName, `${n.Gateway}/${parseCidr(n.Subnet).prefix}`, this.opts.mtu);
    if (!wasActive) {
      await writeSysctl('/proc/sys/net/ipv4/ip_forward', '1');
      this.state.active.add(n.Id);
      await this.state.save();
      if (!restarting) await this.applyRules();
    }
    if (n.Name !== 'bridge' && !this.dns.has(n.Id)) {
      const d = new DnsServer({
        address: n.Gateway, port: this.opts.dnsPort,
        lookup: (name) => this.lookupName(n.Id, name),
        upstreams: (client) => this.upstreamsFor(n.Id, client),
      });
      await d.start();
      this.dns.set(n.Id, d);
    }
  }

  private async deactivate(n: NetworkRecord): Promise<void> {
    this.dns.get(n.Id)?.close();
    this.dns.delete(n.Id);
    if (!this.state.active.delete(n.Id)) return;
    await this.state.save();
    await this.applyRules();
    await removeBridge(n.BridgeName);
  }

  private lookupName(networkId: string, name: string): string[] | undefined {
    const out: string[] = [];
    for (const { sandbox, endpoint } of this.state.endpointsOf(networkId)) {
      const names = [sandbox.ContainerName, sandbox.ContainerId.slice(0, 12), ...endpoint.Aliases].map((x) => x.toLowerCase());
      if (names.includes(name)) out.push(endpoint.IPAddress);
    }
    return out.length ? out : undefined;
  }

  private upstreamsFor(networkId: string, client: string): string[] {
    for (const { sandbox, endpoint } of this.state.endpointsOf(networkId)) {
      if (endpoint.IPAddress === client && sandbox.Dns.length) return sandbox.Dns;
    }
    return this.opts.dnsUpstreams ?? this.hostResolv.nameservers;
  }

  /** Loads keel's chains from the current state (one iptables-restore). Caller holds 'state'. */
  private async applyRules(): Promise<void> {
    const nets = [...this.state.active].map((id) => this.store.find(id)).filter((n): n is NetworkRecord => !!n && n.Driver === 'bridge');
    const rules = nets.map((n) => ({ bridge: n.BridgeName, subnet: n.Subnet, gateway: n.Gateway, internal: n.Internal, dns: n.Name !== 'bridge' }));
    const ports = [...this.state.sandboxes.values()].flatMap((sb) =>
      sb.Ports.map((p) => ({ proto: p.Proto, hostIp: p.HostIp, hostPort: p.HostPort, containerIp: p.ContainerIp, containerPort: p.ContainerPort })));
    const missing = this.jumpsOk ? [] : await missingJumps(this.chains);
    await restore(render(this.chains, rules, ports, missing));
    this.jumpsOk = true;
  }

  /**
   * Daemon start: tears down sandboxes of containers that no longer exist,
   * frees their leases, removes netns files nobody owns, and reloads rules.
   */
  async reconcile(live: Iterable<string>): Promise<{ sandboxes: number; leases: number; netns: number }> {
    const alive = new Set(live);
    let sandboxes = 0;
    for (const sb of [...this.state.sandboxes.values()]) {
      if (!alive.has(sb.ContainerId)) (await this.detach(sb.ContainerId), sandboxes++);
    }
    await Promise.all(this.unpinning.values());
    return this.mu.run('state', async () => {
      const leases = await this.ipam.reconcile(new Set(this.state.sandboxes.keys()));
      let netns = 0;
      const owned = new Set([...this.state.sandboxes.values()].map((s) => s.NetnsPath));
      for (const f of await listNetns(this.opts.netnsDir)) {
        const p = path.join(this.opts.netnsDir, f);
        if (!owned.has(p)) (await removeNetns(p), netns++);
      }
      if (this.state.active.size) {
        this.jumpsOk = false;
        await this.applyRules();
      }
      return { sandboxes, leases, netns };
    });
  }

  /** Removes every trace of this keel instance from the host (tests, uninstall). */
  async destroyAll(): Promise<void> {
    for (const id of [...this.state.sandboxes.keys()]) await this.detach(id);
    await this.shutdown();
    await this.mu.run('state', async () => {
      for (const id of [...this.state.active]) {
        const n = this.store.find(id);
        if (n) await removeBridge(n.BridgeName);
      }
      this.state.active.clear();
      await this.state.save();
      await removeAll(this.chains);
      this.jumpsOk = false;
    });
    this.close();
  }

  // ---- files for the container ---------------------------------------

  hostsFile(containerId: string, o: { domainname?: string } = {}): string {
    const sb = this.state.sandboxes.get(containerId);
    if (!sb) throw new EngineError('NOT_FOUND', `container ${containerId.slice(0, 12)} has no network sandbox`);
    const first = Object.values(sb.Endpoints)[0];
    return hostsFile({ hostname: sb.Hostname, domainname: o.domainname, ip: first?.IPAddress, extraHosts: sb.ExtraHosts, hostGateway: first?.Gateway ?? this.dflt.gateway });
  }

  resolvConf(containerId: string): string {
    const sb = this.state.sandboxes.get(containerId);
    if (!sb) throw new EngineError('NOT_FOUND', `container ${containerId.slice(0, 12)} has no network sandbox`);
    const first = Object.values(sb.Endpoints)[0];
    const embedded = first && first.NetworkName !== 'bridge' ? first.Gateway : undefined;
    return resolvConf({ host: this.hostResolv, embeddedDns: embedded, dns: sb.Dns, dnsSearch: sb.DnsSearch, dnsOptions: sb.DnsOptions, mode: sb.Mode });
  }

  /** Host-side counts used by leak tests and `system info`. */
  counts(): { sandboxes: number; leases: number; ports: number } {
    return { sandboxes: this.state.sandboxes.size, leases: this.ipam.list().length, ports: [...this.state.sandboxes.values()].reduce((a, s) => a + s.Ports.length, 0) };
  }
}

