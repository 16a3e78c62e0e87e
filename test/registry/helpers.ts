/**
 * Integration-test helpers: a real Debian docker-registry on 127.0.0.1,
 * test images built from busybox-static as OCI layouts and pushed with
 * skopeo, and temporary keel image services.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { freePort } from '../helpers/daemon.ts';
import { requirePrerequisites } from '../helpers/prereqs.ts';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { exec } from '../../src/common/exec.ts';
import { packTar, type TestEntry } from '../../src/archive/testtar.ts';
import { ImageService } from '../../src/images/service.ts';
import { Snapshotter } from '../../src/snapshots/overlay.ts';
import { sha256, type Digest } from '../../src/oci/digest.ts';
import { MediaType } from '../../src/oci/mediatypes.ts';
import type { Descriptor } from '../../src/oci/types.ts';

requirePrerequisites(['docker-registry', 'skopeo']);

export async function tempDir(prefix: string): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), `keel-reg-${prefix}-`));
}

export interface Registry {
  host: string;
  dir: string;
  stop(): Promise<void>;
}

/** Starts docker-registry with filesystem storage; `auth` adds an htpasswd or token section. */
export async function startRegistry(
  opts: { htpasswd?: { user: string; pass: string }; tokenAuth?: { realm: string; issuer: string; service: string; certFile: string } } = {},
): Promise<Registry> {
  const dir = await tempDir('registry');
  const port = await freePort();
  let auth = '';
  if (opts.htpasswd) {
    const r = await exec(['htpasswd', '-Bbn', opts.htpasswd.user, opts.htpasswd.pass]);
    await fsp.writeFile(path.join(dir, 'htpasswd'), r.stdout);
    auth = `auth:\n  htpasswd:\n    realm: keel-test\n    path: ${path.join(dir, 'htpasswd')}\n`;
  } else if (opts.tokenAuth) {
    const t = opts.tokenAuth;
    auth = `auth:\n  token:\n    realm: ${t.realm}\n    service: ${t.service}\n    issuer: ${t.issuer}\n    rootcertbundle: ${t.certFile}\n`;
  }
  const config = `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${path.join(dir, 'data')}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:${port}
${auth}`;
  await fsp.writeFile(path.join(dir, 'config.yml'), config);
  const child: ChildProcess = spawn('/usr/bin/docker-registry', ['serve', path.join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (b) => (stderr += b));
  const host = `127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      const res = await fetch(`http://${host}/v2/`);
      await res.arrayBuffer();
      break;
    } catch {
      if (i > 100 || child.exitCode !== null) throw new Error(`docker-registry did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    host,
    dir,
    async stop() {
      child.kill('SIGTERM');
      if (child.exitCode === null) await new Promise((r) => child.once('exit', r));
      await fsp.rm(dir, { recursive: true, force: true });
    },
  };
}

export interface BuiltImage {
  manifest: Buffer;
  manifestDigest: Digest;
  config: Buffer;
  layers: { blob: Buffer; desc: Descriptor; diffId: Digest }[];
}

/** A busybox rootfs layer: /bin/busybox plus applet symlinks, and a marker file. */
export async function busyboxLayer(marker: string): Promise<TestEntry[]> {
  const bb = await fsp.readFile('/bin/busybox');
  return [
    { name: 'bin/', type: 'directory', mode: 0o755 },
    { name: 'bin/busybox', body: bb, mode: 0o755 },
    ...['sh', 'ls', 'cat', 'echo'].map((n) => ({ name: `bin/${n}`, type: 'symlink' as const, linkname: 'busybox' })),
    { name: 'etc/', type: 'directory', mode: 0o755 },
    { name: 'etc/marker', body: `${marker}\n`, mode: 0o644 },
  ];
}

/** Builds an image (gzip layers, OCI media types) from layer entry lists. */
export async function buildImage(layerEntries: TestEntry[][], platform = { os: 'linux', architecture: 'amd64' }): Promise<BuiltImage> {
  const layers = [];
  for (const entries of layerEntries) {
    const tar = await packTar(entries);
    const blob = gzipSync(tar);
    layers.push({ blob, diffId: sha256(tar), desc: { mediaType: MediaType.OciLayerGzip, digest: sha256(blob), size: blob.length } });
  }
  const config = Buffer.from(
    JSON.stringify({
      ...platform,
      created: '2026-01-01T00:00:00Z',
      config: { Cmd: ['/bin/sh'], Env: ['PATH=/bin'] },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      history: layers.map(() => ({ created_by: 'keel test' })),
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: sha256(config), size: config.length },
      layers: layers.map((l) => l.desc),
    }),
  );
  return { manifest, manifestDigest: sha256(manifest), config, layers };
}

/** Writes images into an OCI layout; with several, `tag` names an index of them. */
export async function writeLayout(dir: string, tag: string, images: BuiltImage[], platforms?: { os: string; architecture: string }[]): Promise<Digest> {
  const blobs = path.join(dir, 'blobs', 'sha256');
  await fsp.mkdir(blobs, { recursive: true });
  const put = async (b: Buffer) => fsp.writeFile(path.join(blobs, sha256(b).slice(7)), b);
  for (const img of images) {
    await put(img.manifest);
    await put(img.config);
    for (const l of img.layers) await put(l.blob);
  }
  let top: Descriptor;
  if (images.length === 1) top = { mediaType: MediaType.OciManifest, digest: images[0]!.manifestDigest, size: images[0]!.manifest.length };
  else {
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciIndex,
        manifests: images.map((img, i) => ({
          mediaType: MediaType.OciManifest,
          digest: img.manifestDigest,
          size: img.manifest.length,
          platform: platforms![i],
        })),
      }),
    );
    await put(index);
    top = { mediaType: MediaType.OciIndex, digest: sha256(index), size: index.length };
  }
  await fsp.writeFile(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await fsp.writeFile(
    path.join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ ...top, annotations: { 'org.opencontainers.image.ref.name': tag } }],
    }),
  );
  return top.digest;
}

export async function skopeo(args: string[]): Promise<string> {
  const r = await exec(['skopeo', ...args], { timeoutMs: 120_000 });
  return r.stdout;
}

/** Pushes an OCI layout tag to the registry with skopeo (keeping digests). */
export async function skopeoPush(layout: string, tag: string, dest: string, all = false): Promise<void> {
  await skopeo(['copy', '--dest-tls-verify=false', ...(all ? ['--all'] : []), '--preserve-digests', `oci:${layout}:${tag}`, `docker://${dest}`]);
}

export async function newImageService(): Promise<{ images: ImageService; root: string; cleanup(): Promise<void> }> {
  const root = await tempDir('data');
  const images = new ImageService(root, new Snapshotter(path.join(root, 'overlay')));
  await images.init();
  return { images, root, cleanup: () => fsp.rm(root, { recursive: true, force: true }) };
}

export function readFileIn(images: ImageService, chainId: Digest, rel: string): string {
  return fs.readFileSync(path.join(images.snapshots.layerDir(chainId), rel), 'utf8');
}
