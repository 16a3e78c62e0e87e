import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildBundle, currentBundle } from './bundle.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A tree with a src/cli/main.ts of its own, as bundle.ts expects, and npm's record of node_modules. */
function tree(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-bundle-'));
  fs.mkdirSync(path.join(root, 'src', 'cli'), { recursive: true });
  fs.mkdirSync(path.join(root, 'node_modules'));
  fs.writeFileSync(path.join(root, 'node_modules', '.package-lock.json'), '{}');
  fs.writeFileSync(
    path.join(root, 'src', 'cli', 'main.ts'),
    `import fs from 'node:fs';
import proc from 'node:process';
import cp from 'node:child_process';
import { EventEmitter } from 'node:events';
import { here } from './here.ts';
class Bus extends EventEmitter {}
const loaded = () => process.moduleLoadList.includes('NativeModule child_process');
export async function main(): Promise<string> {
  const before = loaded();
  const { randomBytes } = await import('node:crypto');
  const spawns = typeof cp.spawnSync;
  proc.exitCode = 3;
  const b = new Bus();
  let heard = '';
  b.on('x', (v: string) => (heard = v));
  b.emit('x', 'heard');
  return JSON.stringify({ here: here(), exists: fs.existsSync(new URL(import.meta.url)), heard, exitCode: process.exitCode, lazy: [before, spawns, loaded()], random: randomBytes(4).length });
}
`,
  );
  fs.writeFileSync(path.join(root, 'src', 'cli', 'here.ts'), 'export const here = (): string => import.meta.url;\n');
  return root;
}

/** Runs the bundle's main in a fresh process: what it returned, and the modules that process loaded. */
function runBundled(url: string): { out: string; loaded: string[] } {
  const script = `
    import module from 'node:module';
    const loaded = [];
    module.registerHooks({ load(u, c, next) { loaded.push(u); return next(u, c); } });
    const { main } = await import(${JSON.stringify(url)});
    const out = await main();
    process.exitCode = 0;
    process.stdout.write(JSON.stringify({ out, loaded }));`;
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as { out: string; loaded: string[] };
}

test('a bundle runs its sources: import.meta.url is the source file, and Node modules load when used', async () => {
  const root = tree();
  await buildBundle({ root });
  const url = currentBundle({ root });
  assert.ok(url, 'a bundle just made is current');
  const { out, loaded } = runBundled(url);
  assert.deepStrictEqual(JSON.parse(out), {
    here: pathToFileURL(path.join(root, 'src', 'cli', 'here.ts')).href,
    exists: true,
    heard: 'heard',
    exitCode: 3,
    lazy: [false, 'function', true],
    random: 4,
  });
  assert.deepStrictEqual(
    loaded.filter((u) => u.includes('/src/')),
    [],
    'no source module is loaded',
  );
});

test('any change to a source file, npm changing node_modules or another Node makes the bundle stale; a build makes it current', async () => {
  const root = tree();
  const main = path.join(root, 'src', 'cli', 'main.ts');
  const here = path.join(root, 'src', 'cli', 'here.ts');
  assert.equal(currentBundle({ root }), undefined, 'never built');
  await buildBundle({ root });
  assert.ok(currentBundle({ root }));

  // the same text and mtime written again: only the ctime tells
  const st = fs.statSync(here);
  fs.writeFileSync(here, fs.readFileSync(here));
  fs.utimesSync(here, st.atime, st.mtime);
  assert.equal(currentBundle({ root }), undefined, 'a file written again');
  await buildBundle({ root });
  assert.ok(currentBundle({ root }));

  fs.appendFileSync(main, '// edited\n');
  assert.equal(currentBundle({ root }), undefined, 'an edit');
  await buildBundle({ root });
  fs.writeFileSync(path.join(root, 'node_modules', '.package-lock.json'), '{"packages":{}}');
  assert.equal(currentBundle({ root }), undefined, 'npm changed node_modules');
  await buildBundle({ root });
  fs.rmSync(here);
  assert.equal(currentBundle({ root }), undefined, 'a file removed');
  fs.writeFileSync(here, 'export const here = (): string => "back";\n');
  await buildBundle({ root });

  const manifest = path.join(root, 'dist', 'manifest.json');
  const m = JSON.parse(fs.readFileSync(manifest, 'utf8')) as { node: string; dir: string };
  fs.writeFileSync(manifest, JSON.stringify({ ...m, node: 'v0.0.0' }));
  assert.equal(currentBundle({ root }), undefined, 'made for another Node');
  fs.writeFileSync(manifest, JSON.stringify({ ...m, dir: '../../etc' }));
  assert.equal(currentBundle({ root }), undefined, 'a directory outside dist');
  fs.writeFileSync(manifest, '{"format"');
  assert.equal(currentBundle({ root }), undefined, 'a corrupt manifest');
});

test('a build keeps the previous build (a running command may still import from it) and removes the older ones', async () => {
  const root = tree();
  const dirs = [];
  for (let i = 0; i < 3; i++) dirs.push(path.basename(await buildBundle({ root })));
  assert.deepStrictEqual(fs.readdirSync(path.join(root, 'dist')).sort(), [dirs[1], dirs[2], 'manifest.json'].sort());
  assert.ok(currentBundle({ root })!.includes(dirs[2]!));
});

test("keel's own CLI bundles, and `compose config` from the bundle prints what it prints from src/", { timeout: 60_000 }, async () => {
  const dist = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-bundle-dist-'));
  await buildBundle({ root: REPO, dist });
  const url = currentBundle({ root: REPO, dist });
  assert.ok(url);
  const project = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-bundle-project-'));
  fs.writeFileSync(path.join(project, 'compose.yaml'), 'services:\n  web:\n    image: nginx\n    ports: ["8080:80"]\n  db:\n    image: postgres\n');
  // with the bundle's chunks resolved directly (as bin/keel runs it), the chunk imports that reach Node's resolver are counted
  const direct = `
    import module from 'node:module';
    let resolved = 0;
    module.registerHooks({ resolve(s, c, next) { if (s.startsWith('./')) resolved++; return next(s, c); } });
    (await import(${JSON.stringify(pathToFileURL(path.join(REPO, 'src', 'cli', 'bundle.ts')).href)})).resolveChunksDirectly(${JSON.stringify(url)});
    process.on('exit', () => process.stderr.write('chunks resolved by Node: ' + resolved));`;
  const run = (entry: string) =>
    execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { main } = await import(${JSON.stringify(entry)}); process.exitCode = await main(process.argv.slice(1));`,
        'compose',
        'config',
      ],
      { cwd: project, encoding: 'utf8', env: { ...process.env, XDG_CACHE_HOME: path.join(project, 'cache') }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
  const fromBundle = run(url);
  assert.match(fromBundle, /published: "8080"/);
  assert.equal(fromBundle, run(pathToFileURL(path.join(REPO, 'src', 'cli', 'main.ts')).href));
  const child = spawnSync(
    process.execPath,
    ['--input-type=module', '-e', `${direct}\nconst { main } = await import(${JSON.stringify(url)}); process.exitCode = await main(['compose', 'config']);`],
    {
      cwd: project,
      encoding: 'utf8',
      env: { ...process.env, XDG_CACHE_HOME: path.join(project, 'cache') },
    },
  );
  assert.equal(child.stdout, fromBundle);
  assert.match(child.stderr, /chunks resolved by Node: 0$/);
});
