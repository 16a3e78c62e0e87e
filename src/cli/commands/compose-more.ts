/**
 * The compose subcommands besides up/down/ps/logs/config: start, stop,
 * restart, kill, rm, pause, unpause, create, exec, run, build, pull, push,
 * top, port, images, ls, wait, events, cp, version.
 */
import type { Command } from 'commander';
import { EngineError } from '../../common/errors.ts';
import { planContainer } from '../../compose/convert.ts';
import { runHooks, withPostStartHooks } from '../../compose/hooks.ts';
import { withClientApiSocket } from '../compose-api-socket.ts';
import { injectFiles } from '../../compose/inject.ts';
import { referencedServices } from '../../compose/graph.ts';
import { buildService, ensureImages, pullWanted } from '../../compose/images.ts';
import * as L from '../../compose/labels.ts';
import { parsePort, parseVolume } from '../../compose/shorthand.ts';
import { containersOf, kill, pause, restart, rm, start, stop } from '../../compose/ops.ts';
import type { Reporter } from '../../compose/reporter.ts';
import { ensureNetworks, ensureVolumes, usedResources } from '../../compose/resources.ts';
import { numberOf, up, withDeps } from '../../compose/up.ts';
import { collect, ExitError } from '../context.ts';
import { envValue, FlagError } from '../opts.ts';
import { humanSize, table } from '../format.ts';
import type { ComposeCli } from './compose.ts';

const seconds = (v: string | undefined) => (v === undefined ? undefined : Number(v));

/** `-e KEY=VAL`, or `-e KEY` from `environment` (envValue), left out where it is not set there (as docker compose). */
function resolveEnv(list: string[], environment: Record<string, string | undefined>): string[] {
  try {
    return list.map((e) => envValue(e, environment)).filter((e) => e.includes('='));
  } catch (e) {
    throw e instanceof FlagError ? new EngineError('INVALID_ARGUMENT', e.message) : e;
  }
}

