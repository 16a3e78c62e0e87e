/**
 * The service config hash (label com.docker.compose.config-hash) computed the
 * way docker compose v2 computes it (ServiceHash in pkg/compose/hash.go, the
 * same from v2.31 through v5): a sha256, in hex, of Go's encoding/json
 * Marshal of compose-go's types.ServiceConfig after the loader has
 * normalized the service and env_files have been resolved into
 * `environment`, with build, pull_policy, scale, deploy.replicas,
 * depends_on and profiles cleared.
 *
 * So the bytes hashed must be those Go writes: the struct's fields in
 * declaration order under their json names, `omitempty` dropping zero
 * values (but never a struct value such as deploy.resources), `command` and
 * `entrypoint` always present (null when unset), map keys sorted by bytes,
 * `<`, `>` and `&` escaped, byte sizes as quoted decimal strings, durations
 * as Go duration strings, float32 numbers in their shortest form, extension
 * (`x-`) keys left out. This file writes that encoding from keel's
 * normalized service; it shares no code with compose-go.
 *
 * References to other services are hashed as docker compose hashes them
 * at create time (resolveServiceReferences in pkg/compose/convergence.go):
 * network_mode/ipc/pid `service:X` as `container:<id>` and volumes_from `X`
 * as `<id>`, the id of X's first container by name; `container:name` in
 * volumes_from as `name`. Without a container of X the reference is hashed
 * as written (so the hash cannot match and the container is recreated).
 *
 * Where keel's model keeps less than compose-go's, the hash can differ from
 * docker compose's: `provider`, `models` and the legacy keys compose-go
 * still decodes (log_driver, net, volume_driver, ...).
 */
import type { Healthcheck, PortConfig, Service, ServiceFileRef, ServiceNetwork, Ulimit, VolumeMount } from './types.ts';
import {
  bool,
  byBytes,
  bytes,
  cleanPath,
  command,
  duration,
  float32,
  goString,
  int,
  list,
  map,
  mapping,
  obj,
  optBool,
  str,
  strs,
  toMapping,
  type Tree,
} from './gojson.ts';

import { blkio, deploy, develop, deviceRequest, hook } from './hash-structs.ts';
import { sha256Hex } from './sha256.ts';

export { goFloat32, goString } from './gojson.ts';

function healthcheck(h: Healthcheck): string {
  return obj([
    ['test', strs(h.test)],
    ['timeout', duration(h.timeout, false)],
    ['interval', duration(h.interval, false)],
    ['retries', h.retries === undefined ? undefined : String(h.retries)],
    ['start_period', duration(h.start_period, false)],
    ['start_interval', duration(h.start_interval, false)],
    ['disable', bool(h.disable)],
  ]);
}

function port(p: PortConfig): string {
  return obj([
    ['name', str(p.name)],
    ['mode', str(p.mode)],
    ['host_ip', str(p.host_ip)],
    ['target', int(p.target)],
    ['published', str(p.published)],
    ['protocol', str(p.protocol)],
    ['app_protocol', str(p.app_protocol)],
  ]);
}

function volume(v: VolumeMount, where: string): string {
  const b = v.bind;
  const vol = v.volume as (VolumeMount['volume'] & { labels?: Record<string, unknown> }) | undefined;
  const t = v.tmpfs;
  return obj([
    ['type', str(v.type)],
    ['source', str(v.source)],
    ['target', str(cleanPath(v.target))],
    ['read_only', bool(v.read_only)],
    ['consistency', str(v.consistency)],
    // create_host_path is `omitzero` with IsZero() true when it is true: written only when false
    [
      'bind',
      b &&
        obj([
          ['selinux', str(b.selinux)],
          ['propagation', str(b.propagation)],
          ['create_host_path', b.create_host_path === false ? 'false' : undefined],
          ['recursive', str((b as Tree).recursive)],
        ]),
    ],
    [
      'volume',
      vol &&
        obj([
          ['labels', mapping(toMapping(vol.labels))],
          ['nocopy', bool(vol.nocopy)],
          ['subpath', str(vol.subpath)],
        ]),
    ],
    [
      'tmpfs',
      t &&
        obj([
          ['size', bytes(t.size, `${where}.tmpfs.size`)],
          ['mode', int(t.mode)],
        ]),
    ],
  ]);
}

function network(n: ServiceNetwork | null): string {
  if (!n) return 'null';
  const x = n as ServiceNetwork & Tree;
  return obj([
    ['aliases', strs(n.aliases)],
    ['driver_opts', mapping(x.driver_opts as Tree | undefined)],
    ['gw_priority', int(x.gw_priority)],
    ['interface_name', str(x.interface_name)],
    ['ipv4_address', str(n.ipv4_address)],
    ['ipv6_address', str(n.ipv6_address)],
    ['link_local_ips', strs(x.link_local_ips as unknown[] | undefined)],
    ['mac_address', str(n.mac_address)],
    ['priority', int(n.priority)],
  ]);
}

