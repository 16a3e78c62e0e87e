import fs from 'node:fs';
import { log } from '../common/log.ts';
import type { NamespaceMode } from '../runtime/index.ts';
import type { ContainerRecord } from './types.ts';

/** What a container's network gives the runtime spec and inspect. */
export interface NetworkAttachment {
  namespace: NamespaceMode;
  /** The container's networks, keyed by network name (api/encode-network.ts writes docker's NetworkSettings.Networks). */
  networks: Record<string, NetworkEndpoint>;
  /** The container's first address (for /etc/hosts), if any. */
  ip?: string;
  /** Extra /etc/hosts lines and resolv.conf nameservers decided by the network layer. */
  hostsExtra?: string[];
  nameservers?: string[];
}

/**
 * The contract containers/ needs from networking; the engine injects it.
 * attach() runs before the container's process starts, detach() after it
 * stopped (also for a container found dead after a daemon restart).
 */
export interface ContainerNetworking {
  attach(rec: ContainerRecord): Promise<NetworkAttachment>;
  /**
   * shared: containers that joined this one's namespace (network mode
   * container:) still run in it, so it outlives this container: its links
   * must be removed, not left to die with the namespace.
   */
  detach(rec: ContainerRecord, o?: { shared?: boolean }): Promise<void>;
  /** What the network layer holds for a container now (survives daemon restarts); undefined without a sandbox. */
  settings?(rec: ContainerRecord): LiveNetworkSettings | undefined;
}

/** What the network layer holds for a running container (keel's shapes; api/ encodes docker's NetworkSettings). */
export interface LiveNetworkSettings {
  networks: Record<string, NetworkEndpoint>;
  /** Published ports (docker's NetworkSettings.Ports adds the exposed ones). */
  ports: PortInfo[];
  sandboxKey: string;
}

/** A container's endpoint on one network (network/'s EndpointRecord has these fields). */
export interface EndpointInfo {
  NetworkId: string;
  NetworkName: string;
  EndpointId: string;
  ContainerId: string;
  Gateway: string;
  IPAddress: string;
  IPPrefixLen: number;
  MacAddress: string;
  /** The address the user asked for (--ip). */
  RequestedIp: string;
  /** Network-scoped aliases (--network-alias / connect --alias). */
  Aliases: string[];
}

/** A published port (network/'s PortMapping has these fields). */
export interface PortInfo {
  Proto: string;
  HostIp: string;
  HostPort: number;
  ContainerPort: number;
}

/**
 * One network of a container: its live endpoint, or, without one (not
 * running, none, host), only the aliases asked for it (null: none asked).
 */
export type NetworkEndpoint = { endpoint: EndpointInfo } | { endpoint?: undefined; aliases: string[] | null };

/** A network without an endpoint (none, host, a stopped container's). */
export function emptyEndpoint(aliases: string[] | null = null): NetworkEndpoint {
  return { aliases };
}

/**
 * The container named by network mode `container:<name|id>` (docker's
 * `--network container:web`); undefined for every other mode. An empty
 * string is the malformed `container:`.
 */
export function joinedContainer(mode: string): string | undefined {
  return mode.startsWith('container:') ? mode.slice('container:'.length) : undefined;
}

/** Docker's name for the mode: "default" means the default bridge. */
export function networkName(rec: ContainerRecord): string {
  const m = rec.hostConfig.NetworkMode;
  return m === 'default' ? 'bridge' : m;
}

/**
 * none and host need no network layer: a fresh netns (lo only) or the
 * host's. Bridge networks are delegated to `bridge` when the engine has a
 * network manager; without one they fall back to an isolated netns and the
 * daemon log says so.
 */
export class BasicNetworking implements ContainerNetworking {
  private readonly bridge?: ContainerNetworking;
  private warned = false;

  constructor(bridge?: ContainerNetworking) {
    this.bridge = bridge;
  }

  async attach(rec: ContainerRecord): Promise<NetworkAttachment> {
    const name = networkName(rec);
    if (name === 'host') return { namespace: 'host', networks: { host: emptyEndpoint() } };
    if (name === 'none') return { namespace: 'private', networks: { none: emptyEndpoint() } };
    if (this.bridge) return this.bridge.attach(rec);
    if (!this.warned) log.warn('no network manager: containers on bridge networks get an isolated network namespace');
    this.warned = true;
    return { namespace: 'private', networks: { [name]: emptyEndpoint() } };
  }

  async detach(rec: ContainerRecord, o?: { shared?: boolean }): Promise<void> {
    const name = networkName(rec);
    // A container in another's namespace has nothing of its own to release.
    if (name === 'host' || name === 'none' || joinedContainer(name) !== undefined) return;
    await this.bridge?.detach(rec, o);
  }

  settings(rec: ContainerRecord): LiveNetworkSettings | undefined {
    return this.bridge?.settings?.(rec);
  }
}

/** /etc/hosts content for a container. */
export function hostsContent(rec: ContainerRecord, att: NetworkAttachment): string {
  if (att.namespace === 'host') {
    try {
      return fs.readFileSync('/etc/hosts', 'utf8');
    } catch {
      // fall through to the standard file
    }
  }
  const lines = [
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::0\tip6-localnet',
    'ff00::0\tip6-mcastprefix',
    'ff02::1\tip6-allnodes',
    'ff02::2\tip6-allrouters',
  ];
  for (const e of rec.hostConfig.ExtraHosts ?? []) {
    const i = e.indexOf(':');
    if (i > 0) lines.push(`${e.slice(i + 1)}\t${e.slice(0, i)}`);
  }
  lines.push(...(att.hostsExtra ?? []));
  if (att.ip) lines.push(`${att.ip}\t${rec.config.Hostname}`);
  return lines.join('\n') + '\n';
}

let hostResolv: string | undefined;

/** resolv.conf: --dns or the network's servers, else the host's minus loopback ones (docker's rule). */
export function resolvContent(rec: ContainerRecord, att: NetworkAttachment): string {
  hostResolv ??= (() => {
    try {
      return fs.readFileSync('/etc/resolv.conf', 'utf8');
    } catch {
      return '';
    }
  })();
  if (att.namespace === 'host' && !rec.hostConfig.Dns.length) return hostResolv;
  const hostLines = hostResolv.split('\n');
  // On a user network the embedded DNS comes first: it resolves container names and forwards the rest to --dns.
  let servers = att.nameservers?.length
    ? att.nameservers
    : rec.hostConfig.Dns.length
      ? rec.hostConfig.Dns
      : hostLines.map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1]).filter((s): s is string => !!s && !/^127\.|^::1$/.test(s));
  if (!servers.length) servers = ['8.8.8.8', '8.8.4.4'];
  const search = rec.hostConfig.DnsSearch.length
    ? rec.hostConfig.DnsSearch
    : hostLines
        .map((l) => /^\s*search\s+(.+)/.exec(l)?.[1])
        .filter(Boolean)
        .join(' ')
        .split(/\s+/)
        .filter(Boolean);
  const options = rec.hostConfig.DnsOptions.length
    ? rec.hostConfig.DnsOptions
    : hostLines
        .map((l) => /^\s*options\s+(.+)/.exec(l)?.[1])
        .filter(Boolean)
        .join(' ')
        .split(/\s+/)
        .filter(Boolean);
  let out = servers.map((s) => `nameserver ${s}`).join('\n') + '\n';
  if (search.length) out += `search ${search.join(' ')}\n`;
  if (options.length) out += `options ${options.join(' ')}\n`;
  return out;
}
