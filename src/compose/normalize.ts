/**
 * From the merged raw tree to the typed Project (types.ts): short forms
 * expanded, list-or-map keys made maps, durations in nanoseconds, sizes in
 * bytes, env_files read, profiles applied, default network added. Errors
 * name the service and the key.
 */
import { EngineError } from '../common/errors.ts';
import { type DevelopConfig, parseDevelop } from './develop.ts';
import { checkConsistency } from './consistency.ts';
import { parseDotenv, parseRawEnv } from './dotenv.ts';
import { fromDeployOnly, impliedDependencies, normalizeExtraKeys } from './extra-keys.ts';
import { readBounded } from './inputs.ts';
import { toMap } from './merge.ts';
import { parsePort, parseVolume, shellSplit } from './shorthand.ts';
import type {
  BuildConfig,
  DependsOn,
  FileObject,
  Healthcheck,
  NetworkConfig,
  Project,
  Service,
  ServiceFileRef,
  ServiceNetwork,
  Ulimit,
  VolumeConfig,
} from './types.ts';
import { parseBytes, parseDuration } from './units.ts';

type Tree = Record<string, unknown>;

export interface NormalizeContext {
  name: string;
  workingDir: string;
  configFiles: string[];
  environment: Record<string, string>;
  profiles: string[];
  explicit: string[];
}

const str = (v: unknown) => (v === null || v === undefined ? undefined : typeof v === 'boolean' ? String(v) : String(v));
const strList = (v: unknown): string[] | undefined => (v === undefined || v === null ? undefined : Array.isArray(v) ? v.map(String) : [String(v)]);

/** A boolean that may arrive as a string after interpolation (Go's strconv.ParseBool, as compose-go). */
function bool(v: unknown, where: string): boolean {
  if (typeof v === 'boolean') return v;
  const t = String(v);
  if (['1', 't', 'T', 'true', 'TRUE', 'True', 'yes', 'y'].includes(t)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False', 'no', 'n', ''].includes(t)) return false;
  throw new EngineError('INVALID_ARGUMENT', `${where}: invalid boolean "${t}"`);
}

/** A number that may arrive as a string after interpolation. */
function num(v: unknown, where: string): number {
  const n = typeof v === 'number' ? v : Number(String(v).trim());
  if (String(v).trim() === '' || !Number.isFinite(n)) throw new EngineError('INVALID_ARGUMENT', `${where}: invalid number "${v}"`);
  return n;
}

function strMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(toMap(v))) out[k] = x === null || x === undefined ? '' : String(x);
  return out;
}

function command(v: unknown, where: string): string[] | null | undefined {
  if (v === undefined) return undefined;
  if (v === null) return null;
  return Array.isArray(v) ? v.map(String) : shellSplit(String(v), where);
}

export function normalizeProject(raw: Tree, ctx: NormalizeContext): Project {
  const services: Record<string, Service> = {};
  const disabled: Record<string, Service> = {};
  const develop: Record<string, DevelopConfig> = {};
  for (const [name, s] of Object.entries((raw.services ?? {}) as Record<string, Tree | null>)) {
    const svc = normalizeService(name, s ?? {}, ctx);
    const dev = parseDevelop(name, s?.develop, ctx.workingDir);
    if (dev) {
      develop[name] = dev;
      svc.develop = dev; // docker compose hashes it with the service
    }
    const active = !svc.profiles?.length || ctx.explicit.includes(name) || ctx.profiles.includes('*') || svc.profiles.some((p) => ctx.profiles.includes(p));
    (active ? services : disabled)[name] = svc;
  }
  // the dependencies of a service named on the command line are enabled with it (docker compose up web)
  const pull = (name: string) => {
    for (const [dep, d] of Object.entries(services[name]?.depends_on ?? {})) {
      if (d.required && disabled[dep]) {
        services[dep] = disabled[dep]!;
        delete disabled[dep];
        pull(dep);
      }
    }
  };
  ctx.explicit.forEach(pull);
  const networks: Record<string, NetworkConfig> = {};
  for (const [key, n] of Object.entries((raw.networks ?? {}) as Record<string, Tree | null>)) networks[key] = network(key, n ?? {}, ctx.name);
  const usesDefault = Object.values(services).some((s) => s.networks && 'default' in s.networks);
  if (usesDefault && !networks.default) networks.default = { name: `${ctx.name}_default` };
  const volumes: Record<string, VolumeConfig> = {};
  for (const [key, v] of Object.entries((raw.volumes ?? {}) as Record<string, Tree | null>)) volumes[key] = volume(key, v ?? {}, ctx.name);
  return {
    name: ctx.name,
    workingDir: ctx.workingDir,
    configFiles: ctx.configFiles,
    services,
    networks,
    volumes,
    secrets: fileObjects(raw.secrets, ctx.name),
    configs: fileObjects(raw.configs, ctx.name),
    disabled,
    ...(Object.keys(develop).length ? { develop } : {}),
    environment: ctx.environment,
    ...(raw.models && typeof raw.models === 'object' && Object.keys(raw.models).length ? { models: raw.models as Tree } : {}),
  };
}

