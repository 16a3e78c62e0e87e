/**
 * What the integration tests need on the host. A missing piece fails the
 * test file at once with a message that says what to install, instead of a
 * confusing failure deep inside a test (and never a silent skip).
 *
 *   requirePrerequisites();                          // root, runc, conmon
 *   requirePrerequisites(['docker-registry']);       // and the registry for this file
 */
import fs from 'node:fs';
import path from 'node:path';

/** Programs every integration test needs: the container runtime pair. */
const BASE = ['runc', 'conmon'];

/** Where a missing program comes from. */
const SOURCE: Record<string, string> = {
  runc: 'Debian runc (bash install.sh)',
  conmon: 'Debian conmon (bash install.sh)',
  ip: 'Debian iproute2 (bash install.sh)',
  iptables: 'Debian iptables (bash install.sh)',
  busybox: 'Debian busybox-static (bash install.sh)',
  'docker-registry': 'Debian docker-registry (bash install.sh --test-deps)',
  skopeo: 'Debian skopeo (bash install.sh --test-deps)',
  'docker-compose': 'Debian docker-compose (bash install.sh --test-deps)',
  htpasswd: 'Debian apache2-utils (bash install.sh --test-deps)',
  openssl: 'Debian openssl (bash install.sh --test-deps)',
  python3: 'Debian python3 (bash install.sh --test-deps)',
  debootstrap: 'Debian debootstrap (bash install.sh --test-deps)',
  flock: 'Debian util-linux (bash install.sh)',
  docker: 'the docker CLI (/usr/local/bin/docker, or Debian docker.io)',
};

function onPath(program: string): boolean {
  const dirs = (process.env.PATH ?? '').split(':').concat(['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']);
  return dirs.some((d) => {
    try {
      fs.accessSync(path.join(d, program), fs.constants.X_OK);
      return true;
    } catch {
      return false; // not in this directory
    }
  });
}

/** What is missing of root, runc, conmon and `extra`; empty when all is there. */
export function missingPrerequisites(extra: string[] = []): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root (the integration tests mount, create namespaces and cgroups: run them as root)');
  for (const p of [...BASE, ...extra]) if (!onPath(p)) missing.push(`${p}: install ${SOURCE[p] ?? p}`);
  return missing;
}

/** Throws, naming each missing piece, unless the host has root, runc, conmon and `extra`. */
export function requirePrerequisites(extra: string[] = []): void {
  const missing = missingPrerequisites(extra);
  if (missing.length) throw new Error(`integration tests cannot run here; missing:\n  - ${missing.join('\n  - ')}`);
}
