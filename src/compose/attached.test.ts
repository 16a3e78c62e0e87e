import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, test } from 'node:test';
import { attachedServices, attachedUp } from './attached.ts';
import type { ComposeBackend, ContainerSummary, LogChunk } from './backend.ts';
import * as L from './labels.ts';
import { loadProject } from './load.ts';
import { LogPrinter } from './logs.ts';
import { collectingReporter } from './reporter.ts';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'compose-attached-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));
const dir = path.join(root, 'app');
fs.mkdirSync(dir);
fs.writeFileSync(
  path.join(dir, 'compose.yaml'),
  `services:
  web: {image: busybox, depends_on: [db, cache]}
  db: {image: busybox}
  cache: {image: busybox, attach: false}
  worker: {image: busybox}
`,
);
const p = loadProject({ cwd: dir, env: {}, onWarning: () => {} });
const all = ['cache', 'db', 'web', 'worker'];

test('which services up shows: named ones, --attach-dependencies, --attach, --no-attach, attach: false', () => {
  assert.deepEqual(attachedServices(p, { services: all, named: [] }), ['db', 'web', 'worker']);
  assert.deepEqual(attachedServices(p, { services: ['cache', 'db', 'web'], named: ['web'] }), ['web']);
  assert.deepEqual(attachedServices(p, { services: ['cache', 'db', 'web'], named: ['web'], attachDependencies: true }), ['db', 'web']);
  // --attach names them outright, attach: false ones too
  assert.deepEqual(attachedServices(p, { services: all, named: [], attach: ['cache', 'db'] }), ['cache', 'db']);
  assert.deepEqual(attachedServices(p, { services: all, named: [], noAttach: ['worker', 'db'] }), ['web']);
  assert.throws(
    () => attachedServices(p, { services: ['db', 'web'], named: ['web'], attach: ['worker'] }),
    /cannot attach to services not included in up: worker/,
  );
});

/** Containers that print one line each and exit with the code given, once `release` is called; stops recorded. */
function engine(codes: Record<string, number>) {
  const stopped: string[] = [];
  const exits = new Map<string, (code: number) => void>();
  const done = new Map<string, Promise<number>>();
  const containers: ContainerSummary[] = Object.keys(codes).map((svc) => ({
    id: svc,
    name: `app-${svc}-1`,
    image: 'busybox',
    imageId: '',
    command: '',
    created: 0,
    state: 'running',
    status: '',
    labels: { [L.PROJECT]: 'app', [L.SERVICE]: svc, [L.NUMBER]: '1', [L.ONEOFF]: 'False' },
    ports: [],
  }));
  for (const c of containers)
    done.set(
      c.id,
      new Promise((res) =>
        exits.set(c.id, (code) => {
          c.state = 'exited';
          res(code);
        }),
      ),
    );
  const b = {
    listContainers: async () => containers.map((c) => ({ ...c })),
    waitContainer: (id: string) => done.get(id)!,
    stopContainer: async (id: string) => {
      stopped.push(id);
      exits.get(id)!(137);
    },
    logs: async function* (id: string, o: { timestamps?: boolean }): AsyncIterable<LogChunk> {
      yield { stream: 'stdout', data: Buffer.from(`${o.timestamps ? '2026-12-05T10:00:00.000000000Z ' : ''}hello from ${id}\n`) };
      await done.get(id);
    },
  } as unknown as ComposeBackend;
  return { b, stopped, release: (svc: string) => exits.get(svc)!(codes[svc]!) };
}

async function run(codes: Record<string, number>, o: Partial<Parameters<typeof attachedUp>[4]>, exitFirst: string[]) {
  const e = engine(codes);
  const out = new PassThrough();
  let text = '';
  out.on('data', (c: Buffer) => (text += c));
  const notices: string[] = [];
  const pending = attachedUp(e.b, { name: 'app', project: p }, new LogPrinter(out, { color: false, prefix: true }), collectingReporter(), {
    services: Object.keys(codes),
    since: 0,
    interrupt: new AbortController().signal,
    notice: (l) => void notices.push(l),
    ...o,
  });
  // let the log streams start, then let the containers exit in order
  await new Promise((res) => setImmediate(res));
  for (const s of exitFirst) {
    e.release(s);
    await new Promise((res) => setImmediate(res));
  }
  const code = await pending;
  return { code, text, notices, stopped: e.stopped };
}

test('only the attached services are shown; with --attach and nothing named, up ends when they exit', async () => {
  const r = await run({ db: 0, web: 0, worker: 0 }, { attach: ['web', 'worker'], timestamps: true }, ['web', 'worker']);
  assert.equal(r.code, 0);
  assert.match(r.text, /^web-1 +\| 2026-12-05T10:00:00.000000000Z hello from web$/m);
  assert.match(r.text, /^worker-1 +\| .*hello from worker$/m);
  assert.doesNotMatch(r.text, /hello from db/);
  assert.deepEqual(r.stopped, [], 'nothing stopped: db still runs');
  assert.deepEqual(r.notices.sort(), ['web-1 exited with code 0', 'worker-1 exited with code 0']);
});

test('--abort-on-container-failure: a zero exit goes on, the first failure stops the rest and gives its code', async () => {
  const r = await run({ db: 0, web: 3, worker: 0 }, { attach: ['db', 'web', 'worker'], abortOnFailure: true }, ['db', 'web']);
  assert.equal(r.code, 3);
  assert.ok(r.notices.includes('Aborting on container exit...'));
  assert.deepEqual(r.stopped, ['worker']);
  const ok = await run({ db: 0, web: 0 }, { attach: ['db', 'web'], abortOnFailure: true }, ['db', 'web']);
  assert.equal(ok.code, 0);
  assert.deepEqual(ok.stopped, []);
});

test('--abort-on-container-exit: the first exit stops the rest, whatever its code', async () => {
  const r = await run({ db: 0, web: 0, worker: 0 }, { attach: ['db', 'web', 'worker'], abortOnExit: true }, ['db']);
  assert.equal(r.code, 0);
  assert.deepEqual(r.stopped.sort(), ['web', 'worker']);
});

test('named services: up waits for them only, and an abort stops only them', async () => {
  const r = await run({ db: 0, web: 5 }, { named: ['web'], attach: ['web'], abortOnExit: true }, ['web']);
  assert.equal(r.code, 5);
  assert.deepEqual(r.stopped, [], 'db, a dependency, is left running');
  assert.doesNotMatch(r.text, /hello from db/);
});
