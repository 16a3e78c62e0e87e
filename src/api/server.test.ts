import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import type { Engine } from '../engine/engine.ts';
import { Router } from './router.ts';
import { createApiServer, listenUnix } from './server.ts';
import { sendStream } from './stream.ts';

function get(socketPath: string, p: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: p }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

test('one failing request is its own 500; a client hanging up mid-stream ends only the stream', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-srv-'));
  const sock = path.join(dir, 's.sock');
  const r = new Router();
  let streamClosed = false;
  r.add('GET', '/boom', () => {
    throw new TypeError('a bug');
  });
  r.add('GET', '/boom-async', async () => {
    await new Promise((res) => setImmediate(res));
    (undefined as unknown as { x: number }).x++;
  });
  r.add('GET', '/things/{id}/json', ({ res, params }) => void res.end(params[0]));
  r.add('GET', '/endless', async ({ res, signal }) => {
    const src = new Readable({
      read() {
        this.push(Buffer.alloc(64 << 10));
      },
    });
    src.on('close', () => (streamClosed = true));
    await sendStream(res, src, signal, { 'Content-Type': 'application/x-tar' });
  });
  const server = createApiServer({} as Engine, r);
  await listenUnix(server, sock);
  try {
    const a = await get(sock, '/boom');
    assert.equal(a.status, 500);
    assert.deepEqual(JSON.parse(a.body), { message: 'a bug' });
    assert.equal((await get(sock, '/boom-async')).status, 500);
    const bad = await get(sock, '/things/%E0%A4%A/json');
    assert.equal(bad.status, 400);
    assert.match(JSON.parse(bad.body).message, /escape/);
    assert.equal((await get(sock, '/things/a%20b/json')).body, 'a b');
    await new Promise<void>((resolve) => {
      const req = http.request({ socketPath: sock, path: '/endless' }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => {});
      req.end();
    });
    for (let i = 0; i < 50 && !streamClosed; i++) await new Promise((res) => setTimeout(res, 20));
    assert.equal(streamClosed, true, 'the source was destroyed when the client left');
    assert.equal((await get(sock, '/things/x/json')).status, 200);
  } finally {
    server.close();
    server.closeAllConnections();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
