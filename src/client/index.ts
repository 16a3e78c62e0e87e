/**
 * A small typed client for a running keel daemon (the Docker API plus keel's
 * clone and pool extensions, src/api/EXTENSIONS.md), for programs and test
 * suites that want containers without embedding the engine:
 *
 *   const keel = new KeelClient();                       // /run/keel/keel.sock
 *   const db = await keel.pool.take('pg', { timeoutSeconds: 30 });
 *   const { stdout } = await keel.exec(db.name, ['pg_isready']);
 *   await keel.remove(db.name, { force: true, volumes: true });
 *
 * Every call takes an AbortSignal; errors are EngineErrors with the
 * daemon's code and message.
 */
import http from 'node:http';
import { EngineError, ERROR_CODE_HEADER, ERROR_CODES, type ErrorCode } from '../common/errors.ts';
import type { ContainerConfig, HostConfig } from '../containers/types.ts';

/** Docker's POST /containers/create body: Config fields at the top, plus HostConfig and NetworkingConfig. */
export interface CreateRequest extends Partial<Omit<ContainerConfig, 'Env'>> {
  Env?: string[] | null;
  HostConfig?: Partial<HostConfig> | null;
  NetworkingConfig?: unknown;
}

export interface KeelClientOptions {
  /** The daemon's socket (default /run/keel/keel.sock, or $KEEL_HOST as unix://path). */
  socketPath?: string;
}

