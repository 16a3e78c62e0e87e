import { Command, CommanderError, Help } from 'commander';
import { EngineError } from '../common/errors.ts';
import type { ApiClient } from './client.ts';
import { type CliContext, ExitError } from './context.ts';

/**
 * Registers a module's commands. Each command module is imported only when
 * one of its commands runs: importing them all costs every keel command
 * tens of milliseconds of start-up (the create flags, node:crypto, the
 * registry client, node:child_process...). A module may load less still
 * for the command line it is given (the arguments after its command).
 */
type Loader = (program: Command, ctx: CliContext, args: string[]) => Promise<void>;

const daemon: Loader = async (p, ctx) => void p.addCommand((await import('./daemon.ts')).daemonCommand(ctx));
const run: Loader = async (p, ctx) => (await import('./commands/run.ts')).runCommands(p, ctx);
const ps: Loader = async (p, ctx) => (await import('./commands/ps.ts')).psCommands(p, ctx);
const exec: Loader = async (p, ctx) => (await import('./commands/exec.ts')).execCommands(p, ctx);
const logs: Loader = async (p, ctx) => (await import('./commands/logs.ts')).logsCommands(p, ctx);
const cp: Loader = async (p, ctx) => (await import('./commands/cp.ts')).cpCommands(p, ctx);
const containers: Loader = async (p, ctx) => (await import('./commands/containers.ts')).containerCommands(p, ctx);
const images: Loader = async (p, ctx) => (await import('./commands/images.ts')).imageCommands(p, ctx);
const registry: Loader = async (p, ctx) => (await import('./commands/registry.ts')).registryCommands(p, ctx);
const networks: Loader = async (p, ctx) => (await import('./commands/networks.ts')).networkCommands(p, ctx);
const volumes: Loader = async (p, ctx) => (await import('./commands/volumes.ts')).volumeCommands(p, ctx);
const build: Loader = async (p, ctx) => (await import('./commands/build.ts')).buildCommands(p, ctx);
const system: Loader = async (p, ctx) => (await import('./commands/system.ts')).systemCommands(p, ctx);
const compose: Loader = async (p, ctx, args) => (await import('./commands/compose.ts')).composeCommands(p, ctx, args);
const clones: Loader = async (p, ctx) => (await import('./commands/clones.ts')).cloneCommands(p, ctx);

/** The command groups: created here, filled by the modules that define their subcommands. */
const GROUPS: Record<string, { description: string; load: Loader[] }> = {
  builder: { description: 'Manage builds', load: [build] },
  container: { description: 'Manage containers', load: [run, ps, exec, logs, cp, containers] },
  image: { description: 'Manage images', load: [images, registry] },
  network: { description: 'Manage networks', load: [networks] },
  pool: { description: 'Manage warm pools of ready clones', load: [clones] },
  system: { description: 'Manage keel', load: [system] },
  volume: { description: 'Manage volumes', load: [volumes] },
};

/**
 * Every other top-level command, with the description `keel --help` lists
 * and the module that defines it (where the same description is set; a
 * unit test keeps the two equal).
 */
const COMMANDS: Record<string, [description: string, load: Loader]> = {
  attach: ['Attach local standard input, output, and error streams to a running container', containers],
  build: ['Build an image from a Dockerfile', build],
  clone: ["Create containers that start from a container's filesystem and volumes, without copying them", clones],
  commit: ["Create a new image from a container's changes", containers],
  compose: ['Docker Compose: define and run multi-container applications', compose],
  cp: ['Copy files/folders between a container and the local filesystem', cp],
  create: ['Create a new container', run],
  daemon: ['Run the keel daemon: it owns the state root and serves the Docker API', daemon],
  diff: ["Inspect changes to files or directories on a container's filesystem", containers],
  events: ['Get real time events from the server', system],
  exec: ['Execute a command in a running container', exec],
  export: ["Export a container's filesystem as a tar archive", logs],
  history: ['Show the history of an image', images],
  images: ['List images', images],
  import: ['Import the contents from a tarball to create a filesystem image', images],
  info: ['Display system-wide information', system],
  inspect: ['Return low-level information on keel objects', containers],
  kill: ['Kill one or more running containers', containers],
  load: ['Load an image from a tar archive or STDIN', images],
  login: ['Log in to a registry (credentials are kept in ~/.docker/config.json, or $DOCKER_CONFIG)', registry],
  logout: ['Log out from a registry', registry],
  logs: ['Fetch the logs of a container', logs],
  pause: ['Pause all processes within one or more containers', containers],
  port: ['List port mappings or a specific mapping for the container', containers],
  ps: ['List containers', ps],
  pull: ['Download an image from a registry', registry],
  push: ['Upload an image to a registry', registry],
  rename: ['Rename a container', containers],
  restart: ['Restart one or more containers', containers],
  rm: ['Remove one or more containers', containers],
  rmi: ['Remove one or more images', images],
  run: ['Create and run a new container from an image', run],
  save: ['Save one or more images to a tar archive (streamed to STDOUT by default)', images],
  start: ['Start one or more stopped containers', containers],
  stats: ['Display a live stream of container(s) resource usage statistics', ps],
  stop: ['Stop one or more running containers', containers],
  tag: ['Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE', images],
  top: ['Display the running processes of a container', containers],
  unpause: ['Unpause all processes within one or more containers', containers],
  update: ['Update configuration of one or more containers', containers],
  version: ['Show the keel version information', system],
  wait: ['Block until one or more containers stop, then print their exit codes', containers],
};

