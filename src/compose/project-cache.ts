/**
 * A cache of loaded projects, so that a command whose compose files did
 * not change (the second `up -d`) skips the loader: the YAML parser, the
 * schema validator and normalization are neither run nor even imported.
 *
 * An entry is found by what a load is given: the options (-f, -p,
 * --project-directory, --env-file, --profile, the services named), the
 * working directory, the user and $HOME, and the loader's own code (its files'
 * identities, and those of the packages it uses). It holds the project,
 * the warnings the load printed (printed again on a hit), the config
 * hashes `up` will compare (sha256.ts), and every look the load took
 * (inputs.ts): each file read, with what it held, each existence check,
 * with its answer, and each environment variable read, with its value. A
 * hit repeats those looks, and any different answer (an edited .env, an
 * env_file, an included file, a compose.override.yaml that appeared, a
 * variable the files use) is a miss. Variables the load did not read do
 * not matter (a shell's OLDPWD, hyperfine's random one), except in the
 * project's environment, which a hit makes again from the current one.
 *
 * A load that failed is not stored, nor one that read standard input or
 * another pipe. Entries are written atomically; one that cannot be read
 * or parsed is a miss and is written again; the directory keeps the
 * newest MAX_ENTRIES, each at most MAX_ENTRY_BYTES.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { rememberHashInput, serviceHashInput } from './hash.ts';
import { type EnvScope, exists, type Input, isFile, readBounded, recordInputs } from './inputs.ts';
import type { LoadOptions } from './load.ts';
import { networkHashInput, volumeHashInput } from './resource-hash.ts';
import { remember, sha256Hex } from './sha256.ts';
import type { Project } from './types.ts';

/** Changes when an entry's shape does. */
const FORMAT = 5;
const MAX_ENTRIES = 64;
/** An entry larger than this (a huge environment, thousands of services) is not kept. */
const MAX_ENTRY_BYTES = 1 << 20;

type Seen =
  | { op: 'read'; path: string; bytes: number; text: string }
  | { op: 'isFile' | 'exists'; path: string; result: boolean }
  | { op: 'env'; scope: EnvScope; name: string; value: string | undefined }
  | { op: 'envAll'; scope: EnvScope; entries: [string, string | undefined][] };

interface Entry {
  format: number;
  /** The whole key, compared on a hit (the file name is only its hash). */
  key: string;
  seen: Seen[];
  warnings: string[];
  project: Project;
  /** The config hashes `up` compares, [hashed input, sha256]: each service's by name (hash.ts), its networks' and volumes' (sha256.ts). */
  hashes: { services: Record<string, [string, string]>; resources: [string, string][] };
  /** The variables of its .env files (its environment is these under the OS environment). */
  dotenv: Record<string, string>;
}

type Loader = (o: LoadOptions) => Promise<{ project: Project; inputs: Input[] }> | { project: Project; inputs: Input[] };

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** The loader, imported only on a miss. */
async function loadRecorded(o: LoadOptions): Promise<{ project: Project; inputs: Input[] }> {
  const { loadProject } = await import('./load.ts');
  const { result, inputs } = recordInputs(() => loadProject(o));
  return { project: result, inputs };
}

/** $XDG_CACHE_HOME/keel/compose, else ~/.cache/keel/compose; none without either. */
export function defaultCacheDir(env: Record<string, string | undefined> = process.env): string | undefined {
  const base = env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : env.HOME ? path.join(env.HOME, '.cache') : undefined;
  return base && path.join(base, 'keel', 'compose');
}

/**
 * The loader's code as of now: the identity (inode, size, mtime) of every
 * file of src/compose (schema included) and src/common, and of the
 * packages the loader uses. An edit or an upgrade changes it. Run from the
 * CLI's bundle (cli/bundle.ts) the modules are the bundle's, which bin/keel
 * runs only while each is the file it was made from and node_modules is as
 * it was: the bundle's name stands for them, and only what the loader reads
 * at run time (the schema's validator) is looked at.
 */
