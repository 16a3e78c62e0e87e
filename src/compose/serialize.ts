/**
 * The project back as compose data: what `config` prints (in the shape
 * docker compose prints it: long forms, absolute paths, durations as Go
 * strings, keys sorted).
 */
import { serviceHash } from './hash.ts';
import type { Project, Service } from './types.ts';
import { goFloat32 } from './gojson.ts';
import { formatDuration, parseBytes } from './units.ts';

type Tree = Record<string, unknown>;

function sorted(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sorted);
  if (v && typeof v === 'object') {
    const out: Tree = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Tree)[k];
      if (x !== undefined) out[k] = sorted(x);
    }
    return out;
  }
  return v;
}

/** The key order docker compose prints these in (compose-go's struct order), where it is not alphabetical. */
const PORT_KEYS = ['name', 'mode', 'host_ip', 'target', 'published', 'protocol', 'app_protocol'];
const VOLUME_KEYS = ['type', 'source', 'target', 'read_only', 'consistency', 'bind', 'volume', 'tmpfs'];

function ordered(v: Tree, keys: string[]): Tree {
  const out: Tree = {};
  for (const k of keys) if (v[k] !== undefined) out[k] = v[k];
  for (const k of Object.keys(v)) if (!(k in out)) out[k] = v[k];
  return out;
}

/**
 * deploy.resources as compose-go prints them: memory a string of bytes
 * (UnitBytes), cpus a number (float32 NanoCPUs), each left out when zero.
 * (Only the printing: the config hash encodes them itself, hash-structs.ts.)
 */
function resourcesData(res: Tree, service: string): Tree {
  const one = (r: unknown, key: string): unknown => {
    if (!r || typeof r !== 'object') return r;
    const { cpus, memory, pids, ...rest } = r as Tree;
    const out: Tree = { ...rest };
    if (cpus !== undefined && cpus !== null && Number(cpus) !== 0) out.cpus = Number(goFloat32(Number(cpus)));
    const m = memory === undefined || memory === null ? 0 : parseBytes(memory, `services.${service}.deploy.resources.${key}.memory`);
    if (m) out.memory = String(m);
    if (pids !== undefined && pids !== null && Number(pids) !== 0) out.pids = Number(pids);
    return out;
  };
  return {
    ...res,
    ...(res.limits ? { limits: one(res.limits, 'limits') } : {}),
    ...(res.reservations ? { reservations: one(res.reservations, 'reservations') } : {}),
  };
}

/** A service as compose data (no `name`, empty collections left out, durations as strings). */
export function serviceData(s: Service): Tree {
  const { name: _n, extensions, healthcheck, stop_grace_period, scale, fromDeploy, ...rest } = s;
  const out: Tree = { ...rest, ...extensions };
  for (const k of fromDeploy ?? []) delete out[k];
  for (const k of ['environment', 'labels', 'depends_on'] as const) if (!Object.keys(s[k]).length) delete out[k];
  for (const k of ['ports', 'volumes'] as const) if (!s[k].length) delete out[k];
  if (healthcheck) {
    const h: Tree = { ...healthcheck };
    for (const k of ['interval', 'timeout', 'start_period', 'start_interval'] as const) if (healthcheck[k] !== undefined) h[k] = formatDuration(healthcheck[k]);
    out.healthcheck = h;
  }
  if (stop_grace_period !== undefined) out.stop_grace_period = formatDuration(stop_grace_period);
  if (scale !== 1) out.scale = scale;
  // sizes are compose-go's UnitBytes: printed as strings of bytes
  for (const k of ['mem_limit', 'mem_reservation', 'memswap_limit', 'mem_swappiness', 'shm_size'] as const)
    if (typeof out[k] === 'number') out[k] = String(out[k]);
  if (s.build?.shm_size !== undefined) out.build = { ...s.build, shm_size: String(s.build.shm_size) };
  if (s.volumes.some((v) => v.tmpfs?.size !== undefined))
    out.volumes = s.volumes.map((v) =>
      v.tmpfs?.size !== undefined ? { ...v, tmpfs: { ...v.tmpfs, size: String(parseBytes(v.tmpfs.size, `services.${s.name}.volumes.tmpfs.size`)) } } : v,
    );
  if (s.deploy?.resources) out.deploy = { ...s.deploy, resources: resourcesData(s.deploy.resources as Tree, s.name) };
  if (s.ulimits) out.ulimits = Object.fromEntries(Object.entries(s.ulimits).map(([k, u]) => [k, u.single ? u.soft : { soft: u.soft, hard: u.hard }]));
  const data = sorted(out) as Tree;
  if (data.ports) data.ports = (data.ports as Tree[]).map((x) => ordered(x, PORT_KEYS));
  if (data.volumes) data.volumes = (data.volumes as Tree[]).map((x) => ordered(x, VOLUME_KEYS));
  if (data.provider) data.provider = ordered(data.provider as Tree, ['type', 'options']);
  return data;
}

/** The whole project as `docker compose config` prints it. */
export function projectData(p: Project): Tree {
  const service = (n: string) => serviceData(p.services[n]!);
  const out: Tree = {
    name: p.name,
    services: Object.fromEntries(
      Object.keys(p.services)
        .sort()
        .map((n) => [n, service(n)]),
    ),
  };
  if (Object.keys(p.networks).length) out.networks = sorted(p.networks);
  if (Object.keys(p.volumes).length) out.volumes = sorted(p.volumes);
  if (Object.keys(p.secrets).length) out.secrets = sorted(p.secrets);
  if (Object.keys(p.configs).length) out.configs = sorted(p.configs);
  if (p.models) out.models = sorted(p.models);
  return out;
}

/** The service's config hash (label com.docker.compose.config-hash), as docker compose v2 computes it (hash.ts). */
export function configHash(s: Service): string {
  return serviceHash(s);
}
