import type { EndpointInfo, NetworkEndpoint, PortInfo } from '../containers/network.ts';
import type { EndpointRecord, NetworkRecord } from '../network/index.ts';

/**
 * Mapping of keel's records to docker's JSON shapes (moby api/swagger.yaml):
 * `Network` (GET /networks, /networks/{id}) and `EndpointSettings`
 * (container NetworkSettings.Networks[name]), and the `PortMap`. Docker's
 * wire formats live in api/ only; the domain hands over its own records.
 */

export function toDockerNetwork(n: NetworkRecord, endpoints: EndpointRecord[]): Record<string, unknown> {
  const containers: Record<string, unknown> = {};
  for (const e of endpoints) {
    containers[e.ContainerId] = {
      Name: e.ContainerName,
      EndpointID: e.EndpointId,
      MacAddress: e.MacAddress,
      IPv4Address: `${e.IPAddress}/${e.IPPrefixLen}`,
      IPv6Address: '',
    };
  }
  const config = n.Subnet ? [{ Subnet: n.Subnet, Gateway: n.Gateway, ...(n.IPRange ? { IPRange: n.IPRange } : {}) }] : [];
  return {
    Name: n.Name,
    Id: n.Id,
    Created: n.Created,
    Scope: 'local',
    Driver: n.Driver,
    EnableIPv6: false,
    IPAM: { Driver: 'default', Options: n.Predefined ? null : {}, Config: config },
    Internal: n.Internal,
    Attachable: false,
    Ingress: false,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: containers,
    Options: n.Options,
    Labels: n.Labels,
  };
}

export function toEndpointSettings(e: EndpointInfo): Record<string, unknown> {
  return {
    IPAMConfig: e.RequestedIp ? { IPv4Address: e.RequestedIp } : null,
    Links: null,
    Aliases: e.Aliases.length || e.NetworkName !== 'bridge' ? [...e.Aliases, e.ContainerId.slice(0, 12)] : null,
    NetworkID: e.NetworkId,
    EndpointID: e.EndpointId,
    Gateway: e.Gateway,
    IPAddress: e.IPAddress,
    IPPrefixLen: e.IPPrefixLen,
    IPv6Gateway: '',
    GlobalIPv6Address: '',
    GlobalIPv6PrefixLen: 0,
    MacAddress: e.MacAddress,
    DriverOpts: null,
  };
}

/** NetworkSettings.Ports: every exposed port, null when not published. */
export function toPortMap(ports: PortInfo[], exposed: string[] = []): Record<string, Array<{ HostIp: string; HostPort: string }> | null> {
  const out: Record<string, Array<{ HostIp: string; HostPort: string }> | null> = {};
  for (const k of exposed) out[k.includes('/') ? k : `${k}/tcp`] = null;
  for (const p of ports) (out[`${p.ContainerPort}/${p.Proto}`] ??= []).push({ HostIp: p.HostIp, HostPort: String(p.HostPort) });
  return out;
}

/** NetworkSettings.Networks[name]: the live endpoint, or docker's endpoint without addresses. */
export function encodeEndpoint(n: NetworkEndpoint): Record<string, unknown> {
  if (n.endpoint) return toEndpointSettings(n.endpoint);
  return {
    IPAMConfig: null,
    Links: null,
    Aliases: n.aliases,
    NetworkID: '',
    EndpointID: '',
    Gateway: '',
    IPAddress: '',
    IPPrefixLen: 0,
    IPv6Gateway: '',
    GlobalIPv6Address: '',
    GlobalIPv6PrefixLen: 0,
    MacAddress: '',
    DriverOpts: null,
  };
}

export function encodeEndpoints(ns: Record<string, NetworkEndpoint>): Record<string, Record<string, unknown>> {
  return Object.fromEntries(Object.entries(ns).map(([name, n]) => [name, encodeEndpoint(n)]));
}
