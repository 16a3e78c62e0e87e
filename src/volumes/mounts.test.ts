import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { parseBind, parseMountSpec, parseTmpfsOptions, parseVolumesFrom, resolveMounts, toDockerMountPoint, validMountMode } from './mounts.ts';

const volumePath = (n: string) => `/var/lib/keel/volumes/${n}/_data`;
const resolve = (input: Parameters<typeof resolveMounts>[0]) => resolveMounts(input, { volumePath }).mounts;
const throwsMsg = (fn: () => unknown, msg: string) =>
  assert.throws(fn, (e: Error) => {
    assert.equal(e.message, msg);
    return true;
  });

test('-v name:/path[:ro] is a named volume', () => {
  const m = parseBind('data:/srv/data:ro');
  assert.equal(m.type, 'volume');
  assert.equal(m.name, 'data');
  assert.equal(m.destination, '/srv/data');
  assert.equal(m.readonly, true);
  assert.equal(m.anonymous, false);
  assert.equal(m.copyData, true);
  assert.equal(m.mode, 'ro');
});

test('-v /host:/path:ro,z is a bind with rprivate propagation, created when missing', () => {
  const m = parseBind('/srv/../host//dir/:/x:ro,z');
  assert.equal(m.type, 'bind');
  assert.equal(m.source, '/host/dir');
  assert.equal(m.destination, '/x');
  assert.equal(m.readonly, true);
  assert.equal(m.propagation, 'rprivate');
  assert.equal(m.createSource, true);
  assert.equal(parseBind('/h:/x:rshared').propagation, 'rshared');
  assert.equal(parseBind('/h:/x:rw').readonly, false);
});

test('-v /path alone is an anonymous volume with a 64-hex name', () => {
  const m = parseBind('/data');
  assert.equal(m.type, 'volume');
  assert.match(m.name!, /^[0-9a-f]{64}$/);
  assert.equal(m.anonymous, true);
});

test("-v errors are docker's", () => {
  throwsMsg(() => parseBind('/foo:rw'), "invalid volume specification: '/foo:rw'");
  throwsMsg(() => parseBind('a:b:c:d'), "invalid volume specification: 'a:b:c:d'");
  throwsMsg(() => parseBind(':/x'), "invalid volume specification: ':/x'");
  throwsMsg(() => parseBind('/h:/x:bogus'), 'invalid mode: bogus');
  throwsMsg(() => parseBind('/h:/x:ro,rw'), 'invalid mode: ro,rw');
  throwsMsg(
    () => parseBind('/h:/'),
    `invalid volume specification: '/h:/': invalid mount config for type "bind": invalid specification: destination can't be '/'`,
  );
  throwsMsg(
    () => parseBind('/h:rel'),
    `invalid volume specification: '/h:rel': invalid mount config for type "bind": invalid mount path: 'rel' mount path must be absolute`,
  );
  throwsMsg(
    () => parseBind('/h:/x:nocopy'),
    `invalid volume specification: '/h:/x:nocopy': invalid mount config for type "bind": field VolumeOptions must not be specified`,
  );
  throwsMsg(
    () => parseBind('v1:/x:rshared'),
    `invalid volume specification: 'v1:/x:rshared': invalid mount config for type "volume": field BindOptions must not be specified`,
  );
});

test("volume names with / or .. are refused, like docker's local driver", () => {
  const msg = (n: string) =>
    `create ${n}: "${n}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`;
  throwsMsg(() => parseBind('../../etc:/x'), msg('../../etc'));
  throwsMsg(() => parseBind('a/b:/x'), msg('a/b'));
  throwsMsg(() => parseBind('.hidden:/x'), msg('.hidden'));
  throwsMsg(() => parseBind('a:/x'), 'create a: volume name is too short, names should be at least two alphanumeric characters');
  throwsMsg(() => resolve({ mounts: [{ Type: 'volume', Source: '..', Target: '/x' }] }), msg('..'));
});

test('nocopy turns copy-up off', () => {
  assert.equal(parseBind('v1:/x:nocopy').copyData, false);
  assert.equal(parseMountSpec({ Type: 'volume', Source: 'v1', Target: '/x', VolumeOptions: { NoCopy: true } }).copyData, false);
});

test('--mount type=bind needs an existing source; -v does not', () => {
  throwsMsg(
    () => parseMountSpec({ Type: 'bind', Source: '/nope', Target: '/x' }, { bindSourceExists: () => false }),
    'invalid mount config for type "bind": bind source path does not exist: /nope',
  );
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-mnt-'));
  try {
    const m = parseMountSpec({ Type: 'bind', Source: tmp, Target: '/x', ReadOnly: true, BindOptions: { Propagation: 'rslave', NonRecursive: true } });
    assert.deepEqual([m.source, m.readonly, m.propagation, m.nonRecursive, m.createSource], [tmp, true, 'rslave', true, undefined]);
  } finally {
    fs.rmSync(tmp, { recursive: true });
  }
  assert.equal(parseBind('/nope-keel-test:/x').createSource, true);
});

