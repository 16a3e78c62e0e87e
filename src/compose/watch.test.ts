import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import tarStream from 'tar-stream';
import type { ComposeBackend } from './backend.ts';
import { loadProject } from './load.ts';
import { configHash } from './serialize.ts';
import { applyBatch, containerPath } from './watch-sync.ts';
import { Debouncer, matchChange, watchRules } from './watch.ts';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'compose-watch-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

let n = 0;
function load(yaml: string, files: Record<string, string> = {}) {
  const d = path.join(root, `p${n++}`);
  fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(d, 'compose.yaml'), yaml);
  for (const [f, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(d, f)), { recursive: true });
    fs.writeFileSync(path.join(d, f), text);
  }
  return { dir: d, p: loadProject({ cwd: d, env: {}, onWarning: () => {} }) };
}

const WEB = `services:
  web:
    image: busybox
    build: ./web
    develop:
      watch:
        - path: ./web/src
          action: sync
          target: app/src
          ignore: ["*.tmp", "gen/", "**/*.bak"]
        - path: ./web/src/pages
          action: sync+exec
          target: /srv/pages
          include: ["*.html"]
          exec:
            command: reload now
            environment: {A: "1"}
        - path: ./web/package.json
          action: rebuild
`;

test('develop.watch is read with absolute paths, and is part of the config hash as in docker compose', () => {
  const { dir, p } = load(WEB);
  const rules = p.develop!.web!.watch;
  assert.equal(rules.length, 3);
  assert.deepEqual(rules[0], { path: path.join(dir, 'web/src'), action: 'sync', target: '/app/src', ignore: ['*.tmp', 'gen/', '**/*.bak'] });
  assert.deepEqual(rules[1]!.exec, { command: ['reload', 'now'], environment: { A: '1' } });
  assert.deepEqual(rules[1]!.include, ['*.html']);
  const plain = load(WEB.replace(/ {4}develop:[\s\S]*$/, '')).p;
  assert.notEqual(configHash(p.services.web!), configHash(plain.services.web!));
  assert.equal(plain.develop, undefined);
});

test('bad watch rules are refused with their location', () => {
  assert.throws(
    () => load('services:\n  a:\n    image: x\n    develop:\n      watch:\n        - {path: ., action: sync}\n'),
    /services\.a\.develop\.watch\[0\]: target is required for action sync/,
  );
  assert.throws(() => load('services:\n  a:\n    image: x\n    develop:\n      watch:\n        - {path: ., action: explode}\n'), /action/);
  assert.throws(
    () => watchRules(load('services:\n  a:\n    image: x\n    develop:\n      watch:\n        - {path: ., action: rebuild}\n').p),
    /can't watch service "a" with action rebuild without a build context/,
  );
  assert.throws(() => watchRules(load('services:\n  a:\n    image: x\n').p), /none of the selected services is configured for watch/);
});

test('a sync rule whose path is bind-mounted at its target is not synced, with a warning', () => {
  const { p } = load(
    'services:\n  a:\n    image: x\n    volumes: ["./src:/app"]\n    develop:\n      watch:\n        - {path: ./src, action: sync, target: /app}\n        - {path: ./src, action: restart}\n',
  );
  const warnings: string[] = [];
  const rules = watchRules(p, undefined, (m) => warnings.push(m));
  assert.deepEqual(
    rules.map((r) => r.rule.action),
    ['restart'],
  );
  assert.match(warnings[0]!, /also declared by a bind mount volume/);
});

test('events match every rule that covers them, minus ignored and not-included paths', () => {
  const { dir, p } = load(WEB, { 'web/.dockerignore': 'src/secret\n' });
  const rules = watchRules(p);
  const actions = (rel: string, isDir = false) => matchChange(rules, path.join(dir, rel), isDir).map((c) => c.rule.action);
  assert.deepEqual(actions('web/src/main.js'), ['sync']);
  assert.deepEqual(actions('web/src/pages/index.html'), ['sync', 'sync+exec']);
  assert.deepEqual(actions('web/src/pages/style.css'), ['sync'], 'include names the files sync+exec acts on');
  assert.deepEqual(actions('web/src/pages/sub', true), ['sync', 'sync+exec'], 'a directory is kept so what it holds can match');
  assert.deepEqual(actions('web/src/x.tmp'), []);
  assert.deepEqual(actions('web/src/gen/out.js'), []);
  assert.deepEqual(actions('web/src/.git/HEAD'), [], 'docker compose ignores VCS metadata');
  assert.deepEqual(actions('web/src/.main.js.swp'), [], 'and editor swap files');
  assert.deepEqual(actions('web/src/secret'), [], "the build context's .dockerignore applies");
  assert.deepEqual(actions('web/package.json'), ['rebuild']);
  assert.deepEqual(actions('web/package.json.bak'), []);
  assert.deepEqual(actions('elsewhere/file'), []);
  const [sync] = matchChange(rules, path.join(dir, 'web/src/a/b.js'), false);
  assert.equal(containerPath(sync!.rule, sync!.hostPath), '/app/src/a/b.js');
  assert.equal(containerPath(sync!.rule, sync!.rule.path), '/app/src');
});

