import { Command, CommanderError, Help } from 'commander';
import { EngineError } from '../common/errors.ts';
import { ApiClient, DEFAULT_SOCKET, ensureDaemon } from './client.ts';
import { daemonCommand } from './daemon.ts';
import { containerCommands } from './commands/containers.ts';
import { imageCommands } from './commands/images.ts';
import { networkCommands } from './commands/networks.ts';
import { registryCommands } from './commands/registry.ts';
import { systemCommands } from './commands/system.ts';
import { volumeCommands } from './commands/volumes.ts';

/** What every command gets: a client for the daemon the user chose. */
export interface CliContext {
  client(): Promise<ApiClient>;
}

/** Collects a repeatable option (`-f a -f b`). */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function socketFrom(host: string | undefined): { path: string; explicit: boolean } {
  const h = host ?? process.env.KEEL_HOST;
  if (!h) return { path: DEFAULT_SOCKET, explicit: false };
  if (h.startsWith('unix://')) return { path: h.slice(7), explicit: true };
  if (h.startsWith('/')) return { path: h, explicit: true };
  throw new EngineError('INVALID_ARGUMENT', `unsupported host "${h}": keel listens on unix sockets (unix:///run/keel/keel.sock)`);
}

export function buildProgram(): Command {
  const program = new Command('keel')
    .description('A Docker-compatible container engine.\n\nThe keel CLI talks to the keel daemon over the Docker API on a unix socket;\nwhen none answers on the default socket it starts one.')
    .usage('[OPTIONS] COMMAND')
    .option('-H, --host <socket>', 'daemon socket to connect to (unix:///path), also $KEEL_HOST', undefined)
    .option('-l, --log-level <level>', 'set the logging level (debug, info, warn, error, fatal)', 'info')
    .version('keel version 0.1.0', '-v, --version', 'print version information and quit')
    .enablePositionalOptions()
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({
      sortSubcommands: true,
      subcommandTerm: (c) => c.name(),
      // Repeatable flags start from an empty list; that is no default worth printing.
      optionDescription: (o) => new Help().optionDescription(o).replace(' (default: [])', ''),
    })
    .exitOverride();
  let cached: ApiClient | undefined;
  const ctx: CliContext = {
    async client() {
      if (cached) return cached;
      const sock = socketFrom(program.opts().host);
      cached = new ApiClient(sock.path);
      if (!sock.explicit) await ensureDaemon(cached);
      return cached;
    },
  };
  program.addCommand(daemonCommand());
  containerCommands(program, ctx);
  imageCommands(program, ctx);
  networkCommands(program, ctx);
  registryCommands(program, ctx);
  systemCommands(program, ctx);
  volumeCommands(program, ctx);
  return program;
}

/** Docker's exit codes: 125 when the engine fails, else 1 for usage and API errors. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return Number(process.exitCode ?? 0);
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 125;
    if (e instanceof ExitError) return e.status;
    if (e instanceof EngineError) {
      process.stderr.write(`Error response from daemon: ${e.message}\n`);
      return 1;
    }
    process.stderr.write(`keel: ${(e as Error).stack ?? e}\n`);
    return 1;
  }
}

/** Thrown by commands that must exit with a specific status (run, wait, exec). */
export class ExitError extends Error {
  readonly status: number;

  constructor(status: number, message = '') {
    super(message);
    this.status = status;
  }
}
