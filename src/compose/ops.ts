/**
 * The commands that act on a project's existing containers: down, stop,
 * start, restart, kill, rm, pause, unpause. They find containers by the
 * project's labels, so they work on what another compose tool created,
 * and `down` works with only the project name.
 */
import { EngineError } from '../common/errors.ts';
import type { ComposeBackend, ContainerSummary } from './backend.ts';
import { inDependencyOrder } from './graph.ts';
import { restartWithHooks, runHooks, stopWithHooks } from './hooks.ts';
import { imageRef } from './images.ts';
import { runProvider } from './provider.ts';
import { injectFiles } from './inject.ts';
import * as L from './labels.ts';
import type { Reporter } from './reporter.ts';
import { removeNetworks, removeVolumes } from './resources.ts';
import { numberOf, projectContainers, waitDependencies } from './up.ts';
import type { Project } from './types.ts';

/** A project to act on: its model when the files could be loaded, else just its name. */
export interface Target {
  name: string;
  project?: Project;
}

function serviceOf(c: ContainerSummary): string {
  return c.labels[L.SERVICE] ?? '';
}

/** The containers of the named services (all when none are named), sorted by service and number. */
export async function containersOf(
  b: ComposeBackend,
  t: Target,
  services: string[] = [],
  o: { all?: boolean; oneoff?: boolean } = {},
): Promise<ContainerSummary[]> {
  for (const s of services) if (t.project && !t.project.services[s] && !t.project.disabled[s]) throw new EngineError('NOT_FOUND', `no such service: ${s}`);
  const list = o.oneoff ? await b.listContainers(L.projectFilter(t.name), { all: o.all ?? true }) : await projectContainers(b, t.name, o.all ?? true);
  return list
    .filter((c) => !services.length || services.includes(serviceOf(c)))
    .sort((a, c) => serviceOf(a).localeCompare(serviceOf(c)) || numberOf(a) - numberOf(c));
}

/** The model's provider services (none without a model) among `services` (all when none are named). */
function providerServices(t: Target, services: string[] = []): string[] {
  return Object.values(t.project?.services ?? {})
    .filter((s) => s.provider && (!services.length || services.includes(s.name)))
    .map((s) => s.name);
}

/**
 * Runs fn per service in reverse dependency order (dependents first), its
 * containers in parallel; `provider` for each provider service in
 * `providers`, in its place in that order.
 */
async function reverseOrder(
  t: Target,
  containers: ContainerSummary[],
  fn: (c: ContainerSummary) => Promise<void>,
  providers: string[] = [],
  provider?: (service: string) => Promise<void>,
): Promise<void> {
  const byService = new Map<string, ContainerSummary[]>();
  for (const c of containers) byService.set(serviceOf(c), [...(byService.get(serviceOf(c)) ?? []), c]);
  const known = [...new Set([...[...byService.keys()].filter((s) => t.project?.services[s]), ...providers])];
  const unknown = [...byService.keys()].filter((s) => !t.project?.services[s]);
  // services the model does not know (orphans, or no model at all) go first, in parallel
  await Promise.all(unknown.flatMap((s) => byService.get(s)!.map(fn)));
  const one = async (s: string) => {
    if (provider && providers.includes(s)) await provider(s);
    await Promise.all((byService.get(s) ?? []).map(fn));
  };
  if (t.project) await inDependencyOrder(t.project, known, one, true);
}

export async function stop(b: ComposeBackend, t: Target, r: Reporter, services: string[] = [], timeout?: number, signal?: AbortSignal): Promise<void> {
  const list = (await containersOf(b, t, services)).filter((c) => c.state === 'running' || c.state === 'paused' || c.state === 'restarting');
  await reverseOrder(
    t,
    list,
    async (c) => {
      r.event('Container', c.name, 'Stopping');
      await stopWithHooks(b, t.project?.services[serviceOf(c)], c, timeout);
      r.event('Container', c.name, 'Stopped');
    },
    // a provider takes part only when its metadata declares `stop` (provider.ts), as in docker compose
    providerServices(t, services),
    (s) => runProvider(t.project!, s, 'stop', r, { signal }),
  );
}

export interface DownOptions {
  volumes?: boolean;
  removeOrphans?: boolean;
  timeout?: number;
  rmi?: 'local' | 'all';
  /** Bounds the provider services' programs. */
  signal?: AbortSignal;
}

