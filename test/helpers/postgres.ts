import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DEBIAN_CACHE_DIR, debianRootfsTar, importDebian } from './debian.ts';
import { repoRoot, type RunResult, type TestDaemon } from './daemon.ts';

/**
 * PostgreSQL from Debian bookworm's own packages (examples/postgres/Dockerfile,
 * which says what it sets up), built by `keel build` in a test daemon: the
 * real database the clone, pool and compose tests and the README's example run.
 * Its data lives in an anonymous volume (PGDATA is a VOLUME), what `docker
 * commit` leaves behind and keel clones.
 */
export const POSTGRES_IMAGE = 'keel-test/postgres:15';
export const POSTGRES_DOCKERFILE_PATH = path.join(repoRoot, 'examples/postgres/Dockerfile');
export const POSTGRES_DOCKERFILE = fs.readFileSync(POSTGRES_DOCKERFILE_PATH, 'utf8');

/** Writes the build context (just the Dockerfile) into `dir`; returns dir. */
export function postgresContext(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'Dockerfile'), POSTGRES_DOCKERFILE);
  return dir;
}

const built = new WeakMap<TestDaemon, Promise<string>>();

/**
 * The image as `keel save` wrote it after the first build on this machine, named by what it was built from
 * (this Dockerfile and the Debian rootfs), so other test files load it instead of running apt-get again.
 */
function savedImagePath(): string {
  const st = fs.statSync(debianRootfsTar());
  const instructions = POSTGRES_DOCKERFILE.split('\n')
    .filter((l) => !l.startsWith('#'))
    .join('\n');
  const key = createHash('sha256').update(instructions).update(`${st.size}:${st.mtimeMs}`).digest('hex').slice(0, 16);
  return path.join(DEBIAN_CACHE_DIR, `postgres-${key}.image.tar`);
}

/**
 * Puts POSTGRES_IMAGE into `daemon` (once per daemon; later calls share the
 * first): the first time on a machine it imports Debian and runs `keel
 * build`, whose RUN apt-get reaches the Debian mirror through the daemon's
 * bridge, then saves the image under the test cache; later daemons `keel
 * load` that. Returns the image reference.
 */
export function buildPostgres(daemon: TestDaemon): Promise<string> {
  let p = built.get(daemon);
  if (!p) {
    p = (async () => {
      const saved = savedImagePath();
      if (fs.existsSync(saved)) {
        const r = await daemon.keel(['load', '-q', '-i', saved], { timeoutMs: 600_000 });
        if (r.code !== 0) throw new Error(`keel load of ${saved} failed: ${r.stderr}`);
        return POSTGRES_IMAGE;
      }
      await importDebian(daemon, 'debian:bookworm');
      const ctx = postgresContext(path.join(daemon.dir, 'postgres-context'));
      const r: RunResult = await daemon.keel(['build', '-q', '-t', POSTGRES_IMAGE, ctx], { timeoutMs: 900_000 });
      if (r.code !== 0) throw new Error(`keel build of ${POSTGRES_IMAGE} failed (exit ${r.code}):\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`);
      // Whole or absent: saved beside, renamed into place (two files building at once both save; one rename wins).
      const tmp = `${saved}.${process.pid}.tmp`;
      const s = await daemon.keel(['save', '-o', tmp, POSTGRES_IMAGE], { timeoutMs: 600_000 });
      if (s.code === 0) fs.renameSync(tmp, saved);
      else fs.rmSync(tmp, { force: true });
      return POSTGRES_IMAGE;
    })();
    built.set(daemon, p);
    p.catch(() => built.delete(daemon));
  }
  return p;
}

/**
 * Runs SQL in a running PostgreSQL container through `docker exec ... psql` (as postgres, over its unix
 * socket), unaligned and tuples only. Each statement is its own -c (its own transaction, so VACUUM works).
 */
export function psql(daemon: TestDaemon, container: string, sql: string | string[], o: { timeoutMs?: number } = {}): Promise<RunResult> {
  const cmds = (Array.isArray(sql) ? sql : [sql]).flatMap((s) => ['-c', s]);
  return daemon.docker(['exec', '-u', 'postgres', container, 'psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', 'postgres', ...cmds], {
    timeoutMs: o.timeoutMs ?? 300_000,
  });
}
