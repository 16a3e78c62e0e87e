import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RuntimeDriver } from '../../src/runtime/index.ts';
import { requirePrerequisites } from '../helpers/prereqs.ts';

requirePrerequisites(['busybox']);

const APPLETS = [
  'sh',
  'echo',
  'sleep',
  'cat',
  'true',
  'false',
  'ls',
  'id',
  'env',
  'top',
  'ps',
  'grep',
  'tail',
  'head',
  'touch',
  'mkdir',
  'rm',
  'stty',
  'kill',
  'wc',
  'dd',
  'yes',
  'hostname',
  'mount',
  'unshare',
  'test',
];

/** A busybox-static root filesystem in a fresh temp dir. */
export function makeRootfs(dir: string): string {
  const rootfs = path.join(dir, 'rootfs');
  for (const d of ['bin', 'etc', 'tmp', 'proc', 'sys', 'dev', 'root']) fs.mkdirSync(path.join(rootfs, d), { recursive: true });
  fs.chmodSync(path.join(rootfs, 'tmp'), 0o1777);
  fs.copyFileSync('/bin/busybox', path.join(rootfs, 'bin', 'busybox'));
  fs.chmodSync(path.join(rootfs, 'bin', 'busybox'), 0o755);
  for (const a of APPLETS) fs.symlinkSync('busybox', path.join(rootfs, 'bin', a));
  fs.writeFileSync(path.join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  fs.writeFileSync(path.join(rootfs, 'etc', 'group'), 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n');
  return rootfs;
}

export interface Fixture {
  dir: string;
  rootfs: string;
  driver: RuntimeDriver;
  bundle(name: string): string;
  cleanup(): void;
}

/** A temp root with its own runc root and state dir, so tests run in parallel. */
export function fixture(): Fixture {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-rt-'));
  const rootfs = makeRootfs(dir);
  const driver = new RuntimeDriver({ runcRoot: path.join(dir, 'runc'), stateDir: path.join(dir, 'state') });
  return {
    dir,
    rootfs,
    driver,
    bundle: (name) => path.join(dir, 'bundles', name),
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

export function uniqueId(prefix: string): string {
  return `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

export async function collect(r: NodeJS.ReadableStream | undefined): Promise<string> {
  if (!r) return '';
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(Buffer.from(c as Buffer));
  return Buffer.concat(parts).toString('utf8');
}

import { buildSpec, removeCgroup, type RuntimeSpecOptions } from '../../src/runtime/index.ts';

/** Writes a bundle for `id` with a per-process cgroup parent, returns the bundle dir. */
export async function prepare(f: Fixture, id: string, o: Partial<RuntimeSpecOptions> & { args: string[] }): Promise<string> {
  const b = f.bundle(id);
  await f.driver.writeBundle(b, buildSpec({ rootfs: f.rootfs, cgroupsPath: `${cgroupParent()}/${id}`, ...o }));
  return b;
}

export function cgroupParent(): string {
  return `/keel-test-${process.pid}`;
}

export async function removeCgroupParent(): Promise<void> {
  await removeCgroup(cgroupParent());
}
