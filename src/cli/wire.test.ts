import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { exchange, MalformedResponse, ResponseParser } from './wire.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-wire-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
let n = 0;

/** A node:http server on a unix socket; resolves with its path. */
async function httpServer(handler: http.RequestListener): Promise<string> {
  const sock = path.join(dir, `h${n++}.sock`);
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(sock, r));
  after(() => server.close());
  return sock;
}

/** A server that answers every connection with these bytes, then ends it. */
async function rawServer(answer: Buffer | string): Promise<string> {
  const sock = path.join(dir, `r${n++}.sock`);
  const server = net.createServer((c) => {
    c.once('data', () => c.end(answer));
    c.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(sock, r));
  after(() => server.close());
  return sock;
}

test('a request reaches node:http as it is sent: method, path, headers, JSON body; a Content-Length answer comes back whole', async () => {
  let seen: { method?: string; url?: string; headers?: http.IncomingHttpHeaders; body?: string } = {};
  const sock = await httpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen = { method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() };
      res.writeHead(201, { 'Content-Type': 'application/json', 'X-Keel': 'a' });
      res.end(JSON.stringify({ Id: 'abc' }));
    });
  });
  const r = await exchange(sock, 'POST', '/v1.41/containers/create?name=x', { 'Content-Type': 'application/json' }, Buffer.from('{"Image":"i"}'));
  assert.equal(r.status, 201);
  assert.equal(r.headers['x-keel'], 'a');
  assert.deepEqual(JSON.parse(r.body.toString()), { Id: 'abc' });
  assert.equal(seen.method, 'POST');
  assert.equal(seen.url, '/v1.41/containers/create?name=x');
  assert.equal(seen.headers!['content-type'], 'application/json');
  assert.equal(seen.headers!.connection, 'close');
  assert.equal(seen.body, '{"Image":"i"}');
});

test('a chunked answer of many writes, a 204 and a HEAD answer without body, an error status with its message', async () => {
  const big = 'x'.repeat(300_000);
  const sock = await httpServer((req, res) => {
    if (req.url === '/chunked') {
      res.writeHead(200);
      for (let i = 0; i < big.length; i += 7_000) res.write(big.slice(i, i + 7_000));
      res.end();
    } else if (req.url === '/empty') {
      res.writeHead(204).end();
    } else if (req.url === '/head') {
      res.writeHead(200, { 'Content-Length': '5' }).end();
    } else res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"message":"No such container: x"}');
  });
  assert.equal((await exchange(sock, 'GET', '/chunked')).body.toString(), big);
  assert.deepEqual((await exchange(sock, 'DELETE', '/empty')).body, Buffer.alloc(0));
  const head = await exchange(sock, 'HEAD', '/head');
  assert.equal(head.status, 200);
  assert.equal(head.body.length, 0);
  const missing = await exchange(sock, 'GET', '/missing');
  assert.equal(missing.status, 404);
  assert.equal(JSON.parse(missing.body.toString()).message, 'No such container: x');
});

test('an answer framed by the end of the connection; one cut short, or not HTTP, is a MalformedResponse', async () => {
  const byClose = await rawServer('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end');
  assert.equal((await exchange(byClose, 'GET', '/')).body.toString(), 'until the end');
  const short = await rawServer('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this');
  await assert.rejects(exchange(short, 'GET', '/'), MalformedResponse);
  const shortChunk = await rawServer('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab');
  await assert.rejects(exchange(shortChunk, 'GET', '/'), MalformedResponse);
  const garbage = await rawServer('SSH-2.0-OpenSSH\r\n\r\n');
  await assert.rejects(exchange(garbage, 'GET', '/'), /not an HTTP answer/);
  const nothing = await rawServer('');
  await assert.rejects(exchange(nothing, 'GET', '/'), /closed before an answer/);
});

test('no server: the socket error itself, for the caller to tell apart (a daemon to start)', async () => {
  await assert.rejects(exchange(path.join(dir, 'none.sock'), 'GET', '/_ping'), (e: NodeJS.ErrnoException) => e.code === 'ENOENT');
});

test('a header with a line break, or a path with a space, is refused before anything is sent', () => {
  assert.throws(() => exchange(path.join(dir, 'none.sock'), 'GET', '/', { 'X-A': 'a\r\nX-B: b' }), /line break/);
  assert.throws(() => exchange(path.join(dir, 'none.sock'), 'GET', '/containers/a b/json'), /unescaped characters/);
});

test('the parser gives the same answer however the bytes are cut: byte by byte, chunk extensions, trailers, 100 Continue first', () => {
  const wireBytes = Buffer.from(
    'HTTP/1.1 100 Continue\r\n\r\n' +
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nSet-Cookie: a\r\nSet-Cookie: b\r\n\r\n' +
      '4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: t\r\n\r\n',
  );
  for (const step of [1, 2, 3, 7, wireBytes.length]) {
    const p = new ResponseParser('GET');
    let r;
    for (let i = 0; i < wireBytes.length && !r; i += step) r = p.push(wireBytes.subarray(i, i + step));
    assert.ok(r, `complete with steps of ${step}`);
    assert.equal(r.status, 200);
    assert.equal(r.headers['set-cookie'], 'a, b');
    assert.equal(r.body.toString(), 'Wikipedia in\r\n\r\nchunks.');
  }
  assert.throws(() => new ResponseParser('GET').push(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n')), /malformed Content-Length/);
  assert.throws(() => new ResponseParser('GET').push(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n')), /unsupported transfer coding/);
  assert.throws(() => new ResponseParser('GET').push(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n')), /malformed chunk size/);
  assert.throws(() => new ResponseParser('GET').push(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n')), /longer than its size/);
  assert.throws(() => new ResponseParser('GET').push(Buffer.alloc(70 * 1024, 'a')), /no end of its headers/);
});
