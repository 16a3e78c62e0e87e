/**
 * Provider services (`provider:` in the compose specification): a service
 * that is no container but something an external program sets up and
 * tears down, run the way docker compose runs it (pkg/compose/plugins.go):
 *
 *   - the program is `docker-<type>` among the docker CLI plugins (the
 *     config file's cliPluginsExtraDirs, then $DOCKER_CONFIG/cli-plugins or
 *     ~/.docker/cli-plugins, then the system plugin dirs), else `<type>` on
 *     PATH;
 *   - `<program> compose metadata` may describe its parameters (JSON):
 *     then only the options it declares are passed, the required ones
 *     must be given, and `stop` runs only when it declares `stop`;
 *   - `<program> compose --project-name=<p> up|down|stop --<opt>=<v>... <service>`,
 *     in the project's environment, writes JSON lines on stdout:
 *     {"type": "info"|"debug"|"error"|"setenv"|"rawsetenv", "message": ...}.
 *     info is progress, debug is hidden (docker compose logs it at debug
 *     level), error fails the command with its message, and on `up`
 *     `setenv KEY=VALUE` sets <SERVICE>_KEY (`rawsetenv`: KEY) in the
 *     environment of every service that depends on the provider service,
 *     so their config hashes include it.
 *
 * What the program writes is untrusted: its lines, messages, variables
 * and metadata are bounded; `compose metadata` has 30 s, and a run ends
 * with the AbortSignal its caller passes (the CLI passes none: Ctrl-C reaches the
 * program from the terminal, as docker compose's does). Its stderr is
 * not shown (docker compose discards it) but its tail is kept for the
 * error of a failed run.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EngineError } from '../common/errors.ts';
import { readBounded } from './inputs.ts';
import type { Reporter } from './reporter.ts';
import type { Project, Service } from './types.ts';

export type ProviderCommand = 'up' | 'down' | 'stop';

export interface ProviderMessage {
  type: 'info' | 'debug' | 'error' | 'setenv' | 'rawsetenv';
  message: string;
}

interface ParameterMetadata {
  name: string;
  required?: boolean;
}

interface CommandMetadata {
  parameters?: ParameterMetadata[] | null;
}

/** What `<program> compose metadata` prints (docker compose's ProviderMetadata). */
export interface ProviderMetadata {
  description?: string;
  up?: CommandMetadata;
  down?: CommandMetadata;
  stop?: CommandMetadata | null;
}

/** Bounds on what a provider program may write. */
export const LIMITS = { line: 64 << 10, messages: 10_000, metadata: 1 << 20, stderr: 4 << 10, metadataMs: 30_000, variables: 1 << 20 };

/** The directories docker's CLI looks for plugins in, after the config file's extra ones (cli-plugins/manager, Unix). */
export const SYSTEM_PLUGIN_DIRS = [
  '/usr/local/lib/docker/cli-plugins',
  '/usr/local/libexec/docker/cli-plugins',
  '/usr/lib/docker/cli-plugins',
  '/usr/libexec/docker/cli-plugins',
];

/** The docker CLI's plugin dirs, in its order of preference. */
export function pluginDirs(env: Record<string, string | undefined>): string[] {
  const configDir = env.DOCKER_CONFIG || path.join(env.HOME || os.homedir(), '.docker');
  let extra: string[] = [];
  try {
    const dirs = (JSON.parse(readBounded(path.join(configDir, 'config.json'), LIMITS.metadata)) as { cliPluginsExtraDirs?: unknown }).cliPluginsExtraDirs;
    if (Array.isArray(dirs)) extra = dirs.filter((d): d is string => typeof d === 'string');
  } catch {
    // no config file, or one the docker CLI would not read either: no extra dirs
  }
  return [...extra, path.join(configDir, 'cli-plugins'), ...SYSTEM_PLUGIN_DIRS];
}

const isExecutableFile = (p: string) => {
  try {
    const st = fs.statSync(p);
    return st.isFile() && (st.mode & 0o111) !== 0;
  } catch {
    return false;
  }
};

/**
 * The program of a provider type: the first `docker-<type>` in the plugin
 * dirs (a regular file, or a symlink that resolves, as the docker CLI lists
 * them), else `<type>` as Go's exec.LookPath finds it (relative PATH
 * entries skipped, as Go refuses them).
 */
