/**
 * `up` (and `create`): bring the engine to the project's state, as docker
 * compose converges it (pkg/compose/convergence.go):
 *   networks and volumes → images → per service, in dependency order
 *   (independent services in parallel): wait for the dependencies'
 *   conditions, then create what is missing, recreate what changed (config
 *   hash or image), remove replicas above the scale, start what is not
 *   running.
 */
import { EngineError } from '../common/errors.ts';
import type { ComposeBackend, ContainerSummary, NetworkSummary } from './backend.ts';
import { planContainer } from './convert.ts';
import { inDependencyOrder, referencedServices, withDependencies } from './graph.ts';
import { ensureImages, type ImageOptions, prefetchImages, PULL_FLAG_POLICIES } from './images.ts';
import { restartWithHooks, runHooks, stopWithHooks } from './hooks.ts';
import { fileRefWarnings, injectedFiles, injectFiles } from './inject.ts';
import * as L from './labels.ts';
import type { Reporter } from './reporter.ts';
import { ensureNetworks, ensureVolumes, recreateNetworks, recreateVolumes, usedResources } from './resources.ts';
import { inheritedVolumes } from './inherit.ts';
import { runProvider } from './provider.ts';
import { resolveServiceReferences } from './hash.ts';
import { configHash } from './serialize.ts';
import type { Project, Service } from './types.ts';

export interface UpOptions extends ImageOptions {
  services?: string[];
  noDeps?: boolean;
  /** Recreate the targeted services' containers (the named ones, else all) even when unchanged. */
  forceRecreate?: boolean;
  noRecreate?: boolean;
  /** --always-recreate-deps: recreate the dependencies of the named services too. */
  alwaysRecreateDeps?: boolean;
  /** -V: recreate the targeted services' containers with new anonymous volumes instead of the previous containers' ones. */
  renewAnonVolumes?: boolean;
  /** -y: a volume whose configuration changed is removed and created again (docker compose asks first), with its containers. */
  assumeYes?: boolean;
  removeOrphans?: boolean;
  /** --scale service=n */
  scale?: Record<string, number>;
  /** create only (compose create, up --no-start). */
  noStart?: boolean;
  /** The lines lifecycle hooks print, by container (attached `up` shows them as `<service>-<n> ->`). */
  hookOutput?: (container: string, line: string) => void;
  /** Stop timeout (seconds) for recreated containers. */
  timeout?: number;
}

export const numberOf = (c: ContainerSummary) => Number(c.labels[L.NUMBER] ?? 0);
const running = (c: ContainerSummary) => c.state === 'running' || c.state === 'restarting' || c.state === 'paused';

/** The project's service containers (not one-off `run` containers). */
export async function projectContainers(b: ComposeBackend, project: string, all = true): Promise<ContainerSummary[]> {
  const list = await b.listContainers(L.projectFilter(project), { all });
  return list.filter((c) => c.labels[L.ONEOFF] !== 'True');
}

/** The services `run svc` starts first: everything svc depends on, without svc. */
export function withDeps(p: Project, name: string): string[] {
  return withDependencies(p, [name]).filter((n) => n !== name);
}

/** The services `up svc...` acts on: the named ones with their dependencies (unless --no-deps), else all. */
export function selectServices(p: Project, names: string[] | undefined, noDeps = false): string[] {
  for (const n of names ?? []) if (!p.services[n]) throw new EngineError('NOT_FOUND', `no such service: ${n}`);
  if (!names?.length) return Object.keys(p.services);
  return noDeps ? names : withDependencies(p, names);
}