/** secrets get /run/secrets/<source> as their default target (compose-go's defaults); configs none. */
function fileRef(r: ServiceFileRef, secret: boolean): string {
  const mode = r.mode === undefined ? undefined : goString(`0${r.mode.toString(8)}`);
  return obj([
    ['source', str(r.source)],
    ['target', str(r.target ?? (secret ? `/run/secrets/${r.source}` : undefined))],
    ['uid', str(r.uid)],
    ['gid', str(r.gid)],
    ['mode', mode],
  ]);
}

/** A device "src[:dst[:perms]]" as compose-go's DeviceMapping. */
function device(d: string): string {
  const [src = '', dst, perms] = d.split(':');
  return obj([
    ['source', str(src)],
    ['target', str(dst || src)],
    ['permissions', str(perms ?? 'rwm')],
  ]);
}

/** HostsList: "host=ip" strings, sorted. */
function extraHosts(l: string[] | undefined): string | undefined {
  if (!l?.length) return undefined;
  const entries = l.map((h) => {
    const i = h.search(/[=:]/);
    return `${h.slice(0, i)}=${h.slice(i + 1).replace(/^\[(.*)\]$/, '$1')}`;
  });
  return `[${entries.sort(byBytes).map(goString).join(',')}]`;
}

/**
 * Inputs already written for these very service objects: the project cache
 * (project-cache.ts) keeps each service's input and gives it back with the
 * project, so that a no-op `up` does not write them again (~2 ms of it).
 * Keyed by the object: a service is never changed once loaded; what
 * changes one makes a new object (resolveServiceReferences, a provider's
 * variables in provider.ts, the API socket in api-socket.ts).
 */
const knownInputs = new WeakMap<Service, string>();

export function rememberHashInput(s: Service, input: string): void {
  knownInputs.set(s, input);
}

/** The JSON docker compose hashes for this service (exported for tests and debugging). */
export function serviceHashInput(s: Service): string {
  return knownInputs.get(s) ?? writeHashInput(s);
}

