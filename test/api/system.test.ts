import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { busyboxRootfsTar, TestDaemon } from '../helpers/daemon.ts';

const d = new TestDaemon('keel-api');
before(() => d.start());
after(() => d.cleanup());

function request(method: string, path: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: d.socket, method, path }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('ping answers HEAD and GET with the negotiation headers', async () => {
  for (const m of ['HEAD', 'GET']) {
    const r = await request(m, '/_ping');
    assert.equal(r.status, 200);
    assert.equal(r.headers['api-version'], '1.41');
    assert.equal(r.headers['ostype'], 'linux');
    assert.equal(r.headers['builder-version'], '1');
    if (m === 'GET') assert.equal(r.body, 'OK');
  }
});

test('versioned and unversioned paths; too new and too old versions are refused', async () => {
  assert.equal((await request('GET', '/version')).status, 200);
  assert.equal((await request('GET', '/v1.41/version')).status, 200);
  assert.equal((await request('GET', '/v1.24/version')).status, 200);
  const tooNew = await request('GET', '/v1.99/version');
  assert.equal(tooNew.status, 400);
  assert.equal(tooNew.headers['content-type'], 'application/json');
  assert.match(JSON.parse(tooNew.body).message, /client version 1.99 is too new/);
  assert.equal((await request('GET', '/v1.12/version')).status, 400);
});

test('errors are JSON with a message and the right status', async () => {
  const r = await request('GET', '/v1.41/images/nosuch/json');
  assert.equal(r.status, 404);
  assert.equal(r.headers['content-type'], 'application/json');
  assert.deepEqual(JSON.parse(r.body), { message: 'No such image: nosuch:latest' });
  const bad = await request('GET', '/v1.41/images/json?filters=%7Bnope');
  assert.equal(bad.status, 400);
  assert.equal((await request('GET', '/v1.41/no/such/endpoint')).status, 404);
});

test('docker events reports image events, and --since replays them', async () => {
  const t0 = Math.floor(Date.now() / 1000) - 1;
  const tar = busyboxRootfsTar(d.dir);
  assert.equal((await d.docker(['import', tar, 'ev:1'])).code, 0);
  assert.equal((await d.docker(['tag', 'ev:1', 'ev:2'])).code, 0);
  assert.equal((await d.docker(['rmi', 'ev:2'])).code, 0);
  const r = await d.docker(['events', '--since', String(t0), '--until', String(Math.ceil(Date.now() / 1000) + 1), '--filter', 'type=image']);
  assert.equal(r.code, 0, r.stderr);
  const actions = r.stdout
    .trim()
    .split('\n')
    .map((l) => l.split(' ')[2]);
  assert.deepEqual(actions, ['import', 'tag', 'untag']);
});

test('image prune removes dangling images only, -a removes unused ones', async () => {
  const tar = busyboxRootfsTar(d.dir + '/p');
  assert.equal((await d.docker(['import', tar])).code, 0); // untagged: dangling
  const before = (await d.docker(['images', '-q', '--filter', 'dangling=true'])).stdout.trim();
  assert.ok(before.length > 0);
  const p = await d.docker(['image', 'prune', '-f']);
  assert.equal(p.code, 0, p.stderr);
  assert.match(p.stdout, /Total reclaimed space:/);
  assert.equal((await d.docker(['images', '-q', '--filter', 'dangling=true'])).stdout, '');
  assert.ok((await d.docker(['images', '-q'])).stdout.trim().length > 0, 'tagged images stay');
  const all = await d.docker(['image', 'prune', '-a', '-f']);
  assert.equal(all.code, 0, all.stderr);
  assert.equal((await d.docker(['images', '-q'])).stdout, '');
});
