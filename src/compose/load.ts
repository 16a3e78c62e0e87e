/**
 * Loading a compose project the way docker compose does:
 *   files (-f, $COMPOSE_FILE, or the lookup up from the working directory)
 *   → each file read (bounded), parsed, interpolated with the environment
 *     ($VAR from the OS environment over the project's .env / --env-file),
 *     validated against the compose-spec schema, its relative paths made
 *     absolute against its own directory, its `include`s and `extends`
 *     resolved
 *   → the files merged in order (merge.ts)
 *   → profiles applied, the project named, the model normalized (normalize.ts).
 */
import os from 'node:os';
import path from 'node:path';
import { EngineError } from '../common/errors.ts';
import { parseDotenv } from './dotenv.ts';
import { findComposeFiles, parseYaml } from './files.ts';
import { exists, noteDotenv, observeEnv, readBounded } from './inputs.ts';
import { interpolateTree, type Lookup } from './interpolate.ts';
import { normalizeProjectName } from './labels.ts';
import { mergeTrees, stripMarkers } from './merge.ts';
import { checkDependencies, normalizeProject } from './normalize.ts';
import type { Project } from './types.ts';
import { validateFile } from './validate.ts';

export interface LoadOptions {
  /** -f: compose files (relative to cwd). */
  files?: string[];
  /** -p */
  projectName?: string;
  /** --project-directory */
  projectDirectory?: string;
  /** --env-file (replace the project's .env) */
  envFiles?: string[];
  /** --profile (else $COMPOSE_PROFILES) */
  profiles?: string[];
  /** Services named on the command line: their profiles are enabled for them. */
  services?: string[];
  /** The OS environment (process.env by default). */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Warnings docker compose prints (unset variables, obsolete `version`). */
  onWarning?: (message: string) => void;
}

type Tree = Record<string, unknown>;

interface Ctx {
  lookup: Lookup;
  warn: (m: string) => void;
  /** Files being loaded, to refuse include/extends loops. */
  stack: string[];
  warned: Set<string>;
}

export function loadProject(opts: LoadOptions = {}): Project {
  const cwd = opts.cwd ?? process.cwd();
  const rawEnv = opts.env ?? process.env;
  const osEnv = observeEnv(rawEnv, 'os');
  const warn = opts.onWarning ?? ((m: string) => process.stderr.write(`WARN[0000] ${m}\n`));
  // COMPOSE_FILE may also come from the .env of the working (or project) directory, as in docker compose
  const startDir = path.resolve(cwd, opts.projectDirectory ?? '.');
  const startEnv =
    opts.files?.length || osEnv.COMPOSE_FILE || !exists(path.join(startDir, '.env'))
      ? {}
      : parseDotenv(readBounded(path.join(startDir, '.env'), 1 << 20), path.join(startDir, '.env'), (n) => osEnv[n]);
  const composeFile = osEnv.COMPOSE_FILE ?? startEnv.COMPOSE_FILE;
  const separator = osEnv.COMPOSE_PATH_SEPARATOR ?? startEnv.COMPOSE_PATH_SEPARATOR ?? ':';
  let files = opts.files?.length ? opts.files : composeFile ? composeFile.split(separator).filter(Boolean) : undefined;
  files = files ? files.map((f) => (f === '-' ? f : path.resolve(composeFile && !opts.files?.length ? startDir : cwd, f))) : findComposeFiles(startDir);
  const projectDir = path.resolve(cwd, opts.projectDirectory ?? (files[0] === '-' ? '.' : path.dirname(files[0]!)));

  // the OS environment wins over the .env file, as in docker compose
  const dotenv: Record<string, string> = {};
  const envFiles = opts.envFiles?.length
    ? opts.envFiles.map((f) => path.resolve(cwd, f))
    : exists(path.join(projectDir, '.env'))
      ? [path.join(projectDir, '.env')]
      : [];
  for (const f of envFiles)
    Object.assign(
      dotenv,
      parseDotenv(readBounded(f, 1 << 20), f, (n) => osEnv[n] ?? dotenv[n]),
    );
  noteDotenv(dotenv);
  const plainEnvironment: Record<string, string> = { ...dotenv };
  for (const [k, v] of Object.entries(rawEnv)) if (v !== undefined) plainEnvironment[k] = v;
  const environment = observeEnv(plainEnvironment, 'project');
  const ctx: Ctx = { lookup: (n) => environment[n], warn, stack: [], warned: new Set() };

  let merged: Tree = {};
  for (const f of files) merged = mergeTrees(merged, loadFile(f, projectDir, ctx));
  merged = stripMarkers(merged) as Tree;

  const rawName = opts.projectName ?? environment.COMPOSE_PROJECT_NAME ?? (typeof merged.name === 'string' && merged.name ? merged.name : undefined);
  let name: string;
  if (rawName !== undefined) {
    name = rawName;
    if (!/^[a-z0-9][a-z0-9_-]*$/.test(name))
      throw new EngineError(
        'INVALID_ARGUMENT',
        `invalid project name "${name}": must consist only of lowercase alphanumeric characters, hyphens, and underscores as well as start with a letter or number`,
      );
  } else name = normalizeProjectName(path.basename(projectDir));
  if (!name)
    throw new EngineError(
      'INVALID_ARGUMENT',
      `project name must not be empty: name the project with -p or "name:" (the directory name ${path.basename(projectDir)} has no usable characters)`,
    );
  if ((merged.services === undefined || merged.services === null) && !merged.include)
    throw new EngineError('INVALID_ARGUMENT', `no service is defined in ${files.join(', ')}`);

  const profiles = opts.profiles?.length ? opts.profiles : (environment.COMPOSE_PROFILES ?? '').split(',').filter(Boolean);
  let project: Project;
  try {
    project = normalizeProject(merged, { name, workingDir: projectDir, configFiles: files, environment, profiles, explicit: opts.services ?? [] });
  } catch (e) {
    // a value's file is lost in the merge; name the files it came from
    if (e instanceof EngineError && e.message.startsWith('services.')) throw new EngineError(e.code, `${files.join(', ')}: ${e.message}`);
    throw e;
  }
  checkDependencies(project);
  // the project keeps the environment itself, not the view that recorded what the load read
  project.environment = plainEnvironment;
  return project;
}