export function codeFingerprint(): string {
  const parts: string[] = [process.version];
  const dirs = BUNDLE ? [path.join(HERE, 'schema')] : CODE_DIRS;
  if (BUNDLE) parts.push(`bundle ${BUNDLE}`);
  for (const dir of dirs) {
    parts.push(dir);
    for (const f of codeIn(dir).sort()) parts.push(`${f} ${identity(path.join(dir, f))}`);
  }
  if (!BUNDLE) for (const pkg of PACKAGES) parts.push(`${pkg} ${packageIdentity(pkg)}`);
  return parts.join('\n');
}

/** The build of the CLI's bundle this module is part of (cli/bundle.ts defines it), if it is. */
const BUNDLE = (import.meta as { keelBundle?: string }).keelBundle;
const CODE_DIRS = [HERE, path.join(HERE, 'schema'), path.join(HERE, '..', 'common')];
const PACKAGES = ['yaml', 'ajv', 'fast-deep-equal'];

/** The files codeFingerprint covers (for tests). */
export function codeFiles(): string[] {
  return [...CODE_DIRS.flatMap((d) => codeIn(d).map((f) => path.join(d, f))), ...PACKAGES.map((p) => packageJson(p) ?? p)];
}

/** A directory's files but its tests and prose: no load reads those, and each is a stat of every command. */
const codeIn = (dir: string) => fs.readdirSync(dir).filter((f) => !f.endsWith('.test.ts') && !f.endsWith('.md'));

function identity(file: string): string {
  const st = fs.statSync(file, { bigint: true });
  return `${st.ino} ${st.size} ${st.mtimeNs}`;
}

/**
 * The package.json of the package an import from here finds: the first
 * node_modules/<pkg> up from this directory, as Node resolves a bare
 * import (require.resolve costs a command milliseconds).
 */
function packageJson(pkg: string): string | undefined {
  for (let d = HERE; ; d = path.dirname(d)) {
    const file = path.join(d, 'node_modules', pkg, 'package.json');
    if (fs.existsSync(file)) return file;
    if (path.dirname(d) === d) return undefined;
  }
}

function packageIdentity(pkg: string): string {
  const file = packageJson(pkg);
  return file ? `${file} ${identity(file)}` : 'not found';
}

/** What a load is given, but the environment (its variables are looked at as files are), as one string. */
export function cacheKey(o: LoadOptions, code: string): string {
  return JSON.stringify({
    format: FORMAT,
    code,
    cwd: o.cwd ?? process.cwd(),
    uid: process.getuid?.(),
    // `~/` in a path is os.homedir(): $HOME of this process, else the user's
    home: process.env.HOME ?? null,
    files: o.files ?? [],
    projectName: o.projectName ?? null,
    projectDirectory: o.projectDirectory ?? null,
    envFiles: o.envFiles ?? [],
    profiles: o.profiles ?? [],
    services: o.services ?? [],
  });
}

/**
 * An entry's file name: FNV-1a over the key's UTF-8 in 32-bit words, with
 * two primes (the entry holds the whole key: a collision is only a miss).
 * Words, not characters: the loop runs before V8 optimizes it.
 */
function fileName(key: string): string {
  const bytes = new Uint8Array((key.length * 3 + 4) & ~3);
  const words = new Int32Array(bytes.buffer, 0, (new TextEncoder().encodeInto(key, bytes).written + 3) >> 2);
  let a = 0x811c9dc5;
  let b = 0xcbf29ce4;
  for (let i = 0; i < words.length; i++) {
    a = Math.imul(a ^ words[i]!, 0x01000193);
    b = Math.imul(b ^ words[i]!, 0x5bd1e995);
  }
  return (a >>> 0).toString(16).padStart(8, '0') + (b >>> 0).toString(16).padStart(8, '0');
}

