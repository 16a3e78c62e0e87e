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
 * Where keel's model keeps less than compose-go's, the hash can differ from
 * docker compose's: keys keel does not model (cgroup_parent, attach,
 * blkio_config, label_file, volumes_from, hooks, ...); a ulimit written
 * `{soft: n, hard: n}` (taken as the single form `n`); mem_limit, cpus,
 * pids_limit or mem_reservation written both at the top level and under
 * deploy.resources with the same value; a port range whose ports compose-go
 * sorts as strings (8-10 becomes 10, 8, 9).
 */
import { createHash } from 'node:crypto';
import type { Healthcheck, PortConfig, Service, ServiceFileRef, ServiceNetwork, VolumeMount } from './types.ts';
import { formatDuration, goDuration, parseBytes } from './units.ts';

type Tree = Record<string, unknown>;
/** A field: its json name and its encoded value, or undefined when Go leaves it out. */
type Field = [string, string | undefined];

/** A JSON string as Go writes it: HTML-safe, and U+2028/U+2029 escaped. */
export function goString(s: string): string {
  return JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A float32 as Go writes it: the shortest decimal that reads back as the same float32. */
export function goFloat32(x: number): string {
  const f = Math.fround(x);
  if (f === 0) return '0';
  for (let p = 1; p <= 9; p++) {
    const s = Number(f.toPrecision(p));
    if (Math.fround(s) === f) return String(s);
  }
  return String(f);
}

const obj = (fields: Field[]): string =>
  `{${fields
    .filter((f) => f[1] !== undefined)
    .map(([k, v]) => `${goString(k)}:${v}`)
    .join(',')}}`;
const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** A Go map: keys sorted by their bytes; omitempty leaves out an empty one. */
function map<T>(m: Record<string, T> | undefined, enc: (v: T) => string): string | undefined {
  if (!m) return undefined;
  const keys = Object.keys(m).sort(byBytes);
  return keys.length ? `{${keys.map((k) => `${goString(k)}:${enc(m[k]!)}`).join(',')}}` : undefined;
}

function list<T>(l: T[] | undefined, enc: (v: T) => string): string | undefined {
  return l?.length ? `[${l.map(enc).join(',')}]` : undefined;
}

const str = (s: unknown): string | undefined => (s === undefined || s === null || s === '' ? undefined : goString(String(s)));
const strs = (l: unknown[] | undefined) => list(l?.map(String), goString);
const int = (n: unknown): string | undefined => (n === undefined || n === null || Number(n) === 0 ? undefined : String(Math.trunc(Number(n))));
const bool = (b: unknown): string | undefined => (b ? 'true' : undefined);
const optBool = (b: boolean | undefined): string | undefined => (b === undefined ? undefined : String(b));
/** UnitBytes: a quoted decimal. */
const bytes = (n: unknown, where: string): string | undefined =>
  n === undefined || n === null ? undefined : ((b) => (b ? `"${b}"` : undefined))(parseBytes(n, where));
const float32 = (n: unknown): string | undefined => (n === undefined || n === null || Number(n) === 0 ? undefined : goFloat32(Number(n)));
const command = (c: string[] | null | undefined): string => (c ? `[${c.map(goString).join(',')}]` : 'null');
/** A Duration field (value or pointer), from nanoseconds or a compose duration. */
function duration(v: unknown, omitZero: boolean): string | undefined {
  if (v === undefined || v === null) return undefined;
  const ns = typeof v === 'number' ? v : (goDuration(String(v)) ?? 0);
  return omitZero && ns === 0 ? undefined : goString(formatDuration(ns));
}
/** Go's path.Clean, as compose-go applies it to volume targets. */
function cleanPath(p: string): string {
  if (p === '') return '.';
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..' && out.length && out[out.length - 1] !== '..') out.pop();
    else if (part !== '..' || !rooted) out.push(part);
  }
  const s = (rooted ? '/' : '') + out.join('/');
  return s || (rooted ? '/' : '.');
}

const mapping = (m: Record<string, unknown> | undefined) =>
  map(m as Record<string, string> | undefined, (v) => goString(v === null || v === undefined ? '' : String(v)));
