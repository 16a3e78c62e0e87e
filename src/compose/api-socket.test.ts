import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { API_SOCKET_CONFIG, withApiSocket } from './api-socket.ts';
import { planContainer } from './convert.ts';
import { injectedFiles } from './inject.ts';
import { loadProject } from './load.ts';
import { configHash } from './serialize.ts';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'compose-apisock-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

test('use_api_socket binds the socket, adds the credentials config and DOCKER_CONFIG; other services are untouched', () => {
  const d = path.join(root, 'app');
  fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(
    path.join(d, 'compose.yaml'),
    `services:
  ci: {image: docker, use_api_socket: true}
  own: {image: docker, use_api_socket: true, environment: {DOCKER_CONFIG: /cfg}}
  plain: {image: busybox}
`,
  );
  const p = loadProject({ cwd: d, env: {}, onWarning: () => {} });
  const json = '{"auths":{"reg.example":{"auth":"dTpw"}}}\n';
  const q = withApiSocket(p, '/run/keel/keel.sock', json);
  const ci = q.services.ci!;
  assert.ok(planContainer(q, ci, 1, { imageId: 'x' }).spec.host.Binds!.includes('/run/keel/keel.sock:/var/run/docker.sock'));
  assert.equal(ci.environment.DOCKER_CONFIG, '/run/secrets/docker');
  assert.equal(q.services.own!.environment.DOCKER_CONFIG, '/cfg');
  assert.deepEqual(injectedFiles(q, ci), [{ path: '/run/secrets/docker/config.json', content: json, mode: 0o444, uid: 0, gid: 0 }]);
  assert.equal(q.configs[API_SOCKET_CONFIG]!.content, json);
  assert.equal(q.services.plain, p.services.plain);
  // the changed service is what is hashed (docker compose changes the project before it hashes)
  assert.notEqual(configHash(ci), configHash(p.services.ci!));
  // the loaded project itself is not changed
  assert.equal(p.services.ci!.volumes.length, 0);
});