/** What `up` will hash for this project: its services without references to other services' containers, its networks and volumes. */
function configHashes(p: Project): Entry['hashes'] {
  const pair = (input: string): [string, string] => [input, sha256Hex(input)];
  try {
    return {
      services: Object.fromEntries(Object.entries(p.services).map(([name, s]) => [name, pair(serviceHashInput(s))])),
      resources: [...Object.values(p.networks).map(networkHashInput), ...Object.values(p.volumes).map(volumeHashInput)].map(pair),
    };
  } catch {
    return { services: {}, resources: [] }; // what cannot be hashed now fails (or not) where it is hashed, as without the cache
  }
}

/** Hands the hashes on to what `up` hashes with: each input's sha256, and each service's input by its object. */
function rememberHashes(p: Project, h: Entry['hashes']): void {
  remember([...Object.values(h.services), ...h.resources]);
  for (const [name, [input]] of Object.entries(h.services)) if (p.services[name]) rememberHashInput(p.services[name], input);
}

/** The project's environment as load.ts makes it: its .env files' variables under the OS environment. */
function projectEnvironment(dotenv: Record<string, string>, os: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = { ...dotenv };
  for (const [k, v] of Object.entries(os)) if (v !== undefined) out[k] = v;
  return out;
}

/** Whether the filesystem and the environments still answer every look the same way. */
function unchanged(seen: Seen[], envs: Record<EnvScope, Record<string, string | undefined>>): boolean {
  for (const s of seen) {
    if (s.op === 'env') {
      if (envs[s.scope][s.name] !== s.value) return false;
      continue;
    }
    if (s.op === 'envAll') {
      if (JSON.stringify(Object.entries(envs[s.scope])) !== JSON.stringify(s.entries)) return false;
      continue;
    }
    if (s.op === 'read') {
      // a file first (a FIFO in its place would block the read), then no more bytes than it had
      try {
        if (!isFile(s.path) || readBounded(s.path, s.bytes) !== s.text) return false;
      } catch {
        return false;
      }
    } else if ((s.op === 'isFile' ? isFile(s.path) : exists(s.path)) !== s.result) return false;
  }
  return true;
}

/** An entry's bytes; one larger than this cache writes (not one it wrote) throws before it is read. */
function readEntryFile(file: string): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    if (fs.fstatSync(fd).size > MAX_ENTRY_BYTES) throw new Error(`${file}: larger than a cache entry`);
    return fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** [hashed input, sha256], as configHashes writes it: what a hit hands on to `up` (rememberHashes). */
const isHashPair = (x: unknown): boolean => Array.isArray(x) && x.length === 2 && typeof x[0] === 'string' && typeof x[1] === 'string';

function readEntry(file: string, key: string): Entry | undefined {
  try {
    const e = JSON.parse(readEntryFile(file).toString('utf8')) as Entry;
    if (
      e?.format !== FORMAT ||
      e.key !== key ||
      !Array.isArray(e.seen) ||
      !Array.isArray(e.warnings) ||
      typeof e.hashes?.services !== 'object' ||
      !Object.values(e.hashes.services).every(isHashPair) ||
      !Array.isArray(e.hashes.resources) ||
      !e.hashes.resources.every(isHashPair) ||
      typeof e.dotenv !== 'object' ||
      typeof e.project?.name !== 'string'
    )
      return undefined;
    return e;
  } catch {
    return undefined; // absent, unreadable or corrupt: a miss, written again
  }
}

/** Writes an entry; a cache that cannot be written only costs the next command the load. */
async function writeEntry(dir: string, file: string, e: Entry): Promise<void> {
  try {
    // JSON, not v8.serialize: node:v8 costs every command ~4 ms to load. A project
    // JSON would not give back as it is (an undefined kept as a key) is not kept;
    // in what was seen an undefined reads back the same (an absent key, or null where compared as JSON).
    const data = JSON.stringify(e);
    if (data.length > MAX_ENTRY_BYTES || !isDeepStrictEqual((JSON.parse(data) as Entry).project, e.project)) return;
    makeDir(dir);
    // common/fs.ts loads node:crypto: only here, on a miss (a hit must not)
    await (await import('../common/fs.ts')).writeFileAtomic(file, data, 0o600, { durable: false });
    prune(dir);
  } catch {
    // no directory to write in (a file in the way): nothing was written
  }
}

