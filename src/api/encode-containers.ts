import { type LogConfig, logPolicy, logsReadable } from '../containers/logconfig.ts';
import path from 'node:path';
import { emptyEndpoint, joinedContainer, networkName } from '../containers/network.ts';
import { humanStatus } from '../containers/query.ts';
import type { ContainerService } from '../containers/service.ts';
import { type ContainerRecord, isRunning } from '../containers/types.ts';
import { DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS } from '../runtime/index.ts';
import { toDockerMountPoint } from '../volumes/index.ts';

function networksOf(svc: ContainerService, r: ContainerRecord): Record<string, unknown> {
  if (joinedContainer(r.hostConfig.NetworkMode) !== undefined) return {}; // another container's network: none of its own (as docker)
  const sb = isRunning(r) ? svc.networking.settings?.(r) : undefined;
  if (sb) return sb.networks; // the network layer's view is the truth while it runs, even with no network left
  const live = svc.networks.get(r.id);
  if (live && Object.keys(live).length) return live;
  if (r.endpoints && Object.keys(r.endpoints).length) return Object.fromEntries(Object.keys(r.endpoints).map((n) => [n, { ...emptyEndpoint(), Aliases: r.endpoints![n]!.Aliases ?? null }]));
  return { [networkName(r)]: emptyEndpoint() };
}

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

/** GET /containers/{id}/json (ContainerInspect). */
export function encodeContainerInspect(svc: ContainerService, r: ContainerRecord, execIds: string[], imageDir: string, size?: { rw: number; rootFs: number }): Record<string, unknown> {
  const s = r.state;
  // A container that joined another's network uses that one's files, and shows their paths (as docker).
  const dir = svc.store.containerDir(r.networkOwner ?? r.id);
  const h = r.hostConfig;
  const priv = h.Privileged;
  const upper = svc.images.snapshots.upperDir(r.id);
  const networks = networksOf(svc, r);
  const first = Object.values(networks)[0] as Record<string, unknown> | undefined;
  return {
    Id: r.id,
    Created: r.created,
    Path: r.path,
    Args: r.args,
    State: {
      Status: s.Status,
      Running: isRunning(r),
      Paused: s.Status === 'paused',
      Restarting: s.Status === 'restarting' || svc.restartScheduled(r.id),
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
    LogPath: logsReadable(h) ? svc.logPath(r.id) : '',
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
      CgroupnsMode: 'host',
      ConsoleSize: h.ConsoleSize ?? [0, 0],
      Isolation: '',
      MaskedPaths: priv ? null : [...DEFAULT_MASKED_PATHS],
      ReadonlyPaths: priv ? null : [...DEFAULT_READONLY_PATHS],
      PidsLimit: h.PidsLimit ?? null,
      MemorySwappiness: h.MemorySwappiness ?? null,
      OomKillDisable: h.OomKillDisable ?? false,
    },
    GraphDriver: { Name: 'overlay2', Data: { UpperDir: upper, WorkDir: path.join(path.dirname(upper), 'work'), MergedDir: svc.rootfs(r.id) } },
    ...(size ? { SizeRw: size.rw, SizeRootFs: size.rootFs } : {}),
    Mounts: (r.mounts ?? []).filter((m) => !m.fromTmpfsFlag).map(toDockerMountPoint),
    Config: { ...r.config, Volumes: r.config.Volumes, Env: r.config.Env.length ? r.config.Env : null },
    NetworkSettings: {
      Bridge: '', SandboxID: '', HairpinMode: false, LinkLocalIPv6Address: '', LinkLocalIPv6PrefixLen: 0,
      Ports: (isRunning(r) ? svc.networking.settings?.(r)?.ports : undefined) ?? {}, SandboxKey: (isRunning(r) ? svc.networking.settings?.(r)?.sandboxKey : undefined) ?? '', SecondaryIPAddresses: null, SecondaryIPv6Addresses: null,
      EndpointID: first?.EndpointID ?? '', Gateway: first?.Gateway ?? '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0,
      IPAddress: first?.IPAddress ?? '', IPPrefixLen: first?.IPPrefixLen ?? 0, IPv6Gateway: '', MacAddress: first?.MacAddress ?? '',
      Networks: networks,
    },
    ...(imageDir ? {} : {}),
  };
}

/** One entry of GET /containers/json (ContainerSummary). */
export function encodeContainerSummary(svc: ContainerService, r: ContainerRecord, imageName: string, size?: { rw: number; rootFs: number }): Record<string, unknown> {
  return {
    Id: r.id,
    Names: [`/${r.name}`],
    Image: imageName,
    ImageID: r.imageId,
    Command: [r.path, ...r.args].map((a) => (/\s/.test(a) && r.args.length ? a : a)).join(' '),
    Created: Math.floor(Date.parse(r.created) / 1000),
    Ports: summaryPorts(isRunning(r) ? svc.networking.settings?.(r)?.ports : undefined),
    ...(size ? { SizeRw: size.rw, SizeRootFs: size.rootFs } : {}),
    Labels: r.config.Labels,
    State: r.state.Status,
    Status: humanStatus(r),
    HostConfig: { NetworkMode: r.hostConfig.NetworkMode },
    NetworkSettings: { Networks: networksOf(svc, r) },
    Mounts: (r.mounts ?? []).filter((m) => !m.fromTmpfsFlag).map(toDockerMountPoint),
  };
}
