import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { readLog } from './logs.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Writes `files` x `perFile` numbered records the way conmon rotates a k8s-file log: a new file renamed over the
 * path, the old one dropped (nobody keeps it). `gapMs` between rotations.
 */
async function conmonLike(logPath: string, files: number, perFile: number, gapMs: number): Promise<void> {
  let n = 0;
  for (let f = 0; f < files; f++) {
    const tmp = `${logPath}.tmp`;
    const fd = fs.openSync(f === 0 ? logPath : tmp, 'w');
    if (f > 0) fs.renameSync(tmp, logPath);
    for (let i = 0; i < perFile; i++, n++) {
      const ns = String(n).padStart(9, '0');
      fs.writeSync(fd, `2024-05-01T10:00:00.${ns}Z stdout F line ${n}\n`);
      if (i % 10 === 9) await sleep(1);
    }
    fs.closeSync(fd);
    await sleep(gapMs);
  }
}

function openDeleted(dir: string): number {
  let n = 0;
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      const t = fs.readlinkSync(`/proc/self/fd/${fd}`);
      if (t.startsWith(dir) && t.endsWith('(deleted)')) n++;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}

test('logs -f: a reader stalled across many rotations still gets every line, in order', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-follow-'));
  try {
    const file = path.join(dir, 'c.log');
    fs.writeFileSync(file, '');
    const drain = new AbortController();
    const got: number[] = [];
    const reader = (async () => {
      for await (const e of readLog(file, { follow: true, drain: drain.signal, pollMs: 50, maxFiles: 1000 })) {
        got.push(Number(/line (\d+)/.exec(e.line.toString())![1]));
        if (got.length === 1) await sleep(1500); // the reader stalls while ~25 files come and go
      }
    })();
    await conmonLike(file, 30, 50, 50);
    drain.abort();
    await reader;
    const missing = [...Array(1500).keys()].filter((i) => !got.includes(i));
    assert.equal(got.length, 1500, `${got.length} lines; missing ${missing[0]}..${missing.at(-1)}`);
    for (let i = 0; i < got.length; i++) assert.equal(got[i], i, `line ${i}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('logs -f: a reader behind by more than max-file files holds at most that many replaced files open', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-follow-'));
  try {
    const file = path.join(dir, 'c.log');
    fs.writeFileSync(file, '');
    const ac = new AbortController();
    let held = -1;
    const got: number[] = [];
    const writer = conmonLike(file, 20, 20, 20);
    const reader = (async () => {
      for await (const e of readLog(file, { follow: true, signal: ac.signal, pollMs: 50, maxFiles: 3 })) {
        got.push(Number(/line (\d+)/.exec(e.line.toString())![1]));
        if (got.length === 1) {
          await writer;
          await sleep(200);
          held = openDeleted(dir);
        }
        if (got.at(-1) === 399) break;
      }
    })();
    await reader;
    ac.abort();
    // The file being read plus at most 3 waiting (one of them the live file, not deleted).
    assert.ok(held >= 1 && held <= 3, `${held} replaced files held open`);
    assert.equal(got.at(-1), 399);
    for (let i = 1; i < got.length; i++) assert.ok(got[i]! > got[i - 1]!, `order at ${i}`);
    assert.equal(openDeleted(dir), 0, 'every descriptor is closed at the end');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