export async function up(b: ComposeBackend, p: Project, r: Reporter, o: UpOptions = {}): Promise<void> {
  if (o.pull !== undefined && !PULL_FLAG_POLICIES.includes(o.pull)) throw new EngineError('INVALID_ARGUMENT', `invalid --pull option "${o.pull}"`);
  const services = selectServices(p, o.services, o.noDeps);
  const withModels = services.filter((n) => Object.keys(p.services[n]!.models ?? {}).length);
  // keel has no Docker Model Runner: docker compose without its model plugin refuses the same way
  if (withModels.length)
    throw new EngineError('UNAVAILABLE', `'models' support requires Docker Model plugin (used by service ${withModels.join(', ')}): keel does not provide it`);
  // provider services have no container: no image, no files; their program runs in dependency order below
  const containerServices = services.filter((n) => !p.services[n]!.provider);
  // a secret or config that cannot be made (a variable not set) fails up before anything is created
  if (!o.noStart) for (const n of containerServices) injectedFiles(p, p.services[n]!);
  const scale = (name: string) => o.scale?.[name] ?? p.services[name]!.scale;
  for (const [n, v] of Object.entries(o.scale ?? {})) {
    if (!p.services[n]) throw new EngineError('NOT_FOUND', `no such service: ${n}`);
    if (p.services[n]!.container_name && v > 1)
      throw new EngineError(
        'INVALID_ARGUMENT',
        `service "${n}": container_name "${p.services[n]!.container_name}" cannot be used with --scale ${v}: container names must be unique`,
      );
  }
  const used = usedResources(p, services);
  // what the project has, asked for at once: on a no-op up these answers are all the engine work there is
  const inspections = prefetchImages(b, p, containerServices, o);
  const [networks, volumes, listed] = await Promise.all([
    used.networks.length ? b.listNetworks(L.projectFilter(p.name)) : [],
    used.volumes.length ? b.listVolumes(L.projectFilter(p.name)) : [],
    projectContainers(b, p.name),
  ]);
  const diverged = new Map<string, NetworkSummary>();
  const networkIds = await ensureNetworks(b, p, used.networks, r, networks, diverged);
  const gone = diverged.size ? await recreateNetworks(b, p, diverged, listed, services, r, networkIds) : new Set<string>();
  // --force-recreate and -V apply to the named services (all when none is named); their dependencies follow --always-recreate-deps
  const targeted = (name: string) => !o.services?.length || o.services.includes(name);
  const staleVolumes = await ensureVolumes(b, p, used.volumes, r, volumes, o.assumeYes);
  const kept = listed.filter((c) => !gone.has(c.id));
  if (staleVolumes.length) for (const id of await recreateVolumes(b, p, staleVolumes, kept, r)) gone.add(id);
  let slow = false;
  const images = await ensureImages(b, p, containerServices, { ...r, event: (...a) => ((slow = true), r.event(...a)) }, o, inspections);
  // a pull or a build takes long enough for the containers to change meanwhile: list them again
  const existing = slow || gone.size ? await projectContainers(b, p.name) : listed;
  const orphans = existing.filter((c) => !p.services[c.labels[L.SERVICE] ?? ''] && !p.disabled[c.labels[L.SERVICE] ?? '']);
  if (orphans.length) {
    if (o.removeOrphans) {
      for (const c of orphans) {
        r.event('Container', c.name, 'Removing');
        await b.removeContainer(c.id, { force: true });
        r.event('Container', c.name, 'Removed');
      }
    } else
      r.warn(
        `Found orphan containers ([${orphans.map((c) => c.name).join(' ')}]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.`,
      );
  }
  const firstContainer = new Map<string, string>();
  const recreated = new Set<string>();
  // docker compose takes a referenced service's first container by name
  const containerOf = (svc: string) =>
    firstContainer.get(svc) ?? existing.filter((c) => c.labels[L.SERVICE] === svc).sort((a, c) => (a.name < c.name ? -1 : a.name > c.name ? 1 : 0))[0]?.id;
  const serviceContainer = (svc: string) => {
    const id = containerOf(svc);
    if (!id) throw new EngineError('NOT_FOUND', `service "${svc}" has no container (referenced by service:${svc} or volumes_from)`);
    return id;
  };
  await inDependencyOrder(p, services, async (name) => {
    // where its container would start, the provider's program runs; its dependents' environment takes what it gave
    if (p.services[name]!.provider) return runProvider(p, name, 'up', r, { signal: o.signal });
    if (!o.noStart) await waitDependencies(b, p, name, services, r, o.signal);
    // a dependency with `restart: true` that was recreated restarts this service's running containers
    const restartFor = Object.entries(p.services[name]!.depends_on).some(([dep, c]) => c.restart && recreated.has(dep));
    // a container in another service's namespace, or with its volumes, must be recreated with that service's new container
    const lenderRecreated = referencedServices(p.services[name]!).some((x) => recreated.has(x));
    const res = await convergeService(
      b,
      p,
      name,
      scale(name),
      images.get(name)!,
      existing.filter((c) => c.labels[L.SERVICE] === name),
      r,
      {
        ...o,
        serviceContainer,
        containerOf,
        networkIds,
        restartKept: restartFor,
        forceRecreate: (targeted(name) ? o.forceRecreate || o.renewAnonVolumes : o.alwaysRecreateDeps) || lenderRecreated,
        inherit: !(targeted(name) && o.renewAnonVolumes),
      },
    );
    if (res.ids[0]) firstContainer.set(name, res.ids[0]);
    if (res.changed) recreated.add(name);
  });
}

