import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import type { Readable } from 'node:stream';
import type { ComposeBackend } from './backend.ts';
import { planContainer } from './convert.ts';
import { injectedFiles, injectFiles } from './inject.ts';
import { projectOf } from './fake.ts';
import { configHash } from './serialize.ts';

const project = (yaml: string, env: Record<string, string> = {}) => projectOf(yaml, { env, files: { 'key.txt': 'from-file' } });

const YAML = `services:
  web:
    image: busybox
    secrets:
      - token
      - {source: api_key, target: named_key, uid: "1000", gid: "1001", mode: 0400}
      - {source: file_key, target: /etc/key}
    configs:
      - app_conf
      - {source: other, target: etc/other.conf, mode: 0640}
secrets:
  token: {environment: TOKEN}
  api_key: {environment: API_KEY}
  file_key: {file: ./key.txt}
configs:
  app_conf:
    content: |
      level=\${LEVEL:-info}
      user=$$USER
  other: {content: "x"}
`;

test('environment and content sources are files to copy in, with their paths, modes and owners; file sources stay binds', () => {
  const p = project(YAML, { TOKEN: 't0k', API_KEY: 'k3y', LEVEL: 'debug' });
  const s = p.services.web!;
  assert.deepEqual(injectedFiles(p, s), [
    { path: '/run/secrets/token', content: 't0k', mode: 0o444, uid: 0, gid: 0 },
    { path: '/run/secrets/named_key', content: 'k3y', mode: 0o400, uid: 1000, gid: 1001 },
    // content is interpolated, $$ is a literal $
    { path: '/app_conf', content: 'level=debug\nuser=$USER\n', mode: 0o444, uid: 0, gid: 0 },
    { path: '/etc/other.conf', content: 'x', mode: 0o640, uid: 0, gid: 0 },
  ]);
  const plan = planContainer(p, s, 1, { imageId: 'sha256:x' });
  assert.deepEqual(plan.spec.host.Binds, []);
  assert.deepEqual(plan.spec.host.Mounts, [{ Type: 'bind', Source: path.join(p.workingDir, 'key.txt'), Target: '/etc/key', ReadOnly: true }]);
});

test('a missing variable is an error naming it; an empty one gives no file; a read-only service refuses inline sources', () => {
  assert.throws(
    () => injectedFiles(project(YAML, { API_KEY: 'k' }), project(YAML, { API_KEY: 'k' }).services.web!),
    /environment variable "TOKEN" required by secret "token" is not set/,
  );
  const p = project(YAML, { TOKEN: '', API_KEY: 'k' });
  assert.deepEqual(
    injectedFiles(p, p.services.web!).map((f) => f.path),
    ['/run/secrets/named_key', '/app_conf', '/etc/other.conf'],
  );
  const ro = project(YAML.replace('    image: busybox\n', '    image: busybox\n    read_only: true\n'), { TOKEN: 't', API_KEY: 'k' });
  assert.throws(() => injectedFiles(ro, ro.services.web!), /cannot create secret "token" in read-only service web: `file` is the sole supported option/);
});

test('the content is not part of the config hash (as in docker compose)', () => {
  const a = project(YAML, { TOKEN: 'one', API_KEY: 'k' });
  const b = project(YAML, { TOKEN: 'two', API_KEY: 'k' });
  assert.equal(configHash(a.services.web!), configHash(b.services.web!));
});

test('injectFiles uploads one tar at / holding every file with its header', async () => {
  const p = project(YAML, { TOKEN: 't0k', API_KEY: 'k3y' });
  const uploads: { id: string; dir: string; entries: { name: string; mode: number; uid: number; gid: number; body: string }[] }[] = [];
  const tarStream = (await import('tar-stream')).default;
  const b = {
    copyToContainer: async (id: string, dir: string, tar: Readable) => {
      const entries: (typeof uploads)[number]['entries'] = [];
      const ex = tarStream.extract();
      ex.on('entry', (h, stream, next) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c) => void chunks.push(c as Buffer));
        stream.on('end', () => {
          entries.push({ name: h.name, mode: h.mode!, uid: h.uid!, gid: h.gid!, body: Buffer.concat(chunks).toString() });
          next();
        });
      });
      tar.pipe(ex);
      await new Promise<void>((res) => ex.on('finish', () => res()));
      uploads.push({ id, dir, entries });
    },
  } as unknown as ComposeBackend;
  await injectFiles(b, p, p.services.web!, 'c1');
  assert.equal(uploads.length, 1);
  assert.equal(uploads[0]!.dir, '/');
  assert.deepEqual(uploads[0]!.entries[1], { name: 'run/secrets/named_key', mode: 0o400, uid: 1000, gid: 1001, body: 'k3y' });
  assert.deepEqual(
    uploads[0]!.entries.map((e) => e.name),
    ['run/secrets/token', 'run/secrets/named_key', 'app_conf', 'etc/other.conf'],
  );
  // a service without inline sources uploads nothing
  const plain = project('services: {web: {image: busybox}}\n');
  await injectFiles(b, plain, plain.services.web!, 'c2');
  assert.equal(uploads.length, 1);
});

test('uid, gid and mode of a file source are ignored, with the warning docker compose gives', async () => {
  const { fileRefWarnings } = await import('./inject.ts');
  const p = project(YAML.replace('      - {source: file_key, target: /etc/key}', '      - {source: file_key, target: /etc/key, mode: 0400}'), {
    TOKEN: 't',
    API_KEY: 'k',
  });
  assert.deepEqual(fileRefWarnings(p, p.services.web!), ['secrets `uid`, `gid` and `mode` are not supported, they will be ignored']);
  const plain = project(YAML, { TOKEN: 't', API_KEY: 'k' });
  assert.deepEqual(fileRefWarnings(plain, plain.services.web!), []);
});