const toMapping = (v: unknown): Record<string, unknown> | undefined => {
  if (Array.isArray(v)) return Object.fromEntries(v.map((e) => String(e).split(/=(.*)/s)).map(([k, x]) => [k!, x ?? '']));
  return v && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
};

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

/** UpdateConfig: its delay and monitor are Duration values (omitempty drops zero). */
function update(u: Tree | undefined): string | undefined {
  return (
    u &&
    obj([
      ['parallelism', u.parallelism === undefined ? undefined : String(Number(u.parallelism))],
      ['delay', duration(u.delay, true)],
      ['failure_action', str(u.failure_action)],
      ['monitor', duration(u.monitor, true)],
      ['max_failure_ratio', float32(u.max_failure_ratio)],
      ['order', str(u.order)],
    ])
  );
}

function resource(r: Tree | undefined, where: string): string | undefined {
  if (!r) return undefined;
  const devices = (r.devices as Tree[] | undefined)?.map((d) =>
    obj([
      ['capabilities', strs(d.capabilities as unknown[] | undefined)],
      ['driver', str(d.driver)],
      ['count', d.count === undefined ? undefined : String(d.count).toLowerCase() === 'all' ? '-1' : int(d.count)],
      ['device_ids', strs(d.device_ids as unknown[] | undefined)],
      ['options', mapping(toMapping(d.options))],
    ]),
  );
  const generic = (r.generic_resources as Tree[] | undefined)?.map((g) => {
    const spec = g.discrete_resource_spec as Tree | undefined;
    return obj([
      [
        'discrete_resource_spec',
        spec &&
          obj([
            ['kind', goString(String(spec.kind ?? ''))],
            ['value', String(Number(spec.value ?? 0))],
          ]),
      ],
    ]);
  });
  return obj([
    ['cpus', float32(r.cpus)],
    ['memory', bytes(r.memory, `${where}.memory`)],
    ['pids', int(r.pids)],
    ['devices', list(devices, (x) => x)],
    ['generic_resources', list(generic, (x) => x)],
  ]);
}

/** DeployConfig without replicas; resources and placement are struct values, so always written. */
function deploy(d: Tree, where: string): string {
  const res = (d.resources ?? {}) as Tree;
  const rp = d.restart_policy as Tree | undefined;
  const pl = (d.placement ?? {}) as Tree;
  return obj([
    ['mode', str(d.mode)],
    ['labels', mapping(toMapping(d.labels))],
    ['update_config', update(d.update_config as Tree | undefined)],
    ['rollback_config', update(d.rollback_config as Tree | undefined)],
    [
      'resources',
      obj([
        ['limits', resource(res.limits as Tree | undefined, `${where}.resources.limits`)],
        ['reservations', resource(res.reservations as Tree | undefined, `${where}.resources.reservations`)],
      ]),
    ],
    [
      'restart_policy',
      rp &&
        obj([
          ['condition', str(rp.condition)],
          ['delay', duration(rp.delay, false)],
          ['max_attempts', rp.max_attempts === undefined ? undefined : String(Number(rp.max_attempts))],
          ['window', duration(rp.window, false)],
        ]),
    ],
    [
      'placement',
      obj([
        ['constraints', strs(pl.constraints as unknown[] | undefined)],
        ['preferences', list(pl.preferences as Tree[] | undefined, (p) => obj([['spread', str(p.spread)]]))],
        ['max_replicas_per_node', int(pl.max_replicas_per_node)],
      ]),
    ],
    ['endpoint_mode', str(d.endpoint_mode)],
  ]);
}

/** develop.watch triggers; a trigger's `exec` is a struct value whose command has no omitempty. */
function develop(d: Tree | undefined): string | undefined {
  if (!d) return undefined;
  const triggers = (d.watch as Tree[] | undefined)?.map((t) => {
    const e = (t.exec ?? {}) as Tree;
    const exec = obj([
      ['command', command(e.command as string[] | undefined)],
      ['image', str(e.image)],
      ['user', str(e.user)],
      ['privileged', bool(e.privileged)],
      ['working_dir', str(e.working_dir)],
      ['environment', map(toMapping(e.environment), (v) => (v === null ? 'null' : goString(String(v))))],
      ['per_replica', bool(e.per_replica)],
    ]);
    return obj([
      ['path', goString(String(t.path ?? ''))],
      ['action', goString(String(t.action ?? ''))],
      ['target', str(t.target)],
      ['exec', exec],
      ['include', strs(t.include as unknown[] | undefined)],
      ['ignore', strs(t.ignore as unknown[] | undefined)],
      ['initial_sync', bool(t.initial_sync)],
    ]);
  });
  return obj([['watch', list(triggers, (x) => x)]]);
}

