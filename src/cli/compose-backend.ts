/**
 * compose's engine (compose/backend.ts) over the Docker API: what `keel
 * compose` and the docker CLI plugin run on. Each method is one or two
 * API calls; the only logic here is the renaming between the typed specs
 * and Docker's JSON bodies.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { EngineError, isEngineError } from '../common/errors.ts';
import type {
  BuildSpec,
  ComposeBackend,
  ContainerDetails,
  ContainerSpec,
  ContainerState,
  ContainerSummary,
  EndpointSpec,
  ExecSpec,
  ImageSummary,
  LogChunk,
  EngineEvent,
  NetworkSpec,
  NetworkSummary,
  Progress,
  VolumeSpec,
  VolumeSummary,
} from '../compose/backend.ts';
import { type ApiClient, readAll } from './client.ts';

/** The stdio sessions' modules (exec, run, logs), loaded by the first that runs: `up` needs none. */
const sessions = () => Promise.all([import('./hijack.ts'), import('./session.ts')]);

const enc = encodeURIComponent;
const labelFilters = (labels: string[]) => JSON.stringify({ label: labels });

interface DockerContainer {
  Id: string;
  Names: string[];
  Image: string;
  ImageID: string;
  Command: string;
  Created: number;
  State: ContainerState;
  Status: string;
  Labels: Record<string, string> | null;
  Ports: { IP?: string; PrivatePort: number; PublicPort?: number; Type: string }[] | null;
  NetworkSettings?: { Networks?: Record<string, { NetworkID?: string }> | null } | null;
  Mounts?: { Type?: string; Name?: string; Destination?: string; RW?: boolean }[] | null;
}

