import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { busyboxDaemon, project } from './helpers.ts';

/** secrets and configs from environment: and content:, copied into the containers as docker compose does. */
const d = busyboxDaemon('keel-compose-secrets');

test('environment and content sources land at their paths with mode and owner; file sources stay read-only binds; run gets them too', async () => {
  const p = project(d, 'sec', {
    'compose.yaml': `services:
  app:
    image: busybox:local
    command: ["sleep", "300"]
    stop_signal: SIGKILL
    secrets:
      - db_password
      - {source: api_key, target: api, uid: "1000", gid: "1001", mode: 0400}
      - file_secret
    configs:
      - app_conf
      - {source: nginx_conf, target: /etc/nginx/site.conf}
secrets:
  db_password: {environment: DB_PASSWORD}
  api_key: {environment: API_KEY}
  file_secret: {file: ./secret.txt}
configs:
  app_conf:
    content: |
      greeting=\${GREETING:-hello}
  nginx_conf: {content: "listen 80;"}
`,
    'secret.txt': 'on-disk',
  });
  const env = { DB_PASSWORD: 'pa55', API_KEY: 'k3y', GREETING: 'hi' };
  const up = await p.compose(['up', '-d'], env);
  assert.equal(up.code, 0, `${up.stderr}\n${d.log.slice(-2000)}`);
  const sh = (cmd: string) => d.docker(['exec', 'sec-app-1', 'sh', '-c', cmd]);
  assert.equal((await sh('cat /run/secrets/db_password')).stdout, 'pa55');
  assert.equal((await sh('stat -c "%a %u %g" /run/secrets/db_password')).stdout.trim(), '444 0 0');
  assert.equal((await sh('cat /run/secrets/api')).stdout, 'k3y');
  assert.equal((await sh('stat -c "%a %u %g" /run/secrets/api')).stdout.trim(), '400 1000 1001');
  assert.equal((await sh('cat /app_conf')).stdout, 'greeting=hi\n');
  assert.equal((await sh('cat /etc/nginx/site.conf')).stdout, 'listen 80;');
  assert.equal((await sh('cat /run/secrets/file_secret')).stdout, 'on-disk');
  assert.notEqual((await sh('echo x > /run/secrets/file_secret')).code, 0);
  // the content is no part of the config hash: a new value is used when the container is made again
  const again = await p.compose(['up', '-d', '--force-recreate'], { ...env, DB_PASSWORD: 'n3w' });
  assert.equal(again.code, 0, again.stderr);
  assert.equal((await sh('cat /run/secrets/db_password')).stdout, 'n3w');
  // a stopped container that up starts again gets the current value too (it is copied in before each start)
  assert.equal((await p.compose(['stop'], env)).code, 0);
  const restart = await p.compose(['up', '-d'], { ...env, DB_PASSWORD: 'th1rd' });
  assert.equal(restart.code, 0, restart.stderr);
  assert.equal((await sh('cat /run/secrets/db_password')).stdout, 'th1rd');
  const run = await p.compose(['run', '--rm', '-T', 'app', 'cat', '/run/secrets/api', '/app_conf'], env);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, 'k3ygreeting=hi\n');
  assert.equal((await p.compose(['down'], env)).code, 0);
});

test('a missing variable fails up before anything runs, naming it', async () => {
  const p = project(d, 'secmiss', {
    'compose.yaml': `services:
  app:
    image: busybox:local
    command: ["sleep", "300"]
    secrets: [token]
secrets:
  token: {environment: NOT_SET_ANYWHERE}
`,
  });
  const r = await p.compose(['up', '-d']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /environment variable "NOT_SET_ANYWHERE" required by secret "token" is not set/);
  const ps = await p.compose(['ps', '-a', '-q']);
  assert.equal(ps.stdout.trim(), '');
  assert.equal((await p.compose(['down'])).code, 0);
});

test('a secret file that does not exist fails up and is not made on the host', async () => {
  const p = project(d, 'secfile', {
    'compose.yaml': `services:
  app:
    image: busybox:local
    command: ["sleep", "300"]
    secrets: [gone]
secrets:
  gone: {file: ./missing.txt}
`,
  });
  const r = await p.compose(['up', '-d']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /bind source path does not exist: .*missing\.txt/);
  assert.equal(fs.existsSync(path.join(p.dir, 'missing.txt')), false);
  assert.equal((await p.compose(['down'])).code, 0);
});
