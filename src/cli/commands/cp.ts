// the archive code loads only when cp runs: it would cost every other command ~50 ms of startup
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { EngineError, errnoCode, errnoText } from '../../common/errors.ts';
import type { ApiClient } from '../client.ts';
import { humanSize } from '../format.ts';
import { type CliContext, group } from '../context.ts';

interface PathStat {
  name: string;
  size: number;
  mode: number;
  linkTarget: string;
}

const GO_MODE_DIR = 2 ** 31;

/** `CONTAINER:PATH` → [container, path]; a local path has no colon before its first slash. */
export function splitCpArg(arg: string): [string | undefined, string] {
  if (arg.startsWith('/') || arg.startsWith('.')) return [undefined, arg];
  const i = arg.indexOf(':');
  if (i <= 0) return [undefined, arg];
  return [arg.slice(0, i), arg.slice(i + 1)];
}

function decodeStat(h: string | string[] | undefined): PathStat | undefined {
  if (typeof h !== 'string') return undefined;
  try {
    return JSON.parse(Buffer.from(h, 'base64').toString()) as PathStat;
  } catch {
    return undefined;
  }
}

async function statInContainer(client: ApiClient, id: string, p: string): Promise<PathStat | undefined> {
  try {
    const res = await client.request('HEAD', `/containers/${encodeURIComponent(id)}/archive`, { query: { path: p } });
    res.resume();
    return decodeStat(res.headers['x-docker-container-path-stat']);
  } catch (e) {
    if (e instanceof EngineError && e.code === 'NOT_FOUND') return undefined;
    throw e;
  }
}

/**
 * Container → local, as the docker CLI does it: the archive is extracted
 * straight into the destination, merging with what is there (a directory
 * copied onto an existing one adds to it, replacing only same-named files),
 * by keel's guarded applier in copy mode (no whiteouts, never a file over a
 * directory, nothing written outside the destination directory). The files
 * belong to whoever runs the command, root included: the docker CLI extracts
 * with NoLchown, keeping no owners from the container.
 */
export async function copyFrom(client: ApiClient, id: string, src: string, dest: string): Promise<void> {
  const res = await client.request('GET', `/containers/${encodeURIComponent(id)}/archive`, { query: { path: src } });
  if (dest === '-') return void (await pipeline(res, process.stdout, { end: false }));
  const stat = decodeStat(res.headers['x-docker-container-path-stat']);
  const srcIsDir = stat ? (stat.mode & GO_MODE_DIR) !== 0 : false;
  const name = stat?.name ?? path.basename(src);
  const contentsOnly = /\/\.$/.test(src) || name === '/';
  let destStat: fs.Stats | undefined;
  try {
    destStat = fs.statSync(dest);
  } catch {
    if (dest.endsWith('/')) {
      res.resume();
      throw new EngineError('NOT_FOUND', `destination directory "${dest}" must exist`);
    }
  }
  if (srcIsDir && destStat && !destStat.isDirectory()) {
    res.resume();
    throw new EngineError('INVALID_ARGUMENT', `cannot copy a directory to a file: ${dest}`);
  }
  // The archive's entries are named `<name>/...`: where they go, and what their first component becomes.
  let root: string;
  let top: string | null;
  if (destStat?.isDirectory() && !(srcIsDir && contentsOnly)) {
    root = dest; // into the directory, as <dest>/<name>
    top = null;
  } else if (destStat?.isDirectory()) {
    root = dest; // the directory's contents, merged into dest
    top = '';
  } else {
    root = path.dirname(path.resolve(dest)); // dest is the new name (a new directory, or a file replaced)
    top = path.basename(dest);
  }
  const rename =
    top === null
      ? undefined
      : (n: string) => {
          const comps = n.split('/').filter((c) => c !== '' && c !== '.');
          if (name !== '/' && comps[0] === name) comps.shift();
          else if (name !== '/') return null; // not part of the copied path
          return [top, ...comps].filter(Boolean).join('/');
        };
  const { applyLayer } = await import('../../archive/index.ts');
  const r = await applyLayer(root, res, { compression: 'none', copy: { noOverwriteDirNonDir: true, noLchown: true }, rename });
  process.stderr.write(`Successfully copied ${humanSize(r.size)} to ${dest}\n`);
}

