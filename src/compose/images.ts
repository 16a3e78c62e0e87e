/**
 * The image each service runs: pulled or built per its pull_policy and
 * build section, as docker compose decides (an image that is present is
 * used; a missing one is pulled, or built when the service has `build:`).
 */
import { EngineError } from '../common/errors.ts';
import type { ComposeBackend, Progress } from './backend.ts';
import type { Reporter } from './reporter.ts';
import type { Project, Service } from './types.ts';
import { GO_DURATION_UNITS, goDuration } from './units.ts';

export interface ImageOptions {
  /** up --build / compose build: build every service that has a build section. */
  build?: boolean;
  /** up --no-build: never build. */
  noBuild?: boolean;
  /** up --pull: replaces every service's pull_policy (one of PULL_FLAG_POLICIES). */
  pull?: string;
  signal?: AbortSignal;
  onProgress?: (service: string, p: Progress) => void;
}

/** The image name a service's containers are created from (`<project>-<service>` for a build without `image:`). */
export function imageRef(p: Project, s: Service): string {
  return s.image ?? `${p.name}-${s.name}`;
}

export async function buildService(b: ComposeBackend, p: Project, s: Service, r: Reporter, o: ImageOptions): Promise<string> {
  const bc = s.build!;
  const ref = imageRef(p, s);
  r.event('Service', s.name, 'Building');
  const args: Record<string, string> = {};
  // an arg without a value takes it from the environment compose runs in, or is left out
  for (const [k, v] of Object.entries(bc.args ?? {})) {
    const val = v ?? p.environment[k];
    if (val !== undefined) args[k] = val;
  }
  const id = await b.build(
    {
      context: bc.context,
      dockerfile: bc.dockerfile,
      dockerfileInline: bc.dockerfile_inline,
      args,
      target: bc.target,
      labels: bc.labels,
      tags: [ref, ...(bc.tags ?? [])],
      noCache: bc.no_cache,
      pull: bc.pull,
      cacheFrom: bc.cache_from,
      network: bc.network,
      shmSize: bc.shm_size,
      extraHosts: bc.extra_hosts ? Object.entries(bc.extra_hosts).flatMap(([h, ips]) => ips.map((ip) => `${h}:${ip}`)) : undefined,
    },
    (pr) => o.onProgress?.(s.name, pr),
    o.signal,
  );
  r.event('Service', s.name, 'Built');
  return id;
}

async function pull(b: ComposeBackend, s: Service, ref: string, r: Reporter, o: ImageOptions): Promise<void> {
  r.event('Image', ref, 'Pulling');
  await b.pullImage(ref, (pr) => o.onProgress?.(s.name, pr), o.signal, s.platform);
  r.event('Image', ref, 'Pulled');
}

/** Inspections of images by reference, each asked once (services sharing an image). */
export type Inspections = Map<string, ReturnType<ComposeBackend['inspectImage']>>;

/** The pull policies `--pull` takes (docker compose's validPullPolicies). */
export const PULL_FLAG_POLICIES = ['always', 'missing', 'never', 'build', 'if_not_present'];

export interface PullPolicy {
  policy: 'always' | 'missing' | 'never' | 'build' | 'refresh';
  /** refresh: pull when the image was last tagged longer ago than this (ms). */
  every?: number;
}

/** compose-go's refresh windows: Go's duration units, and days and weeks (ns). */
const WINDOW_UNITS = { ...GO_DURATION_UNITS, d: 86400e9, w: 604800e9 };

/**
 * A pull_policy as compose-go reads it (ServiceConfig.GetPullPolicy):
 * `daily`, `weekly` and `every_<duration>` (units w, d, h, m, s, ms, us, ns)
 * refresh the image once it was last pulled longer ago; anything else it
 * does not name, `refresh` itself included, is `missing`.
 */
export function pullPolicy(v: string | undefined, service = ''): PullPolicy {
  switch (v) {
    case 'always':
    case 'never':
    case 'build':
    case 'missing':
      return { policy: v };
    case 'daily':
      return { policy: 'refresh', every: WINDOW_UNITS.d / 1e6 };
    case 'weekly':
      return { policy: 'refresh', every: WINDOW_UNITS.w / 1e6 };
  }
  if (v?.startsWith('every_')) {
    const ns = goDuration(v.slice(6), WINDOW_UNITS);
    if (ns === undefined || ns < 0)
      throw new EngineError('INVALID_ARGUMENT', `service "${service}": invalid pull_policy "${v}": use every_ and a duration such as 12h or 1d12h`);
    return { policy: 'refresh', every: ns / 1e6 };
  }
  return { policy: 'missing' };
}

/** A refresh policy's verdict on a present image: pull when its last tag (pull) is older than the window. */
export function refreshDue(p: PullPolicy, lastTagTime: number | undefined, now = Date.now()): boolean {
  return p.policy === 'refresh' && now > (lastTagTime ?? 0) + (p.every ?? 0);
}