function network(key: string, n: Tree, project: string): NetworkConfig {
  const ext = n.external;
  const external = ext === true || (typeof ext === 'object' && ext !== null);
  const extName = typeof ext === 'object' && ext !== null ? str((ext as Tree).name) : undefined;
  const out: NetworkConfig = { name: str(n.name) ?? extName ?? (external ? key : `${project}_${key}`) };
  if (n.driver) out.driver = String(n.driver);
  if (n.driver_opts) out.driver_opts = strMap(n.driver_opts);
  if (n.ipam) out.ipam = n.ipam as NetworkConfig['ipam'];
  if (external) out.external = true;
  if (n.internal) out.internal = true;
  if (n.attachable) out.attachable = true;
  for (const k of ['enable_ipv4', 'enable_ipv6'] as const) if (n[k] !== undefined && n[k] !== null) out[k] = bool(n[k], `networks.${key}.${k}`);
  if (n.labels) out.labels = strMap(n.labels);
  return out;
}

function volume(key: string, v: Tree, project: string): VolumeConfig {
  const ext = v.external;
  const external = ext === true || (typeof ext === 'object' && ext !== null);
  const extName = typeof ext === 'object' && ext !== null ? str((ext as Tree).name) : undefined;
  const out: VolumeConfig = { name: str(v.name) ?? extName ?? (external ? key : `${project}_${key}`) };
  if (v.driver) out.driver = String(v.driver);
  if (v.driver_opts) out.driver_opts = strMap(v.driver_opts);
  if (external) out.external = true;
  if (v.labels) out.labels = strMap(v.labels);
  return out;
}

function fileObjects(v: unknown, project: string): Record<string, FileObject> {
  const out: Record<string, FileObject> = {};
  for (const [key, o] of Object.entries((v ?? {}) as Record<string, Tree>)) {
    const external = !!o?.external;
    const f: FileObject = { name: str(o?.name) ?? (external ? key : `${project}_${key}`) };
    if (o?.file) f.file = String(o.file);
    if (o?.environment) f.environment = String(o.environment);
    if (o?.content !== undefined) f.content = String(o.content);
    if (external) f.external = true;
    out[key] = f;
  }
  return out;
}

function fileRefs(v: unknown): ServiceFileRef[] | undefined {
  if (!Array.isArray(v)) return undefined;
  return v.map((x) => {
    if (typeof x === 'string') return { source: x };
    const o = x as Tree;
    const r: ServiceFileRef = { source: String(o.source) };
    if (o.target) r.target = String(o.target);
    if (o.uid !== undefined) r.uid = String(o.uid);
    if (o.gid !== undefined) r.gid = String(o.gid);
    if (o.mode !== undefined) r.mode = typeof o.mode === 'string' ? parseInt(o.mode, 8) : Number(o.mode);
    return r;
  });
}

function build(v: Tree, where: string): BuildConfig {
  const b: BuildConfig = { context: String(v.context ?? '.') };
  if (v.dockerfile) b.dockerfile = String(v.dockerfile);
  if (v.dockerfile_inline) b.dockerfile_inline = String(v.dockerfile_inline);
  if (v.dockerfile && v.dockerfile_inline) throw new EngineError('INVALID_ARGUMENT', `${where}: dockerfile and dockerfile_inline are mutually exclusive`);
  if (v.args) b.args = Object.fromEntries(Object.entries(toMap(v.args)).map(([k, x]) => [k, x === null ? null : String(x)]));
  if (v.target) b.target = String(v.target);
  if (v.labels) b.labels = strMap(v.labels);
  for (const k of ['cache_from', 'cache_to', 'tags', 'platforms'] as const) if (v[k]) b[k] = strList(v[k]);
  if (v.secrets) b.secrets = fileRefs(v.secrets);
  if (v.network) b.network = String(v.network);
  if (v.no_cache !== undefined) b.no_cache = !!v.no_cache;
  if (v.pull !== undefined) b.pull = !!v.pull;
  if (v.shm_size !== undefined) b.shm_size = parseBytes(v.shm_size, `${where}.shm_size`);
  if (v.additional_contexts) b.additional_contexts = strMap(v.additional_contexts);
  return b;
}

