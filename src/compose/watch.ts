/**
 * `compose watch`: the services' `develop.watch` rules followed as docker
 * compose follows them. The rules' paths are watched (chokidar: one
 * non-recursive inotify watch per directory, new directories picked up,
 * ignored trees such as node_modules never walked; Node's own recursive
 * fs.watch on Linux cannot skip a tree and reports no event kind). Each
 * event is matched against every rule whose path holds it (ignore and
 * include patterns relative to the rule's path, docker's .dockerignore
 * syntax, plus the build context's .dockerignore and the editor and VCS
 * files docker compose always ignores); events are batched as docker
 * compose batches them: a batch is acted on once no new event came for the
 * quiet period (500 ms), the same path counted once. Each service's batches
 * run one after another (watch-sync.ts says what a batch does).
 */
import fs from 'node:fs';
import path from 'node:path';
import { EngineError } from '../common/errors.ts';
import { ignoreMatcher, parseDockerignore } from '../build/context/ignore.ts';
import type { ComposeBackend } from './backend.ts';
import type { WatchRule } from './develop.ts';
import * as L from './labels.ts';
import type { Reporter } from './reporter.ts';
import type { Project, Service } from './types.ts';
import { applyBatch, type BatchOptions, type Change, syncChanges } from './watch-sync.ts';

/** docker compose's quiet period before a batch of file events is acted on. */
export const QUIET_MS = 500;

/** Paths docker compose never acts on: VCS metadata and editors' temporary files (its watch/ephemeral.go). */
export const ALWAYS_IGNORED = [
  '**/.git',
  '**/*___jb_old___',
  '**/*___jb_tmp___',
  '**/.idea',
  '**/.#*',
  '**/#*#',
  '**/4913',
  '**/*~',
  '**/.*.swp',
  '**/.*.swx',
  '**/.*.swo',
  '**/.*.swn',
  '**/.*.kate-swp',
  '**/*-go-tmp-umask',
];

export interface WatchOptions extends BatchOptions {
  /** The services to watch (all that have watch rules when none). */
  services?: string[];
  signal: AbortSignal;
  quietMs?: number;
  /** Called once every path is watched (the point from which a change is seen). */
  onReady?: () => void;
}

/** A rule with its matchers, bound to its service. */
interface BoundRule {
  service: string;
  rule: WatchRule;
  /** Relative to the rule's path, `/` separators. */
  ignored: (rel: string, isDir: boolean) => boolean;
  included: (rel: string) => boolean;
  /** What a directory's walk leaves out: ignored, or a file not included. */
  leftOut: (rel: string, isDir: boolean) => boolean;
}

const slash = (p: string) => p.split(path.sep).join('/');

/** Whether `p` is `dir` or below it. */
const under = (p: string, dir: string) => p === dir || p.startsWith(dir.endsWith(path.sep) ? dir : dir + path.sep);

function bindRule(service: Service, rule: WatchRule): BoundRule {
  const own = ignoreMatcher([...ALWAYS_IGNORED, ...(rule.ignore ?? [])]);
  // the build context's .dockerignore, relative to the context (docker compose applies it to the service's rules)
  let context: ((rel: string, isDir: boolean) => boolean) | undefined;
  const ctxDir = service.build?.context;
  if (ctxDir && path.isAbsolute(ctxDir)) {
    const file = path.join(ctxDir, service.build!.dockerfile ? `${path.basename(service.build!.dockerfile)}.dockerignore` : '.dockerignore');
    const found = [file, path.join(ctxDir, '.dockerignore')].find((f) => fs.existsSync(f));
    if (found) {
      const m = ignoreMatcher(parseDockerignore(fs.readFileSync(found, 'utf8')));
      context = (rel, isDir) => {
        const abs = path.join(rule.path, rel);
        return under(abs, ctxDir) && abs !== ctxDir && m(slash(path.relative(ctxDir, abs)), isDir);
      };
    }
  }
  const include = rule.include?.length ? ignoreMatcher(rule.include) : undefined;
  // a rule on a single file matches by the file's own name
  const relFor = (rel: string) => rel || path.basename(rule.path);
  const ignored = (rel: string, isDir: boolean) => own(relFor(rel), isDir) || (context?.(rel, isDir) ?? false);
  // include patterns name files; a directory is kept so what it holds can match
  const included = (rel: string) => !include || include(relFor(rel), false);
  return { service: service.name, rule, ignored, included, leftOut: (rel, isDir) => ignored(rel, isDir) || (!isDir && !included(rel)) };
}

/** The rules of the selected services, checked as docker compose checks them. */
export function watchRules(p: Project, services?: string[], warn: (m: string) => void = () => {}): BoundRule[] {
  const names = services?.length ? services : Object.keys(p.services);
  for (const n of names) if (!p.services[n]) throw new EngineError('NOT_FOUND', `no such service: ${n}`);
  const out: BoundRule[] = [];
  for (const n of names) {
    const s = p.services[n]!;
    for (const rule of p.develop?.[n]?.watch ?? []) {
      if (rule.action === 'rebuild' && !s.build)
        throw new EngineError('INVALID_ARGUMENT', `can't watch service "${n}" with action rebuild without a build context`);
      const bound = s.volumes.find((v) => v.type === 'bind' && v.source && under(rule.path, v.source) && rule.target !== undefined && v.target === rule.target);
      if (rule.action.startsWith('sync') && bound) {
        warn(`path '${rule.path}' also declared by a bind mount volume, this path won't be monitored!`);
        continue;
      }
      out.push(bindRule(s, rule));
    }
  }
  if (!out.length) throw new EngineError('INVALID_ARGUMENT', "none of the selected services is configured for watch, consider setting a 'develop' section");
  return out;
}

