import assert from 'node:assert/strict';
import fs from 'node:fs';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import koffi from 'koffi';
import { connectSeqpacket, seqpacketSocket } from './seqpacket.ts';

// A SEQPACKET listener like conmon's attach socket, made the same way (no Node API makes one).
const libc = koffi.load('libc.so.6');
const cSocket = libc.func('int socket(int, int, int)');
const cBind = libc.func('int bind(int, void *, uint32)');
const cListen = libc.func('int listen(int, int)');
const cAccept = libc.func('int accept4(int, void *, void *, int)');
const cClose = libc.func('int close(int)');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seqpacket-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function listen(name: string): number {
  const p = path.join(dir, name);
  const fd = cSocket(1, 5 | 0o2000000, 0) as number;
  const addr = Buffer.alloc(110);
  addr.writeUInt16LE(1, 0);
  Buffer.from(p).copy(addr, 2);
  assert.equal(cBind(fd, addr, 2 + Buffer.byteLength(p) + 1), 0);
  assert.equal(cListen(fd, 4), 0);
  return fd;
}

async function pair(name: string): Promise<{ client: net.Socket; server: net.Socket }> {
  const lfd = listen(name);
  const client = await connectSeqpacket(path.join(dir, name), 1000);
  const sfd = cAccept(lfd, null, null, 0o2000000) as number;
  cClose(lfd);
  assert.ok(sfd >= 0);
  return { client, server: seqpacketSocket(sfd) };
}

test('packets keep their boundaries through a pause, and a paused reader stops reading', async () => {
  const { client, server } = await pair('a');
  client.pause();
  const sent: Buffer[] = [];
  // Packets like conmon's: a stream byte, then up to 8 KiB.
  for (let i = 0; i < 200; i++) sent.push(Buffer.concat([Buffer.from([2 + (i % 2)]), Buffer.alloc(1 + ((i * 977) % 8192), i & 0xff)]));
  let written = 0;
  const writeAll = (async () => {
    for (const b of sent) {
      await new Promise<void>((resolve, reject) => server.write(b, (e) => (e ? reject(e) : resolve())));
      written++;
    }
  })();
  // The reader is paused: the writer must stall on the kernel's buffer, not run through all 200 (~800 KiB).
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(written < sent.length, `all ${written} packets went out to a paused reader`);
  const got: Buffer[] = [];
  client.on('data', (b: Buffer) => got.push(b));
  client.resume();
  await writeAll;
  server.end();
  await new Promise((r) => client.once('end', r));
  assert.equal(got.length, sent.length);
  for (let i = 0; i < sent.length; i++) assert.ok(got[i]!.equals(sent[i]!), `packet ${i}`);
  client.destroy();
  server.destroy();
});

test('writes arrive as separate packets and a half-close is an end of input', async () => {
  const { client, server } = await pair('b');
  const got: number[] = [];
  server.on('data', (b: Buffer) => got.push(b.length));
  const ended = new Promise((r) => server.once('end', r));
  for (const n of [1, 100, 32767]) await new Promise<void>((resolve) => client.write(Buffer.alloc(n), () => resolve()));
  client.end();
  await ended;
  assert.deepEqual(got, [1, 100, 32767]);
  server.destroy();
});

test('a missing socket is ENOENT, a path that is not listening ECONNREFUSED', async () => {
  await assert.rejects(connectSeqpacket(path.join(dir, 'none'), 100), { code: 'ENOENT' });
  const lfd = listen('c');
  cClose(lfd);
  await assert.rejects(connectSeqpacket(path.join(dir, 'c'), 100), { code: 'ECONNREFUSED' });
});
