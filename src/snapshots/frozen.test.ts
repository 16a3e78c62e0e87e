import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { FrozenStore } from './frozen.ts';

async function store() {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'keel-frozen-'));
  const s = new FrozenStore(path.join(dir, 'frozen'));
  await s.init();
  return { s, dir };
}

test('freeze moves a directory into a layer; gc frees what no owner lists', async () => {
  const { s, dir } = await store();
  const upper = path.join(dir, 'upper');
  await fsp.mkdir(upper);
  await fsp.writeFile(path.join(upper, 'f'), 'data');
  const id = await s.freeze(upper, 'owner1');
  assert.equal(fs.existsSync(upper), false);
  assert.equal(await fsp.readFile(path.join(s.dir(id), 'f'), 'utf8'), 'data');
  assert.equal((await s.list())[0]!.pending, true);
  await s.commit(id);
  assert.equal((await s.list())[0]!.pending, undefined);
  assert.equal(await s.gc(new Set([id])), 0);
  assert.equal(await s.gc(new Set()), 4);
  assert.deepEqual(await s.list(), []);
});

test('after a crash, a pending layer with data is adopted by its owner, one without is dropped', async () => {
  const { s, dir } = await store();
  const upper = path.join(dir, 'upper');
  await fsp.mkdir(upper);
  const withData = await s.freeze(upper, 'a');
  // An intent whose rename never happened.
  await fsp.mkdir(path.join(s.root, '0123456789abcdef'));
  await fsp.writeFile(path.join(s.root, '0123456789abcdef', 'frozen.json'), JSON.stringify({ id: '0123456789abcdef', owner: 'b', created: '', pending: true }));
  const adopted: string[] = [];
  await s.rollForward(async (r) => {
    adopted.push(`${r.owner}:${r.id}`);
    return true;
  });
  assert.deepEqual(adopted, [`a:${withData}`]);
  assert.deepEqual(
    (await s.list()).map((r) => [r.id, r.pending]),
    [[withData, undefined]],
  );
  // A pending layer is never collected.
  const upper2 = path.join(dir, 'upper2');
  await fsp.mkdir(upper2);
  const pending = await s.freeze(upper2, 'c');
  await s.gc(new Set([withData]));
  assert.ok((await s.list()).some((r) => r.id === pending));
});

test('copy makes a committed layer with the same content, leaving the source', async () => {
  const { s, dir } = await store();
  const src = path.join(dir, 'src');
  await fsp.mkdir(path.join(src, 'sub'), { recursive: true });
  await fsp.writeFile(path.join(src, 'sub', 'x'), 'x');
  const id = await s.copy(src, 'o');
  assert.equal(await fsp.readFile(path.join(s.dir(id), 'sub', 'x'), 'utf8'), 'x');
  assert.equal(await fsp.readFile(path.join(src, 'sub', 'x'), 'utf8'), 'x');
  assert.equal((await s.list())[0]!.pending, undefined);
  assert.throws(() => s.dir('../x'), /invalid frozen layer id/);
});
