import assert from 'node:assert/strict';
import { PassThrough, Writable } from 'node:stream';
import { test } from 'node:test';
import { pump, type PumpClient } from './pump.ts';

/** A client whose socket holds `room` bytes until drain() is called. */
function fakeClient(room: number) {
  let used = 0;
  let drainWaiters: (() => void)[] = [];
  let closeIt!: () => void;
  const got: Buffer[] = [];
  const c: PumpClient & { drain(): void; close(): void; got: Buffer[]; isClosedFlag: boolean } = {
    input: new PassThrough(),
    got,
    isClosedFlag: false,
    write(_s, b) {
      got.push(b);
      used += b.length;
      return used < room;
    },
    drained: () => new Promise<void>((r) => drainWaiters.push(r)),
    closed: new Promise<void>((r) => (closeIt = r)),
    get isClosed() {
      return c.isClosedFlag;
    },
    drain() {
      used = 0;
      const w = drainWaiters;
      drainWaiters = [];
      for (const f of w) f();
    },
    close() {
      c.isClosedFlag = true;
      closeIt();
    },
  };
  c.input.pause();
  return c;
}

test('pump: a full client pauses the output sources until it drains', async () => {
  const out = new PassThrough();
  const err = new PassThrough();
  const c = fakeClient(10);
  const done = pump(c, { stdout: out, stderr: err });
  out.write(Buffer.alloc(20));
  await new Promise((r) => setImmediate(r));
  assert.equal(out.isPaused(), true);
  assert.equal(err.isPaused(), true);
  c.drain();
  await new Promise((r) => setImmediate(r));
  assert.equal(out.isPaused(), false);
  out.end();
  err.end();
  assert.equal(await done, 'ended');
});

test('pump: stdin gets client input no faster than it takes it; client gone drains output into nothing', async () => {
  const out = new PassThrough();
  let taken = 0;
  let release!: () => void;
  const stdin = new Writable({
    highWaterMark: 4,
    write(chunk: Buffer, _e, cb) {
      taken += chunk.length;
      release = cb;
    },
  });
  const c = fakeClient(1 << 20);
  const done = pump(c, { stdout: out, stdin });
  (c.input as PassThrough).write(Buffer.alloc(8));
  (c.input as PassThrough).write(Buffer.alloc(8));
  await new Promise((r) => setImmediate(r));
  assert.equal(c.input.isPaused(), true, 'input paused while stdin is busy');
  release();
  await new Promise((r) => setImmediate(r));
  c.close();
  assert.equal(await done, 'client-gone');
  out.write(Buffer.alloc(1 << 20));
  await new Promise((r) => setImmediate(r));
  assert.equal(out.readableLength, 0, 'output keeps flowing after the client left');
  assert.equal(stdin.writableEnded, true, 'stdin ended when the client left');
  assert.ok(taken >= 8);
});
