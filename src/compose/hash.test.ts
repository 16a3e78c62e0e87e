import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { goFloat32, goString, serviceHash, serviceHashInput } from './hash.ts';
import { loadProject } from './load.ts';
import { configHash } from './serialize.ts';
import type { Service } from './types.ts';

/*
 * Where the expected values come from. docker compose v2 hashes a service as
 * sha256(json.Marshal(types.ServiceConfig)) after clearing build,
 * pull_policy, scale, deploy.replicas, depends_on and profiles
 * (pkg/compose/hash.go). The JSON below was written by hand from compose-go
 * v2's ServiceConfig (types/types.go: field order, json tags, omitempty and
 * omitzero, the MarshalJSON of UnitBytes, Duration, HostsList and
 * UlimitsConfig) and its loader (the default network, short volume and port
 * syntax, secret targets, environment resolution); the hex digests are
 * `printf '%s' '<that JSON>' | sha256sum`, not computed by hash.ts.
 * The first case is docker compose's own: TestCreateMobyContainer in
 * pkg/compose/convergence_test.go expects the label 8dbce408... for it.
 */

function load(yaml: string, env: Record<string, string> = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-hash-'));
  try {
    fs.writeFileSync(path.join(dir, 'compose.yaml'), yaml);
    return loadProject({ cwd: dir, projectName: 'p', env, onWarning: () => {} });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const bare = (over: Partial<Service>): Service => ({ name: 'test', environment: {}, ports: [], volumes: [], depends_on: {}, scale: 1, labels: {}, ...over });

test("docker compose's own known hash: a service on two networks with priorities", () => {
  const s = bare({ networks: { a: { priority: 10 }, b: { priority: 100 } } });
  assert.equal(serviceHashInput(s), '{"command":null,"entrypoint":null,"networks":{"a":{"priority":10},"b":{"priority":100}}}');
  assert.equal(serviceHash(s), '8dbce408396f8986266bc5deba0c09cfebac63c95c2238e405c7bee5f1bd84b8');
});

test('a web service: short syntax expanded as compose-go does, build/pull_policy/depends_on/replicas/x- keys left out', () => {
  const p = load(`services:
  web:
    image: nginx:1.25
    build: .
    pull_policy: always
    command: nginx -g "daemon off;"
    environment: [B=2, A=1, UNSET]
    ports: ["127.0.0.1:8080:80"]
    volumes:
      - data:/data
      - /srv/site:/usr/share/nginx/html:ro
    depends_on: [db]
    healthcheck:
      test: curl -f http://localhost/ || exit 1
      interval: 30s
      timeout: 5s
      retries: 3
    restart: unless-stopped
    labels:
      com.example.tier: "front & <back>"
    deploy:
      replicas: 2
    x-note: not hashed
  db:
    image: postgres
volumes:
  data:
`);
  const json =
    '{"command":["nginx","-g","daemon off;"],"deploy":{"resources":{},"placement":{}},"entrypoint":null,' +
    '"environment":{"A":"1","B":"2","UNSET":null},' +
    '"healthcheck":{"test":["CMD-SHELL","curl -f http://localhost/ || exit 1"],"timeout":"5s","interval":"30s","retries":3},' +
    '"image":"nginx:1.25","labels":{"com.example.tier":"front \\u0026 \\u003cback\\u003e"},"networks":{"default":null},' +
    '"ports":[{"mode":"ingress","host_ip":"127.0.0.1","target":80,"published":"8080","protocol":"tcp"}],"restart":"unless-stopped",' +
    '"volumes":[{"type":"volume","source":"data","target":"/data","volume":{}},{"type":"bind","source":"/srv/site","target":"/usr/share/nginx/html","read_only":true,"bind":{}}]}';
  assert.equal(serviceHashInput(p.services.web!), json);
  assert.equal(configHash(p.services.web!), '335c480bfe6faa89a0cd12fe172055d081b23893dffeaa066b457efe93d71f4b');
});

test('a worker: sizes, float32 cpus, durations, ulimits, extra_hosts, secrets, deploy resources', () => {
  const p = load(`services:
  worker:
    image: busybox
    entrypoint: ["/bin/sh", "-c"]
    command: []
    user: "1000:1000"
    working_dir: /work
    init: true
    cpus: 0.1
    pids_limit: 100
    shm_size: 64m
    stop_grace_period: 1m30s
    stop_signal: SIGTERM
    ulimits:
      nofile: 65535
      nproc: {soft: 1024, hard: 2048}
    extra_hosts: ["somehost:162.242.195.82", "otherhost=50.31.209.229"]
    sysctls:
      net.core.somaxconn: 1024
    tmpfs: /run
    secrets: [token]
    networks:
      back:
        aliases: [w]
    deploy:
      resources:
        limits: {memory: 1g}
        reservations: {cpus: "0.25"}
      restart_policy: {condition: on-failure, max_attempts: 3}
secrets:
  token:
    file: /etc/hostname
networks:
  back:
`);
  const json =
    '{"cpus":0.1,"command":[],' +
    '"deploy":{"resources":{"limits":{"memory":"1073741824"},"reservations":{"cpus":0.25}},"restart_policy":{"condition":"on-failure","max_attempts":3},"placement":{}},' +
    '"entrypoint":["/bin/sh","-c"],"extra_hosts":["otherhost=50.31.209.229","somehost=162.242.195.82"],"image":"busybox","init":true,"networks":{"back":{"aliases":["w"]}},' +
    '"pids_limit":100,"secrets":[{"source":"token","target":"/run/secrets/token"}],"shm_size":"67108864","stop_grace_period":"1m30s","stop_signal":"SIGTERM",' +
    '"sysctls":{"net.core.somaxconn":"1024"},"tmpfs":["/run"],"ulimits":{"nofile":65535,"nproc":{"soft":1024,"hard":2048}},"user":"1000:1000","working_dir":"/work"}';
  assert.equal(serviceHashInput(p.services.worker!), json);
  assert.equal(serviceHash(p.services.worker!), 'd4d018a3e913978027e774e31bebb6d8b3fbbda19f8582710d5ef78ac9e2060f');
});

test("develop.watch: a trigger's exec is a struct value, written even when empty", () => {
  const s = bare({ image: 'x', networks: undefined, develop: { watch: [{ path: '/src', action: 'sync', target: '/app' }] } } as Partial<Service>);
  assert.equal(
    serviceHashInput(s),
    '{"develop":{"watch":[{"path":"/src","action":"sync","target":"/app","exec":{"command":null}}]},"command":null,"entrypoint":null,"image":"x"}',
  );
  assert.equal(serviceHash(s), 'cb187f715286ea1de4dbf11fa771284c6ab352d0ad836a65f1151a4811fae2f8');
});

test('what changes the hash and what does not', () => {
  const base = load('services:\n  a:\n    image: busybox\n    environment: {A: "1"}\n').services.a!;
  const same = load(
    'services:\n  a:\n    image: busybox\n    environment: [A=1]\n    scale: 3\n    profiles: [x]\n    pull_policy: never\n    build: {context: /tmp}\n    x-y: 1\n',
    { COMPOSE_PROFILES: 'x' },
  ).services.a!;
  assert.equal(serviceHash(same), serviceHash(base));
  assert.notEqual(serviceHash({ ...base, environment: { A: '2' } }), serviceHash(base));
  assert.notEqual(serviceHash({ ...base, command: ['sh'] }), serviceHash(base));
  assert.notEqual(serviceHash({ ...base, command: [] }), serviceHash(base));
});

test('Go encodings: HTML-safe strings, shortest float32', () => {
  assert.equal(goString('a<b>&c\u2028"\n'), '"a\\u003cb\\u003e\\u0026c\\u2028\\"\\n"');
  assert.equal(goFloat32(0.1), '0.1');
  assert.equal(goFloat32(1.5), '1.5');
  assert.equal(goFloat32(2), '2');
  assert.equal(goFloat32(0.3333333333), '0.33333334');
});
