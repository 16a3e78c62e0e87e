/**
 * `keel build` and `keel builder prune`. The context directory is tarred
 * here, streamed to POST /build as it is read (never buffered), honouring
 * .dockerignore as the docker CLI does (the Dockerfile and .dockerignore
 * are always sent); `-` reads a context tar from stdin. A terminal gets a
 * compact view that redraws the running step; otherwise docker's plain
 * output. A failing RUN's exit code is keel's exit code, as with docker.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { Option, type Command } from 'commander';
import tarStream from 'tar-stream';
import { ignoreMatcher, parseDockerignore } from '../../build/context/ignore.ts';
import { EngineError } from '../../common/errors.ts';
import { type CliContext, collect, ExitError } from '../context.ts';
import { CompactView } from './buildview.ts';

interface BuildFlags {
  tag: string[];
  file?: string;
  buildArg: string[];
  target?: string;
  cache: boolean;
  pull?: boolean;
  quiet?: boolean;
  iidfile?: string;
  label: string[];
  network?: string;
  secret: string[];
  progress: string;
  addHost: string[];
  rm: boolean;
  forceRm?: boolean;
  sourceDateEpoch?: string;
}

const MAX_SECRETS_BYTES = 512 * 1024;

export function buildCommands(program: Command, ctx: CliContext): void {
  const run = async (context: string, o: BuildFlags) => {
    const client = await ctx.client();
    const buildArgs: Record<string, string | null> = {};
    if (o.sourceDateEpoch !== undefined) buildArgs.SOURCE_DATE_EPOCH = o.sourceDateEpoch;
    for (const a of o.buildArg) {
      const i = a.indexOf('=');
      if (i > 0) buildArgs[a.slice(0, i)] = a.slice(i + 1);
      else buildArgs[a] = process.env[a] ?? null;
    }
    const labels: Record<string, string> = {};
    for (const l of o.label) {
      const i = l.indexOf('=');
      labels[i > 0 ? l.slice(0, i) : l] = i > 0 ? l.slice(i + 1) : '';
    }
    let dockerfile = o.file;
    let body: Readable;
    if (context === '-') {
      if (process.stdin.isTTY) throw new EngineError('INVALID_ARGUMENT', 'the context tar must be piped in when the context is "-"');
      body = process.stdin;
    } else {
      const dir = path.resolve(context);
      if (!fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory())
        throw new EngineError('INVALID_ARGUMENT', `unable to prepare context: path "${context}" not found`);
      const df = path.resolve(o.file ? (path.isAbsolute(o.file) ? o.file : path.resolve(o.file)) : path.join(dir, 'Dockerfile'));
      if (!fs.existsSync(df)) throw new EngineError('INVALID_ARGUMENT', `Cannot locate specified Dockerfile: ${o.file ?? 'Dockerfile'}`);
      const rel = path.relative(dir, df);
      const inside = !rel.startsWith('..') && !path.isAbsolute(rel);
      dockerfile = inside ? rel.split(path.sep).join('/') : `.dockerfile.${Math.random().toString(16).slice(2, 14)}`;
      body = tarContext(dir, dockerfile, inside ? undefined : df);
    }
    const headers: Record<string, string> = {};
    if (o.secret.length) headers['X-Keel-Build-Secrets'] = Buffer.from(JSON.stringify(readSecrets(o.secret))).toString('base64');
    const res = await client.request('POST', '/build', {
      query: {
        t: o.tag,
        dockerfile,
        buildargs: Object.keys(buildArgs).length ? JSON.stringify(buildArgs) : undefined,
        labels: Object.keys(labels).length ? JSON.stringify(labels) : undefined,
        target: o.target,
        nocache: o.cache ? undefined : 1,
        pull: o.pull ? 1 : undefined,
        q: o.quiet ? 1 : undefined,
        networkmode: o.network,
        extrahosts: o.addHost.length ? o.addHost : undefined,
        rm: o.rm ? undefined : 0,
        forcerm: o.forceRm ? 1 : undefined,
      },
      stream: body,
      headers,
    });
    const tty = o.progress === 'tty' || (o.progress === 'auto' && process.stderr.isTTY === true);
    const view = !o.quiet && tty ? new CompactView(process.stderr) : undefined;
    let id = '';
    let failure: { message: string; code?: number } | undefined;
    for await (const m of client.jsonLines(res)) {
      const ed = m.errorDetail as { message?: string; code?: number } | undefined;
      if (ed || m.error) {
        failure = { message: ed?.message ?? String(m.error), code: ed?.code };
        break;
      }
      const aux = m.aux as { ID?: string } | undefined;
      if (aux?.ID) id = aux.ID;
      if (typeof m.stream === 'string') {
        if (o.quiet) continue;
        if (view) view.text(m.stream);
        else process.stdout.write(m.stream);
      } else if (typeof m.status === 'string' && !o.quiet) {
        const line = `${m.id ? `${m.id}: ` : ''}${m.status}\n`;
        if (view) view.text(line);
        else if (!m.progressDetail || !m.progress) process.stdout.write(line);
      }
    }
    view?.end(!failure);
    if (failure) {
      process.stderr.write(`${failure.message}\n`);
      throw new ExitError(failure.code && failure.code > 0 ? failure.code : 1);
    }
    if (o.quiet && id) process.stdout.write(`${id}\n`);
    if (o.iidfile && id) fs.writeFileSync(o.iidfile, id);
  };
  const add = (c: Command) =>
    c
      .description('Build an image from a Dockerfile')
      .argument('<PATH|->', 'the build context: a directory, or - for a tar on stdin')
      .option('-t, --tag <name:tag>', 'name and optionally a tag (repeatable)', collect, [])
      .option('-f, --file <path>', "name of the Dockerfile (default: 'PATH/Dockerfile')")
      .option('--build-arg <key=value>', 'set build-time variables (repeatable)', collect, [])
      .option('--target <stage>', 'set the target build stage to build')
      .option('--no-cache', 'do not use cache when building the image')
      .option('--pull', 'always attempt to pull a newer version of the base images')
      .option('-q, --quiet', 'suppress the build output and print the image ID on success')
      .option('--iidfile <file>', 'write the image ID to the file')
      .option('--label <key=value>', 'set metadata for an image (repeatable)', collect, [])
      .option('--network <mode>', 'networking mode for the RUN instructions during build (default, none, host)')
      .option('--add-host <host:ip>', 'add a custom host-to-IP mapping (repeatable)', collect, [])
      .option('--secret <id=x,src=file>', 'secret to expose to RUN --mount=type=secret (repeatable)', collect, [])
      .addOption(new Option('--progress <type>', 'type of progress output').choices(['auto', 'plain', 'tty']).default('auto'))
      .option('--source-date-epoch <seconds>', 'reproducible image: fixed timestamps in config, history and layers (also the SOURCE_DATE_EPOCH build arg)')
      .option('--no-rm', 'keep intermediate containers after a build')
      .option('--force-rm', 'always remove intermediate containers')
      .action(run);
  add(program.command('build'));
  const builder = program.commands.find((c) => c.name() === 'builder');
  if (builder) {
    add(builder.command('build'));
    builder
      .command('prune')
      .description('Remove build cache')
      .option('-a, --all', 'remove all unused build cache')
      .option('-f, --force', 'do not prompt for confirmation')
      .action(async (o: { all?: boolean }) => {
        const client = await ctx.client();
        const r = await client.json<{ CachesDeleted: string[] | null; SpaceReclaimed: number }>('POST', '/build/prune', {
          query: { all: o.all ? 1 : undefined },
        });
        if (r.CachesDeleted?.length) process.stdout.write(`Deleted build cache objects:\n${r.CachesDeleted.join('\n')}\n`);
        process.stdout.write(`Total reclaimed space: ${r.SpaceReclaimed}B\n`);
      });
  }
}

/** `--secret id=x,src=file` or `id=x,env=VAR`: contents by id, bounded. */
function readSecrets(specs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  let total = 0;
  for (const s of specs) {
    const kv = Object.fromEntries(s.split(',').map((p) => [p.slice(0, p.indexOf('=') < 0 ? p.length : p.indexOf('=')), p.slice(p.indexOf('=') + 1)]));
    const id = kv.id;
    if (!id) throw new EngineError('INVALID_ARGUMENT', `invalid --secret ${s}: id= is required`);
    const data =
      (kv.src ?? kv.source) ? fs.readFileSync(kv.src ?? kv.source!) : kv.env ? Buffer.from(process.env[kv.env] ?? '') : Buffer.from(process.env[id] ?? '');
    total += data.length;
    if (total > MAX_SECRETS_BYTES) throw new EngineError('INVALID_ARGUMENT', `secrets are larger than ${MAX_SECRETS_BYTES} bytes`);
    out[id] = data.toString('base64');
  }
  return out;
}

