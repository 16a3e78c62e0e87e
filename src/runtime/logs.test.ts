import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { readLog } from './logs.ts';

const LOG =
  [
    '2024-05-01T10:00:01.000000000Z stdout F one',
    '2024-05-01T10:00:02.000000000Z stderr F two',
    '2024-05-01T10:00:03.000000000Z stdout P thr',
    '2024-05-01T10:00:03.500000000Z stdout F ee',
    '2024-05-01T10:00:04.000000000Z stdout F four',
  ].join('\n') + '\n';

async function all(file: string, o: Parameters<typeof readLog>[1]) {
  const out: string[] = [];
  for await (const e of readLog(file, o)) out.push(`${e.stream}:${e.line}`);
  return out;
}

test('readLog: all, tail (joins partials), since/until, follow', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-log-'));
  try {
    const file = path.join(dir, 'c.log');
    fs.writeFileSync(file, LOG);
    assert.deepEqual(await all(file, {}), ['stdout:one\n', 'stderr:two\n', 'stdout:thr', 'stdout:ee\n', 'stdout:four\n']);
    assert.deepEqual(await all(file, { tail: 2 }), ['stdout:thr', 'stdout:ee\n', 'stdout:four\n']);
    assert.deepEqual(await all(file, { tail: 0 }), []);
    assert.deepEqual(await all(file, { since: Date.parse('2024-05-01T10:00:02Z') / 1000, until: new Date('2024-05-01T10:00:03.2Z') }), [
      'stderr:two\n',
      'stdout:thr',
    ]);
    assert.deepEqual(await all(path.join(dir, 'missing.log'), {}), []);
    const ac = new AbortController();
    const seen: string[] = [];
    const reader = (async () => {
      for await (const e of readLog(file, { tail: 1, follow: true, signal: ac.signal, pollMs: 50 })) {
        seen.push(e.line.toString());
        if (seen.length === 2) ac.abort();
      }
    })();
    await new Promise((r) => setTimeout(r, 100));
    fs.appendFileSync(file, '2024-05-01T10:00:05.000000000Z stdout F five\n');
    await reader;
    assert.deepEqual(seen, ['four\n', 'five\n']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('readLog tail: across 1 MiB chunks, and in bounded memory on a log with no newlines', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-log-'));
  try {
    const file = path.join(dir, 'c.log');
    const lines: string[] = [];
    for (let i = 0; i < 60_000; i++) lines.push(`2024-05-01T10:00:01.${String(i).padStart(9, '0')}Z stdout F line ${i} ${'x'.repeat(40)}`);
    fs.writeFileSync(file, lines.join('\n') + '\n');
    const tail = await all(file, { tail: 3 });
    assert.deepEqual(
      tail.map((l) => l.split(' ').slice(0, 2).join(' ')),
      ['stdout:line 59997', 'stdout:line 59998', 'stdout:line 59999'],
    );
    // 40 MiB of output without a newline: conmon writes it as partial (P) records.
    const fd = fs.openSync(file, 'w');
    const rec = Buffer.from(`2024-05-01T10:00:02.000000000Z stdout P ${'y'.repeat(8192)}\n`);
    for (let i = 0; i < (40 << 20) / rec.length; i++) fs.writeSync(fd, rec);
    fs.writeSync(fd, Buffer.from('2024-05-01T10:00:03.000000000Z stdout P the end\n'));
    fs.closeSync(fd);
    const before = process.memoryUsage().rss;
    let bytes = 0;
    let last = '';
    for await (const e of readLog(file, { tail: 1 })) {
      bytes += e.line.length;
      last = e.line.toString();
    }
    assert.equal(last, 'the end');
    assert.ok(bytes <= 17 << 20, `tail returned ${bytes} bytes`);
    assert.ok(process.memoryUsage().rss - before < 80 << 20, 'tail of a newline-less log stays bounded');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
