import fs from 'node:fs';
import type { Command } from 'commander';
import { EngineError } from '../../common/errors.ts';
import { DaemonError } from '../client.ts';
import { familiarName, parseReference } from '../../oci/reference.ts';
import { addCreateFlags, buildCreate, type CreateFlags, type CreateRequest } from '../createflags.ts';
import { currentSize } from '../hijack.ts';
import { type CliContext, ExitError, group } from '../context.ts';
import { FlagError, parseDetachKeys } from '../opts.ts';
import { runSession, startErrorStatus } from '../session.ts';

/** docker's "docker: Error response from daemon: …" + usage hint, exit 125 (or 126/127). */
export function failRun(cmd: string, e: unknown, status = 125): never {
  if (e instanceof FlagError) {
    process.stderr.write(`keel: ${e.message}\nSee 'keel ${cmd} --help'.\n`);
    throw new ExitError(125);
  }
  if (e instanceof EngineError) {
    const daemon = e instanceof DaemonError || ['NOT_FOUND', 'CONFLICT', 'INVALID_ARGUMENT', 'INTERNAL'].includes(e.code);
    process.stderr.write(`keel: ${daemon ? 'Error response from daemon: ' : ''}${e.message}\n\nRun 'keel ${cmd} --help' for more information\n`);
    throw new ExitError(status);
  }
  throw e;
}

function familiar(image: string): string {
  try {
    return familiarName(parseReference(image));
  } catch {
    return image;
  }
}

/** POST /containers/create, pulling the image first when the daemon doesn't have it (--pull missing). */
export async function createContainer(
  ctx: CliContext,
  image: string,
  req: CreateRequest,
  o: { pull?: string; quiet?: boolean; cidfile?: string },
): Promise<string> {
  const client = await ctx.client();
  if (o.cidfile && fs.existsSync(o.cidfile))
    throw new EngineError('INVALID_ARGUMENT', `container ID file found, make sure the other container isn't running or delete ${o.cidfile}`);
  const pull = async () => (await import('./registry.ts')).pullThroughApi(ctx, image, { platform: req.platform, quiet: o.quiet, out: process.stderr });
  if (o.pull === 'always') await pull();
  const create = () =>
    client.json<{ Id: string; Warnings: string[] | null }>('POST', '/containers/create', { query: { name: req.name, platform: req.platform }, body: req.body });
  let r: { Id: string; Warnings: string[] | null };
  try {
    r = await create();
  } catch (e) {
    if (!(e instanceof EngineError) || e.code !== 'NOT_FOUND' || !/image/i.test(e.message) || o.pull !== 'missing') throw e;
    process.stderr.write(`Unable to find image '${familiar(image)}' locally\n`);
    await pull();
    r = await create();
  }
  for (const w of r.Warnings ?? []) process.stderr.write(`WARNING: ${w}\n`);
  if (o.cidfile) fs.writeFileSync(o.cidfile, r.Id);
  return r.Id;
}

interface RunFlags extends CreateFlags {
  detach?: boolean;
  rm?: boolean;
  sigProxy?: boolean | string;
  detachKeys?: string;
}

const bool = (v: string) => !['false', '0', 'no'].includes(v.toLowerCase());

export function runCommands(program: Command, ctx: CliContext): void {
  const container = group(program, 'container');

  const create = async (image: string, cmd: string[], o: CreateFlags & { rm?: boolean }) => {
    let req: CreateRequest;
    try {
      req = buildCreate(image, cmd, o, false, !!o.rm, currentSize());
    } catch (e) {
      failRun('create', e);
    }
    // unlike run, a daemon error from create is a plain error: exit 1, no usage hint (as captured from docker 28)
    const id = await createContainer(ctx, image, req, { pull: o.pull as string, quiet: !!o.quiet, cidfile: o.cidfile as string | undefined });
    process.stdout.write(`${id}\n`);
  };
  for (const c of [program.command('create'), container.command('create')]) {
    addCreateFlags(
      c.description('Create a new container').usage('[OPTIONS] IMAGE [COMMAND] [ARG...]').argument('<IMAGE>').argument('[COMMAND...]').passThroughOptions(),
    );
    c.option('--rm', 'automatically remove the container and its associated anonymous volumes when it exits').action(create);
  }

  const run = async (image: string, cmd: string[], o: RunFlags) => {
    let req: CreateRequest;
    let detachKeys: Buffer;
    try {
      detachKeys = parseDetachKeys(o.detachKeys ?? 'ctrl-p,ctrl-q');
      if (o.detach && o.sigProxy !== undefined && o.sigProxy !== true) throw new FlagError('conflicting options: cannot specify both --detach and --sig-proxy');
      req = buildCreate(image, cmd, o, !!o.detach, !!o.rm, currentSize());
    } catch (e) {
      failRun('run', e);
    }
    if (o.tty && o.interactive && !o.detach && !process.stdin.isTTY) {
      process.stderr.write('the input device is not a TTY\n');
      throw new ExitError(1);
    }
    const client = await ctx.client();
    let id: string;
    try {
      id = await createContainer(ctx, image, req, { pull: o.pull as string, quiet: !!o.quiet, cidfile: o.cidfile as string | undefined });
    } catch (e) {
      failRun('run', e);
    }
    if (o.detach) {
      try {
        (await client.request('POST', `/containers/${id}/start`)).resume();
      } catch (e) {
        failRun('run', e, e instanceof EngineError ? startErrorStatus(e) : 125);
      }
      process.stdout.write(`${id}\n`);
      return;
    }
    const b = req.body;
    const sigProxy = typeof o.sigProxy === 'string' ? bool(o.sigProxy) : o.sigProxy !== false;
    const r = await runSession(client, {
      id,
      tty: !!o.tty,
      stdin: !!b.AttachStdin,
      stdout: !!b.AttachStdout,
      stderr: !!b.AttachStderr,
      detachKeys,
      detachKeysRaw: o.detachKeys,
      sigProxy,
      removed: !!o.rm,
      start: true,
    }).catch((e: unknown) => failRun('run', e));
    if (r.startError) failRun('run', r.startError, r.status);
    if (r.status !== 0) throw new ExitError(r.status);
  };
  for (const c of [program.command('run'), container.command('run')]) {
    addCreateFlags(
      c
        .description('Create and run a new container from an image')
        .usage('[OPTIONS] IMAGE [COMMAND] [ARG...]')
        .argument('<IMAGE>')
        .argument('[COMMAND...]')
        .passThroughOptions(),
    );
    c.option('-d, --detach', 'run container in background and print container ID')
      .option('--rm', 'automatically remove the container and its associated anonymous volumes when it exits')
      .option('--sig-proxy [bool]', 'proxy received signals to the process', true)
      .option('--detach-keys <string>', 'override the key sequence for detaching a container')
      .action(run);
  }
}