export interface CallOptions {
  signal?: AbortSignal;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface CloneRequest extends CallOptions {
  count?: number;
  name?: string;
  namePrefix?: string;
  pause?: boolean;
  strict?: boolean;
  portBindings?: Record<string, { HostIp?: string; HostPort?: string }[]>;
}

export interface PoolInfo {
  name: string;
  source: string;
  sourceName: string;
  size: number;
  ready: string;
  readyCount: number;
  starting: number;
  error?: string;
}

export interface TakenContainer {
  id: string;
  name: string;
  /** "5432/tcp" → host port. */
  ports: Record<string, string>;
  waitedMs: number;
}

interface Response {
  status: number;
  body: Buffer;
}

function defaultSocket(): string {
  const h = process.env.KEEL_HOST;
  if (h?.startsWith('unix://')) return h.slice(7);
  if (h?.startsWith('/')) return h;
  return '/run/keel/keel.sock';
}

/** Splits docker's multiplexed stream (8-byte header: stream, 0, 0, 0, size BE). */
function demux(b: Buffer): { stdout: string; stderr: string } {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let i = 0;
  while (i + 8 <= b.length) {
    const size = b.readUInt32BE(i + 4);
    const chunk = b.subarray(i + 8, i + 8 + size);
    (b[i] === 2 ? err : out).push(chunk);
    i += 8 + size;
  }
  return { stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

const enc = encodeURIComponent;

export class KeelClient {
  readonly socketPath: string;

  constructor(o: KeelClientOptions = {}) {
    this.socketPath = o.socketPath ?? defaultSocket();
  }

  private call(method: string, path: string, body?: unknown, o: CallOptions = {}): Promise<Response> {
    return new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = http.request(
        {
          socketPath: this.socketPath,
          method,
          path: `/v1.41${path}`,
          signal: o.signal,
          headers: payload ? { 'Content-Type': 'application/json', 'Content-Length': payload.length } : {},
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const b = Buffer.concat(chunks);
            const status = res.statusCode ?? 0;
            if (status < 400) return resolve({ status, body: b });
            let message = b.toString().trim();
            try {
              message = (JSON.parse(message) as { message?: string }).message ?? message;
            } catch {
              // a plain-text error
            }
            const h = res.headers[ERROR_CODE_HEADER.toLowerCase()];
            const code: ErrorCode =
              typeof h === 'string' && (ERROR_CODES as string[]).includes(h)
                ? (h as ErrorCode)
                : status === 404
                  ? 'NOT_FOUND'
                  : status === 409
                    ? 'CONFLICT'
                    : status === 400
                      ? 'INVALID_ARGUMENT'
                      : 'INTERNAL';
            reject(new EngineError(code, message || `daemon answered ${status}`));
          });
        },
      );
      req.on('error', (e) =>
        reject(
          o.signal?.aborted
            ? new EngineError('CANCELLED', 'request aborted')
            : new EngineError('UNAVAILABLE', `cannot reach the keel daemon at ${this.socketPath}: ${e.message}`),
        ),
      );
      req.end(payload);
    });
  }

  private async json<T>(method: string, path: string, body?: unknown, o: CallOptions = {}): Promise<T> {
    const r = await this.call(method, path, body, o);
    return (r.body.length ? JSON.parse(r.body.toString()) : undefined) as T;
  }

  /** Creates a container (docker's create request: Image, Cmd, Env, HostConfig...). */
  async create(req: CreateRequest, o: CallOptions & { name?: string } = {}): Promise<{ id: string; warnings: string[] }> {
    const r = await this.json<{ Id: string; Warnings: string[] | null }>('POST', `/containers/create${o.name ? `?name=${enc(o.name)}` : ''}`, req, o);
    return { id: r.Id, warnings: r.Warnings ?? [] };
  }

  async start(id: string, o: CallOptions = {}): Promise<void> {
    await this.call('POST', `/containers/${enc(id)}/start`, undefined, o).catch((e: unknown) => {
      if (!(e instanceof EngineError && e.code === 'NOT_MODIFIED')) throw e;
    });
  }

  async stop(id: string, o: CallOptions & { timeoutSeconds?: number } = {}): Promise<void> {
    await this.call('POST', `/containers/${enc(id)}/stop${o.timeoutSeconds !== undefined ? `?t=${o.timeoutSeconds}` : ''}`, undefined, o);
  }

  async remove(id: string, o: CallOptions & { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    await this.call('DELETE', `/containers/${enc(id)}?force=${o.force ? 1 : 0}&v=${o.volumes ? 1 : 0}`, undefined, o);
  }

  /** docker inspect's document of a container. */
  inspect(id: string, o: CallOptions = {}): Promise<Record<string, any>> {
    return this.json('GET', `/containers/${enc(id)}/json`, undefined, o);
  }

  /** Runs a command in a running container and collects its output and exit code. */
  async exec(id: string, cmd: string[], o: CallOptions & { env?: string[]; user?: string; workdir?: string } = {}): Promise<ExecResult> {
    const { Id } = await this.json<{ Id: string }>(
      'POST',
      `/containers/${enc(id)}/exec`,
      {
        Cmd: cmd,
        AttachStdout: true,
        AttachStderr: true,
        Env: o.env,
        User: o.user,
        WorkingDir: o.workdir,
      },
      o,
    );
    const r = await this.call('POST', `/exec/${Id}/start`, { Detach: false, Tty: false }, o);
    const { stdout, stderr } = demux(r.body);
    const info = await this.json<{ ExitCode: number | null }>('GET', `/exec/${Id}/json`, undefined, o);
    return { exitCode: info.ExitCode ?? -1, stdout, stderr };
  }

  /** The container's log so far, stdout and stderr apart. */
  async logs(id: string, o: CallOptions & { tail?: number } = {}): Promise<{ stdout: string; stderr: string }> {
    const r = await this.call('GET', `/containers/${enc(id)}/logs?stdout=1&stderr=1${o.tail !== undefined ? `&tail=${o.tail}` : ''}`, undefined, o);
    const tty = (await this.inspect(id, o)).Config?.Tty;
    return tty ? { stdout: r.body.toString(), stderr: '' } : demux(r.body);
  }

  /** keel's clones of a container (see `keel clone --help`). */
  async clone(id: string, o: CloneRequest = {}): Promise<{ clones: { id: string; name: string }[]; warnings: string[] }> {
    const q = new URLSearchParams();
    if (o.count !== undefined) q.set('count', String(o.count));
    if (o.name) q.set('name', o.name);
    if (o.namePrefix) q.set('name-prefix', o.namePrefix);
    if (o.pause) q.set('pause', '1');
    if (o.strict) q.set('strict', '1');
    const r = await this.json<{ Clones: { Id: string; Name: string }[]; Warnings: string[] }>(
      'POST',
      `/containers/${enc(id)}/clone?${q}`,
      o.portBindings ? { PortBindings: o.portBindings } : undefined,
      o,
    );
    return { clones: r.Clones.map((c) => ({ id: c.Id, name: c.Name })), warnings: r.Warnings ?? [] };
  }

  /** Warm pools of ready clones. */
  readonly pool = {
    create: (name: string, o: CallOptions & { from: string; size: number; ready?: string }): Promise<PoolInfo> =>
      this.json('POST', '/keel/pools', { Name: name, From: o.from, Size: o.size, Ready: o.ready }, o),
    list: (o: CallOptions = {}): Promise<PoolInfo[]> => this.json('GET', '/keel/pools', undefined, o),
    take: async (name: string, o: CallOptions & { timeoutSeconds?: number } = {}): Promise<TakenContainer> => {
      const r = await this.json<{ Id: string; Name: string; Ports: Record<string, { HostPort: string }[] | null>; WaitedMs: number }>(
        'POST',
        `/keel/pools/${enc(name)}/take${o.timeoutSeconds !== undefined ? `?timeout=${o.timeoutSeconds}` : ''}`,
        undefined,
        o,
      );
      const ports: Record<string, string> = {};
      for (const [k, v] of Object.entries(r.Ports ?? {})) if (v?.[0]) ports[k] = v[0].HostPort;
      return { id: r.Id, name: r.Name, ports, waitedMs: r.WaitedMs };
    },
    remove: async (name: string, o: CallOptions = {}): Promise<void> => {
      await this.call('DELETE', `/keel/pools/${enc(name)}`, undefined, o);
    },
  };
}
