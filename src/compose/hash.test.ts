import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { goFloat32, goString, resolveServiceReferences, serviceHash, serviceHashInput } from './hash.ts';
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

function load(yaml: string, env: Record<string, string> = {}, files: Record<string, string> = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-hash-'));
  try {
    fs.writeFileSync(path.join(dir, 'compose.yaml'), yaml);
    for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), text);
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

test('the less common keys are hashed in compose-go order: blkio, cgroups, cpu_*, gpus, hooks, volumes_from, ...; label_file merged into labels', () => {
  const p = load(
    `services:
  tuned:
    image: busybox
    annotations: [com.example.a=1]
    attach: false
    blkio_config:
      weight: 300
      weight_device: [{path: /dev/sda, weight: 400}]
      device_read_bps: [{path: /dev/sda, rate: 12mb}]
    cgroup_parent: /custom
    cgroup: private
    cpu_count: 2
    cpu_percent: 50
    cpu_period: 100000
    cpu_quota: 50000
    cpu_rt_period: 1000000
    cpu_rt_runtime: 950000
    credential_spec: {file: spec.json}
    device_cgroup_rules: ["c 1:3 mr"]
    gpus: all
    isolation: default
    label_file: ./labels.env
    labels: {b: from-yaml}
    mem_swappiness: 60
    oom_kill_disable: true
    runtime: runc
    storage_opt: {size: 1G}
    use_api_socket: true
    uts: host
    volumes_from: ["other:ro", "container:legacy"]
    pre_start: [{command: ["true"]}]
    post_start: [{command: echo hi, user: root}]
  other:
    image: busybox
`,
    {},
    { 'labels.env': 'a=from-file\nb=from-file\n' },
  );
  const s = p.services.tuned!;
  const json =
    '{"annotations":{"com.example.a":"1"},"attach":false,' +
    '"blkio_config":{"weight":300,"weight_device":[{"Path":"/dev/sda","Weight":400}],"device_read_bps":[{"Path":"/dev/sda","Rate":"12582912"}]},' +
    '"cgroup_parent":"/custom","cgroup":"private","cpu_count":2,"cpu_percent":50,"cpu_period":100000,"cpu_quota":50000,"cpu_rt_period":1000000,"cpu_rt_runtime":950000,' +
    '"command":null,"credential_spec":{"file":"spec.json"},"device_cgroup_rules":["c 1:3 mr"],"entrypoint":null,"gpus":[{"count":-1}],"image":"busybox",' +
    '"isolation":"default","labels":{"a":"from-file","b":"from-yaml"},"mem_swappiness":"60","networks":{"default":null},"oom_kill_disable":true,"runtime":"runc",' +
    '"storage_opt":{"size":"1G"},"use_api_socket":true,"uts":"host","volumes_from":["other:ro","container:legacy"],' +
    '"pre_start":[{"command":["true"],"image":"busybox"}],"post_start":[{"command":["echo","hi"],"user":"root"}]}';
  assert.equal(serviceHashInput(s), json);
  assert.equal(serviceHash(s), 'e57a27f3dcf2f679dc4560f9ee245f3422fd2f7e69bddc8f19860a310282da1f');
  // volumes_from a service makes it a dependency (without restart), as compose-go does
  assert.deepEqual(s.depends_on, { other: { condition: 'service_started', restart: false, required: true } });
  for (const [k, v] of [
    ['cgroup_parent', '/other'],
    ['attach', true],
    ['volumes_from', ['other']],
    ['cpu_period', 200000],
  ] as const)
    assert.notEqual(serviceHash({ ...s, [k]: v }), serviceHash(s), k);
});

test('references to other services are hashed as the container ids they resolve to, as docker compose does at create', () => {
  const p = load(`services:
  db:
    image: busybox
  side:
    image: busybox
    network_mode: service:db
    ipc: service:db
    pid: service:db
    volumes_from: ["db:ro", "container:legacy:rw"]
`);
  const s = p.services.side!;
  const resolved = resolveServiceReferences(s, (x) => (x === 'db' ? '0123abcd' : undefined));
  assert.equal(
    serviceHashInput(resolved),
    '{"command":null,"entrypoint":null,"image":"busybox","ipc":"container:0123abcd","network_mode":"container:0123abcd","pid":"container:0123abcd","volumes_from":["0123abcd","legacy"]}',
  );
  assert.equal(serviceHash(resolved), '47a1d325259f16e30655f5bc87aeea884833354067a13a39db8c545a82eab2a1');
  // another container of db: another hash; no container yet: the reference as written
  assert.notEqual(serviceHash(resolveServiceReferences(s, () => 'ffff')), serviceHash(resolved));
  assert.equal(resolveServiceReferences(s, () => undefined).network_mode, 'service:db');
  assert.equal(s.network_mode, 'service:db', 'the project itself is left as written');
  assert.deepEqual(Object.keys(s.depends_on), ['db']);
});

test('a ulimit written {soft: n, hard: n} is hashed as that object, the single form as a number (UlimitsConfig.MarshalJSON)', () => {
  const s = load('services:\n  a:\n    image: busybox\n    ulimits:\n      nofile: {soft: 1024, hard: 1024}\n      nproc: 512\n').services.a!;
  assert.equal(
    serviceHashInput(s),
    '{"command":null,"entrypoint":null,"image":"busybox","networks":{"default":null},"ulimits":{"nofile":{"soft":1024,"hard":1024},"nproc":512}}',
  );
  assert.equal(serviceHash(s), 'f9bb44616db63972ef3b37ee65317993f6751fb86c9adfb96d2c74328ebab590');
});

test('mem_limit and cpus written at the top level and under deploy.resources are hashed in both places; from deploy only, only there', () => {
  const both = load('services:\n  a:\n    image: busybox\n    mem_limit: 1g\n    cpus: 0.5\n    deploy: {resources: {limits: {memory: 1g, cpus: "0.5"}}}\n')
    .services.a!;
  assert.equal(
    serviceHashInput(both),
    '{"cpus":0.5,"command":null,"deploy":{"resources":{"limits":{"cpus":0.5,"memory":"1073741824"}},"placement":{}},"entrypoint":null,"image":"busybox","mem_limit":"1073741824","networks":{"default":null}}',
  );
  assert.equal(serviceHash(both), '0b0496169dc79b06ca80f8d3b093cbcde8519cebc08077019fef9811005da1d3');
  const deployOnly = load('services:\n  a:\n    image: busybox\n    deploy: {resources: {limits: {memory: 1g, cpus: "0.5"}}}\n').services.a!;
  assert.equal(deployOnly.mem_limit, 1 << 30, 'keel still applies it');
  assert.equal(
    serviceHashInput(deployOnly),
    '{"command":null,"deploy":{"resources":{"limits":{"cpus":0.5,"memory":"1073741824"}},"placement":{}},"entrypoint":null,"image":"busybox","networks":{"default":null}}',
  );
});