/**
 * One file as a raw tree: parsed, interpolated, validated, its paths made
 * absolute against `baseDir`, its includes merged in and its extends
 * resolved.
 */
function loadFile(file: string, baseDir: string, ctx: Ctx): Tree {
  if (ctx.stack.includes(file)) throw new EngineError('INVALID_ARGUMENT', `include/extends cycle: ${[...ctx.stack, file].join(' -> ')}`);
  ctx.stack.push(file);
  try {
    const raw = parseYaml(readBounded(file), file);
    const onMissing = (n: string) => {
      if (ctx.warned.has(n)) return;
      ctx.warned.add(n);
      ctx.warn(`The "${n}" variable is not set. Defaulting to a blank string.`);
    };
    let tree: Tree;
    try {
      tree = interpolateTree(raw, ctx.lookup, { onMissing }) as Tree;
    } catch (e) {
      throw new EngineError('INVALID_ARGUMENT', `${file}: ${(e as Error).message}`);
    }
    validateFile(stripMarkers(tree), file);
    if (tree.version !== undefined && !ctx.warned.has('version')) {
      ctx.warned.add('version');
      ctx.warn(`${file}: the attribute \`version\` is obsolete, it will be ignored, please remove it to avoid potential confusion`);
    }
    absolutize(tree, baseDir);
    const services = (tree.services ?? {}) as Tree;
    const resolved: Tree = {};
    for (const name of Object.keys(services)) resolved[name] = resolveExtends(name, services, file, baseDir, ctx, []);
    if (tree.services) tree.services = resolved;
    if (Array.isArray(tree.include)) {
      for (const inc of tree.include) tree = mergeInclude(tree, inc, baseDir, file, ctx);
      delete tree.include;
    }
    return tree;
  } finally {
    ctx.stack.pop();
  }
}

function mergeInclude(tree: Tree, inc: unknown, baseDir: string, file: string, ctx: Ctx): Tree {
  const spec = typeof inc === 'string' ? { path: inc } : (inc as { path?: string | string[]; project_directory?: string; env_file?: string | string[] });
  const paths = (spec.path === undefined ? [] : Array.isArray(spec.path) ? spec.path : [spec.path]).map((p) => path.resolve(baseDir, p));
  if (!paths.length) throw new EngineError('INVALID_ARGUMENT', `${file}: include: an entry names no file (its path is missing or empty)`);
  const dir = spec.project_directory ? path.resolve(baseDir, spec.project_directory) : path.dirname(paths[0]!);
  // an included project reads its own .env (or env_file), under the including environment
  const envFiles = spec.env_file
    ? (Array.isArray(spec.env_file) ? spec.env_file : [spec.env_file]).map((f) => path.resolve(baseDir, f))
    : [path.join(dir, '.env')].filter((f) => exists(f));
  const local: Record<string, string> = {};
  for (const f of envFiles)
    Object.assign(
      local,
      parseDotenv(readBounded(f, 1 << 20), f, (n) => ctx.lookup(n) ?? local[n]),
    );
  const sub: Ctx = { ...ctx, lookup: (n) => ctx.lookup(n) ?? local[n] };
  let included: Tree = {};
  for (const p of paths) included = mergeTrees(included, loadFile(p, dir, sub));
  const out: Tree = { ...tree };
  for (const section of ['services', 'networks', 'volumes', 'secrets', 'configs']) {
    const mine = (tree[section] ?? {}) as Tree;
    const theirs = (included[section] ?? {}) as Tree;
    for (const k of Object.keys(theirs)) {
      if (Object.hasOwn(mine, k) && JSON.stringify(mine[k]) !== JSON.stringify(theirs[k])) {
        throw new EngineError('INVALID_ARGUMENT', `${file}: ${section}.${k} conflicts with imported resource from ${paths.join(', ')}`);
      }
    }
    if (Object.keys(theirs).length) out[section] = { ...theirs, ...mine };
  }
  return out;
}

