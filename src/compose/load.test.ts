import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { normalizeProjectName } from './labels.ts';
import { loadProject } from './load.ts';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'compose-load-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

let n = 0;
function dir(files: Record<string, string>, name = `p${n++}`): string {
  const d = path.join(root, name);
  for (const [f, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(d, f)), { recursive: true });
    fs.writeFileSync(path.join(d, f), text);
  }
  return d;
}
const load = (cwd: string, o: Parameters<typeof loadProject>[0] = {}) => loadProject({ cwd, env: {}, onWarning: () => {}, ...o });

test('finds compose.yaml in a parent directory with its override file; names the project after the directory', () => {
  const d = dir(
    { 'compose.yaml': 'services:\n  web:\n    image: a\n', 'compose.override.yaml': 'services:\n  web:\n    image: b\n', 'sub/deeper/.keep': '' },
    'My Proj.1',
  );
  const p = load(path.join(d, 'sub/deeper'));
  assert.equal(p.name, 'myproj1');
  assert.equal(p.services.web!.image, 'b');
  assert.deepEqual(p.configFiles, [path.join(d, 'compose.yaml'), path.join(d, 'compose.override.yaml')]);
  assert.equal(p.workingDir, d);
  assert.equal(normalizeProjectName('__Foo-Bar'), 'foo-bar');
});

test('no compose file is a clear error', () => {
  assert.throws(() => load(fs.mkdtempSync(path.join(os.tmpdir(), 'empty-'))), /no configuration file provided: not found/);
});

test('project name: -p over COMPOSE_PROJECT_NAME over name: over the directory; bad names refused', () => {
  const d = dir({ 'compose.yaml': 'name: fromfile\nservices:\n  a:\n    image: x\n', '.env': 'COMPOSE_PROJECT_NAME=fromdotenv\n' });
  assert.equal(load(d, { projectName: 'flag' }).name, 'flag');
  assert.equal(load(d).name, 'fromdotenv');
  assert.equal(load(d, { env: { COMPOSE_PROJECT_NAME: 'fromenv' } }).name, 'fromenv');
  fs.rmSync(path.join(d, '.env'));
  assert.equal(load(d).name, 'fromfile');
  assert.throws(() => load(d, { projectName: 'Bad Name' }), /invalid project name "Bad Name"/);
});

test('-f files merge in order; relative paths resolve against the project directory', () => {
  const d = dir({
    'a.yml': 'services:\n  web:\n    image: a\n    build: ./ctx\n    volumes: ["./data:/data"]\n    environment: [A=1]\n',
    'over/b.yml': 'services:\n  web:\n    environment: {B: "2"}\n    ports: ["80:80"]\n',
  });
  const p = load(root, { files: [path.join(d, 'a.yml'), path.join(d, 'over/b.yml')] });
  const web = p.services.web!;
  assert.deepEqual(web.environment, { A: '1', B: '2' });
  assert.equal(web.build!.context, path.join(d, 'ctx'));
  assert.equal(web.volumes[0]!.source, path.join(d, 'data'));
  assert.equal(web.ports[0]!.published, '80');
});

test('.env and --env-file feed interpolation; the OS environment wins', () => {
  const d = dir({
    'compose.yaml': 'services:\n  web:\n    image: "busybox:${TAG}"\n    environment: ["X=${X:-dx}"]\n',
    '.env': 'TAG=1.0\nX=fromdotenv\n',
    'other.env': 'TAG=2.0\n',
  });
  assert.equal(load(d).services.web!.image, 'busybox:1.0');
  assert.equal(load(d).services.web!.environment.X, 'fromdotenv');
  assert.equal(load(d, { env: { TAG: 'os' } }).services.web!.image, 'busybox:os');
  assert.equal(load(d, { envFiles: [path.join(d, 'other.env')] }).services.web!.image, 'busybox:2.0');
  assert.equal(load(d, { envFiles: [path.join(d, 'other.env')] }).services.web!.environment.X, 'dx');
});

test('a missing required variable names the file and key; an unset one warns', () => {
  const d = dir({ 'compose.yaml': 'services:\n  web:\n    image: ${IMG:?set IMG}\n    user: $WHO\n' });
  assert.throws(
    () => load(d),
    (e: Error) =>
      e.message.includes(path.join(d, 'compose.yaml')) && e.message.includes('services.web.image: required variable IMG is missing a value: set IMG'),
  );
  const warnings: string[] = [];
  load(d, { env: { IMG: 'x' }, onWarning: (w) => warnings.push(w) });
  assert.deepEqual(warnings, ['The "WHO" variable is not set. Defaulting to a blank string.']);
});

