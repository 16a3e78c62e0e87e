import fsp from 'node:fs/promises';
import path from 'node:path';
import { EngineError, invalid } from '../common/errors.ts';
import { mkdirp } from '../common/fs.ts';
import { NAME_PATTERN, newId } from '../common/ids.ts';
import { KeyedMutex } from '../common/lock.ts';
import { formatCidr, formatIp, parseCidr } from './addr.ts';
import { ensureBridge, removeBridge, writeSysctl } from './bridge.ts';
import { DnsServer } from './dns.ts';
import { hostsFile, parseResolvConf, resolvConf, type HostResolv } from './files.ts';
import { chainNames, missingJumps, removeAll, render, restore, type Chains } from './iptables.ts';
import { hostRoutes, Ipam, pickSubnet, planSubnet } from './ipam.ts';
import { listNetns, removeNetns } from './netns.ts';
import { ephemeralRange, PortAllocator } from './ports.ts';
import { Sandboxes } from './sandboxes.ts';
import { RuntimeState } from './state.ts';
import { NetworkStore } from './store.ts';
import type { AttachOptions, CreateNetworkOptions, EndpointOptions, EndpointRecord, NetworkRecord, SandboxRecord } from './types.ts';
import { filterNetworks, type NetworkFilters } from './filters.ts';

