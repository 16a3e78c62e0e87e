/**
 * One build: the context, the parsed Dockerfile, the variables in scope,
 * the stages' results and the output stream. The executor (executor.ts)
 * walks the stages; steps.ts runs one instruction.
 */
import { EngineError } from '../common/errors.ts';
import type { ContainerService } from '../containers/service.ts';
import type { ImageService } from '../images/service.ts';
import type { ImageRecord } from '../images/store.ts';
import { parseReference } from '../oci/reference.ts';
import type { AuthConfig } from '../registry/index.ts';
import type { ProgressMessage } from '../registry/progress.ts';
import type { BuildCache } from './cache.ts';
import type { BuildContext } from './context.ts';
import type { ContextCache } from './ctxcache.ts';
import type { Dockerfile, Stage } from './dockerfile/types.ts';
import { type StepImage } from './image.ts';
import type { BuildOutput, BuildRequest, Frontend } from './types.ts';

export interface BuilderDeps {
  dataRoot: string;
  images: ImageService;
  containers: ContainerService;
  frontend: Frontend;
  cache: BuildCache;
  /** Contexts kept for the next build of the same upload (absent: each build unpacks its own). */
  contexts?: ContextCache;
  pull(ref: string, o: { auth?: AuthConfig; signal?: AbortSignal; onProgress?: (m: ProgressMessage) => void }): Promise<ImageRecord>;
  /** Publishes an image event (tag) on the engine's bus. */
  tag(id: string, ref: string): Promise<void>;
}

/** Args docker passes to RUN without an ARG declaring them (and keeps out of history and the cache key). */
export const PROXY_ARGS = [
  'HTTP_PROXY',
  'http_proxy',
  'HTTPS_PROXY',
  'https_proxy',
  'FTP_PROXY',
  'ftp_proxy',
  'NO_PROXY',
  'no_proxy',
  'ALL_PROXY',
  'all_proxy',
];

/** A failed RUN: the stream's errorDetail carries its exit code (the docker CLI exits with it). */
export class RunFailedError extends EngineError {
  readonly exitCode: number;

  constructor(message: string, exitCode: number) {
    super('INVALID_ARGUMENT', message);
    this.exitCode = exitCode;
  }
}

export interface StageState {
  stage: Stage;
  img: StepImage;
  /** ARGs declared in this stage, with their values (undefined: declared without one). */
  args: Map<string, string | undefined>;
  /** CMD was set in this stage (ENTRYPOINT then keeps it). */
  cmdSet: boolean;
}

export class BuildSession {
  readonly deps: BuilderDeps;
  readonly req: BuildRequest;
  readonly out: BuildOutput;
  readonly ctx: BuildContext;
  readonly df: Dockerfile;
  readonly escape: '\\' | '`';
  /** Meta ARG values (before the first FROM), and the predefined platform args. */
  readonly metaArgs = new Map<string, string | undefined>();
  /** Build args some ARG consumed (the rest get docker's warning). */
  readonly consumed = new Set<string>();
  readonly results = new Map<number, StepImage>();
  /** Stages running or done, by index (a stage waits for those it uses). */
  readonly stages = new Map<number, Promise<StageState>>();
  readonly ignored?: (rel: string, isDir: boolean) => boolean;
  step = 0;
  total = 0;

  constructor(deps: BuilderDeps, req: BuildRequest, out: BuildOutput, ctx: BuildContext, df: Dockerfile, ignored?: (rel: string, isDir: boolean) => boolean) {
    this.deps = deps;
    this.req = req;
    this.out = out;
    this.ctx = ctx;
    this.df = df;
    this.escape = df.directives.escape;
    this.ignored = ignored;
  }

  get signal(): AbortSignal | undefined {
    return this.req.signal;
  }

  /** SOURCE_DATE_EPOCH (build arg), in seconds: reproducible images. */
  get epoch(): number | undefined {
    const v = this.req.buildArgs?.SOURCE_DATE_EPOCH;
    if (v === undefined || v === null || v === '') return undefined;
    if (!/^\d{1,12}$/.test(v)) throw new EngineError('INVALID_ARGUMENT', `invalid SOURCE_DATE_EPOCH ${JSON.stringify(v)}: seconds since 1970 expected`);
    return Number(v);
  }

  get quiet(): boolean {
    return !!this.req.quiet;
  }

  say(text: string): void {
    if (!this.quiet) this.out.stream(text);
  }

  /** A build arg's value: `undefined` when not given (a null value counts as not given). */
  buildArg(name: string): string | undefined {
    const v = this.req.buildArgs?.[name];
    return v === null ? undefined : v;
  }

  hasBuildArg(name: string): boolean {
    return this.req.buildArgs !== undefined && Object.hasOwn(this.req.buildArgs, name) && this.req.buildArgs[name] !== null;
  }

  /** Variables for FROM: meta ARGs only. */
  metaLookup = (name: string): string | undefined => this.metaArgs.get(name);

  /** Variables for a stage's instruction: its ENV wins over its ARGs, as in docker. */
  lookup(st: StageState): (name: string) => string | undefined {
    const env = envMap(st.img.config.config?.Env);
    return (name) => (env.has(name) ? env.get(name) : st.args.get(name));
  }

  /** Registry credentials for an image reference from X-Registry-Config. */
  authFor(ref: string): AuthConfig | undefined {
    const auth = this.req.auth;
    if (!auth) return undefined;
    let domain = 'docker.io';
    try {
      domain = parseReference(ref).domain;
    } catch {
      return undefined;
    }
    const keys = domain === 'docker.io' ? ['https://index.docker.io/v1/', 'docker.io', 'index.docker.io'] : [domain, `https://${domain}`, `http://${domain}`];
    for (const k of keys) if (auth[k]) return auth[k];
    return undefined;
  }
}

export function envMap(env: string[] | undefined | null): Map<string, string> {
  const m = new Map<string, string>();
  for (const e of env ?? []) {
    const i = e.indexOf('=');
    if (i > 0) m.set(e.slice(0, i), e.slice(i + 1));
    else m.set(e, '');
  }
  return m;
}

export function setEnv(env: string[] | undefined | null, key: string, value: string): string[] {
  return [...(env ?? []).filter((e) => (e.includes('=') ? e.slice(0, e.indexOf('=')) : e) !== key), `${key}=${value}`];
}