export function findProvider(service: string, type: string, env: Record<string, string | undefined>, cwd = process.cwd()): string {
  if (type === 'compose') throw new EngineError('INVALID_ARGUMENT', `service "${service}": 'compose' is not a valid provider type`);
  if (!type) throw new EngineError('INVALID_ARGUMENT', `service "${service}": provider type must not be empty`);
  const dirs = pluginDirs(env);
  if (!type.includes('/')) {
    for (const d of dirs) {
      const candidate = path.join(d, `docker-${type}`);
      try {
        const st = fs.lstatSync(candidate);
        if (st.isFile() || (st.isSymbolicLink() && fs.existsSync(candidate))) return candidate;
      } catch {
        // not in this dir
      }
    }
    for (const d of (env.PATH ?? '').split(':')) {
      if (!path.isAbsolute(d)) continue;
      const candidate = path.join(d, type);
      if (isExecutableFile(candidate)) return candidate;
    }
  } else {
    const candidate = path.resolve(cwd, type);
    if (isExecutableFile(candidate)) return candidate;
  }
  throw new EngineError(
    'NOT_FOUND',
    `service "${service}": provider type "${type}" not found: no docker-${type} CLI plugin (in ${dirs.join(', ')}) and no executable ${type} on PATH`,
  );
}

/** One line a provider wrote: a message, or an error (docker compose's "invalid response from plugin"). */
export function parseMessage(line: string): ProviderMessage {
  let m: unknown;
  try {
    m = JSON.parse(line);
  } catch {
    throw new EngineError('INVALID_ARGUMENT', `invalid response from plugin: ${line.slice(0, 200)}`);
  }
  const o = (m && typeof m === 'object' ? m : {}) as { type?: unknown; message?: unknown };
  const type = typeof o.type === 'string' ? o.type : '';
  const message = typeof o.message === 'string' ? o.message : '';
  if (!['info', 'debug', 'error', 'setenv', 'rawsetenv'].includes(type)) throw new EngineError('INVALID_ARGUMENT', `invalid response from plugin: ${type}`);
  if ((type === 'setenv' || type === 'rawsetenv') && !message.includes('='))
    throw new EngineError('INVALID_ARGUMENT', `invalid response from plugin: ${message}`);
  return { type: type as ProviderMessage['type'], message };
}

const firstLine = (s: string) => s.replace(/\n+$/, '').split('\n')[0]!;

const isEmpty = (m: ProviderMetadata) => !m.description && (m.up?.parameters ?? null) === null && (m.down?.parameters ?? null) === null;

/**
 * The arguments docker compose passes a provider for `command`; undefined
 * when it is not run at all (`stop` that the metadata does not declare).
 * Options in key order (docker compose's follow Go's map order).
 */
export function providerArgv(project: string, s: Service, command: ProviderCommand, meta: ProviderMetadata = {}): string[] | undefined {
  const provider = s.provider!;
  if (command === 'stop' && !meta.stop) return undefined;
  const current = meta[command] ?? {};
  const params = current.parameters ?? [];
  const empty = isEmpty(meta);
  const options = provider.options ?? {};
  if (!empty) {
    for (const p of params)
      if (p.required && !Object.hasOwn(options, p.name))
        throw new EngineError('INVALID_ARGUMENT', `required parameter "${p.name}" is missing from provider "${provider.type}" definition`);
  }
  const args = ['compose', `--project-name=${project}`, command];
  for (const k of Object.keys(options).sort()) {
    if (!empty && !params.some((p) => p.name === k)) continue;
    for (const v of options[k]!) args.push(`--${k}=${v}`);
  }
  args.push(s.name);
  return args;
}

/** The environment a provider runs in: the project's, without the docker CLI's plugin marker (so a plugin knows it runs standalone). */
export function providerEnv(p: Project): Record<string, string> {
  const { DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND: _marker, ...env } = p.environment;
  return env;
}

export interface ProviderVariables {
  /** setenv: set as <SERVICE>_<KEY>. */
  prefixed: Record<string, string>;
  /** rawsetenv: set as KEY. */
  raw: Record<string, string>;
}