export function composeMoreCommands(compose: Command, cli: ComposeCli, r: Reporter): void {
  const simple = (
    name: string,
    description: string,
    fn: (cmd: Command, services: string[], o: Record<string, string | boolean | undefined>) => Promise<void>,
  ) =>
    compose
      .command(name)
      .description(description)
      .argument('[SERVICE...]')
      .action(cli.act(async (services: string[], o: Record<string, string | boolean | undefined>, cmd: Command) => fn(cmd, services, o)));

  simple('start', 'Start services', async (cmd, s) => start(await cli.backend(), await cli.target(cmd), r, s));
  simple('stop', 'Stop services', async (cmd, s, o) => stop(await cli.backend(), await cli.target(cmd), r, s, seconds(o.timeout as string))).option(
    '-t, --timeout <seconds>',
    'specify a shutdown timeout in seconds',
  );
  simple('restart', 'Restart service containers', async (cmd, s, o) =>
    restart(await cli.backend(), await cli.target(cmd), r, s, seconds(o.timeout as string)),
  ).option('-t, --timeout <seconds>', 'specify a shutdown timeout in seconds');
  simple('kill', 'Force stop service containers', async (cmd, s, o) => kill(await cli.backend(), await cli.target(cmd), r, s, o.signal as string))
    .option('-s, --signal <signal>', 'SIGNAL to send to the container', 'SIGKILL')
    .option('--remove-orphans', 'accepted for compatibility');
  simple('pause', 'Pause services', async (cmd, s) => pause(await cli.backend(), await cli.target(cmd), r, s, true));
  simple('unpause', 'Unpause services', async (cmd, s) => pause(await cli.backend(), await cli.target(cmd), r, s, false));
  simple(
    'rm',
    'Removes stopped service containers',
    async (cmd, s, o) => void (await rm(await cli.backend(), await cli.target(cmd), r, s, { stop: !!o.stop, volumes: !!o.volumes })),
  )
    .option('-f, --force', "don't ask to confirm removal")
    .option('-s, --stop', 'stop the containers, if required, before removing')
    .option('-v, --volumes', 'remove any anonymous volumes attached to containers');
  simple('create', 'Creates containers for a service', async (cmd, s, o) => {
    const p = await withClientApiSocket(await cli.project(cmd, s), cli.client);
    await up(await cli.backend(), p, r, {
      services: s,
      noStart: true,
      build: o.build === true,
      noBuild: o.build === false,
      forceRecreate: !!o.forceRecreate,
      noRecreate: o.recreate === false,
      pull: o.pull as string | undefined,
    });
  })
    .option('--build', 'build images before starting containers')
    .option('--no-build', "don't build an image, even if it's policy")
    .option('--force-recreate', 'recreate containers even if unchanged')
    .option('--no-recreate', "if containers already exist, don't recreate them")
    .option('--pull <policy>', 'pull image before running ("always"|"missing"|"never"|"build")');

  simple('build', 'Build or rebuild services', async (cmd, s, o) => {
    const p = await cli.project(cmd, s);
    const b = await cli.backend();
    const names = (s.length ? s : Object.keys(p.services)).filter((n) => p.services[n]?.build);
    for (const n of names) {
      const svc = p.services[n]!;
      const bc = { ...svc, build: { ...svc.build!, ...(o.cache === false ? { no_cache: true } : {}), ...(o.pull ? { pull: true } : {}) } };
      await buildService(b, p, bc, r, { onProgress: (_s, pr) => void (pr.stream && !o.quiet ? process.stdout.write(pr.stream) : undefined) });
    }
  })
    .option('--no-cache', 'do not use cache when building the image')
    .option('--pull', 'always attempt to pull a newer version of the image')
    .option('-q, --quiet', "don't print anything to STDOUT");

  simple('pull', 'Pull service images', async (cmd, s, o) => {
    const p = await cli.project(cmd, s);
    const b = await cli.backend();
    const names = (s.length ? s : Object.keys(p.services)).filter((n) => p.services[n]?.image);
    await Promise.all(
      names.map(async (n) => {
        const ref = p.services[n]!.image!;
        const want = await pullWanted(b, p.services[n]!);
        if (!want.pull) return want.skipped ? r.event('Image', ref, `Skipped - ${want.skipped}`) : undefined;
        r.event('Image', ref, 'Pulling');
        try {
          await b.pullImage(ref, () => {});
          r.event('Image', ref, 'Pulled');
        } catch (e) {
          // a service that can build its image goes on without it, as in docker compose
          if (!(e instanceof EngineError) || (!o.ignorePullFailures && !p.services[n]!.build)) throw e;
          r.warn(`${n}: ${e.message}`);
        }
      }),
    );
  })
    .option('--ignore-pull-failures', 'pull what it can and ignores images with pull failures')
    .option('-q, --quiet', 'pull without printing progress information');

  simple('push', 'Push service images', async (cmd, s) => {
    const p = await cli.project(cmd, s);
    const b = await cli.backend();
    for (const n of (s.length ? s : Object.keys(p.services)).filter((x) => p.services[x]?.build && p.services[x]?.image)) {
      const ref = p.services[n]!.image!;
      r.event('Image', ref, 'Pushing');
      await b.pushImage(ref, () => {});
      r.event('Image', ref, 'Pushed');
    }
  });

  compose
    .command('exec')
    .description('Execute a command in a running container')
    .argument('<SERVICE>')
    .argument('<COMMAND...>')
    .passThroughOptions()
    .option('-d, --detach', 'detached mode: run command in the background')
    .option('-e, --env <KEY=VAL>', 'set environment variables', collect, [])
    .option('--index <n>', 'index of the container if service has multiple replicas', '1')
    .option('-T, --no-TTY', 'disable pseudo-TTY allocation (default: auto-detected)')
    .option('-u, --user <user>', 'run the command as this user')
    .option('-w, --workdir <dir>', 'path to workdir directory for this command')
    .option('--privileged', 'give extended privileges to the process')
    .action(
      cli.act(
        async (
          service: string,
          command: string[],
          o: { detach?: boolean; env: string[]; index: string; TTY: boolean; user?: string; workdir?: string; privileged?: boolean },
          cmd: Command,
        ) => {
          const t = await cli.target(cmd);
          const b = await cli.backend();
          const c = (await containersOf(b, t, [service])).find((x) => numberOf(x) === Number(o.index) && x.state === 'running');
          if (!c) throw new EngineError('NOT_FOUND', `service "${service}" is not running`);
          const tty = o.TTY && !!process.stdin.isTTY;
          const code = await b.exec(c.id, {
            cmd: command,
            tty,
            interactive: !o.detach,
            user: o.user,
            workingDir: o.workdir,
            env: resolveEnv(o.env, process.env),
            privileged: o.privileged,
            detach: o.detach,
          });
          if (code) throw new ExitError(code);
        },
      ),
    );

  compose
    .command('run')
    .description('Run a one-off command on a service')
    .argument('<SERVICE>')
    .argument('[COMMAND...]')
    .passThroughOptions()
    .option('-d, --detach', 'run container in background and print container ID')
    .option('--rm', 'automatically remove the container when it exits')
    .option('-e, --env <KEY=VAL>', 'set environment variables', collect, [])
    .option('-l, --label <KEY=VAL>', 'add or override a label', collect, [])
    .option('--name <name>', 'assign a name to the container')
    .option('--entrypoint <cmd>', 'override the entrypoint of the image')
    .option('--no-deps', "don't start linked services")
    .option('--service-ports', "run command with the service's ports enabled and mapped to the host")
    .option('-p, --publish <port>', "publish a container's port(s) to the host", collect, [])
    .option('-v, --volume <volume>', 'bind mount a volume', collect, [])
    .option('-T, --no-TTY', 'disable pseudo-TTY allocation (default: auto-detected)')
    .option('-i, --interactive', 'keep STDIN open even if not attached (the default)')
    .option('-u, --user <user>', 'run as specified username or uid')
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .action(
      cli.act(
        async (
          service: string,
          command: string[],
          o: {
            detach?: boolean;
            rm?: boolean;
            env: string[];
            label: string[];
            name?: string;
            entrypoint?: string;
            deps: boolean;
            servicePorts?: boolean;
            publish: string[];
            volume: string[];
            TTY: boolean;
            user?: string;
            workdir?: string;
          },
          cmd: Command,
        ) => {
          const p = await withClientApiSocket(await cli.project(cmd, [service]), cli.client);
          const base = p.services[service];
          if (!base) throw new EngineError('NOT_FOUND', `no such service: ${service}`);
          // before anything is created: a bad -e leaves nothing behind
          const env = resolveEnv(o.env, p.environment);
          // -p replaces the service's ports (as --service-ports would publish them); -v adds mounts
          const s = {
            ...base,
            ports: o.publish.length ? o.publish.flatMap((x) => parsePort(x, '--publish')) : base.ports,
            volumes: [...base.volumes, ...o.volume.map((v) => parseVolume(v.startsWith('.') ? `${p.workingDir}/${v}` : v, '--volume'))],
          };
          const b = await cli.backend();
          const deps = withDeps(p, service);
          if (o.deps && deps.length) await up(b, p, r, { services: deps });
          const used = usedResources(p, [service]);
          await ensureNetworks(b, p, used.networks, r);
          await ensureVolumes(b, p, used.volumes, r);
          const imageId = (await ensureImages(b, p, [service], r)).get(service)!;
          const tty = o.TTY && !o.detach && !!process.stdin.isTTY;
          const referenced = referencedServices(s);
          const lenders = referenced.length ? await containersOf(b, { name: p.name, project: p }, referenced) : [];
          const labels = Object.fromEntries(o.label.map((l) => [l.split('=')[0]!, l.split('=').slice(1).join('=')]));
          const plan = planContainer(p, s, 1, {
            imageId,
            oneoff: true,
            name: o.name ?? `${p.name}-${service}-run-${(await import('node:crypto')).randomBytes(6).toString('hex')}`,
            serviceContainer: (svc) => {
              const c = lenders.find((x) => x.labels[L.SERVICE] === svc && x.state === 'running');
              if (!c)
                throw new EngineError(
                  'NOT_FOUND',
                  `service "${service}" uses service "${svc}" (service:${svc} or volumes_from), which has no running container`,
                );
              return c.id;
            },
            override: {
              cmd: command.length ? command : undefined,
              env,
              entrypoint: o.entrypoint ? [o.entrypoint] : undefined,
              noPorts: !o.servicePorts && !o.publish.length,
              tty,
              openStdin: !o.detach,
              user: o.user,
              workingDir: o.workdir,
              labels,
            },
          });
          const id = await b.createContainer(plan.spec);
          for (const n of plan.extraNetworks) await b.connectNetwork(n.name, id, n.endpoint);
          await injectFiles(b, p, s, id);
          if (o.detach) {
            await b.startContainer(id);
            await runHooks(b, s, 'post_start', id);
            process.stdout.write(`${plan.spec.name}\n`);
            return;
          }
          let code: number;
          try {
            code = await withPostStartHooks(b, p.name, s, id, () => b.runAttached(id, { tty, interactive: true }));
          } finally {
            // --rm after the run: the run's exit code is what the user needs; a leftover shows in `ps -a`
            if (o.rm) await b.removeContainer(id, { force: true, volumes: true }).catch(() => {});
          }
          if (code) throw new ExitError(code);
        },
      ),
    );

  simple('top', 'Display the running processes', async (cmd, s) => {
    const b = await cli.backend();
    for (const c of (await containersOf(b, await cli.target(cmd), s)).filter((x) => x.state === 'running')) {
      const t = await b.top(c.id);
      process.stdout.write(`${c.name}\n${table(t.titles, t.processes)}\n`);
    }
  });

  compose
    .command('port')
    .description('Print the public port for a port binding')
    .argument('<SERVICE>')
    .argument('<PRIVATE_PORT>')
    .option('--protocol <proto>', 'tcp or udp', 'tcp')
    .option('--index <n>', 'index of the container if service has multiple replicas', '1')
    .action(
      cli.act(async (service: string, port: string, o: { protocol: string; index: string }, cmd: Command) => {
        const b = await cli.backend();
        const c = (await containersOf(b, await cli.target(cmd), [service])).find((x) => numberOf(x) === Number(o.index));
        if (!c) throw new EngineError('NOT_FOUND', `service "${service}" has no container ${o.index}`);
        const d = await b.inspectContainer(c.id);
        const m = d.ports.find((x) => x.privatePort === Number(port) && x.type === o.protocol && x.publicPort);
        if (!m) throw new EngineError('NOT_FOUND', `no port ${port}/${o.protocol} for container ${c.name}`);
        process.stdout.write(`${m.ip || '0.0.0.0'}:${m.publicPort}\n`);
      }),
    );

  simple('images', 'List images used by the created containers', async (cmd, s, o) => {
    const b = await cli.backend();
    const list = await containersOf(b, await cli.target(cmd), s);
    const rows = await Promise.all(
      list.map(async (c) => {
        const img = await b.inspectImage(c.imageId);
        const tag = img?.repoTags[0] ?? '<none>:<none>';
        const at = tag.lastIndexOf(':');
        return { ContainerName: c.name, Repository: tag.slice(0, at), Tag: tag.slice(at + 1), ID: c.imageId, Size: img?.size ?? 0 };
      }),
    );
    if (o.quiet) return void process.stdout.write([...new Set(rows.map((x) => x.ID))].map((x) => `${x}\n`).join(''));
    if (o.format === 'json') return void process.stdout.write(`${JSON.stringify(rows)}\n`);
    process.stdout.write(
      table(
        ['CONTAINER', 'REPOSITORY', 'TAG', 'IMAGE ID', 'SIZE'],
        rows.map((x) => [x.ContainerName, x.Repository, x.Tag, x.ID.replace(/^sha256:/, '').slice(0, 12), humanSize(x.Size)]),
      ),
    );
  })
    .option('-q, --quiet', 'only display IDs')
    .option('--format <format>', 'format the output (table|json)', 'table');

  compose
    .command('ls')
    .description('List running compose projects')
    .option('-a, --all', 'show all stopped compose projects')
    .option('-q, --quiet', 'only display project names')
    .option('--format <format>', 'format the output (table|json)', 'table')
    .action(
      cli.act(async (o: { all?: boolean; quiet?: boolean; format: string }) => {
        const b = await cli.backend();
        const list = await b.listContainers([L.PROJECT], { all: true });
        const projects = new Map<string, { states: Map<string, number>; files: string }>();
        for (const c of list) {
          const name = c.labels[L.PROJECT]!;
          const e = projects.get(name) ?? { states: new Map(), files: c.labels[L.CONFIG_FILES] ?? '' };
          e.states.set(c.state, (e.states.get(c.state) ?? 0) + 1);
          projects.set(name, e);
        }
        const rows = [...projects]
          .filter(([, e]) => o.all || e.states.has('running'))
          .sort(([a], [b2]) => a.localeCompare(b2))
          .map(([name, e]) => ({
            Name: name,
            Status: [...e.states]
              .sort()
              .map(([s, n]) => `${s}(${n})`)
              .join(', '),
            ConfigFiles: e.files,
          }));
        if (o.quiet) return void process.stdout.write(rows.map((x) => `${x.Name}\n`).join(''));
        if (o.format === 'json') return void process.stdout.write(`${JSON.stringify(rows)}\n`);
        process.stdout.write(
          table(
            ['NAME', 'STATUS', 'CONFIG FILES'],
            rows.map((x) => [x.Name, x.Status, x.ConfigFiles]),
          ),
        );
      }),
    );

  simple('wait', 'Block until the first service container stops', async (cmd, s) => {
    const b = await cli.backend();
    const list = await containersOf(b, await cli.target(cmd), s);
    if (!list.length) throw new EngineError('NOT_FOUND', 'no container to wait for');
    const code = await Promise.race(list.map((c) => b.waitContainer(c.id)));
    if (code) throw new ExitError(code);
  });

  compose
    .command('cp')
    .description('Copy files/folders between a service container and the local filesystem')
    .usage('[OPTIONS] SERVICE:SRC_PATH DEST_PATH|-\n       keel compose cp [OPTIONS] SRC_PATH|- SERVICE:DEST_PATH')
    .argument('<SRC>')
    .argument('<DEST>')
    .option('-a, --archive', 'archive mode (copy all uid/gid information)')
    .option('-L, --follow-link', 'always follow symbol link in SRC_PATH')
    .option('--index <n>', 'index of the container if service has multiple replicas', '1')
    .action(
      cli.act(async (src: string, dest: string, o: { archive?: boolean; followLink?: boolean; index: string }, cmd: Command) => {
        const { copyFrom, copyTo, splitCpArg } = await import('./cp.ts');
        const [ss, sp] = splitCpArg(src);
        const [ds, dp] = splitCpArg(dest);
        if (ss && ds) throw new EngineError('INVALID_ARGUMENT', 'copying between services is not supported');
        if (!ss && !ds) throw new EngineError('INVALID_ARGUMENT', 'must specify at least one service source: SERVICE:PATH');
        const b = await cli.backend();
        const c = (await containersOf(b, await cli.target(cmd), [(ss ?? ds)!])).find((x) => numberOf(x) === Number(o.index));
        if (!c) throw new EngineError('NOT_FOUND', `service "${ss ?? ds}" has no container ${o.index}`);
        const client = await cli.client();
        if (ss) await copyFrom(client, c.id, sp, dp);
        else await copyTo(client, c.id, sp, dp, o);
      }),
    );

  compose
    .command('events')
    .description('Receive real time events from containers')
    .argument('[SERVICE...]')
    .option('--json', 'output events as a stream of json objects')
    .action(
      cli.act(async (services: string[], o: { json?: boolean }, cmd: Command) => {
        const t = await cli.target(cmd);
        const b = await cli.backend();
        const stopEvents = new AbortController();
        const onSig = () => stopEvents.abort();
        process.once('SIGINT', onSig);
        try {
          for await (const e of b.events(L.projectFilter(t.name), stopEvents.signal)) {
            const service = e.attributes[L.SERVICE] ?? '';
            if (e.type !== 'container' || (services.length && !services.includes(service))) continue;
            const time = new Date(e.timeNano / 1e6).toISOString().replace('T', ' ').replace('Z', '');
            const attrs = Object.entries(e.attributes)
              .filter(([k]) => !k.startsWith('com.docker.compose.'))
              .map(([k, v]) => `${k}=${v}`)
              .sort();
            if (o.json)
              process.stdout.write(
                `${JSON.stringify({ time: new Date(e.timeNano / 1e6).toISOString(), type: e.type, action: e.action, id: e.id, service, attributes: e.attributes })}\n`,
              );
            else process.stdout.write(`${time} ${e.type} ${e.action} ${e.id}${attrs.length ? ` (${attrs.join(', ')})` : ''}\n`);
          }
        } finally {
          process.off('SIGINT', onSig);
        }
      }),
    );

  compose
    .command('version')
    .description('Show the Docker Compose version information')
    .option('--short', 'shows only the version number')
    .option('-f, --format <format>', 'format the output (pretty|json)', 'pretty')
    .action((o: { short?: boolean; format: string }) => {
      if (o.short) process.stdout.write(`${L.COMPOSE_VERSION}\n`);
      else if (o.format === 'json') process.stdout.write(`${JSON.stringify({ version: `v${L.COMPOSE_VERSION}` })}\n`);
      else process.stdout.write(`Docker Compose version v${L.COMPOSE_VERSION} (keel compose)\n`);
    });
}
