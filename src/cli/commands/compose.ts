/**
 * `keel compose` (and the docker CLI plugin, bin/docker-compose): loads
 * the project (through its cache, compose/project-cache.ts) and runs the compose operations over the
 * Docker API (cli/compose-backend.ts). The lifecycle commands are here;
 * the others (exec, run, top, port, images, ls, pull, push, build...) in
 * compose-more.ts.
 */
import type { Command } from 'commander';
import { EngineError } from '../../common/errors.ts';
import type { ComposeBackend } from '../../compose/backend.ts';
import { attachedServices, attachedUp } from '../../compose/attached.ts';
import { normalizeProjectName } from '../../compose/labels.ts';
import { LogPrinter, shortName } from '../../compose/logs.ts';
import { loadProjectCached } from '../../compose/project-cache.ts';
import { containersOf, down, type Target } from '../../compose/ops.ts';
import { streamReporter } from '../../compose/reporter.ts';
import { configHash, projectData } from '../../compose/serialize.ts';
import type { Project } from '../../compose/types.ts';
import { selectServices, up, waitProject } from '../../compose/up.ts';
import { withClientApiSocket } from '../compose-api-socket.ts';
import { ApiComposeBackend } from '../compose-backend.ts';
import { type CliContext, collect, ExitError } from '../context.ts';
import { cascadeStop, intArg, noAttachOption, type UpFlags, validateUpFlags } from './compose-up-flags.ts';

export interface GlobalFlags {
  file: string[];
  projectName?: string;
  projectDirectory?: string;
  envFile: string[];
  profile: string[];
  ansi: string;
}

/** What the compose subcommands share: the project, the backend, how to fail like docker compose. */
export interface ComposeCli {
  project(cmd: Command, services?: string[]): Promise<Project>;
  /** The project, or only its name (-p / $COMPOSE_PROJECT_NAME) when its files cannot be found (down, ps, logs...). */
  target(cmd: Command, services?: string[]): Promise<Target>;
  backend(): Promise<ComposeBackend>;
  /** The API client itself, for what is a front end's own business (cp: the local filesystem). */
  client: CliContext['client'];
  /** Runs an action, printing its error as docker compose does (no "Error response from daemon"). */
  act<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void>;
  color(): boolean;
}

function globals(cmd: Command): GlobalFlags {
  let c: Command | null = cmd;
  while (c && c.name() !== 'compose') c = c.parent;
  return (c ?? cmd).opts() as GlobalFlags;
}

export function composeCli(ctx: CliContext): ComposeCli {
  const load = (cmd: Command, services?: string[]) => {
    const g = globals(cmd);
    return loadProjectCached({
      files: g.file,
      projectName: g.projectName,
      projectDirectory: g.projectDirectory,
      envFiles: g.envFile,
      profiles: g.profile,
      services,
    });
  };
  let colorMode = 'auto';
  return {
    project: (cmd, services) => {
      colorMode = globals(cmd).ansi;
      return load(cmd, services);
    },
    async target(cmd, services) {
      const g = globals(cmd);
      colorMode = g.ansi;
      const name = g.projectName ?? process.env.COMPOSE_PROJECT_NAME;
      try {
        const p = await load(cmd, services);
        return { name: p.name, project: p };
      } catch (e) {
        if (name && e instanceof EngineError && e.code === 'NOT_FOUND' && !g.file.length) return { name: normalizeProjectName(name) };
        throw e;
      }
    },
    backend: async () => new ApiComposeBackend(await ctx.client()),
    client: () => ctx.client(),
    act:
      (fn) =>
      async (...args) => {
        try {
          await fn(...args);
        } catch (e) {
          if (!(e instanceof EngineError)) throw e;
          process.stderr.write(`${e.message}\n`);
          throw new ExitError(1);
        }
      },
    color: () => (colorMode === 'always' ? true : colorMode === 'never' ? false : !!process.stdout.isTTY && !process.env.NO_COLOR),
  };
}

