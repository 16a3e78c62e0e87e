import type { EndpointRecord, NetworkRecord, PortMapping, SandboxRecord } from './types.ts';

/**
 * Mapping of keel's records to docker's JSON shapes (moby api/swagger.yaml):
 * `Network` (GET /networks, /networks/{id}) and `EndpointSettings`
 * (container NetworkSettings.Networks[name]), and the `PortMap`.
 */

export function toDockerNetwork(n: NetworkRecord, endpoints: EndpointRecord[]): Record<string, unknown> {
  const containers: Record<string, unknown> = {};
  for (const e of endpoints) {
    containers[e.ContainerId] = {
      Name: e.ContainerName, EndpointID: e.EndpointId, MacAddress: e.MacAddress,
      IPv4Address: `${e.IPAddress}/${e.IPPrefixLen}`, IPv6Address: '',
    };
  }
  const config = n.Subnet ? [{ Subnet: n.Subnet, Gateway: n.Gateway, ...(n.IPRange ? { IPRange: n.IPRange } : {}) }] : [];
  return {
    Name: n.Name, Id: n.Id, Created: n.Created, Scope: 'local', Driver: n.Driver, EnableIPv6: false,
    IPAM: { Driver: 'default', Options: n.Predefined ? null : {}, Config: config },
    Internal: n.Internal, Attachable: false, Ingress: false, ConfigFrom: { Network: '' }, ConfigOnly: false,
    Containers: containers, Options: n.Options, Labels: n.Labels,
  };
}

export function toEndpointSettings(e: EndpointRecord): Record<string, unknown> {
  return {
    IPAMConfig: e.RequestedIp ? { IPv4Address: e.RequestedIp } : null,
    Links: null,
    Aliases: e.Aliases.length || e.NetworkName !== 'bridge' ? [...e.Aliases, e.ContainerId.slice(0, 12)] : null,
    NetworkID: e.NetworkId, EndpointID: e.EndpointId, Gateway: e.Gateway, IPAddress: e.IPAddress, IPPrefixLen: e.IPPrefixLen,
    IPv6Gateway: '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0, MacAddress: e.MacAddress, DriverOpts: null,
  };
}

/** NetworkSettings.Ports: every exposed port, null when not published. */
export function toPortMap(ports: PortMapping[], exposed: string[] = []): Record<string, Array<{ HostIp: string; HostPort: string }> | null> {
  const out: Record<string, Array<{ HostIp: string; HostPort: string }> | null> = {};
  for (const k of exposed) out[k.includes('/') ? k : `${k}/tcp`] = null;
  for (const p of ports) (out[`${p.ContainerPort}/${p.Proto}`] ??= []).push({ HostIp: p.HostIp, HostPort: String(p.HostPort) });
  return out;
}

/** The top-level NetworkSettings fields docker fills from the default bridge endpoint. */
export function toNetworkSettings(sb: SandboxRecord | undefined, exposed: string[] = []): Record<string, unknown> {
  const networks: Record<string, unknown> = {};
  for (const e of Object.values(sb?.Endpoints ?? {})) networks[e.NetworkName] = toEndpointSettings(e);
  if (sb?.Mode === 'host' || sb?.Mode === 'none') networks[sb.Mode] = { NetworkID: '', EndpointID: '', Gateway: '', IPAddress: '', IPPrefixLen: 0, MacAddress: '' };
  const b = Object.values(sb?.Endpoints ?? {}).find((e) => e.NetworkName === 'bridge');
  return {
    Bridge: '', SandboxID: sb?.ContainerId ?? '', HairpinMode: false, LinkLocalIPv6Address: '', LinkLocalIPv6PrefixLen: 0,
    Ports: toPortMap(sb?.Ports ?? [], exposed), SandboxKey: sb?.NetnsPath ?? '', SecondaryIPAddresses: null, SecondaryIPv6Addresses: null,
    EndpointID: b?.EndpointId ?? '', Gateway: b?.Gateway ?? '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0,
    IPAddress: b?.IPAddress ?? '', IPPrefixLen: b?.IPPrefixLen ?? 0, IPv6Gateway: '', MacAddress: b?.MacAddress ?? '',
    Networks: networks,
  };
}