/**
 * mkdir -p, one level at a time: fs.mkdirSync's recursive mode loops
 * forever where mkdir fails with ENOENT under a parent that exists (a
 * cache directory under /proc).
 */
function makeDir(dir: string): void {
  const missing: string[] = [];
  for (let d = dir; !fs.existsSync(d) && path.dirname(d) !== d; d = path.dirname(d)) missing.unshift(d);
  for (const d of missing) fs.mkdirSync(d, { mode: 0o700 });
}

/** Keeps the newest MAX_ENTRIES files (a temporary file a killed command left is one, and goes in turn). */
function prune(dir: string): void {
  const names = fs.readdirSync(dir);
  if (names.length <= MAX_ENTRIES) return;
  const aged = names.flatMap((n) => {
    try {
      return [{ n, t: fs.statSync(path.join(dir, n)).mtimeMs }];
    } catch {
      return [];
    }
  });
  aged.sort((a, b) => b.t - a.t);
  for (const { n } of aged.slice(MAX_ENTRIES)) fs.rmSync(path.join(dir, n), { force: true });
}

export interface CacheOptions {
  /** Where entries live (defaultCacheDir()); none: every call loads. */
  dir?: string;
  /** The loader's code identity (codeFingerprint()). */
  code?: string;
  /** The loader (load.ts, recording its inputs). */
  load?: Loader;
}

/**
 * loadProject (load.ts) through the cache: the same project, the same
 * warnings, the same errors.
 */
export async function loadProjectCached(o: LoadOptions = {}, c: CacheOptions = {}): Promise<Project> {
  const warn = o.onWarning ?? ((m: string) => void process.stderr.write(`WARN[0000] ${m}\n`));
  const load = c.load ?? loadRecorded;
  const dir = 'dir' in c ? c.dir : defaultCacheDir(o.env ?? process.env);
  if (!dir || o.files?.includes('-')) return (await load({ ...o, onWarning: warn })).project;
  let key: string;
  let file: string;
  let hit: Entry | undefined;
  try {
    key = cacheKey(o, c.code ?? codeFingerprint());
    file = path.join(dir, fileName(key));
    hit = readEntry(file, key);
    if (hit) {
      const os = o.env ?? process.env;
      const environment = projectEnvironment(hit.dotenv, os);
      if (unchanged(hit.seen, { os, project: environment })) hit.project.environment = environment;
      else hit = undefined;
    }
  } catch {
    // the cache cannot be used (a source file went away while it was looked at): the load as without it
    return (await load({ ...o, onWarning: warn })).project;
  }
  if (hit) {
    for (const m of hit.warnings) warn(m);
    rememberHashes(hit.project, hit.hashes);
    return hit.project;
  }
  const warnings: string[] = [];
  const { project, inputs } = await load({
    ...o,
    onWarning: (m) => {
      warnings.push(m);
      warn(m);
    },
  });
  if (inputs.some((i) => i.op === 'read' && !i.regular)) return project;
  const seen: Seen[] = [];
  const variables = new Set<string>();
  for (const i of inputs) {
    if (i.op === 'read') seen.push({ op: 'read', path: i.path, bytes: i.bytes, text: i.text });
    else if (i.op === 'env') {
      // a variable is read many times, always with the same value
      if (!variables.has(`${i.scope} ${i.name}`)) seen.push(i);
      variables.add(`${i.scope} ${i.name}`);
    } else if (i.op !== 'dotenv') seen.push(i);
  }
  const dotenv = inputs.find((i) => i.op === 'dotenv')?.values ?? {};
  // the environment is made again on a hit: the entry keeps only the variables the load read
  const kept = { ...project, environment: {} };
  const hashes = configHashes(project);
  // up hashes this project next: what was just hashed is not hashed again
  rememberHashes(project, hashes);
  await writeEntry(dir, file, { format: FORMAT, key, seen, warnings, project: kept, hashes, dotenv });
  return project;
}
