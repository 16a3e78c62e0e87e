/**
 * A service's container as the engine creates it: the compose model
 * (types.ts) to a ContainerSpec (backend.ts), as docker compose converts
 * it (pkg/compose/create.go): labels, environment list, mounts (binds
 * that may create their host path as Binds, the rest as Mounts), port
 * bindings, restart policy, resources, the first network at create.
 */
import { EngineError } from '../common/errors.ts';
import type { ContainerSpec, EndpointSpec, MountSpec } from './backend.ts';
import * as L from './labels.ts';
import { resolveServiceReferences } from './hash.ts';
import type { InheritedVolume } from './inherit.ts';
import { fileTarget, isInline } from './inject.ts';
import { configHash } from './serialize.ts';
import type { Project, Service } from './types.ts';

export interface ContainerPlan {
  spec: ContainerSpec;
  /** Networks to connect after create, before start. */
  extraNetworks: { name: string; endpoint: EndpointSpec }[];
}

export function serviceLabels(p: Project, s: Service, n: number, imageId: string, oneoff = false): Record<string, string> {
  return {
    ...s.labels,
    [L.PROJECT]: p.name,
    [L.SERVICE]: s.name,
    [L.NUMBER]: String(n),
    [L.ONEOFF]: oneoff ? 'True' : 'False',
    [L.CONFIG_HASH]: configHash(s),
    [L.IMAGE]: imageId,
    [L.WORKING_DIR]: p.workingDir,
    [L.CONFIG_FILES]: p.configFiles.join(','),
    [L.DEPENDS_ON]: Object.entries(s.depends_on)
      .map(([d, c]) => `${d}:${c.condition}:${c.restart}`)
      .join(','),
    [L.VERSION]: L.COMPOSE_VERSION,
  };
}

function restartPolicy(r: string | undefined): { Name: string; MaximumRetryCount: number } | undefined {
  if (!r) return undefined;
  const [name, max] = r.split(':');
  if (!['no', 'always', 'unless-stopped', 'on-failure'].includes(name!)) throw new EngineError('INVALID_ARGUMENT', `invalid restart policy "${r}"`);
  return { Name: name!, MaximumRetryCount: max ? Number(max) : 0 };
}

function mounts(p: Project, s: Service, inherited: InheritedVolume[] = []): { binds: string[]; mounts: MountSpec[]; tmpfs: Record<string, string> } {
  const binds: string[] = [];
  const out: MountSpec[] = [];
  const tmpfs: Record<string, string> = {};
  for (const v of s.volumes) {
    if (v.type === 'bind') {
      if (!v.source) throw new EngineError('INVALID_ARGUMENT', `service "${s.name}": bind mount to ${v.target} has no source`);
      if (v.bind?.create_host_path !== false) {
        // like docker compose: a bind that may create its host path goes as a legacy Bind
        const opts = [v.read_only ? 'ro' : '', v.bind?.selinux ?? '', v.bind?.propagation ?? ''].filter(Boolean);
        binds.push(`${v.source}:${v.target}${opts.length ? `:${opts.join(',')}` : ''}`);
      } else
        out.push({
          Type: 'bind',
          Source: v.source,
          Target: v.target,
          ReadOnly: v.read_only,
          ...(v.bind?.propagation ? { BindOptions: { Propagation: v.bind.propagation } } : {}),
        });
    } else if (v.type === 'volume') {
      // an anonymous volume is the previous container's when it is recreated (inherit.ts)
      const source = v.source ? (p.volumes[v.source]?.name ?? v.source) : inherited.find((i) => i.target === v.target)?.name;
      out.push({
        Type: 'volume',
        ...(source ? { Source: source } : {}),
        Target: v.target,
        ...(v.read_only ? { ReadOnly: true } : {}),
        ...(v.volume?.nocopy ? { VolumeOptions: { NoCopy: true } } : {}),
      });
    } else if (v.type === 'tmpfs') {
      out.push({ Type: 'tmpfs', Target: v.target, ...(v.tmpfs ? { TmpfsOptions: { SizeBytes: v.tmpfs.size, Mode: v.tmpfs.mode } } : {}) });
    } else throw new EngineError('INVALID_ARGUMENT', `service "${s.name}": volume type ${v.type} is not supported`);
  }
  for (const t of s.tmpfs ?? []) {
    const i = t.indexOf(':');
    tmpfs[i < 0 ? t : t.slice(0, i)] = i < 0 ? '' : t.slice(i + 1);
  }
  // the image's VOLUMEs the service does not mount otherwise
  for (const i of inherited) {
    if (s.volumes.some((v) => v.target === i.target) || i.target in tmpfs) continue;
    out.push({ Type: 'volume', Source: i.name, Target: i.target, ...(i.readOnly ? { ReadOnly: true } : {}) });
  }
  for (const kind of ['secrets', 'configs'] as const) {
    for (const r of s[kind] ?? []) {
      const obj = p[kind][r.source]!;
      if (obj.external) throw new EngineError('INVALID_ARGUMENT', `service "${s.name}": unsupported external ${kind.slice(0, -1)} ${obj.name}`);
      // environment and content sources are copied in before each start (inject.ts)
      if (isInline(obj)) continue;
      if (!obj.file) throw new EngineError('INVALID_ARGUMENT', `service "${s.name}": ${kind.slice(0, -1)} "${r.source}" has no file, environment or content`);
      // a Mount, not a Bind: a missing file is an error, never a directory made on the host (docker compose's CreateHostPath: false)
      out.push({ Type: 'bind', Source: obj.file, Target: fileTarget(kind, r), ReadOnly: true });
    }
  }
  return { binds, mounts: out, tmpfs };
}

