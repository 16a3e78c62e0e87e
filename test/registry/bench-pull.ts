/**
 * Benchmark: cold pull of a 3-layer image (~140 MB of gzip'd layers) from a
 * local docker-registry, keel (download + verify + unpack into snapshots)
 * against `skopeo copy docker://… dir:` (download + verify only).
 *
 *   debootstrap --variant=minbase bookworm /tmp/keel-bench/rootfs http://deb.debian.org/debian
 *   node test/registry/bench-pull.ts [rootfs] [runs]
 *
 * Not a test (no .test.ts): the lead moves it to bench/.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { exec } from '../../src/common/exec.ts';
import { pullImage } from '../../src/images/pull.ts';
import { type Digest, sha256 } from '../../src/oci/digest.ts';
import { MediaType } from '../../src/oci/mediatypes.ts';
import { RegistryHosts } from '../../src/registry/hosts.ts';
import { newImageService, skopeo, startRegistry, tempDir } from './helpers.ts';

const rootfs = process.argv[2] ?? '/tmp/keel-bench/rootfs';
const runs = Number(process.argv[3] ?? 5);

async function fileDigest(file: string, gunzip = false): Promise<Digest> {
  const h = createHash('sha256');
  const src = fs.createReadStream(file);
  if (gunzip) await pipeline(src, createGunzip(), async (s: AsyncIterable<Buffer>) => { for await (const c of s) h.update(c); });
  else for await (const c of src) h.update(c as Buffer);
  return `sha256:${h.digest('hex')}`;
}

async function makeLayer(dir: string, name: string, srcDir: string): Promise<{ file: string; digest: Digest; diffId: Digest; size: number }> {
  const file = path.join(dir, `${name}.tar.gz`);
  await exec(['tar', '--numeric-owner', '-C', srcDir, '-czf', file, '.']);
  return { file, digest: await fileDigest(file), diffId: await fileDigest(file, true), size: (await fsp.stat(file)).size };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const work = await tempDir('bench');
const reg = await startRegistry();
try {
  // Layers 2 and 3: incompressible files, so the image is ~140 MB on the wire.
  const base = await makeLayer(work, 'base', rootfs);
  const extra = [];
  for (const [i, mb] of [[2, 45], [3, 45]] as const) {
    const d = path.join(work, `l${i}`);
    await fsp.mkdir(path.join(d, 'data'), { recursive: true });
    for (let f = 0; f < mb / 5; f++) await fsp.writeFile(path.join(d, 'data', `blob${i}-${f}`), randomBytes(5 << 20));
    extra.push(await makeLayer(work, `l${i}`, d));
  }
  const layers = [base, ...extra];
  const layout = path.join(work, 'layout');
  const blobs = path.join(layout, 'blobs', 'sha256');
  await fsp.mkdir(blobs, { recursive: true });
  for (const l of layers) await fsp.rename(l.file, path.join(blobs, l.digest.slice(7)));
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/bash'] }, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) } }));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: sha256(config), size: config.length },
    layers: layers.map((l) => ({ mediaType: MediaType.OciLayerGzip, digest: l.digest, size: l.size })),
  }));
  await fsp.writeFile(path.join(blobs, sha256(config).slice(7)), config);
  await fsp.writeFile(path.join(blobs, sha256(manifest).slice(7)), manifest);
  await fsp.writeFile(path.join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await fsp.writeFile(path.join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: MediaType.OciManifest, digest: sha256(manifest), size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': 'b' } }] }));
  const ref = `${reg.host}/bench/debian:b`;
  await skopeo(['copy', '--dest-tls-verify=false', '--preserve-digests', `oci:${layout}:b`, `docker://${ref}`]);
  const total = layers.reduce((n, l) => n + l.size, 0);
  console.log(`image: ${layers.length} layers, ${(total / 1e6).toFixed(1)} MB compressed (${layers.map((l) => (l.size / 1e6).toFixed(1)).join(' + ')})`);

  const keel: number[] = [];
  const sko: number[] = [];
  const untar: number[] = [];
  for (let i = 0; i < runs; i++) {
    const svc = await newImageService();
    const hosts = new RegistryHosts({ useCredentialStore: false, maxConcurrentDownloads: Number(process.env.BENCH_CONC ?? 3) });
    let t = performance.now();
    await pullImage(svc.images, hosts, ref, process.env.BENCH_TRACE ? { onProgress: (m) => m.status !== 'Downloading' && console.log((performance.now() - t).toFixed(0), m.id ?? '', m.status) } : {});
    keel.push(performance.now() - t);
    hosts.close();
    await svc.cleanup();
    const out = path.join(work, `dir${i}`);
    t = performance.now();
    await skopeo(['copy', '--src-tls-verify=false', `docker://${ref}`, `dir:${out}`]);
    sko.push(performance.now() - t);
    // The non-streaming way: the copied blobs, then each layer unpacked with tar (GNU tar + gzip).
    t = performance.now();
    for (const l of layers) {
      const dest = path.join(out, `unpack-${l.digest.slice(7, 19)}`);
      await fsp.mkdir(dest);
      await exec(['tar', '--numeric-owner', '-xzf', path.join(out, l.digest.slice(7)), '-C', dest]);
    }
    untar.push(sko.at(-1)! + performance.now() - t);
    await fsp.rm(out, { recursive: true, force: true });
  }
  const k = median(keel);
  const s = median(sko);
  console.log(`keel pull (download+verify+unpack): median ${k.toFixed(0)} ms  [${keel.map((x) => x.toFixed(0)).join(', ')}]`);
  console.log(`skopeo copy to dir: (download+verify): median ${s.toFixed(0)} ms  [${sko.map((x) => x.toFixed(0)).join(', ')}]`);
  console.log(`skopeo copy, then tar -xzf each layer: median ${median(untar).toFixed(0)} ms  [${untar.map((x) => x.toFixed(0)).join(', ')}]`);
  console.log(`ratio keel/skopeo: ${(k / s).toFixed(2)}; keel/(skopeo+tar): ${(k / median(untar)).toFixed(2)}`);
} finally {
  await reg.stop();
  await fsp.rm(work, { recursive: true, force: true });
}
