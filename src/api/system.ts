import fs from 'node:fs';
import os from 'node:os';
import { exec } from '../common/exec.ts';
import { VERSION } from '../engine/engine.ts';
import type { EngineEvent } from '../engine/events.ts';
import { parseFilters } from '../engine/filters.ts';
import { encodeContainerSummary } from './encode-containers.ts';
import { encodeImageSummary } from './encode-images.ts';
import { encodeVolume } from './volumes.ts';
import { readJsonBody, type Router, sendJson } from './router.ts';
import { API_VERSION, MIN_API_VERSION } from './server.ts';
import { clientGone } from './stream.ts';

const EVENTS_BACKLOG = 4 << 20;

let runcVersion: string | undefined;
async function runc(): Promise<string> {
  if (runcVersion === undefined) {
    const r = await exec(['runc', '--version'], { allowFailure: true }).catch(() => undefined);
    runcVersion = /runc version (\S+)/.exec(r?.stdout ?? '')?.[1] ?? '';
  }
  return runcVersion;
}

export function systemRoutes(r: Router): void {
  const ping = (ctx: { res: import('node:http').ServerResponse; req: import('node:http').IncomingMessage }) => {
    ctx.res.writeHead(200, {
      'Content-Type': 'text/plain; charset=utf-8',
      'Cache-Control': 'no-cache, no-store, must-revalidate',
      Pragma: 'no-cache',
      'Builder-Version': '1',
      'Content-Length': ctx.req.method === 'HEAD' ? 0 : 2,
    });
    ctx.res.end(ctx.req.method === 'HEAD' ? undefined : 'OK');
  };
  r.add('GET', '/_ping', ping);
  r.add('HEAD', '/_ping', ping);

  r.add('GET', '/version', async ({ res }) => {
    const rv = await runc();
    const arch = os.arch() === 'x64' ? 'amd64' : os.arch();
    sendJson(res, 200, {
      Platform: { Name: 'keel' },
      Components: [
        {
          Name: 'Engine',
          Version: VERSION,
          Details: {
            ApiVersion: API_VERSION,
            Arch: arch,
            KernelVersion: os.release(),
            MinAPIVersion: MIN_API_VERSION,
            Os: 'linux',
            GoVersion: `node${process.versions.node}`,
            GitCommit: '',
            BuildTime: '',
            Experimental: 'false',
          },
        },
        { Name: 'runc', Version: rv, Details: { GitCommit: '' } },
      ],
      Version: VERSION,
      ApiVersion: API_VERSION,
      MinAPIVersion: MIN_API_VERSION,
      GitCommit: '',
      GoVersion: `node${process.versions.node}`,
      Os: 'linux',
      Arch: arch,
      KernelVersion: os.release(),
      BuildTime: '',
    });
  });

  r.add('GET', '/info', async ({ res, engine }) => {
    const i = engine.info();
    const arch = os.arch() === 'x64' ? 'x86_64' : os.arch();
    sendJson(res, 200, {
      ID: engine.dataRoot,
      Containers: i.containers.total,
      ContainersRunning: i.containers.running,
      ContainersPaused: i.containers.paused,
      ContainersStopped: i.containers.stopped,
      Images: i.images,
      Driver: 'overlay2',
      DriverStatus: [
        ['Backing Filesystem', 'extfs'],
        ['Supports d_type', 'true'],
        ['Native Overlay Diff', 'true'],
      ],
      Plugins: { Volume: ['local'], Network: ['bridge', 'host', 'none'], Authorization: null, Log: ['json-file', 'local', 'none'] },
      MemoryLimit: true,
      SwapLimit: true,
      CpuCfsPeriod: true,
      CpuCfsQuota: true,
      CPUShares: true,
      CPUSet: true,
      PidsLimit: true,
      IPv4Forwarding: true,
      Debug: false,
      NFd: 0,
      NGoroutines: 0,
      SystemTime: new Date().toISOString(),
      LoggingDriver: 'json-file',
      CgroupDriver: 'cgroupfs',
      CgroupVersion: fs.existsSync('/sys/fs/cgroup/cgroup.controllers') ? '2' : '1',
      NEventsListener: 0,
      KernelVersion: os.release(),
      OperatingSystem: await osName(),
      OSType: 'linux',
      Architecture: arch,
      NCPU: os.cpus().length,
      MemTotal: os.totalmem(),
      IndexServerAddress: 'https://index.docker.io/v1/',
      RegistryConfig: registryConfig(engine.registries.settings()),
      DockerRootDir: engine.dataRoot,
      HttpProxy: '',
      HttpsProxy: '',
      NoProxy: '',
      Name: i.hostname,
      Labels: [],
      ExperimentalBuild: false,
      ServerVersion: VERSION,
      Runtimes: { runc: { path: 'runc' } },
      DefaultRuntime: 'runc',
      Swarm: { NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '', RemoteManagers: null },
      LiveRestoreEnabled: true,
      Isolation: '',
      InitBinary: 'docker-init',
      ContainerdCommit: { ID: '', Expected: '' },
      RuncCommit: { ID: await runc(), Expected: '' },
      InitCommit: { ID: '', Expected: '' },
      SecurityOptions: ['name=seccomp,profile=default'],
      Warnings: engine.warnings.length ? engine.warnings : null,
    });
  });

  r.add('GET', '/system/df', async ({ res, engine }) => {
    const df = await engine.systemDf();
    const containers = [];
    for (const c of df.containers) containers.push(encodeContainerSummary(c.view, engine.containerImageName(c.record), await engine.containerSizes(c.record)));
    const volumes = await engine.volumeUsage();
    sendJson(res, 200, {
      LayersSize: df.layersSize,
      Images: df.images.map((v) => ({ ...encodeImageSummary(v), SharedSize: v.sharedSize })),
      Containers: containers,
      Volumes: volumes.map((u) => encodeVolume(u.record, engine.volumeMountpoint(u.record.name), { size: u.size, refCount: u.refCount })),
      BuildCache: [],
      // keel's addition (EXTENSIONS.md): the read-only layers clones stack.
      FrozenLayers: (await engine.frozenUsage()).map((f) => ({ Id: f.id, Kind: f.kind, Origin: f.owner, Size: f.size, RefCount: f.refCount })),
    });
  });

  r.add('GET', '/events', async ({ res, engine, query, signal }) => {
    const f = { since: qTime(query.get('since')), until: qTime(query.get('until')), filters: parseFilters(query.get('filters')) };
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.flushHeaders();
    // Events come from the engine whatever the client does: one that stops reading is
    // dropped once it has EVENTS_BACKLOG bytes waiting, instead of growing the daemon.
    const send = (e: EngineEvent) => {
      if (res.writableEnded || res.destroyed) return;
      if (res.writableLength > EVENTS_BACKLOG) return void res.destroy();
      res.write(JSON.stringify(e) + '\n');
    };
    if (f.since !== undefined) for (const e of engine.pastEvents(f)) send(e);
    const nowS = Date.now() / 1000;
    if (f.until !== undefined && f.until <= nowS) return void res.end();
    const unsubscribe = engine.subscribeEvents(f, send);
    const timer = f.until !== undefined ? setTimeout(() => res.end(), (f.until - nowS) * 1000) : undefined;
    try {
      await Promise.race([clientGone(signal), new Promise((resolve) => res.once('finish', resolve))]);
    } finally {
      unsubscribe();
      clearTimeout(timer);
    }
  });

  r.add('POST', '/auth', async ({ req, res, engine }) => {
    const body = (await readJsonBody<{ username?: string; password?: string; serveraddress?: string; identitytoken?: string }>(req)) ?? {};
    const r = await engine.login(body);
    sendJson(res, 200, { Status: r.status, IdentityToken: r.identityToken ?? '' });
  });
}

