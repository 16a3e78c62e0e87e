/**
 * The dependency order of services: `up` starts a service once every
 * service it depends on has reached its condition (independent services
 * in parallel); `down`/`stop` go in reverse.
 */
import type { Project, Service } from './types.ts';

/** Runs `fn` for each service once all its dependencies' fn resolved; in parallel otherwise. */
export async function inDependencyOrder(p: Project, names: string[], fn: (name: string) => Promise<void>, reverse = false): Promise<void> {
  const set = new Set(names);
  const deps = new Map<string, string[]>();
  for (const n of names) deps.set(n, []);
  for (const n of names) {
    for (const d of Object.keys(p.services[n]?.depends_on ?? {})) {
      if (!set.has(d)) continue;
      // reverse: a service stops before the services it depends on
      if (reverse) deps.get(d)!.push(n);
      else deps.get(n)!.push(d);
    }
  }
  // after the first failure nothing new starts, and the failure is reported once what is under way has settled
  let failed = false;
  let failure: unknown;
  const done = new Map<string, Promise<void>>();
  const run = (n: string): Promise<void> => {
    let pr = done.get(n);
    if (!pr) {
      pr = Promise.all(deps.get(n)!.map(run))
        .then(() => (failed ? undefined : fn(n)))
        .catch((e: unknown) => {
          if (!failed) failure = e;
          failed = true;
          throw e;
        });
      done.set(n, pr);
    }
    return pr;
  };
  await Promise.allSettled(names.map(run));
  if (failed) throw failure;
}

/** The named services plus everything they depend on (transitively). */
export function withDependencies(p: Project, names: string[]): string[] {
  const out = new Set<string>();
  const add = (n: string) => {
    if (out.has(n) || !p.services[n]) return;
    out.add(n);
    for (const d of Object.keys(p.services[n]!.depends_on)) add(d);
  };
  names.forEach(add);
  return Object.keys(p.services).filter((n) => out.has(n));
}

/**
 * The services whose containers this one's namespaces or volumes_from name
 * (`service:X`, `X[:mode]`): the dependencies compose-go adds for them are
 * in its depends_on (extra-keys.ts, impliedDependencies).
 */
export function referencedServices(svc: Service): string[] {
  const out = new Set<string>();
  for (const mode of [svc.network_mode, svc.ipc, svc.pid]) if (mode?.startsWith('service:')) out.add(mode.slice(8));
  for (const v of svc.volumes_from ?? []) if (!v.startsWith('container:')) out.add(v.split(':')[0]!);
  return [...out];
}