function healthcheck(v: Tree, where: string): Healthcheck {
  const h: Healthcheck = {};
  if (v.disable) h.disable = true;
  if (v.test !== undefined) h.test = typeof v.test === 'string' ? ['CMD-SHELL', v.test] : (v.test as unknown[]).map(String);
  for (const k of ['interval', 'timeout', 'start_period', 'start_interval'] as const) if (v[k] !== undefined) h[k] = parseDuration(v[k], `${where}.${k}`);
  if (v.retries !== undefined) h.retries = num(v.retries, `${where}.retries`);
  return h;
}

function dependsOn(v: unknown): Record<string, DependsOn> {
  const out: Record<string, DependsOn> = {};
  if (Array.isArray(v)) for (const s of v) out[String(s)] = { condition: 'service_started', restart: false, required: true };
  else if (v && typeof v === 'object') {
    for (const [k, d] of Object.entries(v as Record<string, Tree | null>)) {
      out[k] = {
        condition: (d?.condition as DependsOn['condition']) ?? 'service_started',
        restart: !!d?.restart,
        required: d?.required === undefined ? true : !!d.required,
      };
    }
  }
  return out;
}

function environment(s: Tree, where: string, env: Record<string, string>): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  // env_file first, then environment over it, as docker compose
  const files = s.env_file === undefined ? [] : Array.isArray(s.env_file) ? s.env_file : [s.env_file];
  for (const f of files) {
    const spec = typeof f === 'string' ? { path: f, required: true } : (f as { path: string; required?: boolean; format?: string });
    const format = 'format' in spec ? spec.format : undefined;
    if (format !== undefined && format !== 'raw') throw new EngineError('INVALID_ARGUMENT', `${where}.env_file: unsupported env_file format "${format}"`);
    let text: string;
    try {
      text = readBounded(spec.path, 1 << 20);
    } catch (e) {
      if (spec.required === false && (e as EngineError).code === 'NOT_FOUND') continue;
      const found = (e as EngineError).code !== 'NOT_FOUND';
      throw new EngineError('INVALID_ARGUMENT', `${where}.env_file: ${found ? '' : `env file ${spec.path} not found: `}${(e as Error).message}`);
    }
    Object.assign(
      out,
      (format === 'raw' ? parseRawEnv : parseDotenv)(text, spec.path, (n) => env[n]),
    );
  }
  for (const [k, v] of Object.entries(toMap(s.environment))) {
    // `- NAME` with no value takes NAME from the environment compose runs in, or stays unset
    if (v === null || v === undefined) {
      if (env[k] !== undefined) out[k] = env[k]!;
      else out[k] = null;
    } else out[k] = String(v);
  }
  return out;
}

function ulimits(v: unknown): Record<string, Ulimit> | undefined {
  if (!v) return undefined;
  const out: Record<string, Ulimit> = {};
  for (const [k, x] of Object.entries(v as Tree)) {
    if (typeof x === 'number' || typeof x === 'string') out[k] = { soft: Number(x), hard: Number(x), single: true };
    else out[k] = { soft: Number((x as Tree).soft), hard: Number((x as Tree).hard) };
  }
  return out;
}

function serviceNetworks(v: unknown): Record<string, ServiceNetwork | null> {
  const out: Record<string, ServiceNetwork | null> = {};
  if (Array.isArray(v)) for (const n of v) out[String(n)] = null;
  else for (const [k, n] of Object.entries((v ?? {}) as Record<string, Tree | null>)) out[k] = n ? (n as ServiceNetwork) : null;
  return out;
}