test("include brings another project's services, with its own paths and .env", () => {
  const d = dir({
    'compose.yaml': 'include:\n  - lib/compose.yaml\nservices:\n  web:\n    image: w\n    depends_on: [db]\n',
    'lib/compose.yaml': 'services:\n  db:\n    image: "db:${DBTAG}"\n    volumes: ["./init:/init"]\n',
    'lib/.env': 'DBTAG=15\n',
  });
  const p = load(d);
  assert.equal(p.services.db!.image, 'db:15');
  assert.equal(p.services.db!.volumes[0]!.source, path.join(d, 'lib/init'));
  const clash = dir({ 'compose.yaml': 'include: [lib.yaml]\nservices:\n  db:\n    image: other\n', 'lib.yaml': 'services:\n  db:\n    image: db\n' });
  assert.throws(() => load(clash), /services\.db conflicts with imported resource/);
});

test('extends: same file and another file, merged by the rules; cycles and unknown services refused', () => {
  const d = dir({
    'compose.yaml':
      'services:\n  base:\n    image: b\n    environment: [A=1]\n  web:\n    extends: base\n    environment: [B=2]\n  api:\n    extends: {file: common/c.yaml, service: tmpl}\n    command: run\n',
    'common/c.yaml': 'services:\n  tmpl:\n    image: t\n    env_file: [t.env]\n    command: ["default"]\n',
    'common/t.env': 'FROM_T=1\n',
  });
  const p = load(d);
  assert.deepEqual(p.services.web!.environment, { A: '1', B: '2' });
  assert.equal(p.services.web!.image, 'b');
  assert.equal(p.services.api!.image, 't');
  assert.deepEqual(p.services.api!.command, ['run']);
  assert.deepEqual(p.services.api!.environment, { FROM_T: '1' });
  const cyc = dir({ 'compose.yaml': 'services:\n  a:\n    image: x\n    extends: b\n  b:\n    image: x\n    extends: a\n' });
  assert.throws(() => load(cyc), /extends cycle/);
  const unk = dir({ 'compose.yaml': 'services:\n  a:\n    extends: nope\n' });
  assert.throws(() => load(unk), /service a: extends: service "nope" not found/);
});

test('profiles: inactive services are left out; named services enable their dependencies', () => {
  const d = dir({
    'compose.yaml':
      'services:\n  web:\n    image: w\n  debug:\n    image: d\n    profiles: [dev]\n    depends_on: [tool]\n  tool:\n    image: t\n    profiles: [tools]\n',
  });
  assert.deepEqual(Object.keys(load(d).services), ['web']);
  assert.throws(
    () => load(d, { profiles: ['dev'] }),
    /service "tool" was pulled in as a dependency of service "debug" but is not enabled by the active profiles/,
  );
  assert.deepEqual(Object.keys(load(d, { profiles: ['dev', 'tools'] }).services).sort(), ['debug', 'tool', 'web']);
  assert.deepEqual(Object.keys(load(d, { services: ['debug'] }).services).sort(), ['debug', 'tool', 'web']);
  assert.deepEqual(Object.keys(load(d, { env: { COMPOSE_PROFILES: '*' } }).services).sort(), ['debug', 'tool', 'web']);
});

test('schema violations name the file, the service and the key', () => {
  const file = (yaml: string) => path.join(dir({ 'compose.yaml': yaml }), 'compose.yaml');
  const f1 = file('services:\n  web:\n    image: x\n    imagee: y\n');
  assert.throws(() => load(path.dirname(f1)), { message: `validating ${f1}: services.web additional properties 'imagee' not allowed` });
  const f2 = file('services:\n  web:\n    image: x\n    ports: {a: 1}\n');
  assert.throws(() => load(path.dirname(f2)), { message: `validating ${f2}: services.web.ports must be a sequence` });
  const f3 = file('services:\n  web:\n    image: x\n    privileged: maybe\n');
  assert.throws(() => load(path.dirname(f3)), { message: `${f3}: services.web.privileged: invalid boolean "maybe"` });
  const f5 = file('services:\n  web:\n    image: x\n    healthcheck: {interval: soon}\n');
  assert.throws(() => load(path.dirname(f5)), {
    message: `${f5}: services.web.healthcheck.interval: invalid duration "soon" (use a Go duration such as 30s, 1m30s, 500ms)`,
  });
  const f6 = file('services:\n  - web\n');
  assert.throws(() => load(path.dirname(f6)), { message: `validating ${f6}: services must be a mapping` });
  const f4 = file('services:\n  web:\n    image: x\nx-anything: {a: 1}\n');
  assert.equal(load(path.dirname(f4)).services.web!.image, 'x');
});