interface ConvergeOptions extends UpOptions {
  serviceContainer: (service: string) => string;
  containerOf: (service: string) => string | undefined;
  /** The project's networks' ids by key. */
  networkIds: Map<string, string>;
  /** Restart the running containers that are kept (a dependency was recreated). */
  restartKept?: boolean;
  /** A recreated container takes over its predecessor's anonymous volumes (docker compose's Inherit). */
  inherit?: boolean;
}

async function createOne(
  b: ComposeBackend,
  p: Project,
  name: string,
  n: number,
  imageId: string,
  r: Reporter,
  o: ConvergeOptions,
  previous?: ContainerSummary,
): Promise<string> {
  const inherited = previous && o.inherit !== false ? await inheritedVolumes(b, p, p.services[name]!, previous) : undefined;
  const plan = planContainer(p, p.services[name]!, n, { imageId, serviceContainer: o.serviceContainer, inherited });
  for (const w of fileRefWarnings(p, p.services[name]!)) r.warn(w);
  r.event('Container', plan.spec.name, 'Creating');
  const id = await b.createContainer(plan.spec);
  try {
    for (const net of plan.extraNetworks) await b.connectNetwork(net.name, id, net.endpoint);
  } catch (e) {
    // undoing a half-made container: the connect error is the one to report
    await b.removeContainer(id, { force: true }).catch(() => {});
    throw e;
  }
  r.event('Container', plan.spec.name, 'Created');
  return id;
}

/** Converges one service's containers: their ids by number, and whether any was created or recreated. */
async function convergeService(
  b: ComposeBackend,
  p: Project,
  name: string,
  scale: number,
  imageId: string,
  current: ContainerSummary[],
  r: Reporter,
  o: ConvergeOptions,
): Promise<{ ids: string[]; changed: boolean }> {
  const s = p.services[name]!;
  const hash = configHash(resolveServiceReferences(s, o.containerOf));
  const byNumber = [...current].sort((a, c) => numberOf(a) - numberOf(c));
  const ids: string[] = [];
  const toStart: { id: string; name: string }[] = [];
  // replicas above the scale go first, highest numbers first
  for (const c of byNumber.filter((x) => numberOf(x) > scale || numberOf(x) < 1).reverse()) {
    r.event('Container', c.name, 'Stopping');
    await stopWithHooks(b, s, c, o.timeout);
    r.event('Container', c.name, 'Stopped');
    r.event('Container', c.name, 'Removing');
    await b.removeContainer(c.id, { force: true });
    r.event('Container', c.name, 'Removed');
  }
  const keep = byNumber.filter((x) => numberOf(x) >= 1 && numberOf(x) <= scale);
  for (let n = 1; n <= scale; n++) {
    const c = keep.find((x) => numberOf(x) === n);
    if (!c) {
      const id = await createOne(b, p, name, n, imageId, r, o);
      ids.push(id);
      toStart.push({ id, name: s.container_name ?? L.containerName(p.name, name, n) });
      continue;
    }
    const diverged = c.labels[L.CONFIG_HASH] !== hash || c.labels[L.IMAGE] !== imageId || detached(p, s, c, o.networkIds);
    if (o.forceRecreate || (diverged && !o.noRecreate)) {
      r.event('Container', c.name, 'Recreate');
      await stopWithHooks(b, s, c, o.timeout);
      // the old container steps aside under a temporary name, and comes back if its successor cannot be created
      const aside = `${c.id.slice(0, 12)}_${c.name}`;
      await b.renameContainer(c.id, aside);
      let id: string;
      try {
        id = await createOne(b, p, name, n, imageId, r, o, c);
      } catch (e) {
        // putting the old container's name back after a failed replacement; the create error is the one to report
        await b.renameContainer(c.id, c.name).catch(() => {});
        throw e;
      }
      await b.removeContainer(c.id, { force: true });
      r.event('Container', c.name, 'Recreated');
      ids.push(id);
      toStart.push({ id, name: c.name });
    } else {
      ids.push(c.id);
      if (!running(c)) toStart.push({ id: c.id, name: c.name });
      else if (o.restartKept && !o.noStart) {
        r.event('Container', c.name, 'Restarting');
        await restartWithHooks(b, s, c, o.timeout);
        r.event('Container', c.name, 'Started');
      } else r.event('Container', c.name, 'Running');
    }
  }
  if (!o.noStart) {
    await Promise.all(
      toStart.map(async (c) => {
        r.event('Container', c.name, 'Starting');
        // inline secrets and configs are copied in before each start, with their current values, as docker compose does
        await injectFiles(b, p, s, c.id);
        await b.startContainer(c.id);
        await runHooks(b, s, 'post_start', c.id, o.hookOutput && ((l) => o.hookOutput!(c.name, l)));
        r.event('Container', c.name, 'Started');
      }),
    );
  }
  return { ids, changed: toStart.length > 0 && toStart.some((t) => !current.some((c) => c.id === t.id)) };
}