export async function down(b: ComposeBackend, t: Target, r: Reporter, o: DownOptions = {}): Promise<void> {
  let list = await containersOf(b, t, [], { oneoff: true });
  const orphan = (c: ContainerSummary) => t.project !== undefined && !t.project.services[serviceOf(c)] && !t.project.disabled[serviceOf(c)];
  if (!o.removeOrphans) {
    const orphans = list.filter((c) => orphan(c) && c.labels[L.ONEOFF] !== 'True');
    if (orphans.length)
      r.warn(
        `Found orphan containers ([${orphans.map((c) => c.name).join(' ')}]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.`,
      );
    list = list.filter((c) => !orphan(c) || c.labels[L.ONEOFF] === 'True');
  }
  // Only the stops follow the dependency order (a service stops before
  // what it depends on); a stopped container's removal goes on beside the
  // next services' stops instead of holding them up.
  const removals: Promise<void>[] = [];
  const removal = async (c: ContainerSummary) => {
    r.event('Container', c.name, 'Removing');
    await b.removeContainer(c.id, { force: true, volumes: o.volumes });
    r.event('Container', c.name, 'Removed');
  };
  // a provider service whose program fails does not keep the containers and networks: its error is reported once they are gone
  let providerFailure: unknown;
  try {
    await reverseOrder(
      t,
      list,
      async (c) => {
        if (c.state === 'running' || c.state === 'paused' || c.state === 'restarting') {
          r.event('Container', c.name, 'Stopping');
          await stopWithHooks(b, t.project?.services[serviceOf(c)], c, o.timeout);
          r.event('Container', c.name, 'Stopped');
        }
        const p = removal(c);
        p.catch(() => {}); // awaited below, with the others
        removals.push(p);
      },
      providerServices(t),
      async (s) => {
        try {
          await runProvider(t.project!, s, 'down', r, { signal: o.signal });
        } catch (e) {
          if (o.signal?.aborted) throw e;
          providerFailure ??= e;
        }
      },
    );
  } finally {
    await Promise.allSettled(removals);
  }
  await Promise.all(removals);
  await removeNetworks(b, t.name, t.project, r);
  if (o.volumes) await removeVolumes(b, t.name, t.project, r);
  if (o.rmi) {
    const refs = new Set<string>();
    for (const s of Object.values(t.project?.services ?? {})) if ((o.rmi === 'all' || !s.image) && (s.image || !s.provider)) refs.add(imageRef(t.project!, s));
    for (const c of list) if (o.rmi === 'all') refs.add(c.image);
    for (const ref of refs) {
      try {
        await b.removeImage(ref);
        r.event('Image', ref, 'Removed');
      } catch (e) {
        if (!(e instanceof EngineError && (e.code === 'NOT_FOUND' || e.code === 'CONFLICT'))) throw e;
      }
    }
  }
  if (providerFailure !== undefined) throw providerFailure;
}

export async function start(b: ComposeBackend, t: Target, r: Reporter, services: string[] = []): Promise<void> {
  const list = await containersOf(b, t, services);
  if (!list.length) throw new EngineError('NOT_FOUND', services.length ? `service ${services.join(', ')} has no container to start` : 'no container to start');
  const byService = new Map<string, ContainerSummary[]>();
  for (const c of list) byService.set(serviceOf(c), [...(byService.get(serviceOf(c)) ?? []), c]);
  const run = async (s: string) => {
    if (t.project) await waitDependencies(b, t.project, s, [...byService.keys()], r);
    await Promise.all(
      byService
        .get(s)!
        .filter((c) => c.state !== 'running')
        .map(async (c) => {
          r.event('Container', c.name, 'Starting');
          if (t.project?.services[s]) await injectFiles(b, t.project, t.project.services[s], c.id);
          await b.startContainer(c.id);
          await runHooks(b, t.project?.services[s], 'post_start', c.id);
          r.event('Container', c.name, 'Started');
        }),
    );
  };
  if (t.project)
    await inDependencyOrder(
      t.project,
      [...byService.keys()].filter((s) => t.project!.services[s]),
      run,
    );
  else await Promise.all([...byService.keys()].map(run));
}

export async function restart(b: ComposeBackend, t: Target, r: Reporter, services: string[] = [], timeout?: number): Promise<void> {
  const list = await containersOf(b, t, services);
  await Promise.all(
    list.map(async (c) => {
      r.event('Container', c.name, 'Restarting');
      await restartWithHooks(b, t.project?.services[serviceOf(c)], c, timeout);
      r.event('Container', c.name, 'Started');
    }),
  );
}

export async function kill(b: ComposeBackend, t: Target, r: Reporter, services: string[] = [], signal?: string): Promise<void> {
  const list = (await containersOf(b, t, services)).filter((c) => c.state === 'running');
  await Promise.all(
    list.map(async (c) => {
      r.event('Container', c.name, 'Killing');
      await b.killContainer(c.id, signal);
      r.event('Container', c.name, 'Killed');
    }),
  );
}

export async function pause(b: ComposeBackend, t: Target, r: Reporter, services: string[] = [], paused = true): Promise<void> {
  const list = (await containersOf(b, t, services)).filter((c) => (paused ? c.state === 'running' : c.state === 'paused'));
  await Promise.all(
    list.map(async (c) => {
      r.event('Container', c.name, paused ? 'Pausing' : 'Unpausing');
      await (paused ? b.pauseContainer(c.id) : b.unpauseContainer(c.id));
      r.event('Container', c.name, paused ? 'Paused' : 'Unpaused');
    }),
  );
}

/** `rm`: removes stopped service containers (running ones too with `stop`); returns what it removed. */
export async function rm(b: ComposeBackend, t: Target, r: Reporter, services: string[] = [], o: { stop?: boolean; volumes?: boolean } = {}): Promise<string[]> {
  let list = await containersOf(b, t, services);
  if (o.stop) await stop(b, t, r, services);
  else list = list.filter((c) => c.state !== 'running' && c.state !== 'paused' && c.state !== 'restarting');
  for (const c of list) {
    r.event('Container', c.name, 'Removing');
    await b.removeContainer(c.id, { force: true, volumes: o.volumes });
    r.event('Container', c.name, 'Removed');
  }
  return list.map((c) => c.name);
}