test('dependency cycles, unknown services, networks and volumes are clear errors', () => {
  const cyc = dir({
    'compose.yaml': 'services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [c]\n  c:\n    image: x\n    depends_on: [a]\n',
  });
  assert.throws(() => load(cyc), /dependency cycle detected: a -> b -> c -> a/);
  const unk = dir({ 'compose.yaml': 'services:\n  a:\n    image: x\n    depends_on: [db]\n' });
  assert.throws(() => load(unk), /service "a" depends on undefined service "db"/);
  const net = dir({ 'compose.yaml': 'services:\n  a:\n    image: x\n    networks: [front]\n' });
  assert.throws(() => load(net), /service "a" refers to undefined network front/);
  const vol = dir({ 'compose.yaml': 'services:\n  a:\n    image: x\n    volumes: ["data:/d"]\n' });
  assert.throws(() => load(vol), /service "a" refers to undefined volume data/);
  const noimg = dir({ 'compose.yaml': 'services:\n  a:\n    command: x\n' });
  assert.throws(() => load(noimg), /service "a" has neither an image nor a build context/);
  const dup = dir({ 'compose.yaml': 'services:\n  a:\n    image: x\n    container_name: fixed\n    deploy: {replicas: 2}\n' });
  assert.throws(() => load(dup), /services\.a: container_name "fixed" cannot be used with 2 replicas/);
  const envf = dir({ 'compose.yaml': 'services:\n  a:\n    image: x\n    env_file: missing.env\n' });
  assert.throws(() => load(envf), /services\.a\.env_file: env file .*missing\.env not found/);
  const opt = dir({ 'compose.yaml': 'services:\n  a:\n    image: x\n    env_file: [{path: missing.env, required: false}]\n' });
  assert.deepEqual(load(opt).services.a!.environment, {});
  // one that is there but cannot be read is not "not found", and a required: false does not skip it
  const envDir = dir({ 'compose.yaml': 'services:\n  a:\n    image: x\n    env_file: [{path: conf, required: false}]\n', 'conf/x': '' });
  assert.throws(
    () => load(envDir),
    (e: Error) => /services\.a\.env_file: .*conf: is a directory$/.test(e.message) && !/not found/.test(e.message),
  );
  const bigEnv = dir({ 'compose.yaml': 'services:\n  a:\n    image: x\n    env_file: big.env\n', 'big.env': `A=${'y'.repeat(1 << 20)}\n` });
  assert.throws(() => load(bigEnv), /services\.a\.env_file: .*big\.env: file is too large \(\d+ bytes; at most 1048576 are read\)$/);
  const bigLabels = dir({ 'compose.yaml': 'services:\n  a:\n    image: x\n    label_file: big.env\n', 'big.env': `A=${'y'.repeat(1 << 20)}\n` });
  assert.throws(() => load(bigLabels), /services\.a\.label_file: .*big\.env: file is too large \(\d+ bytes; at most 1048576 are read\)$/);
});

test('a YAML alias bomb and an oversized file are refused quickly', () => {
  const levels = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
  for (let i = 1; i < 9; i++)
    levels.push(
      `${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10)
        .fill(`*${String.fromCharCode(96 + i)}`)
        .join(',')}]`,
    );
  const bomb = dir({ 'compose.yaml': `x-bomb:\n  ${levels.join('\n  ')}\nservices:\n  a:\n    image: x\n` });
  let t = performance.now();
  assert.throws(() => load(bomb), /Excessive alias count/);
  assert.ok(performance.now() - t < 2000);
  const big = dir({});
  fs.mkdirSync(big, { recursive: true });
  fs.writeFileSync(path.join(big, 'compose.yaml'), `services:\n  a:\n    image: x\n# ${'y'.repeat(50 * 1024 * 1024)}\n`);
  t = performance.now();
  assert.throws(() => load(big), /file is too large \(\d+ bytes; at most 8388608 are read\)/);
  assert.ok(performance.now() - t < 500);
});

test('an include entry without a file is a clear error', () => {
  for (const inc of ['[{path: []}]', '[{}]', '[{project_directory: sub}]']) {
    const d = dir({ 'compose.yaml': `include: ${inc}\nservices:\n  a:\n    image: x\n` });
    assert.throws(() => load(d), /compose\.yaml: include: an entry names no file \(its path is missing or empty\)$/);
  }
});

