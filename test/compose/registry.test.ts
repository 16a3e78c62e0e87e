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
