/**
 * A service's `develop` section (compose spec, "Develop"): the watch rules
 * `compose watch` follows, by service in Project.develop for the watcher, and
 * on the Service too: docker compose's config hash covers it (its ServiceHash
 * strips build, pull_policy, scale, replicas, depends_on and profiles only),
 * so editing a watch rule recreates the service's containers there as here.
 */
import path from 'node:path';
import { EngineError } from '../common/errors.ts';
import { shellSplit } from './shorthand.ts';
import { toMap } from './merge.ts';

export type WatchAction = 'sync' | 'rebuild' | 'restart' | 'sync+restart' | 'sync+exec';

export interface WatchExec {
  command: string[];
  user?: string;
  privileged?: boolean;
  working_dir?: string;
  environment?: Record<string, string>;
}

export interface WatchRule {
  /** Absolute host path (a directory or one file). */
  path: string;
  action: WatchAction;
  /** Absolute path in the container (sync actions). */
  target?: string;
  /** .dockerignore patterns, relative to `path`. */
  ignore?: string[];
  /** When given, only paths matching one of these patterns (relative to `path`) trigger the rule. */
  include?: string[];
  exec?: WatchExec;
  initial_sync?: boolean;
}

export interface DevelopConfig {
  watch: WatchRule[];
}

type Tree = Record<string, unknown>;

const list = (v: unknown): string[] | undefined => (v === undefined || v === null ? undefined : Array.isArray(v) ? v.map(String) : [String(v)]);

/** The develop section of one service (already schema-checked), paths made absolute against the project directory. */
export function parseDevelop(service: string, raw: unknown, workingDir: string): DevelopConfig | undefined {
  if (!raw || typeof raw !== 'object') return undefined;
  const watch = (raw as Tree).watch;
  if (!Array.isArray(watch)) return undefined;
  const rules = watch.map((w: Tree, i): WatchRule => {
    const where = `services.${service}.develop.watch[${i}]`;
    const action = String(w.action) as WatchAction;
    const rule: WatchRule = { path: path.resolve(workingDir, String(w.path)), action };
    const ignore = list(w.ignore);
    if (ignore) rule.ignore = ignore;
    if (w.target !== undefined) {
      const t = String(w.target);
      // a relative target is relative to the container's root, as compose-go leaves it for path.Join
      rule.target = path.posix.resolve('/', t);
    }
    const include = list(w.include);
    if (include) rule.include = include;
    if (w.initial_sync !== undefined) rule.initial_sync = w.initial_sync === true || w.initial_sync === 'true';
    if ((action === 'sync' || action === 'sync+restart' || action === 'sync+exec') && rule.target === undefined) {
      throw new EngineError('INVALID_ARGUMENT', `${where}: target is required for action ${action}`);
    }
    if (action === 'sync+exec') {
      const e = w.exec as Tree | undefined;
      if (!e?.command) throw new EngineError('INVALID_ARGUMENT', `${where}: exec.command is required for action sync+exec`);
      const command = Array.isArray(e.command) ? e.command.map(String) : shellSplit(String(e.command), `${where}.exec.command`);
      rule.exec = { command };
      if (e.user !== undefined) rule.exec.user = String(e.user);
      if (e.privileged !== undefined) rule.exec.privileged = e.privileged === true || e.privileged === 'true';
      if (e.working_dir !== undefined) rule.exec.working_dir = String(e.working_dir);
      if (e.environment !== undefined)
        rule.exec.environment = Object.fromEntries(Object.entries(toMap(e.environment)).map(([k, v]) => [k, v === null || v === undefined ? '' : String(v)]));
    }
    return rule;
  });
  return { watch: rules };
}