function summary(c: DockerContainer): ContainerSummary {
  return {
    id: c.Id,
    name: (c.Names[0] ?? '').replace(/^\//, ''),
    image: c.Image,
    imageId: c.ImageID,
    command: c.Command,
    created: c.Created,
    state: c.State,
    status: c.Status,
    labels: c.Labels ?? {},
    ports: (c.Ports ?? []).map((p) => ({
      ...(p.IP ? { ip: p.IP } : {}),
      privatePort: p.PrivatePort,
      ...(p.PublicPort ? { publicPort: p.PublicPort } : {}),
      type: p.Type,
    })),
    ...(c.NetworkSettings?.Networks ? { networkIds: Object.values(c.NetworkSettings.Networks).flatMap((n) => (n.NetworkID ? [n.NetworkID] : [])) } : {}),
    ...(c.Mounts
      ? {
          mounts: c.Mounts.flatMap((m) =>
            m.Type === 'volume' && m.Name && m.Destination ? [{ name: m.Name, destination: m.Destination, rw: m.RW !== false }] : [],
          ),
        }
      : {}),
  };
}

function endpointBody(e: EndpointSpec): Record<string, unknown> {
  const ipam =
    e.ipv4Address || e.ipv6Address
      ? { IPAMConfig: { ...(e.ipv4Address ? { IPv4Address: e.ipv4Address } : {}), ...(e.ipv6Address ? { IPv6Address: e.ipv6Address } : {}) } }
      : {};
  return { Aliases: e.aliases ?? null, ...ipam, ...(e.macAddress ? { MacAddress: e.macAddress } : {}) };
}

/** The tar stream `tar` with one more file appended (re-packed entry by entry, never held in memory). */
export async function withFile(tar: Readable, name: string, content: string): Promise<Readable> {
  const tarStream = (await import('tar-stream')).default;
  const extract = tarStream.extract();
  const pack = tarStream.pack();
  extract.on('entry', (header, stream, next) => stream.pipe(pack.entry(header, next)));
  extract.on('finish', () => {
    pack.entry({ name, mode: 0o644 }, content);
    pack.finalize();
  });
  extract.on('error', (e) => pack.destroy(e));
  tar.on('error', (e) => pack.destroy(e));
  tar.pipe(extract);
  return Readable.from(pack as AsyncIterable<Buffer>);
}

export class ApiComposeBackend implements ComposeBackend {
  private readonly client: ApiClient;

  constructor(client: ApiClient) {
    this.client = client;
  }

  private async call(method: string, url: string, query?: Record<string, string | number | boolean | undefined>): Promise<void> {
    (await this.client.request(method, url, { query })).resume();
  }

  async listContainers(labels: string[], opts: { all?: boolean } = {}): Promise<ContainerSummary[]> {
    const list = await this.client.json<DockerContainer[]>('GET', '/containers/json', {
      query: { all: opts.all === false ? undefined : 1, filters: labelFilters(labels) },
    });
    return list.map(summary);
  }

  async inspectContainer(id: string): Promise<ContainerDetails> {
    const c = await this.client.json<{
      Id: string;
      Name: string;
      Image: string;
      Created: string;
      Path: string;
      Args: string[];
      State: { Status: ContainerState; Running: boolean; ExitCode: number; Health?: { Status: string } };
      Config: { Image: string; Labels: Record<string, string> | null; Tty: boolean };
      NetworkSettings: {
        Ports: Record<string, { HostIp: string; HostPort: string }[] | null> | null;
        Networks: Record<string, { IPAddress?: string; Aliases?: string[] | null }> | null;
      };
    }>('GET', `/containers/${enc(id)}/json`);
    const ports = Object.entries(c.NetworkSettings.Ports ?? {}).flatMap(([k, bs]) => {
      const [p, type] = k.split('/');
      return bs?.length
        ? bs.map((b) => ({ ip: b.HostIp, privatePort: Number(p), publicPort: Number(b.HostPort), type: type! }))
        : [{ privatePort: Number(p), type: type! }];
    });
    return {
      id: c.Id,
      name: c.Name.replace(/^\//, ''),
      image: c.Config.Image,
      imageId: c.Image,
      command: [c.Path, ...c.Args].join(' '),
      created: Date.parse(c.Created) / 1000,
      state: c.State.Status,
      status: c.State.Status,
      labels: c.Config.Labels ?? {},
      ports,
      running: c.State.Running,
      exitCode: c.State.ExitCode,
      health: c.State.Health?.Status as ContainerDetails['health'],
      tty: c.Config.Tty,
      networks: Object.fromEntries(
        Object.entries(c.NetworkSettings.Networks ?? {}).map(([n, e]) => [n, { ipAddress: e.IPAddress, aliases: e.Aliases ?? undefined }]),
      ),
    };
  }

  async createContainer(s: ContainerSpec): Promise<string> {
    const body = {
      Image: s.image,
      Labels: s.labels,
      Env: s.env,
      ...(s.cmd !== undefined ? { Cmd: s.cmd } : {}),
      ...(s.entrypoint !== undefined ? { Entrypoint: s.entrypoint } : {}),
      WorkingDir: s.workingDir ?? '',
      User: s.user ?? '',
      Hostname: s.hostname ?? '',
      Domainname: s.domainname ?? '',
      Tty: !!s.tty,
      OpenStdin: !!s.openStdin,
      AttachStdin: false,
      AttachStdout: true,
      AttachStderr: true,
      StdinOnce: false,
      ...(s.stopSignal ? { StopSignal: s.stopSignal } : {}),
      ...(s.stopTimeout !== undefined ? { StopTimeout: s.stopTimeout } : {}),
      ...(s.healthcheck ? { Healthcheck: s.healthcheck } : {}),
      ExposedPorts: Object.fromEntries(s.exposedPorts.map((p) => [p, {}])),
      HostConfig: s.host,
      NetworkingConfig: s.network ? { EndpointsConfig: { [s.network.name]: endpointBody(s.network.endpoint) } } : undefined,
    };
    const r = await this.client.json<{ Id: string }>('POST', '/containers/create', { query: { name: s.name }, body });
    return r.Id;
  }

  async connectNetwork(network: string, container: string, e: EndpointSpec): Promise<void> {
    (await this.client.request('POST', `/networks/${enc(network)}/connect`, { body: { Container: container, EndpointConfig: endpointBody(e) } })).resume();
  }

  startContainer(id: string): Promise<void> {
    return this.call('POST', `/containers/${enc(id)}/start`);
  }

  stopContainer(id: string, timeout?: number): Promise<void> {
    return this.call('POST', `/containers/${enc(id)}/stop`, { t: timeout });
  }

  restartContainer(id: string, timeout?: number): Promise<void> {
    return this.call('POST', `/containers/${enc(id)}/restart`, { t: timeout });
  }

  killContainer(id: string, signal?: string): Promise<void> {
    return this.call('POST', `/containers/${enc(id)}/kill`, { signal });
  }

  pauseContainer(id: string): Promise<void> {
    return this.call('POST', `/containers/${enc(id)}/pause`);
  }

  unpauseContainer(id: string): Promise<void> {
    return this.call('POST', `/containers/${enc(id)}/unpause`);
  }

  removeContainer(id: string, o: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    return this.call('DELETE', `/containers/${enc(id)}`, { force: o.force ? 1 : undefined, v: o.volumes ? 1 : undefined });
  }

  renameContainer(id: string, name: string): Promise<void> {
    return this.call('POST', `/containers/${enc(id)}/rename`, { name });
  }

  async waitContainer(id: string, signal?: AbortSignal): Promise<number> {
    const res = await this.client.request('POST', `/containers/${enc(id)}/wait`, { query: { condition: 'not-running' } });
    const onAbort = () => res.destroy();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const w = JSON.parse(await readAll(res)) as { StatusCode: number };
      return w.StatusCode;
    } catch (e) {
      if (signal?.aborted) throw new EngineError('CANCELLED', 'wait cancelled');
      throw e;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  async *logs(id: string, o: { follow?: boolean; tail?: string; timestamps?: boolean; since?: string }, signal?: AbortSignal): AsyncIterable<LogChunk> {
    const info = await this.inspectContainer(id);
    const res = await this.client.request('GET', `/containers/${enc(id)}/logs`, {
      query: { stdout: 1, stderr: 1, follow: o.follow ? 1 : undefined, tail: o.tail ?? 'all', timestamps: o.timestamps ? 1 : undefined, since: o.since },
    });
    const onAbort = () => res.destroy();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const pending: LogChunk[] = [];
      const [{ Demuxer }] = await sessions();
      const demux = new Demuxer((s, data) => pending.push({ stream: s === 2 ? 'stderr' : 'stdout', data: Buffer.from(data) }));
      for await (const chunk of res) {
        if (info.tty) yield { stream: 'stdout', data: chunk as Buffer };
        else {
          demux.push(chunk as Buffer);
          yield* pending.splice(0);
        }
      }
    } catch (e) {
      if (!signal?.aborted) throw e;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  async top(id: string): Promise<{ titles: string[]; processes: string[][] }> {
    const r = await this.client.json<{ Titles: string[]; Processes: string[][] }>('GET', `/containers/${enc(id)}/top`);
    return { titles: r.Titles, processes: r.Processes ?? [] };
  }

  async copyToContainer(id: string, dir: string, tar: Readable): Promise<void> {
    const res = await this.client.request('PUT', `/containers/${enc(id)}/archive`, { query: { path: dir }, stream: tar });
    res.resume();
  }

  /** Creates an exec of the spec's command, user, privileges, environment and directory, with how it attaches; its id. */
  private async createExec(id: string, s: Omit<ExecSpec, 'tty' | 'interactive' | 'detach'>, attach: Record<string, unknown>): Promise<string> {
    const body = { User: s.user ?? '', Privileged: !!s.privileged, Env: s.env?.length ? s.env : null, WorkingDir: s.workingDir ?? '', Cmd: s.cmd, ...attach };
    return (await this.client.json<{ Id: string }>('POST', `/containers/${enc(id)}/exec`, { body })).Id;
  }

  async exec(id: string, s: ExecSpec): Promise<number> {
    const [{ currentSize, hijack, relay }, { resize }] = await sessions();
    const size = s.tty ? currentSize() : undefined;
    const Id = await this.createExec(id, s, {
      Tty: s.tty,
      AttachStdin: s.interactive && !s.detach,
      AttachStdout: !s.detach,
      AttachStderr: !s.detach,
      ...(size ? { ConsoleSize: size } : {}),
    });
    if (s.detach) {
      await this.call('POST', `/exec/${Id}/start`);
      return 0;
    }
    const socket = await hijack(this.client, `/exec/${Id}/start`, { body: { Detach: false, Tty: s.tty } });
    const session = relay(socket, {
      tty: s.tty,
      stdin: s.interactive,
      detachKeys: Buffer.from([16, 17]),
      onResize: (h, w) => void resize(this.client, 'exec', Id, h, w),
    });
    if (size) await resize(this.client, 'exec', Id, size[0], size[1]);
    await session.done;
    const info = await this.client.json<{ ExitCode: number | null }>('GET', `/exec/${Id}/json`);
    return info.ExitCode ?? 0;
  }

  async execOutput(
    id: string,
    s: Omit<ExecSpec, 'tty' | 'interactive' | 'detach'>,
    limit: number,
    onOutput?: (chunk: Buffer, stream: 1 | 2) => void,
  ): Promise<{ exitCode: number; stdout: string; stderr: string }> {
    const [{ Demuxer, hijack }] = await sessions();
    const Id = await this.createExec(id, s, { Tty: false, AttachStdout: true, AttachStderr: true });
    const socket = await hijack(this.client, `/exec/${Id}/start`, { body: { Detach: false, Tty: false } });
    // only the tails are kept: a chatty command holds no more than 2 × limit bytes here
    const tails: [Buffer, Buffer] = [Buffer.alloc(0), Buffer.alloc(0)];
    const demux = new Demuxer((stream, data) => {
      const i = stream === 2 ? 1 : 0;
      onOutput?.(data, stream === 2 ? 2 : 1);
      const joined = Buffer.concat([tails[i], data]);
      tails[i] = joined.length > limit ? joined.subarray(joined.length - limit) : joined;
    });
    await new Promise<void>((resolve, reject) => {
      socket.on('data', (c: Buffer) => demux.push(c));
      socket.on('end', () => resolve());
      socket.on('close', () => resolve());
      socket.on('error', reject);
    });
    socket.destroy();
    const info = await this.client.json<{ ExitCode: number | null }>('GET', `/exec/${Id}/json`);
    return { exitCode: info.ExitCode ?? 0, stdout: tails[0].toString('utf8'), stderr: tails[1].toString('utf8') };
  }

  async runAttached(id: string, o: { tty: boolean; interactive: boolean }): Promise<number> {
    const [, { runSession }] = await sessions();
    const r = await runSession(this.client, {
      id,
      tty: o.tty,
      stdin: o.interactive,
      stdout: true,
      stderr: true,
      detachKeys: Buffer.from([16, 17]),
      sigProxy: true,
      start: true,
    });
    if (r.startError) throw r.startError;
    return r.status;
  }

  async listNetworks(labels: string[]): Promise<NetworkSummary[]> {
    const list = await this.client.json<{ Id: string; Name: string; Driver: string; Labels: Record<string, string> | null }[]>('GET', '/networks', {
      query: { filters: labelFilters(labels) },
    });
    return list.map((n) => ({ id: n.Id, name: n.Name, driver: n.Driver, labels: n.Labels ?? {} }));
  }

  async inspectNetwork(name: string): Promise<NetworkSummary | undefined> {
    try {
      const n = await this.client.json<{ Id: string; Name: string; Driver: string; Labels: Record<string, string> | null }>('GET', `/networks/${enc(name)}`);
      return { id: n.Id, name: n.Name, driver: n.Driver, labels: n.Labels ?? {} };
    } catch (e) {
      if (isEngineError(e, 'NOT_FOUND')) return undefined;
      throw e;
    }
  }

  async createNetwork(s: NetworkSpec): Promise<string> {
    const body = {
      Name: s.name,
      Driver: s.driver ?? 'bridge',
      Internal: !!s.internal,
      Attachable: !!s.attachable,
      EnableIPv6: !!s.enableIPv6,
      Options: s.options ?? {},
      Labels: s.labels,
      CheckDuplicate: true,
      ...(s.ipam ? { IPAM: { Driver: s.ipam.Driver ?? 'default', Config: s.ipam.Config ?? [], Options: s.ipam.Options ?? {} } } : {}),
    };
    return (await this.client.json<{ Id: string }>('POST', '/networks/create', { body })).Id;
  }

  removeNetwork(id: string): Promise<void> {
    return this.call('DELETE', `/networks/${enc(id)}`);
  }

  async listVolumes(labels: string[]): Promise<VolumeSummary[]> {
    const r = await this.client.json<{ Volumes: { Name: string; Driver: string; Labels: Record<string, string> | null }[] | null }>('GET', '/volumes', {
      query: { filters: labelFilters(labels) },
    });
    return (r.Volumes ?? []).map((v) => ({ name: v.Name, driver: v.Driver, labels: v.Labels ?? {} }));
  }

  async inspectVolume(name: string): Promise<VolumeSummary | undefined> {
    try {
      const v = await this.client.json<{ Name: string; Driver: string; Labels: Record<string, string> | null }>('GET', `/volumes/${enc(name)}`);
      return { name: v.Name, driver: v.Driver, labels: v.Labels ?? {} };
    } catch (e) {
      if (isEngineError(e, 'NOT_FOUND')) return undefined;
      throw e;
    }
  }

  async createVolume(s: VolumeSpec): Promise<void> {
    (
      await this.client.request('POST', '/volumes/create', {
        body: { Name: s.name, Driver: s.driver ?? 'local', DriverOpts: s.driverOpts ?? {}, Labels: s.labels },
      })
    ).resume();
  }

  removeVolume(name: string): Promise<void> {
    return this.call('DELETE', `/volumes/${enc(name)}`);
  }

  async inspectImage(ref: string): Promise<ImageSummary | undefined> {
    try {
      const i = await this.client.json<{
        Id: string;
        RepoTags: string[] | null;
        Size: number;
        Created: string;
        Metadata?: { LastTagTime?: string };
        Config?: { Volumes?: Record<string, unknown> | null } | null;
      }>('GET', `/images/${enc(ref)}/json`);
      const tagged = i.Metadata?.LastTagTime ? Date.parse(i.Metadata.LastTagTime) : NaN;
      return {
        id: i.Id,
        repoTags: i.RepoTags ?? [],
        size: i.Size,
        created: Date.parse(i.Created) / 1000,
        ...(tagged > 0 ? { lastTagTime: tagged } : {}),
        volumes: Object.keys(i.Config?.Volumes ?? {}),
      };
    } catch (e) {
      if (isEngineError(e, 'NOT_FOUND')) return undefined;
      throw e;
    }
  }

  private async progress(
    res: AsyncIterable<unknown> & { destroy(): void },
    onProgress: (p: Progress) => void,
    signal?: AbortSignal,
  ): Promise<Record<string, unknown>[]> {
    const onAbort = () => res.destroy();
    signal?.addEventListener('abort', onAbort, { once: true });
    const aux: Record<string, unknown>[] = [];
    try {
      for await (const m of this.client.jsonLines(res as never)) {
        if (m.errorDetail || m.error) throw new EngineError('INTERNAL', String((m.errorDetail as { message?: string } | undefined)?.message ?? m.error));
        if (m.aux) aux.push(m.aux as Record<string, unknown>);
        onProgress({ id: m.id as string | undefined, status: m.status as string | undefined, stream: m.stream as string | undefined });
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    return aux;
  }

  async pullImage(ref: string, onProgress: (p: Progress) => void, signal?: AbortSignal, platform?: string): Promise<void> {
    const at = ref.lastIndexOf(':');
    const slash = ref.lastIndexOf('/');
    const [fromImage, tag] = at > slash && !ref.includes('@') ? [ref.slice(0, at), ref.slice(at + 1)] : [ref, ref.includes('@') ? undefined : 'latest'];
    const res = await this.client.request('POST', '/images/create', { query: { fromImage, tag, platform }, headers: { 'X-Registry-Auth': 'e30=' } });
    await this.progress(res, onProgress, signal);
  }

  async pushImage(ref: string, onProgress: (p: Progress) => void, signal?: AbortSignal): Promise<void> {
    const at = ref.lastIndexOf(':');
    const [name, tag] = at > ref.lastIndexOf('/') ? [ref.slice(0, at), ref.slice(at + 1)] : [ref, 'latest'];
    const res = await this.client.request('POST', `/images/${enc(name)}/push`, { query: { tag }, headers: { 'X-Registry-Auth': 'e30=' } });
    await this.progress(res, onProgress, signal);
  }

  async *events(labels: string[], signal?: AbortSignal, since?: number): AsyncIterable<EngineEvent> {
    const res = await this.client.request('GET', '/events', { query: { filters: labelFilters(labels), since } });
    const onAbort = () => res.destroy();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for await (const m of this.client.jsonLines(res)) {
        const actor = (m.Actor ?? {}) as { ID?: string; Attributes?: Record<string, string> };
        yield {
          timeNano: Number(m.timeNano ?? Number(m.time ?? 0) * 1e9),
          type: String(m.Type ?? m.type ?? ''),
          action: String(m.Action ?? m.status ?? ''),
          id: actor.ID ?? String(m.id ?? ''),
          attributes: actor.Attributes ?? {},
        };
      }
    } catch (e) {
      if (!signal?.aborted) throw e;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  removeImage(ref: string): Promise<void> {
    return this.call('DELETE', `/images/${enc(ref)}`);
  }

  async build(s: BuildSpec, onProgress: (p: Progress) => void, signal?: AbortSignal): Promise<string> {
    if (!fs.statSync(s.context, { throwIfNoEntry: false })?.isDirectory())
      throw new EngineError('INVALID_ARGUMENT', `build context ${s.context} is not a directory`);
    // the archive code only here: loading it costs every other compose command
    const { tarDirectory } = await import('../archive/index.ts');
    let dockerfile = s.dockerfile ?? 'Dockerfile';
    let tar = tarDirectory(s.context);
    if (s.dockerfileInline !== undefined) {
      // an inline Dockerfile travels at the end of the context, under a name nothing else uses (as the docker CLI sends a Dockerfile from stdin)
      dockerfile = `.keel-compose-${process.pid}.Dockerfile`;
      tar = await withFile(tar, dockerfile, s.dockerfileInline);
    }
    const query: Record<string, string | number | undefined> = {
      dockerfile: path.isAbsolute(dockerfile) ? path.relative(s.context, dockerfile) : dockerfile,
      t: s.tags[0],
      target: s.target,
      nocache: s.noCache ? 1 : undefined,
      pull: s.pull ? 1 : undefined,
      networkmode: s.network,
      shmsize: s.shmSize,
      buildargs: s.args ? JSON.stringify(s.args) : undefined,
      labels: s.labels ? JSON.stringify(s.labels) : undefined,
      cachefrom: s.cacheFrom ? JSON.stringify(s.cacheFrom) : undefined,
      extrahosts: s.extraHosts?.join(','),
    };
    let res;
    try {
      res = await this.client.request('POST', '/build', { query, stream: tar, headers: { 'Content-Type': 'application/x-tar' } });
    } catch (e) {
      // a daemon without /build may answer 404 and close before the context is sent: the write fails
      // instead; an empty request then learns the status
      let missing = isEngineError(e, 'NOT_FOUND');
      if (!missing && /EPIPE|ECONNRESET/.test((e as Error).message)) {
        missing = await this.client.request('POST', '/build', { headers: { 'Content-Type': 'application/x-tar', 'Content-Length': '0' } }).then(
          (r) => (r.resume(), false),
          (e2: unknown) => isEngineError(e2, 'NOT_FOUND'),
        );
      }
      if (missing) throw new EngineError('UNAVAILABLE', 'this keel daemon cannot build yet (POST /build answered 404)');
      throw e;
    }
    const aux = await this.progress(res, onProgress, signal);
    const id = aux.map((a) => a.ID).find((x): x is string => typeof x === 'string');
    for (const t of s.tags.slice(1)) {
      const at = t.lastIndexOf(':');
      const [repo, tag] = at > t.lastIndexOf('/') ? [t.slice(0, at), t.slice(at + 1)] : [t, 'latest'];
      await this.call('POST', `/images/${enc(s.tags[0]!)}/tag`, { repo, tag });
    }
    return id ?? (await this.inspectImage(s.tags[0]!))?.id ?? '';
  }
}