/** Sets what a provider service's `up` gave in the environment of the services that depend on it. */
export function applyProviderEnv(p: Project, provider: string, vars: ProviderVariables, r: Reporter): void {
  const prefix = `${provider.toUpperCase()}_`;
  for (const [name, s] of Object.entries(p.services)) {
    if (!s.depends_on[provider]) continue;
    const environment = { ...s.environment };
    for (const [k, v] of Object.entries(vars.prefixed)) environment[prefix + k] = v;
    for (const [k, v] of Object.entries(vars.raw)) {
      if (Object.hasOwn(environment, k) && environment[k] !== v) r.warn(`provider "${provider}" overrides environment variable "${k}" in service "${s.name}"`);
      environment[k] = v;
    }
    // a new service, not an edit of the loaded one: what is known of a service is kept by its object (hash.ts)
    p.services[name] = { ...s, environment };
  }
}

interface RunOptions {
  env: Record<string, string>;
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Each line of stdout (without its newline); return false to stop reading (the program is left to finish, as docker compose leaves it). */
  onLine: (line: string) => boolean;
  maxLine: number;
}

/**
 * Runs a program, handing each stdout line to onLine as it comes; resolves
 * with its exit and the tail of its stderr. A line longer than maxLine
 * kills it and rejects. (Not common/exec.ts: that one returns the output
 * only once the program has exited, and this output is progress.)
 */
function runLines(file: string, args: string[], o: RunOptions): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string } | 'stopped'> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: o.env, stdio: ['ignore', 'pipe', 'pipe'], signal: o.signal });
    let pending = '';
    let stderr = '';
    let done = false;
    // our ends of its pipes go: a process it started may hold them open long after it is gone ('close' would never come)
    const release = () => {
      child.stdout.destroy();
      child.stderr.destroy();
      child.unref();
    };
    const kill = () => {
      child.kill('SIGTERM');
      release();
    };
    const timer =
      o.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            kill();
            finish(() => reject(new EngineError('TIMEOUT', `${file} did not finish in ${o.timeoutMs! / 1000} s`)));
          }, o.timeoutMs);
    const finish = (f: () => void) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      f();
    };
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      if (done) return;
      pending += chunk;
      for (let i = pending.indexOf('\n'); i >= 0 && !done; i = pending.indexOf('\n')) {
        const line = pending.slice(0, i).replace(/\r$/, '');
        pending = pending.slice(i + 1);
        let more: boolean;
        try {
          more = line.trim() === '' || o.onLine(line);
        } catch (e) {
          kill();
          return finish(() => reject(e as Error));
        }
        if (!more) {
          // docker compose stops reading and returns; the program may go on, without its stdout
          release();
          return finish(() => resolve('stopped'));
        }
      }
      if (pending.length > o.maxLine) {
        kill();
        finish(() => reject(new EngineError('INVALID_ARGUMENT', `${file} wrote a line longer than ${o.maxLine} bytes`)));
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => void (stderr = (stderr + chunk).slice(-LIMITS.stderr)));
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (e.name === 'AbortError' || e.code === 'ABORT_ERR') {
        release();
        return finish(() => reject(new EngineError('CANCELLED', `${file} was cancelled`)));
      }
      finish(() => reject(new EngineError('UNAVAILABLE', `cannot run ${file}: ${e.message}`)));
    });
    const settle = (code: number | null, signal: NodeJS.Signals | null) =>
      finish(() => {
        try {
          if (pending.trim() !== '' && o.onLine(pending) === false) return resolve('stopped');
        } catch (e) {
          return reject(e as Error);
        }
        resolve({ code, signal, stderr });
      });
    child.on('close', settle);
    // the program is gone, but something it left running holds its stdout: what it wrote has a second to arrive
    child.on('exit', (code, signal) =>
      setTimeout(() => {
        release();
        settle(code, signal);
      }, EXITED_GRACE_MS).unref(),
    );
  });
}

/** How long a run's output may still come after the program exited (a process it left running holds the pipe). */
const EXITED_GRACE_MS = 1000;