const policyOf = (s: Service, o: ImageOptions) => pullPolicy(o.pull ?? s.pull_policy, s.name);

/** Whether the service's image is built before anything else is looked at: `--build`, or `pull_policy: build` with a build section. */
const buildsFirst = (s: Service, o: ImageOptions) => !!s.build && !o.noBuild && (!!o.build || policyOf(s, o).policy === 'build');

/** Whether ensureImages looks at the service's image as it is (else it builds or pulls first). */
function inspectsFirst(s: Service, o: ImageOptions): boolean {
  return !buildsFirst(s, o) && !(policyOf(s, o).policy === 'always' && s.image);
}

/**
 * Starts the inspections ensureImages will make, so `up` asks for them
 * together with its other lists (on a no-op up they are all the engine work
 * there is). A failure is ensureImages' to report.
 */
export function prefetchImages(b: ComposeBackend, p: Project, services: string[], o: ImageOptions = {}): Inspections {
  const inspected: Inspections = new Map();
  for (const name of services) {
    const s = p.services[name]!;
    const ref = imageRef(p, s);
    if (!inspectsFirst(s, o) || inspected.has(ref)) continue;
    const pr = b.inspectImage(ref);
    pr.catch(() => {});
    inspected.set(ref, pr);
  }
  return inspected;
}

/** Makes sure every service's image exists; the image ids by service. */
export async function ensureImages(
  b: ComposeBackend,
  p: Project,
  services: string[],
  r: Reporter,
  o: ImageOptions = {},
  inspected: Inspections = new Map(),
): Promise<Map<string, string>> {
  const ids = new Map<string, string>();
  const toBuild: Service[] = [];
  const inspect = (ref: string) => {
    let pr = inspected.get(ref);
    if (!pr) inspected.set(ref, (pr = b.inspectImage(ref)));
    return pr;
  };
  await Promise.all(
    services.map(async (name) => {
      const s = p.services[name]!;
      const ref = imageRef(p, s);
      const policy = policyOf(s, o);
      if (buildsFirst(s, o)) return void toBuild.push(s);
      let img = inspectsFirst(s, o) ? await inspect(ref) : undefined;
      if (img && refreshDue(policy, img.lastTagTime) && s.image) {
        try {
          await pull(b, s, ref, r, o);
          img = await b.inspectImage(ref);
        } catch (e) {
          // a refresh that fails keeps the image there is, when the service could build it (docker compose ignores such pull errors)
          if (!s.build || o.signal?.aborted) throw e;
          r.warn(`service "${name}": refreshing ${ref} failed: ${(e as Error).message}`);
        }
      }
      if (!img) {
        if (s.build && !o.noBuild && policy.policy !== 'always') return void toBuild.push(s);
        if (policy.policy === 'never' || policy.policy === 'build')
          throw new EngineError('NOT_FOUND', `service "${name}": image ${ref} not found and pull_policy is ${policy.policy}`);
        if (!s.image) throw new EngineError('NOT_FOUND', `service "${name}": image ${ref} not found; build it first (compose build)`);
        await pull(b, s, ref, r, o);
        img = await b.inspectImage(ref);
        if (!img) throw new EngineError('NOT_FOUND', `service "${name}": image ${ref} not found after pulling it`);
      }
      ids.set(name, img.id);
    }),
  );
  // builds one at a time: each may use the whole machine
  for (const s of toBuild.sort((a, b) => a.name.localeCompare(b.name))) {
    const id = await buildService(b, p, s, r, o);
    ids.set(s.name, id || (await b.inspectImage(imageRef(p, s)))?.id || '');
  }
  return ids;
}

/** Whether a reference names a `latest` tag (written, or the default of one without tag or digest). Loaded here: only `compose pull` asks. */
async function isLatest(ref: string): Promise<boolean> {
  const { parseReference } = await import('../oci/reference.ts');
  try {
    const r = parseReference(ref, { defaultTag: true });
    return !r.digest && r.tag === 'latest';
  } catch {
    return false;
  }
}

/**
 * `compose pull`: whether a service's image is pulled, as docker compose
 * decides (shouldPullImage): always when the service sets no pull_policy;
 * never with `never` or `build`; with `always` or a refresh window, yes (an
 * explicit pull is due now); with `missing`, when the image is absent or
 * its tag is `latest`, else skipped as present.
 */
export async function pullWanted(b: ComposeBackend, s: Service): Promise<{ pull: boolean; skipped?: string }> {
  if (!s.image) return { pull: false };
  if (s.pull_policy === undefined) return { pull: true };
  const { policy } = pullPolicy(s.pull_policy, s.name);
  if (policy === 'never' || policy === 'build') return { pull: false };
  if (policy === 'always' || policy === 'refresh' || (await isLatest(s.image))) return { pull: true };
  return (await b.inspectImage(s.image)) ? { pull: false, skipped: 'Image is already present locally' } : { pull: true };
}
