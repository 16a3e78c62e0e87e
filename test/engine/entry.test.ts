/**
 * keel as a library, through the package entry (`import ... from 'keel'`):
 * an Engine on its own roots runs a container to completion with the
 * facade's methods only, reports failures as EngineErrors, and releases
 * the state root when its `await using` scope ends.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { Engine, EngineError, isEngineError } from 'keel';
import { busyboxRootfsTar, TestDaemon } from '../helpers/daemon.ts';

const d = new TestDaemon('keel-entry');

before(() => {
  fs.mkdirSync(d.execRoot, { recursive: true });
});

after(async () => {
  await d.cleanup();
});

test('an Engine imported from the package entry runs a container and releases its root when the scope ends', async () => {
  {
    await using engine = new Engine(d.engineOptions());
    await engine.open();
    await engine.importImage(fs.createReadStream(busyboxRootfsTar(d.dir)), { ref: 'busybox:local' });
    const { id } = await engine.createContainer({ image: 'busybox:local', cmd: ['sh', '-c', 'echo hi; exit 3'], networkMode: 'none' });
    const exited = engine.waitContainer(id, 'next-exit');
    await engine.startContainer(id);
    assert.equal(await exited, 3);
    const lines: string[] = [];
    for await (const e of engine.containerLogs(id, { stdout: true, stderr: true })) lines.push(e.line.toString());
    assert.deepEqual(lines, ['hi\n']);
    assert.equal(engine.inspectContainer(id).record.state.Status, 'exited');
    await engine.removeContainer(id);
    assert.throws(
      () => engine.inspectContainer(id),
      (e: unknown) => e instanceof EngineError && isEngineError(e, 'NOT_FOUND'),
    );
  }
  // The first engine's scope closed it: its lock on the state root is gone, so a second one opens.
  const again = new Engine(d.engineOptions());
  await again.open();
  assert.equal(again.listContainers({ all: true }).length, 0);
  await again[Symbol.asyncDispose]();
});