function writeHashInput(s: Service): string {
  const w = `services.${s.name}`;
  const x = s as Service & Tree;
  const top = <K extends 'mem_limit' | 'mem_reservation' | 'cpus' | 'pids_limit'>(k: K) => (s.fromDeploy?.includes(k) ? undefined : s[k]);
  const memLimit = top('mem_limit');
  const memRes = top('mem_reservation');
  const cpus = top('cpus');
  const pids = top('pids_limit');
  const ulimit = (u: Ulimit) =>
    u.single
      ? String(u.soft)
      : obj([
          ['soft', int(u.soft)],
          ['hard', int(u.hard)],
        ]);
  return obj([
    ['annotations', mapping(s.annotations)],
    ['attach', optBool(s.attach)],
    ['develop', develop(x.develop as Tree | undefined)],
    ['blkio_config', s.blkio_config && blkio(s.blkio_config, `${w}.blkio_config`)],
    ['cap_add', strs(s.cap_add)],
    ['cap_drop', strs(s.cap_drop)],
    ['cgroup_parent', str(s.cgroup_parent)],
    ['cgroup', str(s.cgroup)],
    ['cpu_count', int(s.cpu_count)],
    ['cpu_percent', float32(s.cpu_percent)],
    ['cpu_period', int(s.cpu_period)],
    ['cpu_quota', int(s.cpu_quota)],
    ['cpu_rt_period', int(s.cpu_rt_period)],
    ['cpu_rt_runtime', int(s.cpu_rt_runtime)],
    ['cpus', float32(cpus)],
    ['cpuset', str(s.cpuset)],
    ['cpu_shares', int(s.cpu_shares)],
    ['command', command(s.command)],
    ['configs', list(s.configs, (r) => fileRef(r, false))],
    ['container_name', str(s.container_name)],
    [
      'credential_spec',
      s.credential_spec &&
        obj([
          ['config', str(s.credential_spec.config)],
          ['file', str(s.credential_spec.file)],
          ['registry', str(s.credential_spec.registry)],
        ]),
    ],
    ['deploy', s.deploy && deploy(s.deploy, `${w}.deploy`)],
    ['device_cgroup_rules', strs(s.device_cgroup_rules)],
    ['devices', list(s.devices, device)],
    ['dns', strs(s.dns)],
    ['dns_opt', strs(s.dns_opt)],
    ['dns_search', strs(s.dns_search)],
    ['domainname', str(s.domainname)],
    ['entrypoint', command(s.entrypoint)],
    ['environment', map(s.environment, (v) => (v === null ? 'null' : goString(v)))],
    ['expose', strs(s.expose)],
    ['external_links', strs(s.external_links)],
    ['extra_hosts', extraHosts(s.extra_hosts)],
    ['group_add', strs(s.group_add)],
    ['gpus', list(s.gpus, deviceRequest)],
    ['hostname', str(s.hostname)],
    ['healthcheck', s.healthcheck && healthcheck(s.healthcheck)],
    ['image', str(s.image)],
    ['init', optBool(s.init)],
    ['ipc', str(s.ipc)],
    ['isolation', str(s.isolation)],
    ['labels', map(s.labels, goString)],
    ['links', strs(s.links)],
    [
      'logging',
      s.logging &&
        obj([
          ['driver', str(s.logging.driver)],
          ['options', map(s.logging.options, goString)],
        ]),
    ],
    ['mem_limit', bytes(memLimit, `${w}.mem_limit`)],
    ['mem_reservation', bytes(memRes, `${w}.mem_reservation`)],
    ['memswap_limit', bytes(s.memswap_limit, `${w}.memswap_limit`)],
    ['mem_swappiness', bytes(s.mem_swappiness, `${w}.mem_swappiness`)],
    ['mac_address', str(s.mac_address)],
    ['network_mode', str(s.network_mode)],
    ['networks', map(s.networks, network)],
    ['oom_kill_disable', bool(s.oom_kill_disable)],
    ['oom_score_adj', int(s.oom_score_adj)],
    ['pid', str(s.pid)],
    ['pids_limit', int(pids)],
    ['platform', str(s.platform)],
    ['ports', list(s.ports, port)],
    ['privileged', bool(s.privileged)],
    ['read_only', bool(s.read_only)],
    ['restart', str(s.restart)],
    ['runtime', str(s.runtime)],
    ['secrets', list(s.secrets, (r) => fileRef(r, true))],
    ['security_opt', strs(s.security_opt)],
    ['shm_size', bytes(s.shm_size, `${w}.shm_size`)],
    ['stdin_open', bool(s.stdin_open)],
    ['stop_grace_period', duration(s.stop_grace_period, false)],
    ['stop_signal', str(s.stop_signal)],
    ['storage_opt', mapping(s.storage_opt)],
    ['sysctls', mapping(s.sysctls)],
    ['tmpfs', strs(s.tmpfs)],
    ['tty', bool(s.tty)],
    ['ulimits', map(s.ulimits, ulimit)],
    ['use_api_socket', bool(s.use_api_socket)],
    ['user', str(s.user)],
    ['userns_mode', str(s.userns_mode)],
    ['uts', str(s.uts)],
    ['volumes', list(s.volumes, (v) => volume(v, `${w}.volumes`))],
    ['volumes_from', strs(s.volumes_from)],
    ['working_dir', str(s.working_dir)],
    ['pre_start', list(s.pre_start, hook)],
    ['post_start', list(s.post_start, hook)],
    ['pre_stop', list(s.pre_stop, hook)],
  ]);
}

/** The id of a service's container that a reference resolves to (its first container by name), if it has one. */
export type ContainerOf = (service: string) => string | undefined;

/**
 * The service with its references to other services replaced by container
 * ids, as docker compose replaces them before it hashes and creates
 * (resolveServiceReferences); a reference without a container stays as written.
 */
export function resolveServiceReferences(s: Service, containerOf: ContainerOf): Service {
  const refers = (['network_mode', 'ipc', 'pid'] as const).some((k) => s[k]?.startsWith('service:'));
  // nothing to resolve: the service itself (its hash input may be known: knownInputs)
  if (!refers && !s.volumes_from) return s;
  const ns = (mode: string | undefined) => {
    if (!mode?.startsWith('service:')) return mode;
    const id = containerOf(mode.slice(8));
    return id ? `container:${id}` : mode;
  };
  const out: Service = { ...s };
  for (const k of ['network_mode', 'ipc', 'pid'] as const) if (s[k] !== undefined) out[k] = ns(s[k]);
  if (s.volumes_from)
    out.volumes_from = s.volumes_from.map((v) => {
      const spec = v.split(':');
      if (spec[0] === 'container') return spec[1]!;
      return containerOf(spec[0]!) ?? v;
    });
  return out;
}

/** com.docker.compose.config-hash: docker compose v2's ServiceHash of this service. */
export function serviceHash(s: Service): string {
  return sha256Hex(serviceHashInput(s));
}
