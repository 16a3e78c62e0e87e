import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { EngineError } from '../common/errors.ts';
import { FakeEngine, projectOf } from './fake.ts';
import { down, stop } from './ops.ts';
import { findProvider, LIMITS, parseMessage, providerArgv, runProvider } from './provider.ts';
import { collectingReporter } from './reporter.ts';
import { projectData } from './serialize.ts';
import type { Service } from './types.ts';
import { up } from './up.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'provider-test-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

let n = 0;
/** An executable shell script in a fresh directory: its path. */
function script(name: string, body: string, dir = path.join(tmp, `d${++n}`)): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, name);
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

/** A provider that records its argv (one per line, each run after a `--` line) in `log` and prints `out` on `up`. */
function recorder(log: string, out: string, metadata?: string): string {
  return script(
    'prov',
    `if [ "$1 $2" = "compose metadata" ]; then ${metadata ? `printf '%s' '${metadata}'` : 'exit 1'}; exit 0; fi
echo -- >> ${log}; for a in "$@"; do echo "$a" >> ${log}; done
case "$3" in up) printf '%s\\n' ${out};; esac`,
  );
}

const svc = (options?: Record<string, string[]>): Service =>
  ({ name: 'db', provider: { type: 'x', ...(options ? { options } : {}) }, environment: {}, depends_on: {} }) as unknown as Service;

const envOf = { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } };

test('messages: the five types; anything else is an invalid response', () => {
  assert.deepEqual(parseMessage('{"type":"info","message":"creating"}'), { type: 'info', message: 'creating' });
  assert.deepEqual(parseMessage('{"type":"setenv","message":"URL=a=b"}'), { type: 'setenv', message: 'URL=a=b' });
  assert.equal(parseMessage('{"type":"debug","message":"x"}').type, 'debug');
  assert.throws(() => parseMessage('not json'), /invalid response from plugin: not json/);
  assert.throws(() => parseMessage('{"type":"warn","message":"x"}'), /invalid response from plugin: warn/);
  assert.throws(() => parseMessage('{"type":"setenv","message":"NOEQUALS"}'), /invalid response from plugin: NOEQUALS/);
  assert.throws(() => parseMessage('[1]'), /invalid response from plugin/);
});

test('argv: compose --project-name=<p> <command> --opt=value... <service>; metadata filters options and requires some', () => {
  const s = svc({ size: ['10'], tag: ['a', 'b'], extra: ['1'] });
  assert.deepEqual(providerArgv('proj', s, 'up'), ['compose', '--project-name=proj', 'up', '--extra=1', '--size=10', '--tag=a', '--tag=b', 'db']);
  assert.deepEqual(providerArgv('proj', s, 'down'), ['compose', '--project-name=proj', 'down', '--extra=1', '--size=10', '--tag=a', '--tag=b', 'db']);
  // stop runs only when the metadata declares it
  assert.equal(providerArgv('proj', s, 'stop'), undefined);
  const meta = {
    description: 'd',
    up: { parameters: [{ name: 'size', required: true }, { name: 'tag' }] },
    down: { parameters: [] },
    stop: { parameters: [] },
  };
  assert.deepEqual(providerArgv('proj', s, 'up', meta), ['compose', '--project-name=proj', 'up', '--size=10', '--tag=a', '--tag=b', 'db']);
  assert.deepEqual(providerArgv('proj', s, 'down', meta), ['compose', '--project-name=proj', 'down', 'db']);
  assert.deepEqual(providerArgv('proj', s, 'stop', meta), ['compose', '--project-name=proj', 'stop', 'db']);
  assert.throws(() => providerArgv('proj', svc({ tag: ['a'] }), 'up', meta), /required parameter "size" is missing from provider "x" definition/);
});

