/**
 * A project's networks and volumes: created on `up` with compose's labels
 * when missing, checked when they exist (one created by something else
 * under the same name is used, with a warning, as docker compose does),
 * removed on `down` (external ones never).
 */
import { EngineError } from '../common/errors.ts';
import type { ComposeBackend, ContainerSummary, NetworkSummary, VolumeSummary } from './backend.ts';
import * as L from './labels.ts';
import type { Reporter } from './reporter.ts';
import { networkHash, volumeHash } from './resource-hash.ts';
import type { Project } from './types.ts';

/** The network and volume keys the given services use (and `default` when they use it). */
export function usedResources(p: Project, services: string[]): { networks: string[]; volumes: string[] } {
  const networks = new Set<string>();
  const volumes = new Set<string>();
  for (const n of services) {
    const s = p.services[n]!;
    for (const k of Object.keys(s.networks ?? {})) networks.add(k);
    for (const v of s.volumes) if (v.type === 'volume' && v.source) volumes.add(v.source);
  }
  return { networks: [...networks], volumes: [...volumes] };
}

/**
 * `known`: the networks carrying the project's label, listed beforehand (one
 * request instead of one inspect per network: the no-op `up` is mostly such
 * round trips); a network not among them is inspected by name.
 */
export async function ensureNetworks(
  b: ComposeBackend,
  p: Project,
  keys: string[],
  r: Reporter,
  known: NetworkSummary[] = [],
  diverged?: Map<string, NetworkSummary>,
): Promise<Map<string, string>> {
  // the id of each network by key: a container not connected to it is recreated (as docker compose's hasNetworkMismatch)
  const ids = new Map<string, string>();
  await Promise.all(
    keys.map(async (key) => {
      const n = p.networks[key]!;
      const found = known.find((k) => k.name === n.name) ?? (await b.inspectNetwork(n.name));
      if (found) ids.set(key, found.id);
      if (n.external) {
        if (!found) throw new EngineError('NOT_FOUND', `network ${n.name} declared as external, but could not be found`);
        return;
      }
      if (found) {
        if (found.labels[L.PROJECT] !== undefined && found.labels[L.PROJECT] !== p.name) {
          r.warn(`a network with name ${n.name} exists but was not created for project "${p.name}". Set \`external: true\` to use an existing network`);
        }
        // one this project made from another configuration (its hash label differs; none recorded: left alone, as docker compose)
        const hash = found.labels[L.CONFIG_HASH];
        if (diverged && found.labels[L.PROJECT] === p.name && hash && hash !== networkHash(n)) diverged.set(key, found);
        return;
      }
      r.event('Network', n.name, 'Creating');
      const ipam = n.ipam
        ? {
            Driver: n.ipam.driver,
            Config: (n.ipam.config ?? []).map((c) => ({ Subnet: c.subnet, Gateway: c.gateway, IPRange: c.ip_range, AuxiliaryAddresses: c.aux_addresses })),
            Options: n.ipam.options,
          }
        : undefined;
      try {
        const id = await b.createNetwork({
          name: n.name,
          driver: n.driver,
          internal: n.internal,
          attachable: n.attachable,
          enableIPv6: n.enable_ipv6,
          options: n.driver_opts,
          ipam,
          labels: { ...n.labels, [L.PROJECT]: p.name, [L.NETWORK]: key, [L.VERSION]: L.COMPOSE_VERSION, [L.CONFIG_HASH]: networkHash(n) },
        });
        if (id) ids.set(key, id);
      } catch (e) {
        // a concurrent up of the same project created it first
        if (!(e instanceof EngineError && e.code === 'CONFLICT')) throw e;
        const other = await b.inspectNetwork(n.name);
        if (other) ids.set(key, other.id);
      }
      r.event('Network', n.name, 'Created');
    }),
  );
  return ids;
}

/**
 * `known`: the volumes carrying the project's label, listed beforehand (as
 * for ensureNetworks). Returns the keys of the volumes this project made
 * from another configuration when `recreate` (up -y) asks to make them anew.
 */
export async function ensureVolumes(
  b: ComposeBackend,
  p: Project,
  keys: string[],
  r: Reporter,
  known: VolumeSummary[] = [],
  recreate = false,
): Promise<string[]> {
  const stale: string[] = [];
  await Promise.all(
    keys.map(async (key) => {
      const v = p.volumes[key]!;
      const found = known.find((k) => k.name === v.name) ?? (await b.inspectVolume(v.name));
      if (v.external) {
        if (!found) throw new EngineError('NOT_FOUND', `external volume "${v.name}" not found`);
        return;
      }
      if (found) {
        if (found.labels[L.PROJECT] !== undefined && found.labels[L.PROJECT] !== p.name) {
          r.warn(`volume "${v.name}" already exists but was not created for project "${p.name}". Use \`external: true\` to use an existing volume`);
        }
        // docker compose asks before recreating (the data would be lost) and, unanswered, keeps it
        const hash = found.labels[L.CONFIG_HASH];
        if (found.labels[L.PROJECT] === p.name && hash && hash !== volumeHash(v)) {
          if (recreate) stale.push(key);
          else r.warn(`volume "${v.name}" exists but doesn't match configuration in compose file; it is kept (remove it with down -v to recreate it)`);
        }
        return;
      }
      r.event('Volume', v.name, 'Creating');
      await b.createVolume({
        name: v.name,
        driver: v.driver,
        driverOpts: v.driver_opts,
        labels: { ...v.labels, [L.PROJECT]: p.name, [L.VOLUME]: key, [L.VERSION]: L.COMPOSE_VERSION, [L.CONFIG_HASH]: volumeHash(v) },
      });
      r.event('Volume', v.name, 'Created');
    }),
  );
  return stale;
}