/**
 * A container that lacks one of its service's networks (while it runs) or
 * volumes: the network or volume was replaced under the same key, or the
 * container was disconnected. docker compose recreates it
 * (hasNetworkMismatch, hasVolumeMismatch); so does keel, when the engine
 * lists what the container is connected to and mounts.
 */
function detached(p: Project, s: Service, c: ContainerSummary, networkIds: Map<string, string>): boolean {
  if (c.networkIds && c.state === 'running' && !s.network_mode) {
    for (const key of Object.keys(s.networks ?? {})) {
      const id = networkIds.get(key);
      if (id && !c.networkIds.includes(id)) return true;
    }
  }
  if (c.mounts) {
    for (const v of s.volumes) {
      const name = v.type === 'volume' && v.source ? p.volumes[v.source]?.name : undefined;
      if (name && !c.mounts.some((m) => m.name === name)) return true;
    }
  }
  return false;
}

/** Waits until every dependency of `name` (among the services being brought up) meets its condition. */
export async function waitDependencies(b: ComposeBackend, p: Project, name: string, services: string[], r: Reporter, signal?: AbortSignal): Promise<void> {
  const deps = Object.entries(p.services[name]!.depends_on).filter(([d]) => services.includes(d));
  await Promise.all(
    deps.map(async ([dep, cond]) => {
      if (cond.condition === 'service_started') return;
      const containers = (await b.listContainers(L.serviceFilter(p.name, dep), { all: true })).filter((c) => c.labels[L.ONEOFF] !== 'True');
      await Promise.all(
        containers.map(async (c) => {
          r.event('Container', c.name, 'Waiting');
          if (cond.condition === 'service_completed_successfully') {
            const code = await b.waitContainer(c.id, signal);
            if (code !== 0) throw new EngineError('INVALID_ARGUMENT', `service "${dep}" didn't complete successfully: exit ${code}`);
            r.event('Container', c.name, 'Exited');
            return;
          }
          await waitHealthy(b, c.id, c.name, signal);
          r.event('Container', c.name, 'Healthy');
        }),
      );
    }),
  );
}

/** Polls a container's health until healthy; an unhealthy or exited container fails the wait. */
export async function waitHealthy(b: ComposeBackend, id: string, name: string, signal?: AbortSignal, deadline = Infinity): Promise<void> {
  for (let delay = 100; ; delay = Math.min(delay * 2, 1000)) {
    const d = await b.inspectContainer(id);
    if (d.health === undefined || d.health === 'none') throw new EngineError('INVALID_ARGUMENT', `container ${name} has no healthcheck configured`);
    if (d.health === 'healthy') return;
    if (d.health === 'unhealthy') throw new EngineError('INVALID_ARGUMENT', `dependency failed to start: container ${name} is unhealthy`);
    if (!d.running) throw new EngineError('INVALID_ARGUMENT', `dependency failed to start: container ${name} exited (${d.exitCode})`);
    if (signal?.aborted) throw new EngineError('CANCELLED', 'cancelled');
    if (Date.now() > deadline) throw new EngineError('TIMEOUT', `container ${name} did not become healthy in time`);
    await new Promise((res) => setTimeout(res, delay));
  }
}

/**
 * `up --wait`: every container of the services running, and healthy when
 * it has a healthcheck; a container that exited fails the wait unless it
 * completed successfully and has no restart policy (a one-shot task).
 */
export async function waitProject(b: ComposeBackend, p: Project, services: string[], r: Reporter, deadline = Infinity): Promise<void> {
  const list = (await projectContainers(b, p.name)).filter((c) => services.includes(c.labels[L.SERVICE] ?? ''));
  await Promise.all(
    list.map(async (c) => {
      r.event('Container', c.name, 'Waiting');
      const d = await b.inspectContainer(c.id);
      const checked = d.health !== undefined && d.health !== 'none';
      if (checked) await waitHealthy(b, c.id, c.name, undefined, deadline);
      else if (!d.running && !(p.services[c.labels[L.SERVICE] ?? '']?.restart === undefined && d.exitCode === 0)) {
        throw new EngineError('INVALID_ARGUMENT', `container ${c.name} exited (${d.exitCode})`);
      }
      r.event('Container', c.name, checked ? 'Healthy' : 'Running');
    }),
  );
}