/** Docker's `since`/`until`: unix seconds (maybe fractional) or an RFC 3339 time. */
function qTime(v: string | null): number | undefined {
  if (!v) return undefined;
  const n = Number(v);
  if (Number.isFinite(n)) return n;
  const t = Date.parse(v);
  return Number.isFinite(t) ? t / 1000 : undefined;
}

async function osName(): Promise<string> {
  try {
    const text = fs.readFileSync('/etc/os-release', 'utf8');
    return /^PRETTY_NAME="?([^"\n]*)"?/m.exec(text)?.[1] ?? 'Linux';
  } catch {
    return 'Linux';
  }
}

interface IndexInfo {
  Name: string;
  Mirrors: string[];
  Secure: boolean;
  Official: boolean;
}

/**
 * RegistryConfig as dockerd 20.10 builds it (registry/config.go
 * newServiceConfig): mirrors of docker.io written with a trailing '/', each
 * insecure host[:port] an IndexConfigs entry with Secure false, docker.io the
 * official index with the mirrors, loopback always an insecure CIDR.
 */
export function registryConfig(s: { mirrors: Record<string, string[]>; insecure: string[] }): object {
  const mirrors = [...new Set((s.mirrors['docker.io'] ?? []).map((m) => `${m.replace(/\/+$/, '')}/`))];
  const index: Record<string, IndexInfo> = {};
  for (const h of s.insecure) if (h !== 'docker.io') index[h] = { Name: h, Mirrors: [], Secure: false, Official: false };
  index['docker.io'] = { Name: 'docker.io', Mirrors: mirrors, Secure: true, Official: true };
  // Go writes map keys sorted.
  const IndexConfigs = Object.fromEntries(
    Object.keys(index)
      .sort()
      .map((k) => [k, index[k]!]),
  );
  return {
    AllowNondistributableArtifactsCIDRs: [],
    AllowNondistributableArtifactsHostnames: [],
    InsecureRegistryCIDRs: ['127.0.0.0/8'],
    IndexConfigs,
    Mirrors: mirrors,
  };
}
