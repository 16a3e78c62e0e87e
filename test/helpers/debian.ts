import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { requirePrerequisites } from './prereqs.ts';
import type { TestDaemon } from './daemon.ts';

requirePrerequisites(['debootstrap', 'flock']);

/**
 * A Debian bookworm minbase root filesystem made once by debootstrap from the
 * Debian mirror (the only network these machines have) and cached as a tar, so
 * tests can build real images (PostgreSQL, nginx) without Docker Hub. The cache
 * lives outside the repository and outlives test runs; test files that run at
 * the same time wait on one lock instead of bootstrapping twice.
 */
export const DEBIAN_CACHE_DIR = process.env.KEEL_TEST_CACHE ?? '/var/cache/keel-test';
export const DEBIAN_ROOTFS_TAR = path.join(DEBIAN_CACHE_DIR, 'bookworm-minbase.rootfs.tar');
const MIRROR = 'http://deb.debian.org/debian';

export function debianRootfsTar(): string {
  if (fs.existsSync(DEBIAN_ROOTFS_TAR)) return DEBIAN_ROOTFS_TAR;
  fs.mkdirSync(DEBIAN_CACHE_DIR, { recursive: true });
  // flock(1) runs the bootstrap under the lock; a second caller waits, then finds the tar.
  const script = [
    'set -e',
    `[ -s "${DEBIAN_ROOTFS_TAR}" ] && exit 0`,
    `d="${DEBIAN_CACHE_DIR}/bookworm-minbase.tmp"`,
    'rm -rf "$d"',
    `debootstrap --variant=minbase bookworm "$d" ${MIRROR} >"${DEBIAN_CACHE_DIR}/debootstrap.log" 2>&1`,
    // apt's lists are not part of a base image (as in Debian's official one)
    'rm -rf "$d"/var/lib/apt/lists/* "$d"/var/cache/apt/*.bin',
    `tar --numeric-owner --xattrs -C "$d" -cf "${DEBIAN_ROOTFS_TAR}.tmp" .`,
    `mv "${DEBIAN_ROOTFS_TAR}.tmp" "${DEBIAN_ROOTFS_TAR}"`,
    'rm -rf "$d"',
  ].join('\n');
  const r = spawnSync('flock', [path.join(DEBIAN_CACHE_DIR, '.lock'), 'sh', '-c', script], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 1_200_000 });
  if (r.status !== 0) throw new Error(`debootstrap of Debian bookworm failed (exit ${r.status ?? r.signal}); see ${DEBIAN_CACHE_DIR}/debootstrap.log`);
  return DEBIAN_ROOTFS_TAR;
}

/** Imports the cached Debian rootfs into a test daemon as `ref` (CMD bash, like Debian's official image). */
export async function importDebian(daemon: TestDaemon, ref = 'debian:bookworm'): Promise<void> {
  const tar = debianRootfsTar();
  const r = await daemon.docker(['import', '--change', 'CMD ["bash"]', tar, ref], { timeoutMs: 300_000 });
  if (r.code !== 0) throw new Error(`docker import ${ref} failed: ${r.stderr}`);
}