/**
 * Streams a tar of the context: files are read one at a time as the
 * request takes them. `.dockerignore` excludes as docker's CLI does; an
 * excluded directory is skipped whole unless a `!` pattern may re-include
 * something under it.
 */
export function tarContext(dir: string, dockerfile: string, outsideDockerfile?: string): Readable {
  const pack = tarStream.pack();
  const out = new PassThrough();
  pack.on('error', (e) => out.destroy(e));
  pack.pipe(out);
  const ignoreFile = fs.existsSync(path.join(dir, `${dockerfile}.dockerignore`)) ? `${dockerfile}.dockerignore` : '.dockerignore';
  let text = '';
  try {
    text = fs.readFileSync(path.join(dir, ignoreFile), 'utf8');
  } catch {
    // no .dockerignore
  }
  const m = text ? ignoreMatcher(parseDockerignore(text)) : undefined;
  const always = new Set([dockerfile, '.dockerignore', ignoreFile]);
  const entry = (h: Partial<tarStream.Header>, file?: string) =>
    new Promise<void>((resolve, reject) => {
      if (!file) return pack.entry(h as tarStream.Header, (e) => (e ? reject(e) : resolve()));
      const w = pack.entry(h as tarStream.Header, (e) => (e ? reject(e) : resolve()));
      const r = fs.createReadStream(file);
      r.on('error', reject);
      r.pipe(w);
    });
  const walk = async (abs: string, rel: string): Promise<void> => {
    for (const name of fs.readdirSync(abs).sort()) {
      const a = path.join(abs, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(a);
      const skip = m?.(r, st.isDirectory()) && !always.has(r);
      if (skip && !(st.isDirectory() && m!.mayContainIncluded(r))) continue;
      const h = { name: r, mode: st.mode & 0o7777, mtime: st.mtime, uid: 0, gid: 0 };
      if (st.isDirectory()) {
        if (!skip) await entry({ ...h, type: 'directory' });
        await walk(a, r);
      } else if (skip) continue;
      else if (st.isFile()) await entry({ ...h, type: 'file', size: st.size }, a);
      else if (st.isSymbolicLink()) await entry({ ...h, type: 'symlink', linkname: fs.readlinkSync(a) });
    }
  };
  void (async () => {
    try {
      await walk(dir, '');
      if (outsideDockerfile) {
        const st = fs.statSync(outsideDockerfile);
        await entry({ name: dockerfile, mode: 0o644, mtime: st.mtime, type: 'file', size: st.size }, outsideDockerfile);
      }
      pack.finalize();
    } catch (e) {
      pack.destroy(e as Error);
    }
  })();
  return out;
}
