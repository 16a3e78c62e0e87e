import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type TarSink, TarParser } from './parser.ts';
import { padding } from './tarformat.ts';
import { rawBlock, rawTar } from './testtar.ts';

/** One PAX extended header block carrying `comment` records of `bytes` bytes in all. */
function paxHeader(bytes: number): Buffer {
  const recs: Buffer[] = [];
  let left = bytes;
  while (left > 0) {
    const n = Math.min(left, 60_000);
    // "<len> comment=<value>\n" with <len> counting itself.
    const fixed = ' comment=\n'.length;
    let len = n;
    const value = 'v'.repeat(Math.max(0, n - fixed - String(len).length));
    len = String(len).length + fixed + value.length;
    recs.push(Buffer.from(`${len} comment=${value}\n`));
    left -= len;
  }
  const body = Buffer.concat(recs);
  return Buffer.concat([rawBlock('PaxHeader/f', 'x', body.length), body, Buffer.alloc(padding(body.length))]);
}

const sink = (): TarSink & { names: string[] } => {
  const names: string[] = [];
  return { names, entry: (h) => names.push(h.name), data: () => {}, end: () => {} };
};

function parse(tar: Buffer, limits: Partial<ConstructorParameters<typeof TarParser>[1]> = {}): string[] {
  const s = sink();
  const p = new TarParser(s, { maxMetaBytes: 1 << 20, maxBytes: 1 << 30, ...limits });
  p.write(tar);
  p.finish();
  return s.names;
}

const file = (name: string) => rawTar([{ name, body: Buffer.from('x') }]).subarray(0, 1024);
const END = Buffer.alloc(1024);

test('extended headers are capped per entry: a chain of headers each under the cap is refused together', () => {
  const two = Buffer.concat([paxHeader(700_000), paxHeader(700_000), file('f'), END]);
  assert.throws(() => parse(two, { maxMetaBytesPerEntry: 1 << 20 }), /extended tar headers .* add up to more than 1048576 bytes for one entry/);
  // The per-entry sum starts again at each entry.
  assert.deepEqual(parse(Buffer.concat([paxHeader(700_000), file('a'), paxHeader(700_000), file('b'), END]), { maxMetaBytesPerEntry: 1 << 20 }), ['a', 'b']);
});

test('extended headers are capped per layer', () => {
  const parts: Buffer[] = [];
  for (let i = 0; i < 5; i++) parts.push(paxHeader(3000), file(`f${i}`));
  const tar = Buffer.concat([...parts, END]);
  assert.equal(parse(tar, { maxMetaBytesTotal: 20_000 }).length, 5);
  assert.throws(() => parse(tar, { maxMetaBytesTotal: 10_000 }), /extended tar headers of this layer add up to more than 10000 bytes/);
});