/**
 * `up -y`: volumes whose configuration changed are made anew, as docker
 * compose does once its question is answered yes (planRecreateVolumes): the
 * project's containers mounting them are stopped and removed (the engine
 * keeps a volume a container refers to), the volume removed and created.
 * Returns the ids of the containers removed (the convergence creates them again).
 */
export async function recreateVolumes(b: ComposeBackend, p: Project, keys: string[], containers: ContainerSummary[], r: Reporter): Promise<Set<string>> {
  const removed = new Set<string>();
  for (const key of keys) {
    const name = p.volumes[key]!.name;
    await removeUsers(
      b,
      containers.filter((c) => c.mounts?.some((m) => m.name === name) && !removed.has(c.id)),
      r,
      removed,
      true,
    );
    r.event('Volume', name, 'Removing');
    await b.removeVolume(name);
    r.event('Volume', name, 'Removed');
  }
  await ensureVolumes(b, p, keys, r);
  return removed;
}

/** Removes the containers in the way of a network or volume made anew (stopped first when `stop`), adding their ids to `removed`. */
async function removeUsers(b: ComposeBackend, users: ContainerSummary[], r: Reporter, removed: Set<string>, stop = false): Promise<void> {
  for (const c of users) {
    r.event('Container', c.name, 'Removing');
    if (stop) await b.stopContainer(c.id);
    await b.removeContainer(c.id, { force: true });
    r.event('Container', c.name, 'Removed');
    removed.add(c.id);
  }
}

/** Removes the project's networks (found by label, so a project without its files still cleans up). */
export async function removeNetworks(b: ComposeBackend, project: string, p: Project | undefined, r: Reporter): Promise<void> {
  const listed = await b.listNetworks(L.projectFilter(project));
  const names = new Set(listed.map((n) => n.name));
  for (const n of Object.values(p?.networks ?? {})) if (!n.external) names.add(n.name);
  await Promise.all(
    [...names].map(async (name) => {
      // one the list found carries the project's label; any other is looked up by name
      const found = listed.find((n) => n.name === name) ?? (await b.inspectNetwork(name));
      if (!found || (found.labels[L.PROJECT] !== undefined && found.labels[L.PROJECT] !== project)) return;
      r.event('Network', name, 'Removing');
      try {
        await b.removeNetwork(found.id);
      } catch (e) {
        if (!(e instanceof EngineError && e.code === 'NOT_FOUND')) throw e;
      }
      r.event('Network', name, 'Removed');
    }),
  );
}

/** Removes the project's named volumes (`down -v`). */
export async function removeVolumes(b: ComposeBackend, project: string, p: Project | undefined, r: Reporter): Promise<void> {
  const listed = await b.listVolumes(L.projectFilter(project));
  const names = new Set(listed.map((v) => v.name));
  for (const v of Object.values(p?.volumes ?? {})) if (!v.external) names.add(v.name);
  await Promise.all(
    [...names].map(async (name) => {
      const found = listed.find((v) => v.name === name) ?? (await b.inspectVolume(name));
      if (!found || (found.labels[L.PROJECT] !== undefined && found.labels[L.PROJECT] !== project)) return;
      r.event('Volume', name, 'Removing');
      try {
        await b.removeVolume(name);
      } catch (e) {
        if (!(e instanceof EngineError && e.code === 'NOT_FOUND')) throw e;
      }
      r.event('Volume', name, 'Removed');
    }),
  );
}

/**
 * Networks this project made from another configuration are made anew, as
 * docker compose does (reconcileNetworks). The containers on them go with
 * them and the convergence creates them again (docker compose keeps them
 * and reconnects them). A network that containers of services outside
 * this `up` are on is left as it is, with a warning. Returns the ids of the
 * containers removed; `ids` gets the new networks' ids.
 */
export async function recreateNetworks(
  b: ComposeBackend,
  p: Project,
  diverged: Map<string, NetworkSummary>,
  containers: ContainerSummary[],
  services: string[],
  r: Reporter,
  ids: Map<string, string>,
): Promise<Set<string>> {
  const removed = new Set<string>();
  for (const [key, found] of diverged) {
    const n = p.networks[key]!;
    const attached = containers.filter((c) => c.networkIds?.includes(found.id));
    const others = attached.filter((c) => !services.includes(c.labels[L.SERVICE] ?? ''));
    if (others.length || attached.some((c) => !c.networkIds)) {
      r.warn(`network ${n.name} has been modified in the compose file; bring all the services using it up (or down) to recreate it`);
      continue;
    }
    await removeUsers(b, attached, r, removed);
    r.event('Network', n.name, 'Removing');
    await b.removeNetwork(found.id);
    r.event('Network', n.name, 'Removed');
    const made = await ensureNetworks(b, p, [key], r);
    ids.set(key, made.get(key)!);
  }
  return removed;
}
