import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TestDaemon } from '../helpers/daemon.ts';
import { type Registry, startRegistry } from '../registry/helpers.ts';
import { writeContext } from './helpers.ts';

const d = new TestDaemon('keel-buildpull');
const LEGACY = { DOCKER_BUILDKIT: '0' };
let reg: Registry;

before(async () => {
  reg = await startRegistry({ htpasswd: { user: 'builder', pass: 's3cret' } });
  await d.start();
  await d.importBusybox();
  const login = await d.docker(['login', '-u', 'builder', '--password-stdin', reg.host], { input: 's3cret' });
  assert.equal(login.code, 0, login.stderr);
  assert.equal((await d.docker(['tag', 'busybox:local', `${reg.host}/base/bb:1`])).code, 0);
  const push = await d.docker(['push', `${reg.host}/base/bb:1`]);
  assert.equal(push.code, 0, push.stderr);
  assert.equal((await d.docker(['rmi', `${reg.host}/base/bb:1`])).code, 0);
});
after(async () => {
  await d.cleanup();
  await reg.stop();
});

describe('FROM pulls a missing base image', () => {
  test('with the credentials the docker CLI sends in X-Registry-Config, showing pull progress', async () => {
    const ctx = writeContext(path.join(d.dir, 'ctx-pull'), { Dockerfile: `FROM ${reg.host}/base/bb:1\nRUN echo pulled > /p\nCMD ["cat", "/p"]\n` });
    const r = await d.docker(['build', '-t', 'pulled:1', ctx], { env: LEGACY });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /1: Pulling from base\/bb/);
    assert.match(r.stdout, /Status: Downloaded newer image for 127\.0\.0\.1:\d+\/base\/bb:1/);
    assert.equal((await d.docker(['run', '--rm', 'pulled:1'])).stdout, 'pulled\n');
    // --pull fetches again even when present; without credentials the registry refuses.
    assert.equal((await d.docker(['logout', reg.host])).code, 0);
    const denied = await d.docker(['build', '--pull', ctx], { env: LEGACY });
    assert.notEqual(denied.code, 0);
    assert.match(denied.stdout + denied.stderr, /unauthorized|authentication required|no basic auth/i);
  });

  test('--cache-from: an image named there serves as cache after the local cache is gone (history match, as the legacy builder)', async () => {
    assert.equal((await d.docker(['login', '-u', 'builder', '--password-stdin', reg.host], { input: 's3cret' })).code, 0);
    const ctx = writeContext(path.join(d.dir, 'ctx-cachefrom'), {
      Dockerfile: 'FROM busybox:local\nENV X=1\nRUN echo expensive > /e\nCOPY f /f\nCMD ["cat", "/e", "/f"]\n',
      f: 'file\n',
    });
    const first = await d.docker(['build', '-t', `${reg.host}/app/cached:1`, ctx], { env: LEGACY });
    assert.equal(first.code, 0, first.stderr);
    assert.equal((await d.docker(['push', `${reg.host}/app/cached:1`])).code, 0);
    assert.equal((await d.keel(['builder', 'prune', '-f'])).code, 0);
    const cold = await d.docker(['build', ctx], { env: LEGACY });
    assert.doesNotMatch(cold.stdout, /Using cache/);
    assert.equal((await d.keel(['builder', 'prune', '-f'])).code, 0);
    const warm = await d.docker(['build', '--cache-from', `${reg.host}/app/cached:1`, '-t', 'fromcache:1', ctx], { env: LEGACY });
    assert.equal(warm.code, 0, warm.stderr);
    assert.equal(warm.stdout.match(/ ---> Using cache/g)?.length, 4, warm.stdout);
    assert.doesNotMatch(warm.stdout, /Running in/);
    assert.equal((await d.docker(['run', '--rm', 'fromcache:1'])).stdout, 'expensive\nfile\n');
  });
});