/** A value keel folded in from deploy.resources (compose-go keeps it only there). */
function fromDeploy(s: Service, value: number | undefined, section: 'limits' | 'reservations', key: string, parse: (v: unknown) => number): boolean {
  const r = ((s.deploy?.resources as Tree | undefined)?.[section] as Tree | undefined)?.[key];
  if (value === undefined || r === undefined || r === null) return false;
  try {
    return parse(r) === value;
  } catch {
    return false;
  }
}

/** The JSON docker compose hashes for this service (exported for tests and debugging). */
export function serviceHashInput(s: Service): string {
  const w = `services.${s.name}`;
  const x = s as Service & Tree;
  const memLimit = fromDeploy(s, s.mem_limit, 'limits', 'memory', (v) => parseBytes(v, w)) ? undefined : s.mem_limit;
  const memRes = fromDeploy(s, s.mem_reservation, 'reservations', 'memory', (v) => parseBytes(v, w)) ? undefined : s.mem_reservation;
  const cpus = fromDeploy(s, s.cpus, 'limits', 'cpus', Number) ? undefined : s.cpus;
  const pids = fromDeploy(s, s.pids_limit, 'limits', 'pids', Number) ? undefined : s.pids_limit;
  const ulimit = (u: { soft: number; hard: number }) =>
    u.soft === u.hard
      ? String(u.soft)
      : obj([
          ['soft', int(u.soft)],
          ['hard', int(u.hard)],
        ]);
  return obj([
    ['develop', develop(x.develop as Tree | undefined)],
    ['cap_add', strs(s.cap_add)],
    ['cap_drop', strs(s.cap_drop)],
    ['cpus', float32(cpus)],
    ['cpuset', str(s.cpuset)],
    ['cpu_shares', int(s.cpu_shares)],
    ['command', command(s.command)],
    ['configs', list(s.configs, (r) => fileRef(r, false))],
    ['container_name', str(s.container_name)],
    ['deploy', s.deploy && deploy(s.deploy, `${w}.deploy`)],
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
    ['hostname', str(s.hostname)],
    ['healthcheck', s.healthcheck && healthcheck(s.healthcheck)],
    ['image', str(s.image)],
    ['init', optBool(s.init)],
    ['ipc', str(s.ipc)],
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
    ['mac_address', str(s.mac_address)],
    ['network_mode', str(s.network_mode)],
    ['networks', map(s.networks, network)],
    ['oom_score_adj', int(s.oom_score_adj)],
    ['pid', str(s.pid)],
    ['pids_limit', int(pids)],
    ['platform', str(s.platform)],
    ['ports', list(s.ports, port)],
    ['privileged', bool(s.privileged)],
    ['read_only', bool(s.read_only)],
    ['restart', str(s.restart)],
    ['secrets', list(s.secrets, (r) => fileRef(r, true))],
    ['security_opt', strs(s.security_opt)],
    ['shm_size', bytes(s.shm_size, `${w}.shm_size`)],
    ['stdin_open', bool(s.stdin_open)],
    ['stop_grace_period', duration(s.stop_grace_period, false)],
    ['stop_signal', str(s.stop_signal)],
    ['sysctls', mapping(s.sysctls)],
    ['tmpfs', strs(s.tmpfs)],
    ['tty', bool(s.tty)],
    ['ulimits', map(s.ulimits, ulimit)],
    ['user', str(s.user)],
    ['userns_mode', str(s.userns_mode)],
    ['volumes', list(s.volumes, (v) => volume(v, `${w}.volumes`))],
    ['working_dir', str(s.working_dir)],
  ]);
}

/** com.docker.compose.config-hash: docker compose v2's ServiceHash of this service. */
export function serviceHash(s: Service): string {
  return createHash('sha256').update(serviceHashInput(s)).digest('hex');
}