/** The modules that define a top-level command (none for an unknown name). */
export function loadersOf(name: string | undefined): Loader[] {
  if (name === undefined || (!Object.hasOwn(GROUPS, name) && !Object.hasOwn(COMMANDS, name))) return [];
  return GROUPS[name]?.load ?? [COMMANDS[name]![1]];
}

/**
 * The top-level command an argv runs, found the way commander will: the
 * first operand after the global options (-H and -l take a value), or the
 * operand after `help`. A wrong guess costs a second parse, not behaviour
 * (see main).
 */
export function commandName(argv: string[]): string | undefined {
  const i = commandIndex(argv);
  return i === undefined ? undefined : argv[i];
}

function commandIndex(argv: string[]): number | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return i + 1;
    if (['-H', '--host', '-l', '--log-level'].includes(a)) i++;
    else if (!a.startsWith('-') || a === '-') return a === 'help' ? i + 1 : i;
  }
  return undefined;
}

const DEFAULT_SOCKET = '/run/keel/keel.sock';

function socketFrom(host: string | undefined): { path: string; explicit: boolean } {
  const h = host ?? process.env.KEEL_HOST;
  if (!h) return { path: DEFAULT_SOCKET, explicit: false };
  if (h.startsWith('unix://')) return { path: h.slice(7), explicit: true };
  if (h.startsWith('/')) return { path: h, explicit: true };
  throw new EngineError('INVALID_ARGUMENT', `unsupported host "${h}": keel listens on unix sockets (unix:///run/keel/keel.sock)`);
}

/** Raised when commander dispatches to a command whose module was not loaded. */
class NotLoaded extends Error {
  readonly command: string;

  constructor(command: string) {
    super(`keel: command ${command} was not loaded`);
    this.command = command;
  }
}

/**
 * The program with the modules of `commands` loaded (every module when
 * undefined); any other top-level command is a stub with its name and
 * description, enough for `keel --help` and commander's suggestions.
 * `argv`, the command line, lets a module load only what it runs.
 */
export async function buildProgram(commands?: string[], hooks: Pick<CliContext, 'serveDaemon'> = {}, argv: string[] = []): Promise<Command> {
  const program = new Command('keel')
    .description(
      'A Docker-compatible container engine.\n\nThe keel CLI talks to the keel daemon over the Docker API on a unix socket;\nwhen none answers on the default socket it starts one.',
    )
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
    serveDaemon: hooks.serveDaemon,
    async client() {
      if (cached) return cached;
      const sock = socketFrom(program.opts().host);
      const { ApiClient } = await import('./client.ts');
      // the default socket gets a daemon started when none answers (on the first refused connection)
      cached = new ApiClient(sock.path, { autoStart: !sock.explicit });
      return cached;
    },
  };
  for (const [name, g] of Object.entries(GROUPS)) program.command(name).description(g.description);
  const load = new Set(commands ? commands.flatMap(loadersOf) : [...Object.values(GROUPS).flatMap((g) => g.load), ...Object.values(COMMANDS).map((c) => c[1])]);
  const at = commandIndex(argv);
  const args = at === undefined ? [] : argv.slice(at + 1);
  for (const l of load) await l(program, ctx, args);
  const stubs = new Set<Command>();
  for (const [name, [description]] of Object.entries(COMMANDS)) {
    if (!program.commands.some((c) => c.name() === name)) stubs.add(program.command(name).description(description));
  }
  program.hook('preSubcommand', (_program, sub) => {
    if (stubs.has(sub)) throw new NotLoaded(sub.name());
  });
  return program;
}

/**
 * Docker's exit codes: 125 when the engine fails, else 1 for usage and API
 * errors; keel's own for an operation that ran out of time (124, as
 * timeout(1)) or was cancelled (130, as an interrupted command).
 */
export function exitStatusOf(e: EngineError): number {
  if (e.code === 'TIMEOUT') return 124;
  if (e.code === 'CANCELLED') return 130;
  return 1;
}

/** Runs one keel command line; resolves with its exit status. */
export async function main(argv: string[], hooks: Pick<CliContext, 'serveDaemon'> = {}): Promise<number> {
  try {
    try {
      await (await buildProgram([commandName(argv) ?? ''], hooks, argv)).parseAsync(argv, { from: 'user' });
    } catch (e) {
      // commandName guessed wrong; nothing ran yet (the global options only), so parse again
      if (!(e instanceof NotLoaded)) throw e;
      await (await buildProgram([e.command], hooks)).parseAsync(argv, { from: 'user' });
    }
    return Number(process.exitCode ?? 0);
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 125;
    if (e instanceof ExitError) return e.status;
    if (e instanceof EngineError) {
      process.stderr.write(`Error response from daemon: ${e.message}\n`);
      return exitStatusOf(e);
    }
    process.stderr.write(`keel: ${(e as Error).stack ?? e}\n`);
    return 1;
  }
}
