import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { runSpecOptions } from '../containers/runspec.ts';
import { hostConfigOf } from '../containers/record.ts';
import type { ContainerRecord } from '../containers/types.ts';
import { type DaemonFlags, engineOptions, mergeConfig, readConfigFile } from './daemonconfig.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-dcfg-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(content: unknown): string {
  const f = path.join(dir, `d${n++}.json`);
  fs.writeFileSync(f, typeof content === 'string' ? content : JSON.stringify(content));
  return f;
}
const FLAGS: DaemonFlags = {
  configFile: '/etc/keel/daemon.json',
  dataRoot: '/var/lib/keel',
  execRoot: '/run/keel',
  logLevel: 'info',
  cgroupParent: '/keel',
  bridge: 'keel0',
  logOpt: [],
  registryMirror: [],
  insecureRegistry: [],
  defaultUlimit: [],
};
const fromFile = (content: unknown, cli: string[] = [], flags: Partial<DaemonFlags> = {}) => {
  const f = file(content);
  return mergeConfig({ ...FLAGS, ...flags, configFile: f }, readConfigFile(f, true), (k) => cli.includes(k));
};

test('dockerd keys map to the engine options', () => {
  const o = engineOptions(
    fromFile({
      'data-root': '/srv/keel',
      'exec-root': '/run/k2',
      hosts: ['unix:///run/k2/k.sock'],
      'log-level': 'debug',
      'log-driver': 'json-file',
      'log-opts': { 'max-size': '10m', 'max-file': '3' },
      'registry-mirrors': ['https://mirror.example.com/'],
      'insecure-registries': ['reg.lan:5000'],
      'default-address-pools': [{ base: '10.90.0.0/16', size: 24 }],
      bip: '10.91.0.1/24',
      bridge: 'kbr0',
      'cgroup-parent': '/kp',
      'default-ulimits': { nofile: { Name: 'nofile', Soft: 1000, Hard: 2000 } },
      'default-pids-limit': 300,
      'max-layer-size': '1g',
      'max-image-size': 4294967296,
    }),
  );
  assert.equal(o.dataRoot, '/srv/keel');
  assert.equal(o.execRoot, '/run/k2');
  assert.equal(o.cgroupParent, '/kp');
  assert.deepEqual(o.defaultLogConfig, { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } });
  assert.deepEqual(o.registries, { mirrors: { 'docker.io': ['https://mirror.example.com'] }, insecure: ['reg.lan:5000'] });
  assert.deepEqual(o.network, { defaultBridge: { bridgeName: 'kbr0', subnet: '10.91.0.0/24', gateway: '10.91.0.1' }, pool: '10.90.0.0/16', poolPrefix: 24 });
  assert.deepEqual(o.containerDefaults, { ulimits: [{ Name: 'nofile', Soft: 1000, Hard: 2000 }], pidsLimit: 300 });
  assert.deepEqual(o.imageLimits, { maxLayerBytes: 1 << 30, maxImageBytes: 4294967296 });
  // No file settings: nothing beyond the flags.
  const plain = engineOptions(FLAGS);
  assert.equal(plain.defaultLogConfig, undefined);
  assert.equal(plain.containerDefaults, undefined);
  assert.equal(plain.registries, undefined);
});

