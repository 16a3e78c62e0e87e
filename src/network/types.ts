/**
 * Records of the network layer. They are plain JSON, persisted as they are,
 * and shaped so that docker's `GET /networks/{id}` and a container's
 * `NetworkSettings` can be produced from them without extra lookups
 * (see toDockerNetwork / toEndpointSettings in api/encode-network.ts).
 */

export type NetworkDriver = 'bridge' | 'host' | 'null';

/** A network as the user created it (data-root/network/networks/<id>.json). */
export interface NetworkRecord {
  Id: string;
  Name: string;
  Driver: NetworkDriver;
  /** IPv4 CIDR, e.g. "10.80.0.0/16"; empty for host/none. */
  Subnet: string;
  Gateway: string;
  /** Sub-range containers get addresses from (--ip-range); empty = whole subnet. */
  IPRange: string;
  Internal: boolean;
  Labels: Record<string, string>;
  /** RFC 3339 creation time. */
  Created: string;
  /** Driver options (docker's `-o`), e.g. com.docker.network.bridge.name. */
  Options: Record<string, string>;
  /** Linux bridge device of a bridge network (≤ 15 chars). */
  BridgeName: string;
  /** true for bridge/host/none: they cannot be removed. */
  Predefined: boolean;
}

export type Proto = 'tcp' | 'udp' | 'sctp';

/** docker's HostConfig.PortBindings value: "80/tcp" → [{HostIp, HostPort}]. */
export type PortBindings = Record<string, Array<{ HostIp?: string; HostPort?: string }> | null>;

/** One published port as it is programmed (host side → container side). */
export interface PortMapping {
  Proto: Proto;
  HostIp: string;
  HostPort: number;
  ContainerPort: number;
  ContainerIp: string;
}

/** A container's membership in one network. */
export interface EndpointRecord {
  EndpointId: string;
  NetworkId: string;
  NetworkName: string;
  ContainerId: string;
  ContainerName: string;
  /** Interface name inside the container (eth0, eth1, ...). */
  IfName: string;
  /** Host side of the veth pair. */
  HostIfName: string;
  IPAddress: string;
  IPPrefixLen: number;
  Gateway: string;
  MacAddress: string;
  /** The address the user asked for (--ip); docker reports it as IPAMConfig. */
  RequestedIp: string;
  /** Network-scoped aliases (--network-alias / connect --alias). */
  Aliases: string[];
}

/**
 * A container's network sandbox: its netns and everything keel programmed for
 * it. Persisted in the runtime state so teardown after a crash or a daemon
 * restart removes exactly what was added.
 */
export interface SandboxRecord {
  ContainerId: string;
  ContainerName: string;
  /** 'bridge' = attached to networks; 'none' = lo only; 'host'/'container' = no netns of its own. */
  Mode: 'bridge' | 'none' | 'host' | 'container';
  NetnsPath: string;
  /** keel created (and must remove) the netns file. */
  OwnNetns: boolean;
  Hostname: string;
  Dns: string[];
  DnsSearch: string[];
  DnsOptions: string[];
  ExtraHosts: string[];
  Ports: PortMapping[];
  Endpoints: Record<string, EndpointRecord>;
}

/** Options of NetworkManager.createNetwork (docker's POST /networks/create). */
export interface CreateNetworkOptions {
  Name: string;
  Driver?: string;
  Subnet?: string;
  Gateway?: string;
  IPRange?: string;
  Internal?: boolean;
  Labels?: Record<string, string>;
  Options?: Record<string, string>;
  /** Fail instead of returning the existing network (docker's CheckDuplicate). */
  CheckDuplicate?: boolean;
}

/** Per-network options of attach/connect (docker's EndpointSettings input). */
export interface EndpointOptions {
  /** Network id or name. */
  network: string;
  aliases?: string[];
  ip?: string;
  mac?: string;
}

export interface AttachOptions {
  containerName: string;
  /**
   * 'bridge' (default): join `networks` (absent: the default bridge; empty: none yet);
   * 'none': a netns with lo only; 'host': nothing to do;
   * 'container': join `netnsPath` of another container, nothing to program.
   */
  mode?: 'bridge' | 'none' | 'host' | 'container';
  /** Use this existing netns (e.g. one runc created); default: keel creates one. */
  netnsPath?: string;
  networks?: EndpointOptions[];
  hostname?: string;
  portBindings?: PortBindings;
  /** -P: publish every exposed port on a random host port. */
  publishAll?: boolean;
  /** Image/Config ExposedPorts keys, e.g. "80/tcp" (used by publishAll). */
  exposedPorts?: string[];
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
  /** --add-host entries "name:ip" ("host-gateway" maps to the gateway). */
  extraHosts?: string[];
}