function normalizeService(name: string, s: Tree, ctx: NormalizeContext): Service {
  const where = `services.${name}`;
  const deploy = s.deploy as Tree | undefined;
  const limits = ((deploy?.resources as Tree | undefined)?.limits ?? {}) as Tree;
  const reservations = ((deploy?.resources as Tree | undefined)?.reservations ?? {}) as Tree;
  const replicas = deploy?.replicas ?? s.scale;
  if (s.scale !== undefined && deploy?.replicas !== undefined && Number(s.scale) !== Number(deploy.replicas)) {
    throw new EngineError('INVALID_ARGUMENT', `${where}: scale and deploy.replicas are set to different values`);
  }
  const svc: Service = {
    name,
    environment: environment(s, where, ctx.environment),
    ports: (Array.isArray(s.ports) ? s.ports : []).flatMap((p, i) => parsePort(p, `${where}.ports[${i}]`)),
    volumes: (Array.isArray(s.volumes) ? s.volumes : []).map((v, i) => parseVolume(v, `${where}.volumes[${i}]`)),
    depends_on: dependsOn(s.depends_on),
    scale: replicas === undefined || replicas === null ? 1 : num(replicas, `${where}.${deploy?.replicas !== undefined ? 'deploy.replicas' : 'scale'}`),
    labels: strMap(s.labels),
  };
  if (s.image !== undefined) svc.image = String(s.image);
  if (s.build !== undefined) svc.build = build(typeof s.build === 'string' ? { context: s.build } : (s.build as Tree), `${where}.build`);
  // a provider service is no container: it needs neither (compose-go's checkConsistency)
  if (!svc.image && !svc.build && (s.provider === undefined || s.provider === null))
    throw new EngineError('INVALID_ARGUMENT', `service "${name}" has neither an image nor a build context specified: invalid compose project`);
  const cmd = command(s.command, `${where}.command`);
  if (cmd !== undefined) svc.command = cmd;
  const ep = command(s.entrypoint, `${where}.entrypoint`);
  if (ep !== undefined) svc.entrypoint = ep;
  if (s.expose) svc.expose = (s.expose as unknown[]).map(String);
  if (s.tmpfs !== undefined) svc.tmpfs = strList(s.tmpfs);
  if (s.network_mode !== undefined) svc.network_mode = String(s.network_mode);
  if (s.networks !== undefined) svc.networks = serviceNetworks(s.networks);
  else if (!svc.network_mode && (s.provider === undefined || s.provider === null)) svc.networks = { default: null };
  if (svc.network_mode && s.networks !== undefined) throw new EngineError('INVALID_ARGUMENT', `${where}: network_mode and networks cannot be combined`);
  if (s.healthcheck) svc.healthcheck = healthcheck(s.healthcheck as Tree, `${where}.healthcheck`);
  if (s.restart !== undefined) svc.restart = String(s.restart);
  if (deploy) svc.deploy = deploy;
  const mem = s.mem_limit ?? limits.memory;
  if (mem !== undefined) svc.mem_limit = parseBytes(mem, `${where}.mem_limit`);
  const memRes = s.mem_reservation ?? reservations.memory;
  if (memRes !== undefined) svc.mem_reservation = parseBytes(memRes, `${where}.mem_reservation`);
  if (s.memswap_limit !== undefined) svc.memswap_limit = s.memswap_limit === -1 ? -1 : parseBytes(s.memswap_limit, `${where}.memswap_limit`);
  const cpus = s.cpus ?? limits.cpus;
  if (cpus !== undefined) svc.cpus = num(cpus, `${where}.cpus`);
  if (s.cpu_shares !== undefined) svc.cpu_shares = num(s.cpu_shares, `${where}.cpu_shares`);
  if (s.cpuset !== undefined) svc.cpuset = String(s.cpuset);
  const pids = s.pids_limit ?? limits.pids;
  if (pids !== undefined) svc.pids_limit = num(pids, `${where}.pids_limit`);
  const folded = fromDeployOnly(s, limits, reservations);
  if (folded.length) svc.fromDeploy = folded;
  for (const k of [
    'container_name',
    'hostname',
    'domainname',
    'user',
    'working_dir',
    'stop_signal',
    'pull_policy',
    'platform',
    'ipc',
    'pid',
    'userns_mode',
    'mac_address',
  ] as const) {
    if (s[k] !== undefined && s[k] !== null) svc[k] = String(s[k]);
  }
  if (s.extra_hosts !== undefined) {
    const hosts = Array.isArray(s.extra_hosts)
      ? s.extra_hosts.map((h) => String(h).replace(/^([^:=\s]+)=/, '$1:'))
      : Object.entries(s.extra_hosts as Tree).flatMap(([h, ip]) => (Array.isArray(ip) ? ip : [ip]).map((x) => `${h}:${x}`));
    svc.extra_hosts = hosts;
  }
  for (const k of [
    'dns',
    'dns_search',
    'dns_opt',
    'cap_add',
    'cap_drop',
    'profiles',
    'devices',
    'security_opt',
    'group_add',
    'links',
    'external_links',
  ] as const) {
    const l = strList(s[k]);
    if (l) svc[k] = l;
  }
  for (const k of ['privileged', 'read_only', 'init', 'stdin_open', 'tty'] as const)
    if (s[k] !== undefined && s[k] !== null) svc[k] = bool(s[k], `${where}.${k}`);
  if (s.stop_grace_period !== undefined) svc.stop_grace_period = parseDuration(s.stop_grace_period, `${where}.stop_grace_period`);
  if (s.sysctls !== undefined) svc.sysctls = strMap(s.sysctls);
  const ul = ulimits(s.ulimits);
  if (ul) svc.ulimits = ul;
  if (s.shm_size !== undefined) svc.shm_size = parseBytes(s.shm_size, `${where}.shm_size`);
  if (s.oom_score_adj !== undefined) svc.oom_score_adj = num(s.oom_score_adj, `${where}.oom_score_adj`);
  if (s.logging) {
    const l = s.logging as Tree;
    svc.logging = { ...(l.driver ? { driver: String(l.driver) } : {}), ...(l.options ? { options: strMap(l.options) } : {}) };
  }
  const secrets = fileRefs(s.secrets);
  if (secrets) svc.secrets = secrets;
  const configs = fileRefs(s.configs);
  if (configs) svc.configs = configs;
  normalizeExtraKeys(svc, s, where);
  // a service starts after those it takes a namespace, volumes or a link from
  impliedDependencies(svc, s);
  const ext = Object.fromEntries(Object.entries(s).filter(([k]) => k.startsWith('x-')));
  if (Object.keys(ext).length) svc.extensions = ext;
  if (svc.container_name && svc.scale > 1)
    throw new EngineError(
      'INVALID_ARGUMENT',
      `${where}: container_name "${svc.container_name}" cannot be used with ${svc.scale} replicas: container names must be unique`,
    );
  return svc;
}