/** `<program> compose metadata`, parsed; empty when the program has none (or fails, or writes something else), as in docker compose. */
export async function providerMetadata(file: string, env: Record<string, string>, signal?: AbortSignal): Promise<ProviderMetadata> {
  let text = '';
  let res: Awaited<ReturnType<typeof runLines>>;
  try {
    res = await runLines(file, ['compose', 'metadata'], {
      env,
      signal,
      timeoutMs: LIMITS.metadataMs,
      maxLine: LIMITS.metadata,
      onLine: (l) => ((text += `${l}\n`), text.length <= LIMITS.metadata),
    });
  } catch (e) {
    if (e instanceof EngineError && e.code === 'CANCELLED') throw e;
    return {};
  }
  if (res === 'stopped' || res.code !== 0) return {};
  try {
    const m = JSON.parse(text) as unknown;
    return m && typeof m === 'object' && !Array.isArray(m) ? (m as ProviderMetadata) : {};
  } catch {
    return {};
  }
}

export interface ProviderRunOptions {
  signal?: AbortSignal;
  /** Where the program is looked for (PATH, HOME, DOCKER_CONFIG): this process's environment by default, as the docker CLI's. */
  hostEnv?: Record<string, string | undefined>;
  /** debug messages (docker compose logs them at debug level only). */
  debug?: (service: string, message: string) => void;
}

const EVENTS: Record<ProviderCommand, [string, string, string]> = {
  up: ['Creating', 'Created', 'create'],
  down: ['Removing', 'Removed', 'remove'],
  stop: ['Stopping', 'Stopped', 'stop'],
};

/**
 * Runs provider service `name`'s program for `command`; on `up`, sets the
 * variables it gave in its dependents' environment (applyProviderEnv).
 */
export async function runProvider(p: Project, name: string, command: ProviderCommand, r: Reporter, o: ProviderRunOptions = {}): Promise<void> {
  const s = p.services[name] ?? p.disabled[name];
  if (!s?.provider) throw new EngineError('INVALID_ARGUMENT', `service "${name}" is not a provider service`);
  const file = findProvider(name, s.provider.type, o.hostEnv ?? process.env);
  const env = providerEnv(p);
  const argv = providerArgv(p.name, s, command, await providerMetadata(file, env, o.signal));
  if (!argv) return;
  const [working, finished, action] = EVENTS[command];
  r.event('Service', name, working);
  const vars: ProviderVariables = { prefixed: {}, raw: {} };
  let count = 0;
  let variableBytes = 0;
  let failure: string | undefined;
  let res: Awaited<ReturnType<typeof runLines>>;
  try {
    res = await runLines(file, argv, {
      env,
      signal: o.signal,
      maxLine: LIMITS.line,
      onLine: (line) => {
        if (++count > LIMITS.messages) throw new EngineError('INVALID_ARGUMENT', `more than ${LIMITS.messages} messages`);
        const m = parseMessage(line);
        const [k, ...rest] = m.message.split('=');
        if (m.type === 'error') {
          failure = m.message;
          return false;
        }
        if ((m.type === 'setenv' || m.type === 'rawsetenv') && (variableBytes += m.message.length) > LIMITS.variables)
          throw new EngineError('INVALID_ARGUMENT', `more than ${LIMITS.variables} bytes of variables`);
        if (m.type === 'info') r.event('Service', name, firstLine(m.message));
        else if (m.type === 'debug') o.debug?.(name, m.message);
        else if (m.type === 'setenv') vars.prefixed[k!] = rest.join('=');
        else vars.raw[k!] = rest.join('=');
        return true;
      },
    });
  } catch (e) {
    r.event('Service', name, 'Error');
    if (e instanceof EngineError && e.code === 'CANCELLED') throw e;
    throw new EngineError(
      e instanceof EngineError ? e.code : 'INTERNAL',
      `service "${name}": provider "${s.provider.type}" failed to ${action}: ${(e as Error).message}`,
    );
  }
  if (failure !== undefined) {
    r.event('Service', name, `Error ${firstLine(failure)}`);
    throw new EngineError('UNAVAILABLE', failure);
  }
  if (res !== 'stopped' && res.code !== 0) {
    r.event('Service', name, 'Error');
    const why = res.signal ? `signal: ${res.signal}` : `exit status ${res.code}`;
    const tail = res.stderr.trim().split('\n').pop();
    throw new EngineError('UNAVAILABLE', `service "${name}": failed to ${action} service provider: ${why}${tail ? `: ${tail}` : ''}`);
  }
  r.event('Service', name, finished);
  if (command === 'up') applyProviderEnv(p, name, vars, r);
}
