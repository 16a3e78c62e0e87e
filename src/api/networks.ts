import { EngineError, invalid } from '../common/errors.ts';
import { parseFilters } from '../engine/filters.ts';
import type { CreateNetworkOptions, NetworkRecord } from '../network/index.ts';
import { toDockerNetwork } from './encode-network.ts';
import { qBool, readJsonBody, type Router, sendJson } from './router.ts';

/**
 * Network endpoints (moby api/swagger.yaml "Network"): list, inspect,
 * create, remove, connect, disconnect, prune. Shapes follow dockerd 20.10
 * (shared/reference/docker-api-1.41/net-*.log).
 */
export function networkRoutes(r: Router): void {
  r.add('GET', '/networks', ({ res, engine, query }) => {
    const nets = engine.listNetworks(parseFilters(query.get('filters')));
    // Since API 1.28 the list does not carry the attached containers (swagger: "a smaller representation").
    sendJson(
      res,
      200,
      nets.map((n) => encodeNetwork(n, [])),
    );
  });

  r.add('POST', '/networks/create', async ({ req, res, engine }) => {
    const body = await readJsonBody<CreateBody>(req);
    const out = await engine.createNetwork(decodeCreate(body));
    sendJson(res, 201, out);
  });

  r.add('POST', '/networks/prune', async ({ res, engine, query }) => {
    const gone = await engine.pruneNetworks(parseFilters(query.get('filters')));
    sendJson(res, 200, { NetworksDeleted: gone.length ? gone : null });
  });

  r.add('GET', '/networks/{id}', ({ res, engine, params, query }) => {
    const scope = query.get('scope');
    // Only local networks exist: asking for another scope finds nothing, as dockerd answers.
    if (scope && scope !== 'local') throw new EngineError('NOT_FOUND', `network ${params[0]} not found`);
    void qBool(query, 'verbose');
    const { network, endpoints } = engine.inspectNetwork(params[0]!);
    sendJson(res, 200, encodeNetwork(network, endpoints));
  });

  r.add('DELETE', '/networks/{id}', async ({ res, engine, params }) => {
    await engine.removeNetwork(params[0]!);
    res.writeHead(204);
    res.end();
  });

  r.add('POST', '/networks/{id}/connect', async ({ req, res, engine, params }) => {
    const body = await readJsonBody<ConnectBody>(req);
    if (!body?.Container) throw invalid('Container is required');
    const ec = body.EndpointConfig ?? {};
    await engine.connectNetwork(params[0]!, body.Container, {
      aliases: ec.Aliases ?? undefined,
      ip: ec.IPAMConfig?.IPv4Address || undefined,
      mac: ec.MacAddress || undefined,
    });
    res.writeHead(200, { 'Content-Length': 0 });
    res.end();
  });

  r.add('POST', '/networks/{id}/disconnect', async ({ req, res, engine, params }) => {
    const body = await readJsonBody<{ Container?: string; Force?: boolean }>(req);
    if (!body?.Container) throw invalid('Container is required');
    await engine.disconnectNetwork(params[0]!, body.Container, !!body.Force);
    res.writeHead(200, { 'Content-Length': 0 });
    res.end();
  });
}

/** dockerd shows the predefined networks with null IPAM options and the default bridge's subnet only. */
function encodeNetwork(n: NetworkRecord, endpoints: Parameters<typeof toDockerNetwork>[1]): Record<string, unknown> {
  const out = toDockerNetwork(n, endpoints);
  if (n.Predefined) out.IPAM = { Driver: 'default', Options: null, Config: n.Subnet ? [{ Subnet: n.Subnet }] : [] };
  return out;
}

interface CreateBody {
  Name?: string;
  CheckDuplicate?: boolean;
  Driver?: string;
  Scope?: string;
  Internal?: boolean;
  Attachable?: boolean;
  Ingress?: boolean;
  EnableIPv6?: boolean;
  ConfigOnly?: boolean;
  ConfigFrom?: { Network?: string } | null;
  IPAM?: {
    Driver?: string;
    Options?: Record<string, string> | null;
    Config?: Array<{ Subnet?: string; IPRange?: string; Gateway?: string; AuxiliaryAddresses?: Record<string, string> | null }> | null;
  } | null;
  Options?: Record<string, string> | null;
  Labels?: Record<string, string> | null;
}

interface ConnectBody {
  Container?: string;
  EndpointConfig?: { Aliases?: string[] | null; IPAMConfig?: { IPv4Address?: string; IPv6Address?: string } | null; MacAddress?: string } | null;
}

/** Validates a create request: keel does local IPv4 bridge networks with one address pool. */
export function decodeCreate(b: CreateBody | undefined): CreateNetworkOptions {
  if (!b || typeof b !== 'object') throw invalid('network create needs a JSON body');
  if (typeof b.Name !== 'string' || !b.Name) throw invalid('network name is required');
  if (b.Scope && b.Scope !== 'local') throw invalid(`scope ${b.Scope} is not supported: keel networks are local`);
  if (b.Ingress) throw invalid('ingress networks are a swarm feature and are not supported');
  if (b.ConfigOnly || b.ConfigFrom?.Network) throw invalid('config-only networks are not supported');
  if (b.EnableIPv6) throw invalid('IPv6 networks are not supported by keel');
  const ipam = b.IPAM ?? {};
  if (ipam.Driver && ipam.Driver !== 'default') throw invalid(`IPAM driver ${ipam.Driver} is not supported: use the default driver`);
  const configs = ipam.Config ?? [];
  if (configs.length > 1) throw invalid('only one IPAM pool (one --subnet) per network is supported');
  const c = configs[0] ?? {};
  for (const v of [c.Subnet, c.IPRange, c.Gateway]) if (v && v.includes(':')) throw invalid(`IPv6 address ${v}: IPv6 networks are not supported by keel`);
  if (c.AuxiliaryAddresses && Object.keys(c.AuxiliaryAddresses).length) throw invalid('auxiliary addresses (--aux-address) are not supported');
  for (const [k, v] of Object.entries({ ...(b.Labels ?? {}), ...(b.Options ?? {}) })) {
    if (typeof v !== 'string') throw invalid(`label or option ${k} must be a string`);
  }
  return {
    Name: b.Name,
    Driver: b.Driver || 'bridge',
    Subnet: c.Subnet || undefined,
    Gateway: c.Gateway || undefined,
    IPRange: c.IPRange || undefined,
    Internal: !!b.Internal,
    Labels: b.Labels ?? {},
    Options: b.Options ?? {},
    CheckDuplicate: b.CheckDuplicate,
  };
}