test('lookup: docker-<type> in the plugin dirs (extra dirs first), else <type> on PATH; missing names the service and the type', () => {
  const config = path.join(tmp, 'dockercfg');
  const extra = path.join(tmp, 'extra-plugins');
  const inConfig = script('docker-cloud', 'exit 0', path.join(config, 'cli-plugins'));
  const onPath = script('cloud', 'exit 0');
  const pathOnly = script('onlypath', 'exit 0');
  const env = { DOCKER_CONFIG: config, PATH: `relative/dir:${path.dirname(onPath)}:${path.dirname(pathOnly)}` };
  assert.equal(findProvider('db', 'cloud', env), inConfig);
  assert.equal(findProvider('db', 'onlypath', env), pathOnly);
  fs.writeFileSync(path.join(config, 'config.json'), JSON.stringify({ cliPluginsExtraDirs: [extra] }));
  const inExtra = script('docker-cloud', 'exit 0', extra);
  assert.equal(findProvider('db', 'cloud', env), inExtra);
  // a broken symlink is no plugin (the docker CLI skips it)
  fs.symlinkSync(path.join(tmp, 'nowhere'), path.join(extra, 'docker-broken'));
  assert.throws(
    () => findProvider('db', 'broken', env),
    (e: unknown) => e instanceof EngineError && e.code === 'NOT_FOUND',
  );
  // a non-executable file on PATH is not a program; `..` does not leave the plugin dirs
  fs.writeFileSync(path.join(path.dirname(pathOnly), 'plain'), 'x');
  assert.throws(
    () => findProvider('cache', 'plain', env),
    /service "cache": provider type "plain" not found: no docker-plain CLI plugin .* and no executable plain on PATH/,
  );
  assert.throws(() => findProvider('db', '../cli-plugins/docker-cloud', { ...env, DOCKER_CONFIG: path.join(config, 'cli-plugins') }), /not found/);
  assert.throws(() => findProvider('db', 'compose', env), /'compose' is not a valid provider type/);
});

test('up: info as progress, setenv into the dependents as <SERVICE>_<KEY>, rawsetenv as KEY; down and stop run the program', async () => {
  const log = path.join(tmp, 'argv1.log');
  const prov = recorder(
    log,
    `'{"type":"info","message":"provisioning\\nmore"}' '{"type":"debug","message":"dbg"}' '{"type":"setenv","message":"URL=postgres://h:5432/x=y"}' '{"type":"rawsetenv","message":"SHARED=1"}'`,
  );
  const p = projectOf(
    `services:
  my-db:
    provider:
      type: ${prov}
      options: {size: 10, tags: [a, true]}
  web:
    image: busybox
    environment: [SHARED=0]
    depends_on: [my-db]
  other:
    image: busybox
`,
    envOf,
  );
  const e = new FakeEngine();
  const r = collectingReporter();
  await up(e.backend(), p, r);
  assert.deepEqual(fs.readFileSync(log, 'utf8').split('\n'), [
    '--',
    'compose',
    '--project-name=app',
    'up',
    '--size=10',
    '--tags=a',
    '--tags=true',
    'my-db',
    '',
  ]);
  assert.deepEqual(
    r.events.filter((x) => x.startsWith('Service')),
    ['Service my-db Creating', 'Service my-db provisioning', 'Service my-db Created'],
  );
  assert.deepEqual(r.warnings, ['provider "my-db" overrides environment variable "SHARED" in service "web"']);
  const web = [...e.containers.values()].find((c) => c.name === 'app-web-1')!;
  assert.ok(web.spec.env.includes('MY-DB_URL=postgres://h:5432/x=y'), web.spec.env.join());
  assert.ok(web.spec.env.includes('SHARED=1'));
  const other = [...e.containers.values()].find((c) => c.name === 'app-other-1')!;
  assert.ok(!other.spec.env.some((v) => v.startsWith('MY-DB_')));
  // no container, no image for the provider service
  assert.equal(e.names().filter((x) => x.includes('my-db')).length, 0);
  assert.ok(!e.calls.some((c) => c.includes(prov)));

  // the same values again: nothing changes; the dependents' hash includes them
  e.calls.length = 0;
  await up(e.backend(), projectOf(fs.readFileSync(path.join(p.workingDir, 'compose.yaml'), 'utf8'), envOf), r);
  assert.deepEqual(
    e.calls.filter((c) => !c.startsWith('pull')),
    [],
  );

  await stop(e.backend(), { name: p.name, project: p }, r);
  await down(e.backend(), { name: p.name, project: p }, r);
  const runs = fs.readFileSync(log, 'utf8').split('--\n').filter(Boolean);
  // stop is not run (no metadata declares it); down is, after its dependents' containers are gone
  assert.deepEqual(runs.at(-1)!.split('\n'), ['compose', '--project-name=app', 'down', '--size=10', '--tags=a', '--tags=true', 'my-db', '']);
  assert.equal(runs.length, 3);
  assert.deepEqual(e.names(), []);
});

