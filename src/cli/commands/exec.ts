import type { Command } from 'commander';
import { currentSize, hijack, relay } from '../hijack.ts';
import { type CliContext, collect, ExitError, group } from '../context.ts';
import { envValue, FlagError, parseDetachKeys, readEnvFile } from '../opts.ts';
import { resize } from '../session.ts';

interface ExecFlags {
  detach?: boolean;
  interactive?: boolean;
  tty?: boolean;
  env: string[];
  envFile: string[];
  user?: string;
  workdir?: string;
  privileged?: boolean;
  detachKeys?: string;
}

/** `exec`: POST /containers/{id}/exec, then the hijacked /exec/{id}/start, then the exit code from /exec/{id}/json. */
export function execCommands(program: Command, ctx: CliContext): void {
  const container = group(program, 'container');
  const exec = async (name: string, cmd: string[], o: ExecFlags) => {
    let detachKeys: Buffer;
    let env: string[];
    try {
      detachKeys = parseDetachKeys(o.detachKeys ?? 'ctrl-p,ctrl-q');
      env = [...o.envFile.flatMap((f) => readEnvFile(f)), ...o.env.map((e) => envValue(e))];
    } catch (e) {
      if (!(e instanceof FlagError)) throw e;
      process.stderr.write(`keel: ${e.message}\nSee 'keel exec --help'.\n`);
      throw new ExitError(125);
    }
    if (o.tty && o.interactive && !o.detach && !process.stdin.isTTY) {
      process.stderr.write('the input device is not a TTY\n');
      throw new ExitError(1);
    }
    const client = await ctx.client();
    const tty = !!o.tty;
    const size = tty ? currentSize() : undefined;
    const body = {
      User: o.user ?? '',
      Privileged: !!o.privileged,
      Tty: tty,
      ...(size ? { ConsoleSize: size } : {}),
      AttachStdin: !!o.interactive && !o.detach,
      AttachStderr: !o.detach,
      AttachStdout: !o.detach,
      Detach: !!o.detach,
      DetachKeys: o.detachKeys ?? '',
      Env: env.length ? env : null,
      WorkingDir: o.workdir ?? '',
      Cmd: cmd,
    };
    const { Id } = await client.json<{ Id: string }>('POST', `/containers/${encodeURIComponent(name)}/exec`, { body });
    if (o.detach) {
      (await client.request('POST', `/exec/${Id}/start`, { body: { Detach: true, Tty: tty, ...(size ? { ConsoleSize: size } : {}) } })).resume();
      return;
    }
    const socket = await hijack(client, `/exec/${Id}/start`, { body: { Detach: false, Tty: tty, ...(size ? { ConsoleSize: size } : {}) } });
    const session = relay(socket, { tty, stdin: !!o.interactive, detachKeys, onResize: (h, w) => void resize(client, 'exec', Id, h, w) });
    if (size) await resize(client, 'exec', Id, size[0], size[1]);
    const ended = await session.done;
    if (ended.detached) return;
    const info = await client.json<{ ExitCode: number | null; Running: boolean }>('GET', `/exec/${Id}/json`);
    if (info.ExitCode) throw new ExitError(info.ExitCode);
  };
  for (const c of [program.command('exec'), container.command('exec')]) {
    c.description('Execute a command in a running container')
      .usage('[OPTIONS] CONTAINER COMMAND [ARG...]')
      .argument('<CONTAINER>')
      .argument('<COMMAND...>')
      .passThroughOptions()
      .option('-d, --detach', 'detached mode: run command in the background')
      .option('--detach-keys <string>', 'override the key sequence for detaching a container')
      .option('-e, --env <list>', 'set environment variables', collect, [])
      .option('--env-file <file>', 'read in a file of environment variables', collect, [])
      .option('-i, --interactive', 'keep STDIN open even if not attached')
      .option('--privileged', 'give extended privileges to the command')
      .option('-t, --tty', 'allocate a pseudo-TTY')
      .option('-u, --user <string>', 'username or UID (format: "<name|uid>[:<group|gid>]")')
      .option('-w, --workdir <string>', 'working directory inside the container')
      .action(exec);
  }
}
