import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { TestDaemon } from '../helpers/daemon.ts';
import { frozenLayers, ok } from './helpers.ts';

const d = new TestDaemon('keel-clone-crash');
before(async () => {
  await d.start();
  await d.importBusybox();
});
after(async () => {
  await d.cleanup();
});

const STEPS = [
  'freeze-intent',
  'freeze-renamed',
  'freeze-adopted',
  'volume-frozen',
  'clone-frozen',
  'clone-journal',
  'clone-snapshot',
  'clone-volumes',
  'clone-record',
];

test('a kill -9 of the daemon at any step of a clone leaves no orphan and no half-made clone', async () => {
  await crashRounds('echo s >> /starts; echo s >> /data/starts', STEPS);
});

test('the same for the freeze of a volume (a source that writes only to its volume)', async () => {
  await crashRounds('echo s >> /data/starts', ['freeze-intent', 'freeze-renamed', 'volume-frozen'], true);
});

async function crashRounds(cmd: string, steps: string[], volumeOnly = false): Promise<void> {
  await ok(d, ['create', '--name', 'src', '-v', 'srcdata:/data', 'busybox:local', 'sh', '-c', cmd]);
  let starts = 0;
  if (volumeOnly) {
    // A first clone freezes what runc's first start made in the rootfs (mount points); later starts add nothing there.
    await ok(d, ['start', '-a', 'src']);
    starts++;
    const r = await d.api('POST', '/containers/src/clone');
    assert.equal(r.status, 201, r.text);
    await ok(d, ['rm', '-v', r.json.Clones[0].Id]);
    await ok(d, ['start', '-a', 'src']);
    starts++;
    const srcId = JSON.parse(await ok(d, ['inspect', 'src']))[0].Id;
    assert.deepEqual(fs.readdirSync(path.join(d.dataRoot, 'overlay/active', srcId, 'upper')), [], 'the rootfs has nothing to freeze');
  }
  for (const step of steps)
    await round(step).catch((e: Error) => {
      e.message = `step ${step}: ${e.message}`;
      throw e;
    });
  async function round(step: string) {
    console.log(`# round ${step}`);
    // A write each round, so every clone has something to freeze.
    await ok(d, ['start', '-a', 'src']);
    starts++;
    await d.crashAt(step, () => d.api('POST', '/containers/src/clone').catch(() => undefined)); // the daemon dies mid-request

    const journal = path.join(d.dataRoot, 'clones');
    assert.deepEqual(fs.existsSync(journal) ? fs.readdirSync(journal) : [], [], `${step}: journal emptied`);
    const ids = (await ok(d, ['ps', '-aq', '--no-trunc'])).trim().split('\n');
    const srcId = JSON.parse(await ok(d, ['inspect', 'src']))[0].Id;
    for (const id of ids.filter((i) => i !== srcId)) {
      // Only a clone whose record was written survives, and it is whole.
      assert.equal(step, 'clone-record', `${step}: unexpected container ${id}`);
      assert.equal(await ok(d, ['start', '-a', id]), '');
      assert.equal(await ok(d, ['run', '--rm', '--volumes-from', id, 'busybox:local', 'cat', '/data/starts']), 's\n'.repeat(starts + 1));
      await ok(d, ['rm', '-v', id]);
    }
    assert.equal((await ok(d, ['volume', 'ls', '-q'])).trim(), 'srcdata', `${step}: no clone volume left`);
    assert.deepEqual(fs.readdirSync(path.join(d.dataRoot, 'overlay/active')), [srcId], `${step}: no snapshot left`);
    // Every frozen layer is stacked by SRC or its volume; none pending.
    const snap = JSON.parse(fs.readFileSync(path.join(d.dataRoot, 'overlay/active', srcId, 'snapshot.json'), 'utf8'));
    const vol = JSON.parse(fs.readFileSync(path.join(d.dataRoot, 'volumes/srcdata/volume.json'), 'utf8'));
    const frozen = frozenLayers(d);
    assert.deepEqual(frozen.rootfs.sort(), [...(snap.frozen ?? [])].sort(), `${step}: rootfs frozen layers`);
    assert.deepEqual(frozen.volumes.sort(), [...(vol.overlay?.lowers ?? [])].sort(), `${step}: volume frozen layers`);
    // SRC has all its data, and clones work again.
    const again = await d.docker(['start', '-a', 'src']);
    assert.equal(again.code, 0, `${step}: ${again.stderr} ${(await d.docker(['inspect', '-f', '{{json .State}}', 'src'])).stdout}`);
    starts++;
    assert.equal(await ok(d, ['run', '--rm', '--volumes-from', 'src', 'busybox:local', 'cat', '/data/starts']), 's\n'.repeat(starts));
    const r = await d.api('POST', '/containers/src/clone');
    assert.equal(r.status, 201, r.text);
    const clone = r.json.Clones[0].Id;
    await ok(d, ['start', '-a', clone]);
    assert.equal(await ok(d, ['run', '--rm', '--volumes-from', clone, 'busybox:local', 'cat', '/data/starts']), 's\n'.repeat(starts + 1));
    await ok(d, ['rm', '-v', clone]);
  }
  await ok(d, ['rm', '-v', 'src']);
  await ok(d, ['volume', 'rm', 'srcdata']);
  assert.deepEqual(frozenLayers(d), { rootfs: [], volumes: [] });
}