test("--mount errors are docker's", () => {
  throwsMsg(() => parseMountSpec({ Type: 'bind', Target: '/x' }), 'invalid mount config for type "bind": field Source must not be empty');
  throwsMsg(
    () => parseMountSpec({ Type: 'bind', Source: 'rel', Target: '/x' }),
    `invalid mount config for type "bind": invalid mount path: 'rel' mount path must be absolute`,
  );
  throwsMsg(
    () => parseMountSpec({ Type: 'bind', Source: '/', Target: '/x', BindOptions: { Propagation: 'weird' } }),
    'invalid mount config for type "bind": invalid propagation mode: weird',
  );
  throwsMsg(
    () => parseMountSpec({ Type: 'volume', Target: '/x', ReadOnly: true }),
    'invalid mount config for type "volume": must not set ReadOnly mode when using anonymous volumes',
  );
  throwsMsg(() => parseMountSpec({ Type: 'tmpfs', Source: 'x', Target: '/x' }), 'invalid mount config for type "tmpfs": field Source must not be specified');
  throwsMsg(() => parseMountSpec({ Type: 'nfs', Target: '/x' }), 'invalid mount config for type "nfs": mount type unknown');
  throwsMsg(() => parseMountSpec({ Type: 'volume', Source: 'v1' }), 'invalid mount config for type "volume": field Target must not be empty');
});

test('--mount type=tmpfs converts size and mode like docker', () => {
  const m = parseMountSpec({ Type: 'tmpfs', Target: '/t', TmpfsOptions: { SizeBytes: 64 << 20, Mode: 0o1777 } });
  assert.deepEqual(m.tmpfsOptions, ['mode=1777', 'size=64m']);
  assert.deepEqual(parseMountSpec({ Type: 'tmpfs', Target: '/t', ReadOnly: true, TmpfsOptions: { SizeBytes: 1000 } }).tmpfsOptions, ['ro', 'size=1000']);
});

test('--tmpfs options are validated', () => {
  assert.deepEqual(parseTmpfsOptions('size=64m,mode=1777,exec,exec'), ['size=64m', 'mode=1777', 'exec']);
  throwsMsg(() => parseTmpfsOptions('size=1m,foo=bar'), 'Invalid tmpfs option ["foo" "bar"]');
  throwsMsg(() => resolve({ tmpfs: { run: '' } }), "invalid mount path: 'run' mount path must be absolute");
});

test('mount modes', () => {
  for (const ok of ['', 'ro', 'rw', 'z', 'Z', 'ro,z', 'rshared', 'nocopy', 'cached', 'ro,Z,rslave,nocopy,delegated']) assert.ok(validMountMode(ok), ok);
  for (const bad of ['x', 'ro,rw', 'z,Z', 'shared,slave', 'ro,']) assert.ok(!validMountMode(bad), bad);
});

test('--volumes-from modes', () => {
  assert.deepEqual(parseVolumesFrom('c1'), { container: 'c1', mode: 'rw' });
  assert.deepEqual(parseVolumesFrom('c1:ro'), { container: 'c1', mode: 'ro' });
  throwsMsg(() => parseVolumesFrom('c1:rshared'), 'invalid mode: rshared');
  throwsMsg(() => parseVolumesFrom('c1:nocopy'), 'invalid mode: nocopy');
  throwsMsg(() => parseVolumesFrom(''), 'volumes-from specification cannot be an empty string');
});

test('resolveMounts: precedence, duplicates and image volumes', () => {
  const from = resolve({ binds: ['shared:/shared', '/h:/hostdir'] });
  const ms = resolve({
    binds: ['data:/data', '/srv/x:/shared'],
    mounts: [{ Type: 'volume', Source: 'logs', Target: '/var/log' }],
    tmpfs: { '/run': 'size=1m' },
    imageVolumes: ['/data', '/cache/', '/var/log'],
    volumesFrom: [{ mounts: from, mode: 'ro' }],
  });
  const by = new Map(ms.map((m) => [m.destination, m]));
  assert.equal(by.get('/shared')!.type, 'bind', '-v overrides --volumes-from at the same destination');
  assert.equal(by.get('/hostdir')!.readonly, true, 'volumes-from :ro makes inherited mounts read-only');
  assert.equal(by.get('/data')!.name, 'data', 'an image VOLUME does not replace a user mount');
  assert.equal(by.get('/var/log')!.name, 'logs');
  assert.equal(by.get('/cache')!.anonymous, true);
  assert.equal(by.get('/cache')!.copyData, true);
  assert.equal(by.get('/cache')!.source, volumePath(by.get('/cache')!.name!));
  assert.equal(by.get('/data')!.source, volumePath('data'));
  assert.deepEqual(by.get('/run')!.tmpfsOptions, ['size=1m']);
  assert.equal(ms.length, 6);
  throwsMsg(() => resolve({ binds: ['a1:/x', '/h:/x/'] }), 'Duplicate mount point: /x');
  throwsMsg(() => resolve({ binds: ['a1:/run'], tmpfs: { '/run': '' } }), 'Duplicate mount point: /run');
  throwsMsg(() => resolve({ binds: ['a1:/x'], mounts: [{ Type: 'tmpfs', Target: '/x' }] }), 'Duplicate mount point: /x');
});

test('resolveMounts sorts parents before children', () => {
  const ms = resolve({ binds: ['/h1:/a/b/c', '/h2:/a', 'v1:/a/b'] });
  assert.deepEqual(
    ms.map((m) => m.destination),
    ['/a', '/a/b', '/a/b/c'],
  );
});

test('toDockerMountPoint matches docker inspect', () => {
  assert.deepEqual(toDockerMountPoint(resolve({ binds: ['vol1:/d'] })[0]!), {
    Type: 'volume',
    Name: 'vol1',
    Source: volumePath('vol1'),
    Destination: '/d',
    Driver: 'local',
    Mode: 'z',
    RW: true,
    Propagation: '',
  });
  assert.deepEqual(toDockerMountPoint(resolve({ binds: ['/h:/d:ro'] })[0]!), {
    Type: 'bind',
    Source: '/h',
    Destination: '/d',
    Mode: 'ro',
    RW: false,
    Propagation: 'rprivate',
  });
});