export type * from './types.ts';
export { parsePortSpecs } from './ports.ts';
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
  private readonly sandboxes: Sandboxes;
  /** Networks between the start and the end of their removal. */
  private readonly removing = new Set<string>();

  constructor(o: NetworkManagerOptions) {
    this.opts = {
      pool: '10.81.0.0/16',
      poolPrefix: 24,
      chainPrefix: 'KEEL',
      vethPrefix: 'veth',
      bridgePrefix: 'kl-',
      mtu: 1500,
      resolvConfPath: '/etc/resolv.conf',
      dnsPort: 53,
      ...o,
    };
    const sn = o.defaultBridge?.subnet ?? '10.80.0.0/16';
    const c = parseCidr(sn);
    this.dflt = { bridgeName: o.defaultBridge?.bridgeName ?? 'keel0', subnet: sn, gateway: o.defaultBridge?.gateway ?? formatIp(c.base + 1) };
    this.store = new NetworkStore(o.dataDir);
    this.ipam = new Ipam(path.join(o.runDir, 'leases.json'));
    this.state = new RuntimeState(path.join(o.runDir, 'state.json'));
    this.chains = chainNames(this.opts.chainPrefix);
    this.sandboxes = new Sandboxes({
      netnsDir: this.opts.netnsDir,
      vethPrefix: this.opts.vethPrefix,
      mtu: this.opts.mtu,
      store: this.store,
      ipam: this.ipam,
      state: this.state,
      mu: this.mu,
      ports: () => this.ports,
      activate: (n) => this.activate(n),
      applyRules: () => this.applyRules(),
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
        Id: id,
        Name: o.Name,
        Driver: 'bridge',
        Subnet: formatCidr(plan.subnet),
        Gateway: formatIp(plan.gateway),
        IPRange: o.IPRange ? formatCidr(plan.range) : '',
        Internal: !!o.Internal,
        Labels: { ...(o.Labels ?? {}) },
        Created: new Date().toISOString(),
        Options: options,
        BridgeName: bridgeName,
        Predefined: false,
      };
      await this.store.put(rec);
      return { Id: id, Warning: '' };
    });
  }

  /**
   * The bridge is deleted outside the 'state' lock (`ip link del` waits for
   * an RCU grace period, tens of ms): a second network's removal (compose
   * down removes a project's networks together) loads its rules meanwhile.
   * The record goes last, so a crash in between leaves a network that can
   * be removed again, not a bridge nothing knows; until then the network
   * takes no endpoint (activate refuses it).
   */
  async removeNetwork(idOrName: string): Promise<void> {
    const n = await this.mu.run('state', async () => {
      const n = this.store.get(idOrName);
      if (n.Predefined) throw new EngineError('FORBIDDEN', `${n.Name} is a pre-defined network and cannot be removed`);
      if (this.removing.has(n.Id)) throw new EngineError('NOT_FOUND', `network ${n.Name} is being removed`);
      if (this.state.endpointsOf(n.Id).length) {
        throw new EngineError('FORBIDDEN', `error while removing network: network ${n.Name} id ${n.Id} has active endpoints`);
      }
      this.removing.add(n.Id);
      return n;
    });
    try {
      if (await this.mu.run('state', () => this.deactivate(n))) await removeBridge(n.BridgeName);
      await this.mu.run('state', async () => {
        await this.ipam.dropNetwork(n.Id);
        await this.store.remove(n.Id);
      });
    } finally {
      this.removing.delete(n.Id);
    }
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
      await this.removeNetwork(n.Id).then(
        () => gone.push(n.Name),
        () => {},
      );
    }
    return gone;
  }

  // ---- sandboxes (sandboxes.ts) ----------------------------------------

  sandbox(containerId: string): SandboxRecord | undefined {
    return this.state.sandboxes.get(containerId);
  }

  /** Gives a container its network: netns (one made for it at <netnsDir>/<id>, or the spare sandbox's, unless given), endpoints, ports. */
  attach(containerId: string, o: AttachOptions): Promise<SandboxRecord> {
    return this.sandboxes.attach(containerId, o);
  }

  /** Removes everything attach/connect added for the container (see Sandboxes.detach). */
  detach(containerId: string, o: { shared?: boolean } = {}): Promise<void> {
    return this.sandboxes.detach(containerId, o);
  }

  /** docker network connect: adds an endpoint (eth1, eth2, ...) to a running container's netns. */
  connect(containerId: string, w: EndpointOptions): Promise<EndpointRecord> {
    return this.sandboxes.connect(containerId, w);
  }

  disconnect(containerId: string, network: string): Promise<void> {
    return this.sandboxes.disconnect(containerId, network);
  }

  /** Waits until the spare being made (if any) is ready and released namespaces are unpinned: tests count host objects after it. */
  settled(): Promise<void> {
    return this.sandboxes.settled();
  }

  /** Daemon shutdown: removes the spare sandbox (and makes no more) and finishes releasing namespaces. */
  shutdown(): Promise<void> {
    return this.sandboxes.shutdown();
  }

  /** Bridge, rules and DNS of a network, set up on first use. Caller holds 'state' (or is init). */
  private async activate(n: NetworkRecord, restarting = false): Promise<void> {
    if (this.removing.has(n.Id)) throw new EngineError('NOT_FOUND', `network ${n.Name} is being removed`);
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
        address: n.Gateway,
        port: this.opts.dnsPort,
        lookup: (name) => this.lookupName(n.Id, name),
        upstreams: (client) => this.upstreamsFor(n.Id, client),
      });
      await d.start();
      this.dns.set(n.Id, d);
    }
  }

  /** Stops the network's DNS and takes its rules out; whether it was active (then removeNetwork deletes its bridge). */
  private async deactivate(n: NetworkRecord): Promise<boolean> {
    this.dns.get(n.Id)?.close();
    this.dns.delete(n.Id);
    if (!this.state.active.delete(n.Id)) return false;
    await this.state.save();
    await this.applyRules();
    return true;
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
      sb.Ports.map((p) => ({ proto: p.Proto, hostIp: p.HostIp, hostPort: p.HostPort, containerIp: p.ContainerIp, containerPort: p.ContainerPort })),
    );
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
    await this.sandboxes.unpinned();
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
    return hostsFile({
      hostname: sb.Hostname,
      domainname: o.domainname,
      ip: first?.IPAddress,
      extraHosts: sb.ExtraHosts,
      hostGateway: first?.Gateway ?? this.dflt.gateway,
    });
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
    return {
      sandboxes: this.state.sandboxes.size,
      leases: this.ipam.list().length,
      ports: [...this.state.sandboxes.values()].reduce((a, s) => a + s.Ports.length, 0),
    };
  }
}