test('a file nested too deeply, or an alias inside its own anchor, is refused naming the key', () => {
  const nested = (n: number) => `${'{a: '.repeat(n)}1${'}'.repeat(n)}`;
  // at the limit it loads (the innermost mapping 100 levels down)
  const ok = dir({ 'compose.yaml': `services:\n  a:\n    image: x\n    x-b: [${nested(97)}]\n` });
  assert.equal(load(ok).services.a!.image, 'x');
  // past it, whether the parser copes (600 levels) or would overflow its stack (100,000)
  for (const n of [98, 600, 100_000]) {
    const deep = dir({ 'compose.yaml': `services:\n  a:\n    image: x\n    x-b: [${nested(n)}]\n` });
    assert.throws(() => load(deep), /compose\.yaml: (services\.a\.x-b\[0\]\.a\.a\.a\.a…: |yaml: )nested more than 100 levels deep$/);
  }
  const self = dir({ 'compose.yaml': 'x-a: &a {b: *a}\nservices:\n  a:\n    image: x\n' });
  assert.throws(() => load(self), /compose\.yaml: x-a\.b\.b\.b\.b\.b\.b\.b…: refers to itself \(an alias inside its own anchor\)$/);
});

test('normalized forms: environment list resolution, healthcheck, resources, networks, volumes', () => {
  const d = dir({
    'compose.yaml': `services:
  web:
    image: x
    environment: [FROM_OS, UNSET_ONE]
    healthcheck: {test: "curl -f http://localhost", interval: 30s, timeout: 5s, retries: 3}
    deploy: {replicas: 2, resources: {limits: {cpus: "0.5", memory: 256M}}}
    networks:
      front: {aliases: [w], ipv4_address: 10.1.0.5}
    stop_grace_period: 1m
    ulimits: {nofile: {soft: 1024, hard: 2048}, nproc: 64}
    extra_hosts: ["a=1.2.3.4", "b:5.6.7.8"]
  db:
    image: y
    network_mode: "service:web"
networks:
  front: {driver: bridge, ipam: {config: [{subnet: 10.1.0.0/24}]}}
  ext: {external: true, name: shared}
volumes:
  v: {}
  named: {name: exact}
`,
  });
  const p = load(d, { env: { FROM_OS: 'yes' } });
  const web = p.services.web!;
  assert.deepEqual(web.environment, { FROM_OS: 'yes', UNSET_ONE: null });
  assert.deepEqual(web.healthcheck, { test: ['CMD-SHELL', 'curl -f http://localhost'], interval: 30e9, timeout: 5e9, retries: 3 });
  assert.equal(web.scale, 2);
  assert.equal(web.cpus, 0.5);
  assert.equal(web.mem_limit, 256 * 1024 * 1024);
  assert.equal(web.stop_grace_period, 60e9);
  assert.deepEqual(web.ulimits, { nofile: { soft: 1024, hard: 2048 }, nproc: { soft: 64, hard: 64, single: true } });
  assert.deepEqual(web.extra_hosts, ['a:1.2.3.4', 'b:5.6.7.8']);
  assert.deepEqual(web.networks, { front: { aliases: ['w'], ipv4_address: '10.1.0.5' } });
  assert.equal(p.networks.front!.name, `${p.name}_front`);
  assert.deepEqual(p.networks.ext, { name: 'shared', external: true });
  assert.equal(p.networks.default, undefined);
  assert.equal(p.volumes.v!.name, `${p.name}_v`);
  assert.equal(p.volumes.named!.name, 'exact');
  assert.deepEqual(p.services.db!.depends_on, { web: { condition: 'service_started', restart: true, required: true } });
});

test("COMPOSE_FILE from the environment or the working directory's .env", () => {
  const d = dir({ 'one.yml': 'services:\n  a:\n    image: one\n', 'two.yml': 'services:\n  a:\n    image: two\n', '.env': 'COMPOSE_FILE=one.yml\n' });
  assert.equal(load(d).services.a!.image, 'one');
  assert.equal(load(d, { env: { COMPOSE_FILE: `${d}/one.yml:${d}/two.yml` } }).services.a!.image, 'two');
});

test('env_file with format: raw is read literally; an unknown format is refused', () => {
  const raw = dir({
    'compose.yaml': 'services:\n  a:\n    image: x\n    env_file: [{path: vars.env, format: raw}]\n',
    'vars.env': 'Q="kept quotes"\nD=$HOME\n',
  });
  assert.deepEqual(load(raw).services.a!.environment, { Q: '"kept quotes"', D: '$HOME' });
  const bad = dir({ 'compose.yaml': 'services:\n  a:\n    image: x\n    env_file: [{path: vars.env, format: toml}]\n', 'vars.env': 'A=1\n' });
  assert.throws(() => load(bad), /services\.a\.env_file: unsupported env_file format "toml"/);
});