test('the debouncer flushes once no event came for the quiet period, each key once', async () => {
  const batches: string[][] = [];
  let flushed!: () => void;
  const done = new Promise<void>((r) => (flushed = r));
  const d = new Debouncer<string>(30, (b) => {
    batches.push(b);
    flushed();
  });
  d.add('a', 'a1');
  d.add('b', 'b');
  d.add('a', 'a2');
  await done;
  assert.deepEqual(batches, [['a2', 'b']]);
  d.stop();
});

test('a sync batch: one tar of what exists (a new directory with what each rule keeps of it), rm -rf of what is gone, then the exec rules', async () => {
  const { dir, p } = load(WEB);
  const src = path.join(dir, 'web/src');
  fs.mkdirSync(path.join(src, 'pages/new'), { recursive: true });
  fs.writeFileSync(path.join(src, 'main.js'), 'main');
  fs.writeFileSync(path.join(src, 'pages/new/a.html'), 'a');
  fs.writeFileSync(path.join(src, 'pages/new/old.bak'), 'no');
  fs.writeFileSync(path.join(src, 'pages/new/b.css'), 'b');
  const rules = watchRules(p);
  const changes = [
    ...matchChange(rules, path.join(src, 'main.js'), false),
    ...matchChange(rules, path.join(src, 'pages/new'), true),
    ...matchChange(rules, path.join(src, 'gone.js'), false),
  ];
  const calls: string[] = [];
  const tars: Buffer[] = [];
  const container = {
    id: 'c1',
    name: 'p-web-1',
    image: '',
    imageId: '',
    command: '',
    created: 0,
    state: 'running' as const,
    status: '',
    labels: { 'com.docker.compose.project': p.name, 'com.docker.compose.service': 'web', 'com.docker.compose.oneoff': 'False' },
    ports: [],
  };
  const b = {
    listContainers: async () => [container],
    exec: async (id: string, s: { cmd: string[]; env?: string[] }) => (calls.push(`exec ${id} ${s.cmd.join(' ')}${s.env ? ` [${s.env.join(',')}]` : ''}`), 0),
    copyToContainer: async (id: string, at: string, tar: NodeJS.ReadableStream) => {
      const chunks: Buffer[] = [];
      for await (const c of tar) chunks.push(c as Buffer);
      tars.push(Buffer.concat(chunks));
      calls.push(`copy ${id} ${at}`);
    },
  } as unknown as ComposeBackend;
  await applyBatch(b, p, 'web', changes, { event: () => {}, warn: () => {} }, { log: () => {} });
  assert.deepEqual(calls, ['exec c1 rm -rf /app/src/gone.js', 'copy c1 /', 'exec c1 reload now [A=1]']);
  const names: string[] = [];
  const extract = tarStream.extract();
  extract.on('entry', (h, s, next) => {
    names.push(`${h.type} ${h.name}`);
    s.resume();
    s.on('end', next);
  });
  await new Promise<void>((res, rej) => {
    extract.on('finish', () => res());
    extract.on('error', rej);
    extract.end(tars[0]);
  });
  // the directory event carries its tree, minus what each rule ignores or does not include (patterns are
  // anchored at the rule's path, as in a .dockerignore: sync+exec's `*.html` names only its top level)
  assert.deepEqual(names.sort(), [
    'directory app/src/pages/new',
    'directory srv/pages/new',
    'file app/src/main.js',
    'file app/src/pages/new/a.html',
    'file app/src/pages/new/b.css',
  ]);
});
