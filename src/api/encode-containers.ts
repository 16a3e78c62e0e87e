import { type LogConfig, logPolicy } from '../containers/logconfig.ts';
import path from 'node:path';
import { humanStatus } from '../containers/query.ts';
import { isRunning } from '../containers/types.ts';
import type { ContainerView } from '../containers/view.ts';
import { DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS } from '../runtime/index.ts';
import { toDockerMountPoint } from '../volumes/index.ts';
import { encodeEndpoints, toPortMap } from './encode-network.ts';

/** ContainerSummary.Ports from NetworkSettings.Ports: published ones with their host side, exposed ones without. */
function summaryPorts(ports: Record<string, Array<{ HostIp: string; HostPort: string }> | null> | undefined): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const [k, binds] of Object.entries(ports ?? {})) {
    const [port, type] = k.split('/');
    if (!binds) out.push({ PrivatePort: Number(port), Type: type });
    for (const b of binds ?? []) out.push({ IP: b.HostIp, PrivatePort: Number(port), PublicPort: Number(b.HostPort), Type: type });
  }
  return out;
}

/** NetworkSettings.Ports while it runs: every exposed port, with its host side when published. */
function portMap(v: ContainerView): ReturnType<typeof toPortMap> | undefined {
  return v.ports && toPortMap(v.ports, Object.keys(v.record.config.ExposedPorts ?? {}));
}

/** GET /containers/{id}/json (ContainerInspect). */
export function encodeContainerInspect(v: ContainerView, execIds: string[], imageDir: string, size?: { rw: number; rootFs: number }): Record<string, unknown> {
  const r = v.record;
  const s = r.state;
  // A container that joined another's network uses that one's files, and shows their paths (as docker).
  const dir = v.filesDir;
  const h = r.hostConfig;
  const priv = h.Privileged;
  const networks = encodeEndpoints(v.networks);
  const first = Object.values(networks)[0];
  return {
    Id: r.id,
    Created: r.created,
    Path: r.path,
    Args: r.args,
    State: {
      Status: v.status,
      // restarting counts as running, as in dockerd (its SetRestarting), which rm, stop and clients rely on
      Running: isRunning(r) || v.restarting,
      Paused: s.Status === 'paused',
      Restarting: v.restarting,
      OOMKilled: s.OOMKilled,
      Dead: s.Status === 'dead',
      Pid: s.Pid,
      ExitCode: s.ExitCode,
      Error: s.Error,
      StartedAt: s.StartedAt,
      FinishedAt: s.FinishedAt,
      ...(s.Health ? { Health: s.Health } : {}),
    },
    Image: r.imageId,
    ResolvConfPath: path.join(dir, 'resolv.conf'),
    HostnamePath: path.join(dir, 'hostname'),
    HostsPath: path.join(dir, 'hosts'),
    // Empty as dockerd leaves it for its `local` driver: the file is conmon's k8s-file (containers/logconfig.ts),
    // not docker's json-file lines, and a path here would invite tools to parse it as those.
    LogPath: '',
    Name: `/${r.name}`,
    RestartCount: r.restartCount,
    Driver: 'overlay2',
    Platform: 'linux',
    MountLabel: '',
    ProcessLabel: '',
    AppArmorProfile: '',
    ExecIDs: execIds.length ? execIds : null,
    HostConfig: {
      ...h,
      // Records from before drivers were honoured say k8s-file: docker's name for what they are is json-file.
      LogConfig: { Type: logPolicy(h).driver, Config: (h.LogConfig as LogConfig | undefined)?.Config ?? {} },
      Runtime: 'runc',
      CgroupnsMode: h.CgroupnsMode || 'host',
      ConsoleSize: h.ConsoleSize ?? [0, 0],
      Isolation: '',
      MaskedPaths: priv ? null : [...DEFAULT_MASKED_PATHS],
      ReadonlyPaths: priv ? null : [...DEFAULT_READONLY_PATHS],
      PidsLimit: h.PidsLimit ?? null,
      MemorySwappiness: h.MemorySwappiness ?? null,
      OomKillDisable: h.OomKillDisable ?? false,
    },
    GraphDriver: { Name: 'overlay2', Data: { UpperDir: v.upperDir, WorkDir: v.workDir, MergedDir: v.rootfs } },
    ...(size ? { SizeRw: size.rw, SizeRootFs: size.rootFs } : {}),
    Mounts: (r.mounts ?? []).filter((m) => !m.fromTmpfsFlag).map(toDockerMountPoint),
    Config: { ...r.config, Volumes: r.config.Volumes, Env: r.config.Env.length ? r.config.Env : null },
    NetworkSettings: {
      Bridge: '',
      SandboxID: '',
      HairpinMode: false,
      LinkLocalIPv6Address: '',
      LinkLocalIPv6PrefixLen: 0,
      Ports: portMap(v) ?? {},
      SandboxKey: v.sandboxKey ?? '',
      SecondaryIPAddresses: null,
      SecondaryIPv6Addresses: null,
      EndpointID: first?.EndpointID ?? '',
      Gateway: first?.Gateway ?? '',
      GlobalIPv6Address: '',
      GlobalIPv6PrefixLen: 0,
      IPAddress: first?.IPAddress ?? '',
      IPPrefixLen: first?.IPPrefixLen ?? 0,
      IPv6Gateway: '',
      MacAddress: first?.MacAddress ?? '',
      Networks: networks,
    },
    ...(imageDir ? {} : {}),
  };
}

/** One entry of GET /containers/json (ContainerSummary). */
export function encodeContainerSummary(v: ContainerView, imageName: string, size?: { rw: number; rootFs: number }): Record<string, unknown> {
  const r = v.record;
  return {
    Id: r.id,
    Names: [`/${r.name}`],
    Image: imageName,
    ImageID: r.imageId,
    Command: [r.path, ...r.args].map((a) => (/\s/.test(a) && r.args.length ? a : a)).join(' '),
    Created: Math.floor(Date.parse(r.created) / 1000),
    Ports: summaryPorts(portMap(v)),
    ...(size ? { SizeRw: size.rw, SizeRootFs: size.rootFs } : {}),
    Labels: r.config.Labels,
    State: v.status,
    Status: humanStatus(r, Date.now(), v.status),
    HostConfig: { NetworkMode: r.hostConfig.NetworkMode },
    NetworkSettings: { Networks: encodeEndpoints(v.networks) },
    Mounts: (r.mounts ?? []).filter((m) => !m.fromTmpfsFlag).map(toDockerMountPoint),
  };
}