/** The rules a changed host path triggers, as changes. */
export function matchChange(rules: BoundRule[], hostPath: string, isDir: boolean): (Change & { service: string })[] {
  const out: (Change & { service: string })[] = [];
  for (const r of rules) {
    if (!under(hostPath, r.rule.path)) continue;
    const rel = slash(path.relative(r.rule.path, hostPath));
    if (r.leftOut(rel, isDir)) continue;
    out.push({ service: r.service, rule: r.rule, hostPath, leftOut: r.leftOut });
  }
  return out;
}

/**
 * Collects keys and calls flush with them once `quietMs` passed without a
 * new one (docker compose's batchDebounceEvents: a sliding quiet period,
 * each key once per batch).
 */
export class Debouncer<T> {
  private pending = new Map<string, T>();
  private timer: NodeJS.Timeout | undefined;
  private readonly quietMs: number;
  private readonly flush: (batch: T[]) => void;

  constructor(quietMs: number, flush: (batch: T[]) => void) {
    this.quietMs = quietMs;
    this.flush = flush;
  }

  add(key: string, value: T): void {
    this.pending.set(key, value);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.fire(), this.quietMs);
  }

  private fire(): void {
    const batch = [...this.pending.values()];
    this.pending.clear();
    if (batch.length) this.flush(batch);
  }

  stop(): void {
    clearTimeout(this.timer);
    this.pending.clear();
  }
}

/** Watches until the signal aborts; each service's batches run in order, a failed one is reported and watching goes on. */
export async function watchProject(b: ComposeBackend, p: Project, r: Reporter, o: WatchOptions): Promise<void> {
  const rules = watchRules(p, o.services, (m) => r.warn(m));
  const queues = new Map<string, Promise<void>>();
  const run = (service: string, fn: () => Promise<void>) => {
    const next = (queues.get(service) ?? Promise.resolve()).then(fn).catch((e: unknown) => {
      o.log(`service "${service}": ${e instanceof Error ? e.message : String(e)}`);
    });
    queues.set(service, next);
  };

  // initial_sync: what the sync rules cover is copied in once before watching
  for (const br of rules.filter((x) => x.rule.initial_sync && x.rule.action.startsWith('sync') && fs.existsSync(x.rule.path))) {
    run(br.service, async () => {
      const list = (await b.listContainers(L.serviceFilter(p.name, br.service), { all: false })).filter(
        (c) => c.state === 'running' && c.labels[L.ONEOFF] !== 'True',
      );
      await syncChanges(b, list, [{ rule: br.rule, hostPath: br.rule.path, leftOut: br.leftOut }]);
    });
  }

  const debouncer = new Debouncer<Change & { service: string }>(o.quietMs ?? QUIET_MS, (batch) => {
    const byService = new Map<string, Change[]>();
    for (const c of batch) byService.set(c.service, [...(byService.get(c.service) ?? []), c]);
    for (const [service, changes] of byService) run(service, () => applyBatch(b, p, service, changes, r, o));
  });

  const { watch } = await import('chokidar');
  const roots = [...new Set(rules.map((x) => x.rule.path))];
  // a tree is left unwatched only when every rule that covers it ignores it
  const unwatched = (abs: string, stats?: fs.Stats) => {
    if (!stats?.isDirectory()) return false;
    const covering = rules.filter((x) => under(abs, x.rule.path) && abs !== x.rule.path);
    return covering.length > 0 && covering.every((x) => x.ignored(slash(path.relative(x.rule.path, abs)), true));
  };
  const watcher = watch(roots, { ignoreInitial: true, ignored: unwatched, persistent: true, followSymlinks: false });
  const onEvent = (isDir: boolean) => (file: string) => {
    const abs = path.resolve(file);
    for (const c of matchChange(rules, abs, isDir)) debouncer.add(`${c.service}\0${rules.findIndex((x) => x.rule === c.rule)}\0${abs}`, c);
  };
  watcher.on('add', onEvent(false)).on('change', onEvent(false)).on('unlink', onEvent(false));
  watcher.on('addDir', onEvent(true)).on('unlinkDir', onEvent(true));
  watcher.on('error', (e) => o.log(`watch: ${e instanceof Error ? e.message : String(e)}`));
  try {
    await new Promise<void>((res) => watcher.once('ready', res));
    if (!o.signal.aborted) {
      o.onReady?.();
      await new Promise<void>((res) => o.signal.addEventListener('abort', () => res(), { once: true }));
    }
  } finally {
    debouncer.stop();
    await watcher.close();
    await Promise.all(queues.values());
  }
}