test('an error message fails up with it; nothing depending on the provider is created', async () => {
  const prov = script(
    'prov',
    `[ "$2" = metadata ] && exit 1; echo '{"type":"info","message":"starting"}'; printf '%s\\n' '{"type":"error","message":"quota exceeded\\nsecond line"}'; exec sleep 5`,
  );
  const p = projectOf(
    `services:
  db: {provider: {type: ${prov}}}
  web: {image: busybox, depends_on: [db]}
`,
    envOf,
  );
  const e = new FakeEngine();
  const r = collectingReporter();
  const t0 = Date.now();
  await assert.rejects(up(e.backend(), p, r), (err: unknown) => err instanceof EngineError && err.message === 'quota exceeded\nsecond line');
  // the error ends the run at once, as docker compose (the program is left to itself)
  assert.ok(Date.now() - t0 < 4000);
  assert.ok(r.events.includes('Service db Error quota exceeded'));
  assert.deepEqual(e.names(), []);
});

test('a failing exit, a missing program, a flood, an abort: each a clear error', async () => {
  const r = collectingReporter();
  const one = (type: string, env = envOf.env) => projectOf(`services:\n  db: {provider: {type: ${JSON.stringify(type)}}}\n`, { env });
  const exit3 = script('prov', `[ "$2" = metadata ] && exit 1; echo oops >&2; exit 3`);
  await assert.rejects(runProvider(one(exit3), 'db', 'up', r), /service "db": failed to create service provider: exit status 3: oops/);
  await assert.rejects(
    runProvider(one('no-such-provider-type'), 'db', 'up', r, { hostEnv: { PATH: tmp, HOME: tmp } }),
    /service "db": provider type "no-such-provider-type" not found/,
  );
  const long = script('prov', `[ "$2" = metadata ] && exit 1; head -c ${LIMITS.line + 10} /dev/zero | tr '\\0' a; exec sleep 5`);
  await assert.rejects(runProvider(one(long), 'db', 'up', r), /wrote a line longer than/);
  const chatty = script('prov', `[ "$2" = metadata ] && exit 1; yes '{"type":"debug","message":"x"}' | head -n ${LIMITS.messages + 1}`);
  await assert.rejects(runProvider(one(chatty), 'db', 'up', r), /more than 10000 messages/);
  const generous = script(
    'prov',
    `[ "$2" = metadata ] && exit 1; for i in $(seq 1 20); do printf '{"type":"setenv","message":"K%s=%s"}\\n' $i $(head -c 60000 /dev/zero | tr '\\0' v); done`,
  );
  await assert.rejects(runProvider(one(generous), 'db', 'up', r), /more than 1048576 bytes of variables/);
  const garbage = script('prov', `[ "$2" = metadata ] && exit 1; echo hello`);
  await assert.rejects(runProvider(one(garbage), 'db', 'up', r), /invalid response from plugin: hello/);
  const slow = script('prov', `[ "$2" = metadata ] && exit 1; echo '{"type":"info","message":"waiting"}'; exec sleep 30`);
  const ac = new AbortController();
  const t0 = Date.now();
  // aborted once the program is under way (its first message)
  const run = runProvider(one(slow), 'db', 'up', { event: (_k, _n, s) => void (s === 'waiting' && ac.abort()), warn: () => {} }, { signal: ac.signal });
  await assert.rejects(run, (err: unknown) => err instanceof EngineError && err.code === 'CANCELLED');
  assert.ok(Date.now() - t0 < 10_000);
});

