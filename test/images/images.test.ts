import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { busyboxRootfsTar, run, TestDaemon } from '../helpers/daemon.ts';

const d = new TestDaemon('keel-images');
let rootfsTar: string;

before(async () => {
  await d.start();
  rootfsTar = busyboxRootfsTar(d.dir);
  const r = await d.keel([
    'import',
    '-c',
    'CMD ["sh"]',
    '-c',
    'ENV A=1 B="two words"',
    '-c',
    'WORKDIR /tmp',
    '-c',
    'LABEL team=keel',
    rootfsTar,
    'busybox:local',
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^sha256:[a-f0-9]{64}\n$/);
});
after(() => d.cleanup());

describe('images through the docker CLI', () => {
  test('docker images lists the imported image like dockerd', async () => {
    const r = await d.docker(['images']);
    assert.equal(r.code, 0, r.stderr);
    const [header, row] = r.stdout.trim().split('\n');
    assert.match(header!, /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$/);
    assert.match(row!, /^busybox\s+local\s+[a-f0-9]{12}\s+(Less than a second|\d+ seconds?) ago\s+2(\.\d+)?MB$/);
  });

  test('docker image inspect shows config, changes and rootfs', async () => {
    const r = await d.docker(['image', 'inspect', 'busybox:local']);
    assert.equal(r.code, 0, r.stderr);
    const [img] = JSON.parse(r.stdout);
    assert.deepEqual(img.RepoTags, ['busybox:local']);
    assert.deepEqual(img.Config.Cmd, ['sh']);
    assert.deepEqual(img.Config.Env, ['A=1', 'B=two words']);
    assert.equal(img.Config.WorkingDir, '/tmp');
    assert.deepEqual(img.Config.Labels, { team: 'keel' });
    assert.equal(img.Os, 'linux');
    assert.equal(img.RootFS.Layers.length, 1);
    const fmt = await d.docker(['image', 'inspect', '-f', '{{.Id}} {{.Config.WorkingDir}}', 'busybox:local']);
    assert.match(fmt.stdout, /^sha256:[a-f0-9]{64} \/tmp\n$/);
  });

  test('tag, untag, rmi and the errors docker gives', async () => {
    assert.equal((await d.docker(['tag', 'busybox:local', 'example.com/team/bb:1'])).code, 0);
    const ls = await d.docker(['images', '--format', '{{.Repository}}:{{.Tag}}']);
    assert.deepEqual(ls.stdout.trim().split('\n').sort(), ['busybox:local', 'example.com/team/bb:1']);
    const rmi = await d.docker(['rmi', 'example.com/team/bb:1']);
    assert.equal(rmi.code, 0, rmi.stderr);
    assert.equal(rmi.stdout, 'Untagged: example.com/team/bb:1\n');
    const missing = await d.docker(['rmi', 'nosuch']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /No such image: nosuch:latest/);
    const bad = await d.docker(['tag', 'busybox:local', 'UPPER']);
    assert.notEqual(bad.code, 0);
  });

  test('rmi by ID with two names needs -f', async () => {
    await d.docker(['tag', 'busybox:local', 'second:1']);
    const id = (await d.docker(['images', '-q', 'busybox'])).stdout.split('\n')[0]!;
    const r = await d.docker(['rmi', id]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /must be forced.*referenced in multiple repositories/);
    assert.equal((await d.docker(['rmi', 'second:1'])).code, 0);
  });

  test('history, system df, version and info answer', async () => {
    const h = await d.docker(['history', 'busybox:local']);
    assert.equal(h.code, 0, h.stderr);
    assert.match(h.stdout, /^IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT\n[a-f0-9]{12}\s/);
    const df = await d.docker(['system', 'df']);
    assert.equal(df.code, 0, df.stderr);
    assert.match(df.stdout, /^Images\s+1\s+0\s+\S+/m);
    const v = await d.docker(['version', '--format', '{{.Server.APIVersion}}']);
    assert.equal(v.stdout.trim(), '1.41');
    const info = await d.docker(['info', '--format', '{{.Images}} {{.Driver}}']);
    assert.equal(info.stdout.trim(), '1 overlay2');
  });

  test('filters: dangling, reference, label', async () => {
    const f = async (flt: string) => (await d.docker(['images', '-q', '--filter', flt])).stdout.trim().split('\n').filter(Boolean).length;
    assert.equal(await f('dangling=true'), 0);
    assert.equal(await f('dangling=false'), 1);
    assert.equal(await f('reference=busy*'), 1);
    assert.equal(await f('reference=nomatch*'), 0);
    assert.equal(await f('label=team=keel'), 1);
    assert.equal(await f('label=team=other'), 0);
    const bad = await d.docker(['images', '--filter', 'bogus=1']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /invalid filter 'bogus'/);
  });
});

describe('save and load', () => {
  test('docker save | docker load round-trips, skopeo reads the archive', async () => {
    const tar = path.join(d.dir, 'saved.tar');
    const s = await d.docker(['save', '-o', tar, 'busybox:local']);
    assert.equal(s.code, 0, s.stderr);
    const sk = await run(['skopeo', 'inspect', `docker-archive:${tar}`]);
    assert.equal(sk.code, 0, sk.stderr);
    assert.equal(JSON.parse(sk.stdout).Layers.length, 1);
    const oci = await run(['skopeo', 'inspect', `oci-archive:${tar}`]);
    assert.equal(oci.code, 0, oci.stderr);
    const id = (await d.docker(['images', '-q', '--no-trunc', 'busybox:local'])).stdout.trim();
    assert.equal((await d.docker(['rmi', 'busybox:local'])).code, 0);
    assert.equal((await d.docker(['images', '-q'])).stdout, '');
    const l = await d.docker(['load', '-i', tar]);
    assert.equal(l.code, 0, l.stderr);
    assert.equal(l.stdout, 'Loaded image: busybox:local\n');
    assert.equal((await d.docker(['images', '-q', '--no-trunc', 'busybox:local'])).stdout.trim(), id);
  });

  test('loads archives written by skopeo (docker-archive and oci-archive)', async () => {
    const src = path.join(d.dir, 'saved2.tar');
    assert.equal((await d.keel(['save', '-o', src, 'busybox:local'])).code, 0);
    const da = path.join(d.dir, 'skopeo-docker.tar');
    const oa = path.join(d.dir, 'skopeo-oci.tar');
    let r = await run(['skopeo', 'copy', `docker-archive:${src}`, `docker-archive:${da}:skopeo/bb:d`]);
    assert.equal(r.code, 0, r.stderr);
    r = await run(['skopeo', 'copy', `docker-archive:${src}`, `oci-archive:${oa}:skopeo/bb:o`]);
    assert.equal(r.code, 0, r.stderr);
    const l1 = await d.keel(['load', '-i', da]);
    assert.equal(l1.code, 0, l1.stderr);
    assert.match(l1.stdout, /Loaded image: skopeo\/bb:d/);
    const l2 = await d.keel(['load', '-i', oa]);
    assert.equal(l2.code, 0, l2.stderr);
    assert.match(l2.stdout, /Loaded image/);
    // Same content: the layers are shared on disk, once per chain ID.
    const layers = fs.readdirSync(path.join(d.dataRoot, 'overlay/layers'));
    assert.equal(layers.length, 1);
    // Layers unpacked while reading, but already present, leave no scratch trees behind.
    assert.deepEqual(fs.readdirSync(path.join(d.dataRoot, 'overlay/tmp')), []);
  });

  test('a hostile layer in an archive registers nothing', async () => {
    const before = (await d.keel(['images', '-q'])).stdout;
    const evil = path.join(d.dir, 'evil');
    fs.mkdirSync(evil, { recursive: true });
    // A layer whose entry climbs out of the root.
    const layerDir = path.join(evil, 'layer');
    fs.mkdirSync(layerDir);
    fs.writeFileSync(path.join(layerDir, 'x'), 'pwned');
    const layerTar = path.join(evil, 'layer.tar');
    r0(await run(['tar', '-C', layerDir, '-cf', layerTar, '--transform', 's,^x$,../../escaped,', 'x']));
    const diffId = 'sha256:' + (await run(['sha256sum', layerTar])).stdout.split(' ')[0];
    const config = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [diffId] } };
    fs.writeFileSync(path.join(evil, 'config.json'), JSON.stringify(config));
    fs.writeFileSync(path.join(evil, 'manifest.json'), JSON.stringify([{ Config: 'config.json', RepoTags: ['evil:1'], Layers: ['layer.tar'] }]));
    const archive = path.join(d.dir, 'evil.tar');
    r0(await run(['tar', '-C', evil, '-cf', archive, 'manifest.json', 'config.json', 'layer.tar']));
    const l = await d.keel(['load', '-i', archive]);
    assert.equal(l.code, 1);
    assert.match(l.stderr, /\.\./);
    assert.equal((await d.keel(['images', '-q'])).stdout, before);
    assert.equal(fs.existsSync(path.join(d.dataRoot, 'escaped')), false);
    assert.equal(fs.existsSync(path.join(d.dataRoot, 'overlay', 'escaped')), false);
    assert.deepEqual(fs.readdirSync(path.join(d.dataRoot, 'overlay/tmp')), []);
  });

  test('an archive whose layer does not match its diff_id is refused', async () => {
    const bad = path.join(d.dir, 'bad');
    fs.mkdirSync(bad, { recursive: true });
    fs.copyFileSync(rootfsTar, path.join(bad, 'layer.tar'));
    const config = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: ['sha256:' + 'a'.repeat(64)] } };
    fs.writeFileSync(path.join(bad, 'config.json'), JSON.stringify(config));
    fs.writeFileSync(path.join(bad, 'manifest.json'), JSON.stringify([{ Config: 'config.json', RepoTags: ['bad:1'], Layers: ['layer.tar'] }]));
    const archive = path.join(d.dir, 'bad.tar');
    r0(await run(['tar', '-C', bad, '-cf', archive, 'manifest.json', 'config.json', 'layer.tar']));
    const l = await d.keel(['load', '-i', archive]);
    assert.equal(l.code, 1);
    assert.match(l.stderr, /does not match its diff_id/);
    // The repository column only: an image ID may contain "bad" too (hex).
    assert.doesNotMatch((await d.keel(['images'])).stdout, /^bad\s/m);
  });

  test('garbage input gets a clear error', async () => {
    const l = await d.keel(['load'], { input: Buffer.from('this is not a tar archive at all'.repeat(40)) });
    assert.equal(l.code, 1);
    assert.match(l.stderr, /invalid image archive|not a tar|invalid tar/i);
  });
});

