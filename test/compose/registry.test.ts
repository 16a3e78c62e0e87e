import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type Registry, startRegistry } from '../registry/helpers.ts';
import { project, TestDaemon } from './helpers.ts';

/** compose pull, push and create against a local registry; up pulls a missing image. */
const d = new TestDaemon('keel-compose-reg');
let reg: Registry;

before(async () => {
  await d.start();
  await d.importBusybox();
  reg = await startRegistry();
  for (const args of [
    ['tag', 'busybox:local', `${reg.host}/bb:1`],
    ['push', `${reg.host}/bb:1`],
    ['rmi', `${reg.host}/bb:1`],
  ]) {
    const r = await d.docker(args);
    assert.equal(r.code, 0, r.stderr);
  }
});
after(async () => {
  await d.cleanup();
  await reg?.stop();
});

test('pull, create, push, and up pulling what is missing', async () => {
  const p = project(d, 'reg', {
    'compose.yaml': `services:
  app:
    image: ${reg.host}/bb:1
    command: ["sleep", "300"]
  mine:
    image: ${reg.host}/mine:2
    build: .
    command: ["sleep", "300"]
`,
    Dockerfile: 'FROM busybox:local\n',
  });
  const pull = await p.compose(['pull', 'app']);
  assert.equal(pull.code, 0, pull.stderr);
  assert.match(pull.stderr, new RegExp(`Image ${reg.host}/bb:1 {2}Pulled`));
  assert.equal((await d.docker(['image', 'inspect', `${reg.host}/bb:1`])).code, 0);

  assert.equal((await d.docker(['tag', 'busybox:local', `${reg.host}/mine:2`])).code, 0);
  const push = await p.compose(['push', 'mine']);
  assert.equal(push.code, 0, push.stderr);
  const tags = (await fetch(`http://${reg.host}/v2/mine/tags/list`).then((r) => r.json())) as { tags: string[] };
  assert.deepEqual(tags.tags, ['2']);

  const create = await p.compose(['create']);
  assert.equal(create.code, 0, create.stderr);
  const ps = (await p.compose(['ps', '-a', '--format', 'json'])).stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(ps.map((r) => [r.Service, r.State]).sort(), [
    ['app', 'created'],
    ['mine', 'created'],
  ]);
  assert.equal((await p.compose(['down'])).code, 0);

  // up pulls an image that is not there
  assert.equal((await d.docker(['rmi', `${reg.host}/bb:1`])).code, 0);
  const up = await p.compose(['up', '-d', 'app']);
  assert.equal(up.code, 0, up.stderr);
  assert.match(up.stderr, /Pulled/);
  assert.equal((await p.compose(['down', '-t', '1'])).code, 0);
});

test('pull_policy every_<d> pulls again once the last pull is older than the window; weekly does not; build builds every up', async () => {
  const p = project(d, 'refresh', {
    'compose.yaml': `services:
  often:
    image: ${reg.host}/bb:1
    pull_policy: every_1s
    command: ["sleep", "300"]
    stop_signal: SIGKILL
  seldom:
    image: ${reg.host}/bb:1
    pull_policy: weekly
    command: ["sleep", "300"]
    stop_signal: SIGKILL
  built:
    image: refresh-built:1
    pull_policy: build
    build: .
    command: ["sleep", "300"]
    stop_signal: SIGKILL
`,
    // an image of its own, so building it leaves bb:1's record (and LastTagTime) alone
    Dockerfile: 'FROM busybox:local\nLABEL built=yes\n',
  });
  await d.docker(['rmi', `${reg.host}/bb:1`]);
  const first = await p.compose(['up', '-d']);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stderr, /Pulled/);
  assert.match(first.stderr, /Service built {2}Built/);
  const lastTag = async () => Date.parse(JSON.parse((await d.docker(['image', 'inspect', `${reg.host}/bb:1`])).stdout)[0].Metadata.LastTagTime);
  const pulledAt = await lastTag();
  // within the window: nothing pulled; the build policy builds again
  const second = await p.compose(['up', '-d']);
  assert.equal(second.code, 0, second.stderr);
  if (Date.now() < pulledAt + 1000) assert.doesNotMatch(second.stderr, /Pulling/);
  assert.match(second.stderr, /Service built {2}Built/);
  // (the second up may have come after the window, and pulled again)
  const before = await lastTag();
  // the window is the feature under test: wait until the last pull is older than it
  while (Date.now() <= before + 1000) await new Promise((res) => setTimeout(res, before + 1001 - Date.now()));
  const third = await p.compose(['up', '-d', 'often', 'seldom']);
  assert.equal(third.code, 0, third.stderr);
  assert.equal(third.stderr.match(/Image \S+ {2}Pulled/g)?.length, 1, third.stderr);
  assert.ok((await lastTag()) > before, 'the pull tagged the image again');
  assert.equal((await p.compose(['down'])).code, 0);
});