function scaleFlags(list: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of list) {
    const m = /^([^=]+)=(\d+)$/.exec(s);
    if (!m) throw new EngineError('INVALID_ARGUMENT', `invalid --scale "${s}": use SERVICE=NUM`);
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

export async function composeCommands(program: Command, ctx: CliContext, args?: string[]): Promise<void> {
  const compose = program
    .command('compose')
    .description('Docker Compose: define and run multi-container applications')
    .usage('[OPTIONS] COMMAND')
    .enablePositionalOptions()
    .option('-f, --file <file>', 'compose configuration files', collect, [])
    .option('-p, --project-name <name>', 'project name')
    .option('--project-directory <dir>', 'specify an alternate working directory (default: the path of the first compose file)')
    .option('--env-file <file>', 'specify an alternate environment file', collect, [])
    .option('--profile <profile>', 'specify a profile to enable', collect, [])
    .option('--ansi <mode>', 'control when to print ANSI control characters ("never"|"always"|"auto")', 'auto')
    .option('--progress <type>', 'set type of progress output (accepted for compatibility; keel prints plain progress)')
    .option('--parallel <n>', 'control max parallelism (accepted for compatibility)');
  const cli = composeCli(ctx);
  const reporter = streamReporter();

  compose
    .command('up')
    .description('Create and start containers')
    .argument('[SERVICE...]')
    .option('-d, --detach', 'detached mode: run containers in the background')
    .option('--build', 'build images before starting containers')
    .option('--no-build', "don't build an image, even if it's policy")
    .option('--pull <policy>', 'pull image before running ("always"|"missing"|"never"|"build")')
    .option('--force-recreate', "recreate containers even if their configuration and image haven't changed")
    .option('--no-recreate', "if containers already exist, don't recreate them")
    .option('--no-deps', "don't start linked services")
    .option('--no-start', "don't start the services after creating them")
    .option('--scale <SERVICE=NUM>', 'scale SERVICE to NUM instances; overrides the scale setting in the compose file', collect, [])
    .option('--wait', 'wait for services to be running|healthy; implies detached mode')
    .option('--wait-timeout <seconds>', 'maximum duration in seconds to wait for the project to be running|healthy')
    .option('--remove-orphans', 'remove containers for services not defined in the compose file')
    .option('--abort-on-container-exit', 'stops all containers if any container was stopped; incompatible with -d')
    .option('--abort-on-container-failure', 'stops all containers if any container exited with failure; incompatible with -d')
    .option('--attach <service>', 'restrict attaching to the specified services; incompatible with --attach-dependencies', collect, [])
    .addOption(noAttachOption())
    .option('--attach-dependencies', 'automatically attach to log output of dependent services')
    .option('--timestamps', 'show timestamps')
    .option('--quiet-pull', 'pull without printing progress information')
    .option('--quiet-build', 'suppress the build output')
    .option('--always-recreate-deps', 'recreate dependent containers; incompatible with --no-recreate')
    .option('-V, --renew-anon-volumes', 'recreate anonymous volumes instead of retrieving data from the previous containers')
    .option('-y, --yes', 'assume "yes" as answer to all prompts and run non-interactively')
    .option('--menu', 'enable interactive shortcuts when running attached (keel has none: accepted and ignored, as docker compose does without a terminal)')
    .option('--exit-code-from <service>', 'return the exit code of the selected service container; implies --abort-on-container-exit')
    .option('-t, --timeout <seconds>', 'use this timeout in seconds for container shutdown when attached or when containers are already running')
    .option('--no-color', 'produce monochrome output')
    .option('--no-log-prefix', "don't print prefix in logs")
    .option('-w, --watch', 'watch source code and rebuild/refresh containers when files are updated')
    .action(
      cli.act(async (services: string[], o: UpFlags, cmd: Command) => {
        // --build and --no-build are both defined: build is true, false or unset
        const noBuild = o.build === false;
        const build = o.build === true;
        validateUpFlags(o);
        const p = await withClientApiSocket(await cli.project(cmd, services), cli.client);
        if (o.exitCodeFrom && !p.services[o.exitCodeFrom]) throw new EngineError('NOT_FOUND', `no such service: ${o.exitCodeFrom}`);
        const selected = selectServices(p, services, !o.deps);
        if (o.watch) (await import('../../compose/watch.ts')).watchRules(p, selected);
        // checked before anything is made, as docker compose does
        const attached = !o.detach && !o.wait && o.start;
        const attach = attached ? attachedServices(p, { services: selected, named: services, ...o }) : [];
        const b = await cli.backend();
        const printer = new LogPrinter(process.stdout, { color: o.color && cli.color(), prefix: o.logPrefix });
        // attached, what the post_start hooks print shows as `<service>-<n> ->`, as in docker compose
        const hookOutput = (container: string, line: string) => {
          const source = `${container.startsWith(`${p.name}-`) ? container.slice(p.name.length + 1) : container} ->`;
          printer.register([source]);
          printer.line(source, line);
        };
        const since = Math.floor(Date.now() / 1000);
        const timeout = o.timeout !== undefined ? intArg(o.timeout) : undefined;
        await up(b, p, reporter, {
          services,
          noDeps: !o.deps,
          forceRecreate: o.forceRecreate,
          noRecreate: !o.recreate,
          removeOrphans: o.removeOrphans,
          scale: scaleFlags(o.scale),
          noStart: !o.start,
          build,
          noBuild,
          pull: o.pull as string | undefined,
          timeout,
          alwaysRecreateDeps: o.alwaysRecreateDeps,
          renewAnonVolumes: o.renewAnonVolumes,
          assumeYes: o.yes,
          ...(attached ? { hookOutput } : {}),
          // --quiet-pull quiets the builds' output too, as in docker compose
          onProgress: (_svc, pr) => void (pr.stream && !o.quietPull && !o.quietBuild ? process.stderr.write(pr.stream) : undefined),
        });
        if (!o.start) return;
        if (o.wait) return void (await waitProject(b, p, selected, reporter, o.waitTimeout ? Date.now() + intArg(o.waitTimeout) * 1000 : Infinity));
        if (o.detach) return;
        const interrupt = new AbortController();
        let presses = 0;
        const onSig = () => {
          presses++;
          if (presses === 1) interrupt.abort();
          else process.exit(130);
        };
        process.on('SIGINT', onSig);
        process.on('SIGTERM', onSig);
        const stopWatch = new AbortController();
        const watching = o.watch
          ? (await import('./compose-watch.ts'))
              .runWatch(b, p, reporter, { services: selected, signal: stopWatch.signal })
              .catch((e: unknown) => void process.stderr.write(`watch: ${(e as Error).message}\n`))
          : undefined;
        try {
          const code = await attachedUp(b, { name: p.name, project: p }, printer, reporter, {
            services: selected,
            named: services,
            attach,
            abortOnExit: cascadeStop(o),
            abortOnFailure: o.abortOnContainerFailure,
            exitCodeFrom: o.exitCodeFrom,
            timestamps: o.timestamps,
            timeout,
            since,
            interrupt: interrupt.signal,
            notice: (l) => process.stdout.write(`${l}\n`),
          });
          if (code) throw new ExitError(code);
        } finally {
          stopWatch.abort();
          await watching;
          process.off('SIGINT', onSig);
          process.off('SIGTERM', onSig);
        }
      }),
    );

  compose
    .command('down')
    .description('Stop and remove containers, networks')
    .option('-v, --volumes', 'remove named volumes declared in the "volumes" section of the compose file and anonymous volumes attached to containers')
    .option('--remove-orphans', 'remove containers for services not defined in the compose file')
    .option('--rmi <type>', 'remove images used by services ("local"|"all")')
    .option('-t, --timeout <seconds>', 'specify a shutdown timeout in seconds')
    .action(
      cli.act(async (o: { volumes?: boolean; removeOrphans?: boolean; rmi?: string; timeout?: string }, cmd: Command) => {
        if (o.rmi && o.rmi !== 'local' && o.rmi !== 'all') throw new EngineError('INVALID_ARGUMENT', `invalid --rmi "${o.rmi}": use local or all`);
        const t = await cli.target(cmd);
        await down(await cli.backend(), t, reporter, {
          volumes: o.volumes,
          removeOrphans: o.removeOrphans,
          rmi: o.rmi as 'local' | undefined,
          timeout: o.timeout !== undefined ? intArg(o.timeout) : undefined,
        });
      }),
    );

  compose
    .command('logs')
    .description('View output from containers')
    .argument('[SERVICE...]')
    .option('-f, --follow', 'follow log output')
    .option('-n, --tail <n>', 'number of lines to show from the end of the logs for each container', 'all')
    .option('-t, --timestamps', 'show timestamps')
    .option('--since <ts>', 'show logs since timestamp or relative (e.g. 42m)')
    .option('--no-color', 'produce monochrome output')
    .option('--no-log-prefix', "don't print prefix in logs")
    .action(
      cli.act(
        async (
          services: string[],
          o: { follow?: boolean; tail: string; timestamps?: boolean; since?: string; color?: boolean; logPrefix?: boolean },
          cmd: Command,
        ) => {
          const t = await cli.target(cmd);
          const b = await cli.backend();
          const list = await containersOf(b, t, services);
          const printer = new LogPrinter(process.stdout, { color: o.color !== false && cli.color(), prefix: o.logPrefix !== false });
          printer.register(list.map(shortName));
          const stopLogs = new AbortController();
          const onSig = () => stopLogs.abort();
          process.once('SIGINT', onSig);
          try {
            await Promise.all(
              list.map((c) => printer.follow(b, c, { follow: o.follow, tail: o.tail, timestamps: o.timestamps, since: o.since }, stopLogs.signal)),
            );
          } finally {
            process.off('SIGINT', onSig);
          }
        },
      ),
    );

  compose
    .command('config')
    .description('Parse, resolve and render compose file in canonical format')
    .argument('[SERVICE...]')
    .option('--services', 'print the service names, one per line')
    .option('--volumes', 'print the volume names, one per line')
    .option('--networks', 'print the network names, one per line')
    .option('--profiles', 'print the profile names, one per line')
    .option('--images', 'print the image names, one per line')
    .option('--hash <services>', 'print the service config hash, one per line ("*" for all)')
    .option('--format <format>', 'format the output ("yaml"|"json")', 'yaml')
    .option('-q, --quiet', 'only validate the configuration, print nothing')
    .option('-o, --output <file>', 'save to file (default to stdout)')
    .action(
      cli.act(
        async (
          services: string[],
          o: {
            services?: boolean;
            volumes?: boolean;
            networks?: boolean;
            profiles?: boolean;
            images?: boolean;
            hash?: string;
            format: string;
            quiet?: boolean;
            output?: string;
          },
          cmd: Command,
        ) => {
          const p = await cli.project(cmd, services);
          const names = services.length ? services : Object.keys(p.services);
          let out: string;
          if (o.services) out = names.map((n) => `${n}\n`).join('');
          else if (o.volumes)
            out = Object.keys(p.volumes)
              .map((n) => `${n}\n`)
              .join('');
          else if (o.networks)
            out = Object.keys(p.networks)
              .map((n) => `${n}\n`)
              .join('');
          else if (o.profiles)
            out = [...new Set([...Object.values(p.services), ...Object.values(p.disabled)].flatMap((s) => s.profiles ?? []))]
              .sort()
              .map((n) => `${n}\n`)
              .join('');
          else if (o.images) out = names.map((n) => `${p.services[n]!.image ?? `${p.name}-${n}`}\n`).join('');
          else if (o.hash !== undefined) {
            // sorted, as docker compose prints them
            const which = (o.hash === '*' ? Object.keys(p.services) : o.hash.split(',')).sort();
            out = which
              .map((n) => {
                if (!p.services[n]) throw new EngineError('NOT_FOUND', `no such service: ${n}`);
                return `${n} ${configHash(p.services[n]!)}\n`;
              })
              .join('');
          } else {
            const data = projectData(p);
            if (services.length) data.services = Object.fromEntries(Object.entries(data.services as object).filter(([k]) => services.includes(k)));
            // the YAML library loads only for the command that prints YAML; .default, its CommonJS exports, is the same from src/ and from the bundle
            out =
              o.format === 'json'
                ? `${JSON.stringify(data, null, 2)}\n`
                : (await import('yaml')).default.stringify(data, { lineWidth: 0, aliasDuplicateObjects: false });
          }
          if (o.quiet) return;
          if (o.output) {
            const fs = await import('node:fs');
            fs.writeFileSync(`${o.output}.tmp`, out);
            fs.renameSync(`${o.output}.tmp`, o.output);
          } else process.stdout.write(out);
        },
      ),
    );

  // the other subcommands' modules load only when one of them (or help, or a mistyped name) may run
  const own = new Set(compose.commands.flatMap((c) => [c.name(), ...c.aliases()]));
  const sub = args && subcommandOf(compose, args);
  if (sub !== undefined && own.has(sub)) return;
  const [ps, watch, more] = await Promise.all([import('./compose-ps.ts'), import('./compose-watch.ts'), import('./compose-more.ts')]);
  ps.psCommand(compose, cli);
  watch.watchCommand(compose, cli, reporter);
  more.composeMoreCommands(compose, cli, reporter);
}

/**
 * The subcommand of `compose` an argument list runs, read with compose's
 * own options as commander reads them (an option's value is not a
 * subcommand); undefined when an option is unknown or no subcommand is
 * given (commander answers those with an error or help, with every
 * subcommand loaded).
 */
export function subcommandOf(compose: Command, args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') return args[i + 1];
    if (!a.startsWith('-') || a === '-') return a;
    const long = a.startsWith('--');
    const o = compose.options.find((x) => (long ? x.long === a.split('=')[0] : x.short === a.slice(0, 2)));
    if (!o) return undefined;
    const inline = long ? a.includes('=') : a.length > 2;
    if (inline || !(o.required || o.optional)) continue;
    if (o.required || (args[i + 1] !== undefined && !args[i + 1]!.startsWith('-'))) i++;
  }
  return undefined;
}