function resolveExtends(name: string, services: Tree, file: string, baseDir: string, ctx: Ctx, chain: string[]): Tree {
  const svc = services[name] as Tree | null;
  if (!svc || typeof svc !== 'object') return (svc ?? {}) as Tree;
  const ext = svc.extends as string | { service: string; file?: string } | undefined;
  if (ext === undefined) return svc;
  const key = `${file}#${name}`;
  if (chain.includes(key)) throw new EngineError('INVALID_ARGUMENT', `${file}: service ${name}: extends cycle: ${[...chain, key].join(' -> ')}`);
  const spec = typeof ext === 'string' ? { service: ext } : ext;
  let base: Tree;
  if (spec.file) {
    const other = path.resolve(baseDir, spec.file);
    const tree = loadFile(other, path.dirname(other), ctx);
    const theirs = (tree.services ?? {}) as Tree;
    if (!Object.hasOwn(theirs, spec.service))
      throw new EngineError('INVALID_ARGUMENT', `${file}: service ${name}: extends: service "${spec.service}" not found in ${other}`);
    base = theirs[spec.service] as Tree;
  } else {
    if (!Object.hasOwn(services, spec.service))
      throw new EngineError('INVALID_ARGUMENT', `${file}: service ${name}: extends: service "${spec.service}" not found`);
    base = resolveExtends(spec.service, services, file, baseDir, ctx, [...chain, key]);
  }
  const { extends: _e, ...own } = svc;
  const merged = mergeTrees({ services: { s: base } }, { services: { s: own } }) as { services: { s: Tree } };
  return merged.services.s;
}

const isPathLike = (s: string) => s.startsWith('.') || s.startsWith('/') || s.startsWith('~');

function abs(p: string, baseDir: string): string {
  if (p === '~' || p.startsWith('~/')) return path.join(os.homedir(), p.slice(1));
  return path.resolve(baseDir, p);
}

/** Makes the relative paths of one file absolute against its directory, so files from anywhere merge. */
function absolutize(tree: Tree, baseDir: string): void {
  const services = (tree.services ?? {}) as Record<string, Tree | null>;
  for (const svc of Object.values(services)) {
    if (!svc || typeof svc !== 'object') continue;
    if (typeof svc.build === 'string') svc.build = { context: svc.build };
    const b = svc.build as Tree | undefined;
    if (b && typeof b === 'object') {
      const ctxPath = typeof b.context === 'string' ? b.context : '.';
      b.context = /^[a-z]+:\/\/|^git@|\.git(#|$)/.test(ctxPath) ? ctxPath : abs(ctxPath, baseDir);
    }
    if (Array.isArray(svc.volumes)) {
      svc.volumes = svc.volumes.map((v) => {
        if (typeof v === 'string') {
          const i = v.indexOf(':');
          const src = i < 0 ? v : v.slice(0, i);
          return i > 0 && isPathLike(src) ? abs(src, baseDir) + v.slice(i) : v;
        }
        if (v && typeof v === 'object' && (v as Tree).type === 'bind' && typeof (v as Tree).source === 'string')
          return { ...(v as Tree), source: abs((v as Tree).source as string, baseDir) };
        return v;
      });
    }
    if (svc.env_file !== undefined) {
      const list = Array.isArray(svc.env_file) ? svc.env_file : [svc.env_file];
      svc.env_file = list.map((e) => (typeof e === 'string' ? abs(e, baseDir) : { ...(e as Tree), path: abs((e as Tree).path as string, baseDir) }));
    }
    if (svc.label_file !== undefined) svc.label_file = (Array.isArray(svc.label_file) ? svc.label_file : [svc.label_file]).map((f) => abs(String(f), baseDir));
    const ext = svc.extends as Tree | undefined;
    if (ext && typeof ext === 'object' && typeof ext.file === 'string') ext.file = abs(ext.file, baseDir);
  }
  for (const section of ['secrets', 'configs']) {
    for (const obj of Object.values((tree[section] ?? {}) as Record<string, Tree | null>))
      if (obj && typeof obj.file === 'string') obj.file = abs(obj.file, baseDir);
  }
  if (Array.isArray(tree.include)) {
    tree.include = tree.include.map((inc) => {
      if (typeof inc === 'string') return abs(inc, baseDir);
      const t = inc as Tree;
      const p = Array.isArray(t.path) ? t.path.map((x) => abs(String(x), baseDir)) : t.path === undefined ? undefined : abs(String(t.path), baseDir);
      return { ...t, path: p, ...(typeof t.project_directory === 'string' ? { project_directory: abs(t.project_directory, baseDir) } : {}) };
    });
  }
}