test('a setting given as a flag and in the file is refused, as dockerd does', () => {
  assert.throws(() => fromFile({ bridge: 'kbr0', 'log-level': 'debug' }, ['bridge'], { bridge: 'br9' }), {
    code: 'INVALID_ARGUMENT',
    message: /the following directives are specified both as a flag and in the configuration file: bridge: \(from flag: "br9", from file: "kbr0"\)/,
  });
  assert.throws(() => fromFile({ 'registry-mirrors': ['https://m'] }, ['registryMirror'], { registryMirror: ['https://x'] }), /registry-mirror: \(from flag/);
  // The file fills what the flags left at their defaults.
  assert.equal(fromFile({ bridge: 'kbr0' }, ['logLevel']).bridge, 'kbr0');
});

test('unknown keys, bad JSON and bad values are errors naming the key', () => {
  assert.throws(() => fromFile({ 'data-root': '/x', debugg: true, foo: 1 }), /don't match any configuration option: debugg, foo/);
  assert.throws(() => fromFile('{"bip": '), /is not valid JSON/);
  assert.throws(() => fromFile('[]'), /must hold a JSON object/);
  const bad: [unknown, RegExp][] = [
    [{ 'default-pids-limit': 'many' }, /"default-pids-limit" .*expected an integer/],
    [{ 'default-ulimits': { nofile: { Soft: 'a', Hard: 2 } } }, /"default-ulimits" .*"nofile" needs integer/],
    [{ 'log-opts': { 'max-size': 10 } }, /"log-opts" .*"max-size" must be a string/],
    [{ hosts: ['unix:///a', 'unix:///b'] }, /"hosts" .*exactly one unix socket/],
    [
      {
        'default-address-pools': [
          { base: '10.0.0.0/8', size: 24 },
          { base: '10.1.0.0/16', size: 24 },
        ],
      },
      /"default-address-pools" .*exactly one pool/,
    ],
    [{ 'data-root': 5 }, /"data-root" .*non-empty string/],
  ];
  for (const [c, re] of bad) assert.throws(() => fromFile(c), re, JSON.stringify(c));
  const badValue: [unknown, RegExp][] = [
    [{ bip: '10.0.0.1' }, /invalid "bip" \(--bip\) "10.0.0.1"/],
    [{ 'default-ulimits': { nofiles: { Name: 'nofiles', Soft: 1, Hard: 2 } } }, /invalid "default-ulimits" \(--default-ulimit\) "nofiles=1:2": unknown ulimit/],
    [{ 'default-ulimits': { nofile: { Soft: 3, Hard: 2 } } }, /"default-ulimits".*soft limit must be less/],
    [{ 'log-level': 'loud' }, /invalid "log-level" .*use one of/],
    [{ 'insecure-registries': ['10.0.0.0/8'] }, /invalid "insecure-registries" .*not URLs or CIDR ranges/],
    [{ 'registry-mirrors': ['ftp://m'] }, /invalid "registry-mirrors"/],
    [{ 'cgroup-parent': 'rel' }, /invalid "cgroup-parent"/],
    [{ 'max-layer-size': 'lots' }, /invalid "max-layer-size"/],
    [{ hosts: ['tcp://0.0.0.0:2375'] }, /invalid "hosts" .*unix socket/],
  ];
  for (const [c, re] of badValue) assert.throws(() => engineOptions(fromFile(c)), re, JSON.stringify(c));
});

test('the default file may be missing; a named one may not', () => {
  assert.deepEqual(readConfigFile(path.join(dir, 'none.json'), false), {});
  assert.throws(() => readConfigFile(path.join(dir, 'none.json'), true), /does not exist/);
  assert.deepEqual(readConfigFile(file(''), true), {});
});

test('default ulimits and pids limit apply where the container sets none', () => {
  const rec = (h: object) =>
    ({
      id: 'a'.repeat(64),
      name: 'c',
      config: { Entrypoint: null, Cmd: ['true'], Env: [], Hostname: 'h', Tty: false },
      hostConfig: { ...hostConfigOf({ image: 'x' }), ...h },
    }) as unknown as ContainerRecord;
  const inp = (defaults?: object) => ({
    rootfs: '/r',
    user: { uid: 0, gid: 0, additionalGids: [], home: '/' },
    cwd: '/',
    netns: 'private' as const,
    files: {},
    cgroupsPath: '/k/a',
    defaults,
  });
  const defaults = {
    ulimits: [
      { Name: 'nofile', Soft: 100, Hard: 200 },
      { Name: 'nproc', Soft: 50, Hard: 60 },
    ],
    pidsLimit: 77,
  };
  const d = runSpecOptions(rec({}), inp(defaults));
  assert.equal(d.resources!.pidsLimit, 77);
  assert.deepEqual(d.rlimits, [
    { type: 'RLIMIT_NOFILE', soft: 100, hard: 200 },
    { type: 'RLIMIT_NPROC', soft: 50, hard: 60 },
  ]);
  const own = runSpecOptions(rec({ PidsLimit: 5, Ulimits: [{ Name: 'nofile', Soft: 10, Hard: 20 }] }), inp(defaults));
  assert.equal(own.resources!.pidsLimit, 5);
  assert.deepEqual(own.rlimits, [
    { type: 'RLIMIT_NOFILE', soft: 10, hard: 20 },
    { type: 'RLIMIT_NPROC', soft: 50, hard: 60 },
  ]);
  assert.equal(runSpecOptions(rec({ PidsLimit: -1 }), inp(defaults)).resources!.pidsLimit, -1, 'a negative limit is unlimited, not the default');
  assert.equal(runSpecOptions(rec({}), inp()).resources!.pidsLimit, undefined);
});
