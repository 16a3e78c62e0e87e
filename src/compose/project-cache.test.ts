import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { serviceHashInput } from './hash.ts';
import { recordInputs } from './inputs.ts';
import { loadProject, type LoadOptions } from './load.ts';
import { cacheKey, codeFiles, codeFingerprint, defaultCacheDir, loadProjectCached } from './project-cache.ts';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'compose-cache-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

let n = 0;
function project(files: Record<string, string>): { dir: string; cache: string } {
  const dir = path.join(root, `p${n++}`);
  for (const [f, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.writeFileSync(path.join(dir, f), text);
  }
  return { dir, cache: path.join(dir, '.cache') };
}

/** loadProjectCached with a counted loader: `loads` says how many times the loader really ran. */
function cached(cache: string, code = 'code-1') {
  const counter = { loads: 0 };
  const load = (o: LoadOptions, warnings: string[] = []) =>
    loadProjectCached(
      { env: {}, onWarning: (m) => warnings.push(m), ...o },
      {
        dir: cache,
        code,
        load: (lo) => {
          counter.loads++;
          const { result, inputs } = recordInputs(() => loadProject(lo));
          return { project: result, inputs };
        },
      },
    );
  return Object.assign(counter, { load });
}

const BASE = {
  'compose.yaml': [
    'version: "3"',
    'include: [inc/more.yaml]',
    'services:',
    '  web:',
    '    image: nginx:${TAG:-1}',
    '    env_file: [web.env, { path: optional.env, required: false }]',
    '    label_file: web.labels',
    '    networks: [front]',
    '    volumes: [data:/data]',
    '  worker:',
    '    extends: { file: base.yaml, service: common }',
    '    depends_on: [web]',
    'networks: { front: {} }',
    'volumes: { data: {} }',
    '',
  ].join('\n'),
  '.env': 'TAG=2\n',
  'web.env': 'A=1\n',
  'web.labels': 'l=1\n',
  'base.yaml': 'services:\n  common:\n    image: busybox\n    command: ["echo", "${UNSET_VAR}"]\n',
  'inc/more.yaml': 'services:\n  side:\n    image: alpine\n',
};

test('a hit gives the project a load gives, prints the same warnings, and does not load', async () => {
  const { dir, cache } = project(BASE);
  const c = cached(cache);
  const w1: string[] = [];
  const miss = await c.load({ cwd: dir }, w1);
  const w2: string[] = [];
  const hit = await c.load({ cwd: dir }, w2);
  assert.equal(c.loads, 1);
  assert.deepStrictEqual(hit, miss);
  assert.deepStrictEqual(hit, loadProject({ cwd: dir, env: {}, onWarning: () => {} }));
  assert.equal(hit.services.web!.image, 'nginx:2');
  assert.ok(w1.some((m) => m.includes('`version` is obsolete')) && w1.some((m) => m.includes('UNSET_VAR')));
  assert.deepStrictEqual(w2, w1);
});

test('any change to what the load read, looked for or was given is a miss', async () => {
  const changes: [string, (dir: string) => LoadOptions | void][] = [
    ['the compose file', (d) => fs.appendFileSync(path.join(d, 'compose.yaml'), '# a comment\n')],
    ['.env', (d) => fs.writeFileSync(path.join(d, '.env'), 'TAG=3\n')],
    ['an env_file', (d) => fs.writeFileSync(path.join(d, 'web.env'), 'A=2\n')],
    ['an optional env_file appearing', (d) => fs.writeFileSync(path.join(d, 'optional.env'), 'B=1\n')],
    ['a label_file', (d) => fs.writeFileSync(path.join(d, 'web.labels'), 'l=2\n')],
    ['an included file', (d) => fs.appendFileSync(path.join(d, 'inc/more.yaml'), '    user: "1"\n')],
    ['an extended file', (d) => fs.writeFileSync(path.join(d, 'base.yaml'), 'services:\n  common:\n    image: busybox:2\n')],
    ['an override file appearing', (d) => fs.writeFileSync(path.join(d, 'compose.override.yaml'), 'services:\n  web:\n    user: "2"\n')],
    ['a compose file appearing nearer', (d) => void fs.writeFileSync(path.join(d, 'inc', 'compose.yaml'), 'services:\n  x:\n    image: y\n')],
    ['the same bytes under another size', (d) => fs.writeFileSync(path.join(d, '.env'), 'TAG=2\n\n')],
  ];
  for (const [what, change] of changes) {
    const { dir, cache } = project(BASE);
    const c = cached(cache);
    const cwd = what.includes('nearer') ? path.join(dir, 'inc') : dir;
    await c.load({ cwd });
    change(dir);
    await c.load({ cwd });
    assert.equal(c.loads, 2, `${what}: a hit after the change`);
    await c.load({ cwd });
    assert.equal(c.loads, 2, `${what}: the new load is kept`);
  }

  const { dir, cache } = project({ ...BASE, 'other.env': 'TAG=9\n', 'sub/.keep': '' });
  const c = cached(cache);
  const given: LoadOptions[] = [
    { cwd: dir },
    { cwd: path.join(dir, 'sub') },
    { cwd: dir, projectName: 'other' },
    { cwd: dir, files: ['compose.yaml'] },
    { cwd: dir, projectDirectory: '.' },
    { cwd: dir, envFiles: ['other.env'] },
    { cwd: dir, profiles: ['p'] },
    { cwd: dir, services: ['web'] },
  ];
  for (const o of given) await c.load(o);
  assert.equal(c.loads, given.length, 'each different set of options or directory loads');
  for (const o of given) await c.load(o);
  assert.equal(c.loads, given.length, 'and each hits the next time');

  // the loader's code is part of the key
  const c2 = cached(cache, 'code-2');
  await c2.load({ cwd: dir });
  assert.equal(c2.loads, 1);

  // a file rewritten with the same text (a new mtime) still hits
  fs.writeFileSync(path.join(dir, 'web.env'), 'A=1\n');
  await c.load({ cwd: dir });
  assert.equal(c.loads, given.length);
});

test('a variable the load read is an input; any other only goes into the (fresh) project environment', async () => {
  const { dir, cache } = project({
    ...BASE,
    'compose.yaml': BASE['compose.yaml'].replace('    networks: [front]', '    environment: [PASSED]\n    networks: [front]'),
  });
  const c = cached(cache);
  const fresh = (env: Record<string, string>) => loadProject({ cwd: dir, env, onWarning: () => {} });
  const steps: [Record<string, string>, boolean][] = [
    [{ PASSED: '1' }, true],
    [{ PASSED: '1', UNRELATED: 'x', OLDPWD: '/' }, false],
    [{ PASSED: '1', UNRELATED: 'y' }, false],
    [{ PASSED: '2', UNRELATED: 'y' }, true], // `environment: [PASSED]` takes it from the environment
    [{ PASSED: '2', UNRELATED: 'y', TAG: '5' }, true], // ${TAG} in the file, over .env's
    [{ PASSED: '2', UNRELATED: 'y', TAG: '5', COMPOSE_PROJECT_NAME: 'named' }, true],
    [{ PASSED: '2', UNRELATED: 'y', TAG: '5', COMPOSE_PROJECT_NAME: 'named' }, false],
    [{ PASSED: '2', TAG: '5', COMPOSE_PROJECT_NAME: 'named', COMPOSE_PROFILES: 'x' }, true],
  ];
  for (const [env, loads] of steps) {
    const before = c.loads;
    const p = await c.load({ cwd: dir, env });
    assert.equal(c.loads - before, loads ? 1 : 0, JSON.stringify(env));
    assert.deepStrictEqual(p, fresh(env), JSON.stringify(env));
  }
  assert.equal((await c.load({ cwd: dir, env: { TAG: '5' } })).services.web!.image, 'nginx:5');
  assert.equal((await c.load({ cwd: dir, env: { TAG: '5', SECRET: 's3cret' } })).environment.SECRET, 's3cret');
  // the entry keeps the variables the files use, not the whole environment
  for (const f of fs.readdirSync(cache)) assert.ok(!fs.readFileSync(path.join(cache, f)).includes('s3cret'));
});

function withHome<T>(home: string, fn: () => T): T {
  const was = process.env.HOME;
  process.env.HOME = home;
  try {
    return fn();
  } finally {
    if (was === undefined) delete process.env.HOME;
    else process.env.HOME = was;
  }
}

test('the key covers options, directory, $HOME and code, not the environment', async () => {
  const base = cacheKey({ cwd: '/a', env: { X: '1' } }, 'c');
  for (const k of [
    cacheKey({ cwd: '/b', env: { X: '1' } }, 'c'),
    withHome('/elsewhere', () => cacheKey({ cwd: '/a', env: { X: '1' } }, 'c')),
    cacheKey({ cwd: '/a', env: { X: '1' } }, 'd'),
    cacheKey({ cwd: '/a', env: { X: '1' }, files: ['f'] }, 'c'),
    cacheKey({ cwd: '/a', env: { X: '1' }, projectName: 'p' }, 'c'),
    cacheKey({ cwd: '/a', env: { X: '1' }, projectDirectory: 'p' }, 'c'),
    cacheKey({ cwd: '/a', env: { X: '1' }, envFiles: ['e'] }, 'c'),
    cacheKey({ cwd: '/a', env: { X: '1' }, profiles: ['p'] }, 'c'),
    cacheKey({ cwd: '/a', env: { X: '1' }, services: ['s'] }, 'c'),
  ])
    assert.notEqual(k, base);
  assert.equal(cacheKey({ cwd: '/a', env: { A: '1' } }, 'c'), cacheKey({ cwd: '/a', env: { B: '2' } }, 'c'));
  assert.equal(defaultCacheDir({ HOME: '/h' }), '/h/.cache/keel/compose');
  assert.equal(defaultCacheDir({ HOME: '/h', XDG_CACHE_HOME: '/x' }), '/x/keel/compose');
  assert.equal(defaultCacheDir({ HOME: '/h', XDG_CACHE_HOME: 'relative' }), '/h/.cache/keel/compose');
  assert.equal(defaultCacheDir({}), undefined);
});

test('a failed load is not kept; a corrupt entry is a miss and is written again; the directory stays bounded', async () => {
  const { dir, cache } = project({ 'compose.yaml': 'services:\n  a:\n    image: ${MISSING:?must be set}\n' });
  const c = cached(cache);
  for (let i = 0; i < 2; i++) await assert.rejects(c.load({ cwd: dir }), /must be set/);
  assert.equal(c.loads, 2);
  assert.equal(fs.existsSync(cache), false);

  fs.writeFileSync(path.join(dir, 'compose.yaml'), 'services:\n  a:\n    image: x\n');
  const first = await c.load({ cwd: dir });
  const [entry] = fs.readdirSync(cache);
  fs.writeFileSync(path.join(cache, entry!), 'not a cache entry');
  assert.deepStrictEqual(await c.load({ cwd: dir }), first);
  assert.equal(c.loads, 4);
  assert.deepStrictEqual(await c.load({ cwd: dir }), first);
  assert.equal(c.loads, 4, 'the entry was written again');
  fs.truncateSync(path.join(cache, entry!), 10);
  assert.deepStrictEqual(await c.load({ cwd: dir }), first);
  assert.equal(c.loads, 5);
  // valid JSON of the right key whose config hashes are not [input, sha256] pairs: a miss, not a failed command
  const e = JSON.parse(fs.readFileSync(path.join(cache, entry!), 'utf8'));
  for (const broken of [
    { ...e.hashes, services: { a: 'x' } },
    { ...e.hashes, resources: [[1, 2]] },
  ]) {
    fs.writeFileSync(path.join(cache, entry!), JSON.stringify({ ...e, hashes: broken }));
    assert.deepStrictEqual(await c.load({ cwd: dir }), first);
  }
  assert.equal(c.loads, 7);

  for (let i = 0; i < 70; i++) await c.load({ cwd: dir, projectName: `p${i}` });
  assert.ok(fs.readdirSync(cache).length <= 64, `${fs.readdirSync(cache).length} entries`);
});

test('a cache directory that cannot be made only costs the cache', { timeout: 20_000 }, async () => {
  const { dir } = project({ 'compose.yaml': 'services:\n  a:\n    image: x\n' });
  for (const cache of ['/proc/no-such-dir/keel/compose', path.join(dir, 'compose.yaml', 'keel')]) {
    const c = cached(cache);
    await c.load({ cwd: dir });
    await c.load({ cwd: dir });
    assert.equal(c.loads, 2);
  }
});

test('without a cache directory every call loads', async () => {
  const { dir } = project({ 'compose.yaml': 'services:\n  a:\n    image: x\n' });
  let loads = 0;
  const load = (o: LoadOptions) => {
    loads++;
    return { project: loadProject(o), inputs: [] };
  };
  await loadProjectCached({ cwd: dir, env: {} }, { dir: undefined, load });
  await loadProjectCached({ cwd: dir, env: {} }, { dir: undefined, load });
  assert.equal(loads, 2);
});

test("the loader's code identity covers every module a load imports, and a hit (with up.ts) imports no YAML parser, validator or node:crypto", async () => {
  const { dir } = project(BASE);
  const here = path.dirname(fileURLToPath(import.meta.url));
  const home = path.join(dir, 'home');
  // a fresh process each: what a command imports
  const script = (body: string) =>
    execFileSync(process.execPath, ['--input-type=module', '-e', body], { cwd: dir, env: { HOME: home, PATH: process.env.PATH }, encoding: 'utf8' });
  const loaded = `
    import module from 'node:module';
    const urls = [];
    module.registerHooks({ load(url, ctx, next) { urls.push(url); return next(url, ctx); } });
    const { loadProjectCached } = await import(${JSON.stringify(path.join(here, 'project-cache.ts'))});
    const { configHash } = await import(${JSON.stringify(path.join(here, 'serialize.ts'))});
    const { networkHash, volumeHash } = await import(${JSON.stringify(path.join(here, 'resource-hash.ts'))});
    await import(${JSON.stringify(path.join(here, 'up.ts'))});
    const p = await loadProjectCached({ onWarning() {} });
    for (const s of Object.values(p.services)) configHash(s);
    for (const n of Object.values(p.networks)) networkHash(n);
    for (const v of Object.values(p.volumes)) volumeHash(v);
    const crypto = process.moduleLoadList.includes('NativeModule crypto');
    console.log(JSON.stringify({ urls: urls.filter((u) => u.startsWith('file:')).map((u) => new URL(u).pathname), crypto }));`;
  const miss = JSON.parse(script(loaded)) as { urls: string[]; crypto: boolean };
  const hit = JSON.parse(script(loaded)) as { urls: string[]; crypto: boolean };

  const covered = new Set(codeFiles().map((f) => fs.realpathSync(f)));
  const packages = new Set<string>();
  for (const f of miss.urls) {
    const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(f);
    if (m) packages.add(m[1]!);
    else assert.ok(covered.has(fs.realpathSync(f)), `${f} is not in the code identity`);
  }
  for (const p of packages)
    assert.ok(
      [...covered].some((f) => f.endsWith(`/node_modules/${p}/package.json`)),
      `package ${p} is not in the code identity`,
    );
  assert.notEqual(codeFingerprint(), '');
  assert.ok(packages.has('yaml'));
  assert.equal(miss.crypto, true);

  assert.deepStrictEqual(
    hit.urls.filter((u) => /node_modules|\/(load|files|validate|normalize)\.ts$|\.cjs$/.test(u)),
    [],
  );
  assert.equal(hit.crypto, false, 'a hit hashed with node:crypto');
});

test('entries are JSON: a project with keys of every kind comes back from the cache as the load made it', async () => {
  const { dir, cache } = project({
    'compose.yaml': `name: wide
services:
  web:
    image: nginx:1.25
    build: { context: ., args: [A=1], target: t }
    pull_policy: always
    command: nginx -g "daemon off;"
    environment: [B=2, A=1, UNSET]
    ports: ["127.0.0.1:8080:80", { target: 81, published: "8081-8082", protocol: udp }]
    expose: ["9000"]
    volumes: [data:/data, "/srv/site:/usr/share/nginx/html:ro", { type: tmpfs, target: /t, tmpfs: { size: 1m } }]
    depends_on: { db: { condition: service_healthy, restart: true } }
    healthcheck: { test: curl -f http://localhost/ || exit 1, interval: 30s, timeout: 5s, retries: 3 }
    restart: unless-stopped
    labels: { com.example.tier: "front & <back>" }
    logging: { driver: json-file, options: { max-size: 1m } }
    deploy: { replicas: 2 }
    develop: { watch: [{ path: ./src, action: sync, target: /app }] }
    x-note: not hashed
  db:
    image: postgres
    entrypoint: ["/bin/sh", "-c"]
    command: []
    user: "1000:1000"
    init: true
    cpus: 0.1
    shm_size: 64m
    stop_grace_period: 1m30s
    ulimits: { nofile: 65535, nproc: { soft: 1024, hard: 2048 } }
    extra_hosts: ["somehost:162.242.195.82"]
    sysctls: { net.core.somaxconn: 1024 }
    tmpfs: /run
    secrets: [token]
    configs: [{ source: conf, target: /etc/conf, mode: 0440 }]
    networks: { back: { aliases: [d], ipv4_address: 10.5.0.5 } }
    deploy: { resources: { limits: { memory: 1g }, reservations: { cpus: "0.25" } } }
secrets: { token: { environment: TOKEN } }
configs: { conf: { content: "x=1" } }
networks: { back: { ipam: { config: [{ subnet: 10.5.0.0/24 }] }, internal: true } }
volumes: { data: { labels: { a: b } } }
`,
  });
  const c = cached(cache);
  const miss = await c.load({ cwd: dir, env: { TOKEN: 't' } });
  const hit = await c.load({ cwd: dir, env: { TOKEN: 't' } });
  assert.equal(c.loads, 1, 'the second load is a hit');
  assert.deepStrictEqual(hit, miss);
  // the hit's services come with their hash inputs: the ones a fresh load's services hash to
  for (const name of Object.keys(miss.services)) assert.equal(serviceHashInput(hit.services[name]!), serviceHashInput(miss.services[name]!), name);
  assert.equal(serviceHashInput(hit.services.web!), serviceHashInput(loadProject({ cwd: dir, env: { TOKEN: 't' }, onWarning: () => {} }).services.web!));
});
