import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { execCollect, execInContainer, execProcess, readLog, type Spec } from '../../src/runtime/index.ts';
import { collect, fixture, prepare, removeCgroupParent, uniqueId, type Fixture } from './helpers.ts';
import fs from 'node:fs';

let f: Fixture;
before(() => {
  f = fixture();
});
after(async () => {
  await removeCgroupParent();
  f.cleanup();
});

function specOf(b: string): Spec {
  return JSON.parse(fs.readFileSync(path.join(b, 'config.json'), 'utf8')) as Spec;
}

/** Reads from a stream until `re` matches the accumulated text. */
function until(r: NodeJS.ReadableStream, re: RegExp, ms = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let acc = '';
    const t = setTimeout(() => reject(new Error(`timed out waiting for ${re}; got ${JSON.stringify(acc)}`)), ms);
    const on = (b: Buffer) => {
      acc += b.toString();
      if (re.test(acc)) {
        clearTimeout(t);
        r.removeListener('data', on);
        resolve(acc);
      }
    };
    r.on('data', on);
  });
}

test('exec: output, stderr and exit code', async () => {
  const id = uniqueId('exec');
  const b = await prepare(f, id, { args: ['sleep', '60'] });
  await f.driver.create(id, b, {});
  await f.driver.start(id);
  try {
    const base = specOf(b).process;
    const r = await execCollect(f.driver, id, execProcess(base, { args: ['sh', '-c', 'echo out; echo err >&2; exit 7'], env: ['X=1'] }));
    assert.deepEqual(r, { exitCode: 7, stdout: 'out\n', stderr: 'err\n' });
    const caps = await execCollect(f.driver, id, execProcess(base, { args: ['grep', 'CapEff', '/proc/self/status'] }));
    assert.match(caps.stdout, /00000000a80425fb/);
    const withInput = await execCollect(f.driver, id, execProcess(base, { args: ['cat'] }), { input: 'piped\n' });
    assert.equal(withInput.stdout, 'piped\n');
    await assert.rejects(execCollect(f.driver, id, execProcess(base, { args: ['/nope'] })), (e: Error & { code?: string }) => e.code === 'COMMAND_NOT_FOUND');
    const d = await execInContainer(f.driver, id, execProcess(base, { args: ['sh', '-c', 'exit 4'] }), { detach: true });
    assert.equal(await d.exitCode, 4);
  } finally {
    await f.driver.delete(id, { force: true });
  }
});

test('attach: stdin → cat → stdout, and EOF ends the container', async () => {
  const id = uniqueId('att');
  const b = await prepare(f, id, { args: ['cat'] });
  const logPath = path.join(f.dir, `${id}.log`);
  await f.driver.create(id, b, { stdin: true, logPath });
  const s = await f.driver.attach(id);
  await f.driver.start(id);
  try {
    const got = until(s.stdout, /hello\nworld\n/);
    s.stdin.write('hello\n');
    s.stdin.write('world\n');
    assert.equal(await got, 'hello\nworld\n');
    s.stdin.end();
    const exit = await f.driver.wait(id);
    assert.equal(exit.exitCode, 0);
    const lines: string[] = [];
    for await (const e of readLog(logPath)) lines.push(`${e.stream}:${e.line}`);
    assert.deepEqual(lines, ['stdout:hello\n', 'stdout:world\n']);
  } finally {
    s.close();
    await f.driver.delete(id, { force: true });
  }
});

test('tty: resize reaches the terminal', async () => {
  const id = uniqueId('tty');
  const b = await prepare(f, id, { args: ['sh'], tty: true });
  await f.driver.create(id, b, { stdin: true, tty: true });
  const s = await f.driver.attach(id);
  await f.driver.start(id);
  try {
    await f.driver.resize(id, { height: 33, width: 111 });
    const got = until(s.stdout, /33 111/);
    s.stdin.write('stty size\n');
    assert.match(await got, /33 111/);
    const got2 = until(s.stdout, /\btty-ok\b/);
    s.stdin.write('test -t 0 && echo tty-ok\n');
    await got2;
    s.stdin.write('exit 5\n');
    assert.equal((await f.driver.wait(id)).exitCode, 5);
  } finally {
    s.close();
    await f.driver.delete(id, { force: true });
  }
});

test('exec with a tty', async () => {
  const id = uniqueId('etty');
  const b = await prepare(f, id, { args: ['sleep', '60'] });
  await f.driver.create(id, b, {});
  await f.driver.start(id);
  try {
    const s = await execInContainer(f.driver, id, execProcess(specOf(b).process, { args: ['sh', '-c', 'stty size; test -t 1 && echo istty'] }), {
      tty: true,
      consoleSize: { height: 20, width: 70 },
    });
    const out = await collect(s.stdout);
    assert.equal(await s.exitCode, 0);
    assert.match(out, /20 70/);
    assert.match(out, /istty/);
  } finally {
    await f.driver.delete(id, { force: true });
  }
});

test('pause and resume', async () => {
  const id = uniqueId('pause');
  const b = await prepare(f, id, { args: ['sleep', '60'] });
  await f.driver.create(id, b, {});
  await f.driver.start(id);
  try {
    await f.driver.pause(id);
    assert.equal((await f.driver.state(id)).status, 'paused');
    await f.driver.resume(id);
    assert.equal((await f.driver.state(id)).status, 'running');
    await f.driver.kill(id, 'KILL');
    const exit = await f.driver.wait(id);
    assert.equal(exit.exitCode, 137);
  } finally {
    await f.driver.delete(id, { force: true });
  }
});
