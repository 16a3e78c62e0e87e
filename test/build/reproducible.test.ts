import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { busyboxRootfsTar, TestDaemon } from '../helpers/daemon.ts';
import { type Registry, startRegistry } from '../registry/helpers.ts';
import { writeContext } from './helpers.ts';

const d1 = new TestDaemon('keel-repro1');
const d2 = new TestDaemon('keel-repro2');
let reg: Registry;

before(async () => {
  reg = await startRegistry();
  await d1.start();
  await d2.start();
});
after(async () => {
  await d1.cleanup();
  await d2.cleanup();
  await reg.stop();
});

describe('reproducible images (SOURCE_DATE_EPOCH)', () => {
  test('two daemons with empty stores build the same image digest, and push the same manifest', async () => {
    const ctx = writeContext(path.join(d1.dir, 'ctx-repro'), {
      Dockerfile:
        'FROM scratch\nCOPY rootfs/ /\nRUN echo built > /built && mkdir -p /data && echo fixed > /data/when\nENV A=1\nCOPY app.txt /app/\nCMD ["cat", "/app/app.txt"]\n',
      'app.txt': 'app\n',
    });
    fs.mkdirSync(path.join(ctx, 'rootfs'));
    assert.equal(spawnSync('tar', ['-C', path.join(ctx, 'rootfs'), '-xf', busyboxRootfsTar(d1.dir)]).status, 0);
    const ids: string[] = [];
    for (const [i, d] of [d1, d2].entries()) {
      const r = await d.keel(['build', '-q', '--source-date-epoch', '1700000000', '-t', `${reg.host}/repro/app${i}:1`, ctx]);
      assert.equal(r.code, 0, r.stderr);
      ids.push(r.stdout.trim());
      if (i === 0) await new Promise((res) => setTimeout(res, 1500)); // a second later: times must not matter
    }
    assert.equal(ids[0], ids[1]);
    const img = JSON.parse((await d1.docker(['image', 'inspect', ids[0]!])).stdout)[0];
    assert.equal(img.Created, '2023-11-14T22:13:20Z');
    const digests: string[] = [];
    for (const [i, d] of [d1, d2].entries()) {
      const p = await d.docker(['push', `${reg.host}/repro/app${i}:1`]);
      assert.equal(p.code, 0, p.stderr);
      digests.push(/digest: (sha256:[a-f0-9]{64})/.exec(p.stdout)![1]!);
    }
    assert.equal(digests[0], digests[1]);
    // Without the epoch, the same build gives another image (times differ).
    const plain = await d2.keel(['build', '-q', ctx]);
    assert.notEqual(plain.stdout.trim(), ids[0]);
  });
});