test('a program that leaves a process holding its output: metadata ends at its time bound, a run when the program exits', async () => {
  const r = collectingReporter();
  const saved = LIMITS.metadataMs;
  LIMITS.metadataMs = 300;
  try {
    // metadata hangs with a child on its stdout; up prints, exits 0 and leaves a child on its stdout
    const holder = script('prov', `if [ "$2" = metadata ]; then sleep 30 & exec sleep 30; fi; echo '{"type":"info","message":"made"}'; sleep 30 & exit 0`);
    const p = projectOf(`services:\n  db: {provider: {type: ${JSON.stringify(holder)}}}\n`, envOf);
    const t0 = Date.now();
    await runProvider(p, 'db', 'up', r);
    assert.ok(Date.now() - t0 < 5_000, `took ${Date.now() - t0} ms`);
    assert.ok(
      r.events.some((e) => e.includes('made')),
      JSON.stringify(r.events),
    );
  } finally {
    LIMITS.metadataMs = saved;
  }
});

test('loading: a provider service needs no image and gets no default network; config prints it; models refuse up', async () => {
  const p = projectOf(`services:
  db:
    provider: {type: cloud, options: {size: 1.5, flag: true, list: [x, 2]}}
  web: {image: busybox}
`);
  assert.deepEqual(p.services.db!.provider, { type: 'cloud', options: { size: ['1.5'], flag: ['true'], list: ['x', '2'] } });
  assert.equal(p.services.db!.networks, undefined);
  const data = projectData(p) as { services: Record<string, Record<string, unknown>> };
  assert.deepEqual(Object.keys(data.services.db!.provider as object), ['type', 'options']);
  assert.deepEqual(data.services.db!.provider, { type: 'cloud', options: { flag: ['true'], list: ['x', '2'], size: ['1.5'] } });
  assert.throws(() => projectOf(`services:\n  db: {provider: {options: {a: b}}}\n`), /type/);
  assert.throws(() => projectOf(`services:\n  db: {environment: [A=1]}\n`), /has neither an image nor a build context/);

  const models = `services:
  app: {image: busybox, models: [llm]}
  plain: {image: busybox}
models:
  llm: {model: ai/smollm2}
`;
  const m = projectOf(models);
  assert.deepEqual((projectData(m) as { models: unknown }).models, { llm: { model: 'ai/smollm2' } });
  const e = new FakeEngine();
  await assert.rejects(up(e.backend(), m, collectingReporter()), /'models' support requires Docker Model plugin \(used by service app\)/);
  assert.deepEqual(e.names(), []);
  // a service that uses no model still comes up, as in docker compose
  await up(e.backend(), m, collectingReporter(), { services: ['plain'] });
  assert.deepEqual(e.names(), ['app-plain-1:running']);
  assert.throws(() => projectOf(`services:\n  app: {image: busybox, models: [nope]}\n`), /service "app" refers to undefined model nope/);
});

test('with metadata: only declared options are passed, and stop runs when declared', async () => {
  const log = path.join(tmp, 'argv-meta.log');
  const meta = JSON.stringify({ description: 'p', up: { parameters: [{ name: 'size', required: true }] }, down: { parameters: [] }, stop: { parameters: [] } });
  const prov = recorder(log, `'{"type":"setenv","message":"K=v"}'`, meta);
  const p = projectOf(`services:\n  db: {provider: {type: ${prov}, options: {size: 3, other: x}}}\n`, envOf);
  const r = collectingReporter();
  await runProvider(p, 'db', 'up', r);
  await stop(new FakeEngine().backend(), { name: p.name, project: p }, r);
  assert.deepEqual(fs.readFileSync(log, 'utf8').split('--\n').filter(Boolean), [
    'compose\n--project-name=app\nup\n--size=3\ndb\n',
    'compose\n--project-name=app\nstop\ndb\n',
  ]);
  assert.ok(r.events.includes('Service db Stopped'));
});
