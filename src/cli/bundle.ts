/**
 * keel's CLI as a bundle: src/cli/main.ts, every module it imports (the
 * command modules as chunks loaded when their command runs) and the
 * pure-JavaScript packages they use, scope-hoisted by esbuild into
 * dist/keel-<id>/. Node starts a command from it faster than it resolves,
 * reads and links each of the dozens of .ts modules a command imports
 * (a no-op `keel compose up -d` here: 185 ms from src/, 156 ms from the
 * bundle, where `node -e 0` takes 82).
 * The daemon (src/daemon/serve.ts) is not in it: it starts once, and runs
 * from src/ as before.
 *
 * The bundle is a cache of src/, never a second source: install.sh makes
 * it (`npm run bundle`), and bin/keel runs it only while every source file
 * it was made from is the one it was made from (same inode, size, mtime
 * and ctime: an edit, a checkout or a copy changes the ctime) and npm has
 * not changed node_modules since (its node_modules/.package-lock.json);
 * otherwise bin/keel runs src/ as before. In the bundle `import.meta.url`
 * is each module's own source file's URL, so what a module finds beside it
 * (the compose schema and validator, worker scripts, bin/keel) is found in
 * src/ as before.
 *
 * A build writes a new directory, then the manifest that names it
 * (atomically), then removes the builds before the previous one: a command
 * that started from the previous build still finds the chunks it imports
 * later.
 */
import type { PluginBuild } from 'esbuild';

// Node's modules through getBuiltinModule: this runs before every command (see cli/client.ts)
const fs = process.getBuiltinModule('node:fs');
const path = process.getBuiltinModule('node:path');
const { fileURLToPath, pathToFileURL } = process.getBuiltinModule('node:url');

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const FORMAT = 1;
const ENTRY = 'src/cli/main.ts';
/** npm rewrites it whenever it changes node_modules. */
const PACKAGES = 'node_modules/.package-lock.json';
/** Packages with native addons: loaded from node_modules as they are. */
const EXTERNAL = ['koffi', '@napi-rs/xattr'];

interface Manifest {
  format: number;
  /** The Node.js it was made for (the names of Node's modules' exports are this one's). */
  node: string;
  /** The build's directory, in the manifest's. */
  dir: string;
  /** What it was made from, relative to the root: [path, inode, size, mtimeMs, ctimeMs]. */
  inputs: [string, number, number, number, number][];
}

export interface BundlePlace {
  /** The tree the sources are in. */
  root?: string;
  /** Where builds and their manifest go (root/dist). */
  dist?: string;
}

/** The URL of the CLI's entry in a bundle made from the current sources, if there is one. */
export function currentBundle({ root = ROOT, dist = path.join(root, 'dist') }: BundlePlace = {}): string | undefined {
  let m: Manifest;
  try {
    m = JSON.parse(fs.readFileSync(path.join(dist, 'manifest.json'), 'utf8')) as Manifest;
  } catch {
    return undefined; // never built
  }
  if (m.format !== FORMAT || m.node !== process.version || !Array.isArray(m.inputs) || typeof m.dir !== 'string' || !/^keel-[\w-]+$/.test(m.dir))
    return undefined;
  for (const [file, ino, size, mtime, ctime] of m.inputs) {
    // (string concatenation: path.join costs each of a hundred calls more than its stat)
    const st = fs.statSync(`${root}/${file}`, { throwIfNoEntry: false });
    if (!st || st.ino !== ino || st.size !== size || st.mtimeMs !== mtime || st.ctimeMs !== ctime) return undefined;
  }
  const main = path.join(dist, m.dir, 'main.mjs');
  return fs.existsSync(main) ? pathToFileURL(main).href : undefined;
}

/**
 * Resolves the bundle's imports of its own chunks (`./chunk-X.mjs` from a
 * module of the bundle) as the URL beside the importer, without Node's
 * resolver: it stats and realpaths each file, ~0.4 ms a chunk, and a
 * command imports a dozen or two (a no-op `compose up` is ~7 ms faster).
 * The hook (module.registerHooks: synchronous, in this thread) passes
 * every other import on.
 */
export function resolveChunksDirectly(mainUrl: string): void {
  const dir = new URL('./', mainUrl).href;
  process.getBuiltinModule('node:module').registerHooks?.({
    resolve: (specifier, context, next) =>
      specifier.startsWith('./') && specifier.endsWith('.mjs') && context.parentURL?.startsWith(dir)
        ? { url: new URL(specifier, context.parentURL).href, format: 'module', shortCircuit: true }
        : next(specifier, context),
  });
}