function endpoint(s: Service, key: string, cname: string): EndpointSpec {
  const cfg = s.networks?.[key];
  return {
    // the service name resolves on every network the service joins, as in docker compose
    aliases: [s.name, cname, ...(cfg?.aliases ?? [])].filter((a, i, all) => all.indexOf(a) === i),
    ...(cfg?.ipv4_address ? { ipv4Address: cfg.ipv4_address } : {}),
    ...(cfg?.ipv6_address ? { ipv6Address: cfg.ipv6_address } : {}),
    ...(cfg?.mac_address ? { macAddress: cfg.mac_address } : {}),
  };
}

export interface PlanOptions {
  imageId: string;
  /** For network_mode service:X, X's container id. */
  serviceContainer?: (service: string) => string;
  oneoff?: boolean;
  name?: string;
  /** The anonymous volumes a recreated container takes over from its predecessor. */
  inherited?: InheritedVolume[];
  /** run: command, env, ports publishing, tty overrides. */
  override?: {
    cmd?: string[];
    env?: string[];
    entrypoint?: string[];
    noPorts?: boolean;
    tty?: boolean;
    openStdin?: boolean;
    user?: string;
    workingDir?: string;
    labels?: Record<string, string>;
  };
}

export function planContainer(p: Project, s: Service, n: number, o: PlanOptions): ContainerPlan {
  const name = o.name ?? L.containerName(p.name, s.name, n, s.container_name);
  const { binds, mounts: ms, tmpfs } = mounts(p, s, o.inherited);
  const portBindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  const exposed = new Set<string>();
  for (const e of s.expose ?? []) exposed.add(e.includes('/') ? e : `${e}/tcp`);
  if (!o.override?.noPorts) {
    for (const port of s.ports) {
      const key = `${port.target}/${port.protocol}`;
      exposed.add(key);
      (portBindings[key] ??= []).push({ HostIp: port.host_ip ?? '', HostPort: port.published ?? '' });
    }
  }
  // `service:X` namespaces join X's first container (its number 1 when X runs)
  const shared = (mode: string | undefined) => (mode?.startsWith('service:') ? `container:${o.serviceContainer!(mode.slice(8))}` : mode);
  let networkMode = shared(s.network_mode);
  // the label hashes the references resolved, as docker compose does (hash.ts)
  const hashed = o.serviceContainer ? resolveServiceReferences(s, orUndefined(o.serviceContainer)) : s;
  const keys = Object.keys(s.networks ?? {}).sort((a, b) => (s.networks?.[b]?.priority ?? 0) - (s.networks?.[a]?.priority ?? 0));
  const first = keys[0];
  if (!networkMode && first) networkMode = p.networks[first]!.name;
  const env = [
    ...Object.entries(s.environment)
      .filter(([, v]) => v !== null)
      .map(([k, v]) => `${k}=${v}`),
    ...(o.override?.env ?? []),
  ];
  const h = s.healthcheck;
  const spec: ContainerSpec = {
    name,
    image: s.image ?? `${p.name}-${s.name}`,
    labels: { ...serviceLabels(p, hashed, n, o.imageId, o.oneoff), ...o.override?.labels },
    env,
    ...(o.override?.cmd ? { cmd: o.override.cmd } : s.command !== undefined ? { cmd: s.command } : {}),
    ...(o.override?.entrypoint ? { entrypoint: o.override.entrypoint } : s.entrypoint !== undefined ? { entrypoint: s.entrypoint } : {}),
    workingDir: o.override?.workingDir ?? s.working_dir,
    user: o.override?.user ?? s.user,
    hostname: s.hostname,
    domainname: s.domainname,
    tty: o.override?.tty ?? s.tty,
    openStdin: o.override?.openStdin ?? s.stdin_open,
    stopSignal: s.stop_signal,
    ...(s.stop_grace_period !== undefined ? { stopTimeout: Math.ceil(s.stop_grace_period / 1e9) } : {}),
    ...(h
      ? {
          healthcheck: h.disable
            ? { Test: ['NONE'] }
            : { Test: h.test, Interval: h.interval, Timeout: h.timeout, Retries: h.retries, StartPeriod: h.start_period, StartInterval: h.start_interval },
        }
      : {}),
    exposedPorts: [...exposed],
    host: {
      Binds: binds,
      Mounts: ms,
      ...(Object.keys(tmpfs).length ? { Tmpfs: tmpfs } : {}),
      PortBindings: portBindings,
      RestartPolicy: restartPolicy(s.restart),
      NetworkMode: networkMode,
      Privileged: s.privileged,
      ReadonlyRootfs: s.read_only,
      Init: s.init,
      CapAdd: s.cap_add,
      CapDrop: s.cap_drop,
      Dns: s.dns,
      DnsSearch: s.dns_search,
      DnsOptions: s.dns_opt,
      ExtraHosts: s.extra_hosts,
      Memory: s.mem_limit,
      MemoryReservation: s.mem_reservation,
      MemorySwap: s.memswap_limit,
      ...(s.cpus !== undefined ? { NanoCpus: Math.round(s.cpus * 1e9) } : {}),
      CpuShares: s.cpu_shares,
      CpusetCpus: s.cpuset,
      PidsLimit: s.pids_limit,
      ShmSize: s.shm_size,
      Sysctls: s.sysctls,
      ...(s.ulimits ? { Ulimits: Object.entries(s.ulimits).map(([k, u]) => ({ Name: k, Soft: u.soft, Hard: u.hard })) } : {}),
      ...(s.logging?.driver ? { LogConfig: { Type: s.logging.driver, Config: s.logging.options ?? {} } } : {}),
      SecurityOpt: s.security_opt,
      GroupAdd: s.group_add,
      IpcMode: shared(s.ipc),
      PidMode: shared(s.pid),
      ...(s.volumes_from ? { VolumesFrom: s.volumes_from.map((v) => volumesFrom(v, o.serviceContainer!)) } : {}),
      CgroupParent: s.cgroup_parent,
      CgroupnsMode: s.cgroup,
      CpuPeriod: s.cpu_period,
      CpuQuota: s.cpu_quota,
      CpuRealtimePeriod: s.cpu_rt_period,
      CpuRealtimeRuntime: s.cpu_rt_runtime,
      MemorySwappiness: s.mem_swappiness,
      OomKillDisable: s.oom_kill_disable,
      UTSMode: s.uts,
      DeviceCgroupRules: s.device_cgroup_rules,
      ...(s.blkio_config?.weight ? { BlkioWeight: Number(s.blkio_config.weight) } : {}),
      UsernsMode: s.userns_mode,
      OomScoreAdj: s.oom_score_adj,
      ...(s.devices ? { Devices: s.devices.map(devMapping) } : {}),
    },
  };
  if (!s.network_mode && first) spec.network = { name: p.networks[first]!.name, endpoint: endpoint(s, first, name) };
  const extraNetworks = s.network_mode ? [] : keys.slice(1).map((k) => ({ name: p.networks[k]!.name, endpoint: endpoint(s, k, name) }));
  return { spec, extraNetworks };
}

/** volumes_from `X[:mode]` (a service) or `container:name[:mode]`, as HostConfig.VolumesFrom's `container[:mode]`. */
function volumesFrom(v: string, serviceContainer: (service: string) => string): string {
  const [kind, ...rest] = v.split(':');
  if (kind === 'container') return rest.join(':');
  return [serviceContainer(kind!), ...rest].join(':');
}

const orUndefined =
  (f: (s: string) => string) =>
  (s: string): string | undefined => {
    try {
      return f(s);
    } catch {
      return undefined;
    }
  };

function devMapping(d: string): { PathOnHost: string; PathInContainer: string; CgroupPermissions: string } {
  const [host, cont, perms] = d.split(':');
  return { PathOnHost: host!, PathInContainer: cont ?? host!, CgroupPermissions: perms ?? 'rwm' };
}
