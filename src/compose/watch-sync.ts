/**
 * What a batch of watched changes does to a service, as docker compose
 * does it (pkg/compose/watch.go, internal/sync/tar.go):
 *   - a `rebuild` rule in the batch: build the image and recreate the
 *     service's containers (nothing else of the batch is done);
 *   - else the `sync*` rules' paths are synced into every running container
 *     of the service: paths gone on the host are removed in the container
 *     (`rm -rf`, run by exec, as docker compose does: the Docker API has no
 *     delete), the others copied in one tar through the engine's archive
 *     upload (`docker cp`'s PUT archive);
 *   - then `restart` and `sync+restart` restart the containers, and
 *     `sync+exec` runs its command in each of them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { EngineError } from '../common/errors.ts';
import type { ComposeBackend, ContainerSummary } from './backend.ts';
import type { WatchRule } from './develop.ts';
import type { ImageOptions } from './images.ts';
import * as L from './labels.ts';
import type { Reporter } from './reporter.ts';
import type { Project } from './types.ts';
import { up } from './up.ts';

/** A changed host path under a rule, and where it lands in the container (sync rules). */
export interface Change {
  rule: WatchRule;
  hostPath: string;
  /** Whether a directory walk of hostPath leaves out a path (relative to the rule's path): ignored, or a file not included. */
  leftOut: (rel: string, isDir: boolean) => boolean;
}

/** A batch's bytes are held in memory on their way to the engine: more than this is refused (a rebuild rule fits such trees). */
export const MAX_SYNC_BYTES = 256 * 1024 * 1024;

/** The container path of a host path under a sync rule. */
export function containerPath(rule: WatchRule, hostPath: string): string {
  const rel = path.relative(rule.path, hostPath);
  return rel ? path.posix.join(rule.target!, rel.split(path.sep).join('/')) : rule.target!;
}

interface Entry {
  name: string;
  host: string;
  st: fs.Stats;
}

/** The files a set of copies puts in the tar: each path, and a directory's tree (minus what the rule ignores). */
function entriesOf(copies: Change[]): Entry[] {
  const out = new Map<string, Entry>();
  const add = (c: Change, host: string) => {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(host);
    } catch {
      return; // gone since the event: the next batch deletes it
    }
    const name = containerPath(c.rule, host).slice(1);
    if (!name) return;
    out.set(name, { name, host, st });
    if (!st.isDirectory()) return;
    for (const d of fs.readdirSync(host)) {
      const child = path.join(host, d);
      const rel = path.relative(c.rule.path, child).split(path.sep).join('/');
      let isDir = false;
      try {
        isDir = fs.lstatSync(child).isDirectory();
      } catch {
        continue;
      }
      if (!c.leftOut(rel, isDir)) add(c, child);
    }
  };
  for (const c of copies) add(c, c.hostPath);
  // parents before children, so a new directory's own entry comes before what it holds
  return [...out.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The tar of the entries, named by their container paths (relative to `/`). */
async function tarOf(entries: Entry[]): Promise<Buffer> {
  const tarStream = (await import('tar-stream')).default;
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c) => void chunks.push(c as Buffer));
  const done = new Promise<void>((res, rej) => {
    pack.on('end', res);
    pack.on('error', rej);
  });
  let total = 0;
  for (const e of entries) {
    const base = { name: e.name, mode: e.st.mode & 0o7777, mtime: e.st.mtime, uid: 0, gid: 0 };
    if (e.st.isDirectory()) pack.entry({ ...base, type: 'directory' });
    else if (e.st.isSymbolicLink()) pack.entry({ ...base, type: 'symlink', linkname: fs.readlinkSync(e.host) });
    else if (e.st.isFile()) {
      let data: Buffer;
      try {
        data = fs.readFileSync(e.host);
      } catch {
        continue;
      }
      total += data.length;
      if (total > MAX_SYNC_BYTES) {
        pack.destroy();
        throw new EngineError('INVALID_ARGUMENT', `the changes to sync exceed ${MAX_SYNC_BYTES >> 20} MiB: use a rebuild rule for such trees`);
      }
      pack.entry({ ...base, type: 'file', size: data.length }, data);
    }
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** The running containers of a service (not one-off ones). */
async function runningContainers(b: ComposeBackend, p: Project, service: string): Promise<ContainerSummary[]> {
  const list = await b.listContainers(L.serviceFilter(p.name, service), { all: false });
  return list.filter((c) => c.labels[L.ONEOFF] !== 'True' && c.state === 'running');
}

/** Copies and deletes a set of sync changes in every running container of the service. */
export async function syncChanges(b: ComposeBackend, containers: ContainerSummary[], changes: Change[]): Promise<void> {
  const deletes = new Set<string>();
  const copies: Change[] = [];
  for (const c of changes) {
    if (fs.existsSync(c.hostPath) || isDanglingLink(c.hostPath)) copies.push(c);
    else deletes.add(containerPath(c.rule, c.hostPath));
  }
  const tar = copies.length ? await tarOf(entriesOf(copies)) : undefined;
  await Promise.all(
    containers.map(async (ct) => {
      if (deletes.size) {
        const code = await b.exec(ct.id, { cmd: ['rm', '-rf', ...deletes], tty: false, interactive: false });
        if (code !== 0) throw new EngineError('INTERNAL', `deleting ${[...deletes].join(', ')} in ${ct.name}: rm exited with ${code}`);
      }
      if (tar) await b.copyToContainer(ct.id, '/', Readable.from([tar]));
    }),
  );
}

function isDanglingLink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

export interface BatchOptions extends ImageOptions {
  log: (line: string) => void;
}

/** Acts on one service's batch of changes (each change under the rule that matched it). */
export async function applyBatch(b: ComposeBackend, p: Project, service: string, changes: Change[], r: Reporter, o: BatchOptions): Promise<void> {
  if (changes.some((c) => c.rule.action === 'rebuild')) {
    o.log(`Rebuilding service(s) ["${service}"] after changes were detected...`);
    await up(b, p, r, { ...o, services: [service], noDeps: true, build: true, forceRecreate: true });
    o.log(`service(s) ["${service}"] successfully built`);
    return;
  }
  const containers = await runningContainers(b, p, service);
  const toSync = changes.filter((c) => c.rule.action.startsWith('sync'));
  if (toSync.length) {
    o.log(`Syncing service "${service}" after ${new Set(toSync.map((c) => c.hostPath)).size} changes were detected`);
    await syncChanges(b, containers, toSync);
  }
  if (changes.some((c) => c.rule.action === 'restart' || c.rule.action === 'sync+restart')) {
    o.log(`Restarting service "${service}" after changes were detected`);
    await Promise.all(
      containers.map(async (c) => {
        r.event('Container', c.name, 'Restarting');
        await b.restartContainer(c.id);
        r.event('Container', c.name, 'Started');
      }),
    );
  }
  // each sync+exec rule's command once per container, in rule order
  const execs = [...new Set(changes.filter((c) => c.rule.action === 'sync+exec').map((c) => c.rule))];
  for (const rule of execs) {
    const e = rule.exec!;
    await Promise.all(
      containers.map(async (c) => {
        const code = await b.exec(c.id, {
          cmd: e.command,
          tty: false,
          interactive: false,
          user: e.user,
          workingDir: e.working_dir,
          privileged: e.privileged,
          env: e.environment ? Object.entries(e.environment).map(([k, v]) => `${k}=${v}`) : undefined,
        });
        if (code !== 0) o.log(`service "${service}": ${e.command.join(' ')} exited with ${code} in ${c.name}`);
      }),
    );
  }
}