/** Builds the bundle from the current sources; resolves with its directory. */
export async function buildBundle({ root = ROOT, dist = path.join(root, 'dist') }: BundlePlace = {}): Promise<string> {
  const esbuild = await import('esbuild');
  const dir = `keel-${Date.now().toString(36)}-${process.pid}`;
  const out = path.join(dist, dir);
  // identities first: a file edited while esbuild reads it leaves a bundle that is stale at once, never one that looks current
  const sources = new Map<string, Manifest['inputs'][number]>();
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: { main: ENTRY },
    outdir: out,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node24',
    outExtension: { '.js': '.mjs' },
    external: EXTERNAL,
    // no keepNames: its __name() gives every function and class a map of its own (~300 KB, ~4 ms of a no-op
    // `compose up`), and nothing the CLI prints names one (the few that esbuild renames apart are helpers)
    // the build's name, for a cache of what its code made (compose/project-cache.ts)
    define: { 'import.meta.keelBundle': JSON.stringify(dir) },
    metafile: true,
    logLevel: 'warning',
    plugins: [builtins, sourceUrls(root, sources)],
  });
  const inputs: Manifest['inputs'] = [];
  for (const file of Object.keys(result.metafile.inputs)) {
    // npm's changes show in PACKAGES; Node's modules (builtin:node:fs) are no files
    if (file.startsWith('node_modules/') || file.startsWith('builtin:')) continue;
    inputs.push(sources.get(file) ?? identity(root, file));
  }
  if (fs.existsSync(path.join(root, PACKAGES))) inputs.push(identity(root, PACKAGES));
  const manifest = path.join(dist, 'manifest.json');
  const previous = buildNamedBy(manifest);
  const tmp = `${manifest}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify({ format: FORMAT, node: process.version, dir, inputs } satisfies Manifest));
  fs.renameSync(tmp, manifest);
  for (const old of fs.readdirSync(dist)) {
    if (old.startsWith('keel-') && old !== dir && old !== previous) fs.rmSync(path.join(dist, old), { recursive: true, force: true });
  }
  return out;
}

function identity(root: string, file: string): Manifest['inputs'][number] {
  const st = fs.statSync(path.join(root, file));
  return [file, st.ino, st.size, st.mtimeMs, st.ctimeMs];
}

/** The build directory a manifest names. */
function buildNamedBy(manifest: string): string | undefined {
  try {
    return (JSON.parse(fs.readFileSync(manifest, 'utf8')) as Manifest).dir;
  } catch {
    return undefined;
  }
}

/**
 * Node's modules, loaded when first used: an ESM import of one (commander
 * imports six) makes Node evaluate its every lazy export for the module's
 * facade, and esbuild's CommonJS interop copies every export with the same
 * effect: ~25 ms of a command's start. In the bundle a Node module is an
 * empty object whose prototype is a proxy that loads the module through
 * process.getBuiltinModule when something of it is used. esbuild's interop
 * (__toESM, once in each module that imports it) makes the importer's view
 * an object of the same prototype and copies only own properties, of which
 * there are none: a getter for each of a module's exports in each importer
 * cost a command ~4 ms. The proxy has no __esModule, which is all the
 * interop looks at.
 */
const builtins = {
  name: 'builtins',
  setup(b: PluginBuild) {
    const names = new Set(process.getBuiltinModule('node:module').builtinModules);
    b.onResolve({ filter: /^[\w:/]+$/ }, (a) => {
      if (!a.path.startsWith('node:') && !names.has(a.path)) return undefined;
      // import() of one stays Node's own: esbuild would give it only a default export (its way with CommonJS in chunks)
      return a.kind === 'dynamic-import' ? { path: a.path, external: true } : { path: a.path, namespace: 'builtin' };
    });
    b.onLoad({ filter: /.*/, namespace: 'builtin' }, (a) => ({
      loader: 'js',
      contents: `let m;
const loaded = () => (m ??= process.getBuiltinModule(${JSON.stringify(a.path)}));
module.exports = Object.create(new Proxy({}, {
  get: (_, k) => (k === '__esModule' ? undefined : loaded()[k]),
  set: (_, k, v) => ((loaded()[k] = v), true),
  has: (_, k) => k in loaded(),
}));
`,
    }));
  },
};

/**
 * Loads each module of the tree (not the packages) itself: its identity
 * taken before its text is read, and `import.meta.url` made its source
 * file's URL.
 */
function sourceUrls(root: string, sources: Map<string, Manifest['inputs'][number]>) {
  return {
    name: 'source-urls',
    setup(b: PluginBuild) {
      b.onLoad({ filter: /\.[cm]?[jt]s$/ }, async (a) => {
        const file = path.relative(root, a.path);
        if (file.startsWith('node_modules/') || file.startsWith('..')) return undefined;
        sources.set(file, identity(root, file));
        const text = await fs.promises.readFile(a.path, 'utf8');
        return { contents: text.replaceAll('import.meta.url', JSON.stringify(pathToFileURL(a.path).href)), loader: a.path.endsWith('ts') ? 'ts' : 'js' };
      });
    },
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = await buildBundle();
  process.stdout.write(`keel: the CLI is bundled in ${path.relative(ROOT, out)}\n`);
}