describe('state survives the daemon', () => {
  test('images and names survive a restart', async () => {
    const before = (await d.keel(['images', '--format', '{{.ID}} {{.Repository}}:{{.Tag}}'])).stdout;
    await d.stop();
    await d.start();
    assert.equal((await d.keel(['images', '--format', '{{.ID}} {{.Repository}}:{{.Tag}}'])).stdout, before);
  });

  test('kill -9 during load leaves a consistent store', async () => {
    // A bigger image so the kill lands mid-load.
    const big = path.join(d.dir, 'big');
    fs.mkdirSync(path.join(big, 'data'), { recursive: true });
    for (let i = 0; i < 40; i++) fs.writeFileSync(path.join(big, 'data', `f${i}`), Buffer.alloc(1 << 20, i));
    const layerTar = path.join(d.dir, 'big-layer.tar');
    r0(await run(['tar', '-C', big, '-cf', layerTar, 'data']));
    r0(await run(['sh', '-c', `cat ${layerTar} | ${process.execPath} ${path.resolve('bin/keel')} -H unix://${d.socket} import - big:1`]));
    const archive = path.join(d.dir, 'big.tar');
    r0(await d.keel(['save', '-o', archive, 'big:1']));
    r0(await d.keel(['rmi', 'big:1']));
    for (const delay of [30, 120, 300]) {
      const load = d.keel(['load', '-i', archive]);
      await new Promise((r) => setTimeout(r, delay));
      await d.kill9();
      await load;
      await d.start();
      const ls = (await d.keel(['images', '--format', '{{.Repository}}:{{.Tag}}'])).stdout.split('\n').filter(Boolean).sort();
      assert.ok(!ls.includes('big:1') || (await d.keel(['image', 'inspect', 'big:1'])).code === 0, 'a listed image is whole');
      // Nothing half-written is left where the store would see it.
      assert.deepEqual(fs.readdirSync(path.join(d.dataRoot, 'overlay/tmp')), []);
      for (const l of fs.readdirSync(path.join(d.dataRoot, 'overlay/layers'))) {
        assert.ok(fs.existsSync(path.join(d.dataRoot, 'overlay/layers', l, 'layer.json')), `layer ${l} is complete`);
      }
      if (ls.includes('big:1')) r0(await d.keel(['rmi', 'big:1']));
    }
    const l = await d.keel(['load', '-i', archive]);
    assert.equal(l.code, 0, l.stderr);
    assert.equal(l.stdout, 'Loaded image: big:1\n');
  });
});

function r0(r: { code: number; stderr: string }): void {
  assert.equal(r.code, 0, r.stderr);
}