/** A local file's lstat or stat; its failure said as docker cp says it (`lstat /x: no such file or directory`). */
function localStat(file: string, op: 'lstat' | 'stat'): fs.Stats {
  try {
    return op === 'lstat' ? fs.lstatSync(file) : fs.statSync(file);
  } catch (e) {
    throw new EngineError(errnoCode(e) === 'ENOENT' ? 'NOT_FOUND' : 'INVALID_ARGUMENT', `${op} ${file}: ${errnoText(e)}`);
  }
}

/** Local → container: a tar of SRC named for where it lands, PUT into the destination directory. */
export async function copyTo(client: ApiClient, id: string, src: string, dest: string, o: { archive?: boolean; followLink?: boolean }): Promise<void> {
  const put = (dir: string, stream: NodeJS.ReadableStream) =>
    client.request('PUT', `/containers/${encodeURIComponent(id)}/archive`, {
      query: { path: dir, noOverwriteDirNonDir: 'true', copyUIDGID: o.archive ? 'true' : undefined },
      stream: stream as never,
    });
  if (src === '-') return void (await put(dest, process.stdin)).resume();
  let local = path.resolve(src);
  let st = localStat(local, 'lstat');
  if (o.followLink && st.isSymbolicLink()) {
    st = localStat(local, 'stat');
    local = fs.realpathSync(local);
  }
  const destStat = await statInContainer(client, id, dest);
  const destIsDir = destStat ? (destStat.mode & GO_MODE_DIR) !== 0 : false;
  if (!destStat && dest.endsWith('/')) throw new EngineError('NOT_FOUND', `destination directory "${dest}" must exist`);
  if (st.isDirectory() && destStat && !destIsDir) throw new EngineError('INVALID_ARGUMENT', `cannot copy a directory to a file: ${dest}`);
  const base = path.basename(local);
  const newName = destIsDir ? path.basename(src.replace(/\/+$/, '')) || base : path.posix.basename(dest);
  const dir = destIsDir ? dest : path.posix.dirname(dest);
  const { tarDirectory } = await import('../../archive/index.ts');
  const tar = tarDirectory(path.dirname(local), { include: [base], rename: (p) => newName + p.slice(base.length) });
  let bytes = 0;
  tar.on('data', (c: Buffer) => (bytes += c.length));
  (await put(dir, tar)).resume();
  process.stderr.write(`Successfully copied ${humanSize(bytes)} to ${id}:${dest}\n`);
}

export function cpCommands(program: Command, ctx: CliContext): void {
  const container = group(program, 'container');
  const cp = async (src: string, dest: string, o: { archive?: boolean; followLink?: boolean; quiet?: boolean }) => {
    const [sc, sp] = splitCpArg(src);
    const [dc, dp] = splitCpArg(dest);
    if (sc && dc) throw new EngineError('INVALID_ARGUMENT', 'copying between containers is not supported');
    if (!sc && !dc) throw new EngineError('INVALID_ARGUMENT', 'must specify at least one container source');
    const client = await ctx.client();
    if (sc) await copyFrom(client, sc, sp, dp);
    else await copyTo(client, dc!, sp, dp, o);
  };
  for (const c of [program.command('cp'), container.command('cp')]) {
    // The summary is the one line command lists show; the description is the command's own help.
    c.summary('Copy files/folders between a container and the local filesystem');
    c.description(
      "Copy files/folders between a container and the local filesystem\n\nUse '-' as the source to read a tar archive from stdin and extract it to a\ndirectory destination in a container. Use '-' as the destination to stream\na tar archive of a container source to stdout.",
    )
      .usage('[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n       keel cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH')
      .argument('<SRC>')
      .argument('<DEST>')
      .option('-a, --archive', 'archive mode (copy all uid/gid information)')
      .option('-L, --follow-link', 'always follow symbol link in SRC_PATH')
      .option('-q, --quiet', 'suppress progress output during copy')
      .action(cp);
  }
}