/**
 * Every depends_on names a known service (or a disabled one it does not
 * require), every network and volume a service uses is declared, and the
 * dependencies have no cycle.
 */
export function checkDependencies(p: Project): void {
  checkConsistency(p);
  for (const svc of Object.values(p.services)) {
    for (const [dep, d] of Object.entries(svc.depends_on)) {
      if (p.services[dep]) continue;
      if (p.disabled[dep] && d.required) {
        throw new EngineError(
          'INVALID_ARGUMENT',
          `service "${dep}" was pulled in as a dependency of service "${svc.name}" but is not enabled by the active profiles. You may fix this by adding a common profile to "${dep}" and "${svc.name}"`,
        );
      }
      if (p.disabled[dep] || !d.required) {
        delete svc.depends_on[dep];
        continue;
      }
      throw new EngineError('INVALID_ARGUMENT', `service "${svc.name}" depends on undefined service "${dep}": invalid compose project`);
    }
    for (const n of Object.keys(svc.networks ?? {}))
      if (!p.networks[n]) throw new EngineError('INVALID_ARGUMENT', `service "${svc.name}" refers to undefined network ${n}: invalid compose project`);
    for (const v of svc.volumes) {
      if (v.type === 'volume' && v.source && !p.volumes[v.source])
        throw new EngineError('INVALID_ARGUMENT', `service "${svc.name}" refers to undefined volume ${v.source}: invalid compose project`);
    }
    for (const [k, refs] of [
      ['secrets', svc.secrets],
      ['configs', svc.configs],
    ] as const) {
      for (const r of refs ?? [])
        if (!p[k][r.source])
          throw new EngineError('INVALID_ARGUMENT', `service "${svc.name}" refers to undefined ${k.slice(0, -1)} ${r.source}: invalid compose project`);
    }
    for (const m of Object.keys(svc.models ?? {}))
      if (!p.models?.[m]) throw new EngineError('INVALID_ARGUMENT', `service "${svc.name}" refers to undefined model ${m}: invalid compose project`);
    const mode = svc.network_mode;
    if (mode?.startsWith('service:') && !p.services[mode.slice(8)])
      throw new EngineError('INVALID_ARGUMENT', `service "${svc.name}" uses network_mode of undefined service "${mode.slice(8)}"`);
  }
  // a depth-first walk; the path on the stack names the cycle
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, stack: string[]) => {
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting')
      throw new EngineError('INVALID_ARGUMENT', `dependency cycle detected: ${[...stack.slice(stack.indexOf(name)), name].join(' -> ')}`);
    state.set(name, 'visiting');
    for (const dep of Object.keys(p.services[name]!.depends_on)) visit(dep, [...stack, name]);
    state.set(name, 'done');
  };
  for (const name of Object.keys(p.services)) visit(name, []);
}
