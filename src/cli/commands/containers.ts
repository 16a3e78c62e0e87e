import type { Command } from 'commander';
import { EngineError } from '../../common/errors.ts';
import { filtersFromFlags } from '../../engine/filters.ts';
import type { ApiClient } from '../client.ts';
import { humanSize, renderTemplate, table } from '../format.ts';
import { type CliContext, collect, ExitError, group } from '../context.ts';
import { confirm } from '../prompt.ts';
import { FlagError, parseCpus, parseDetachKeys, parseInteger, parseMemory, parseMemorySwap, parseRestart } from '../opts.ts';
import { containerConfig, runSession } from '../session.ts';

const enc = encodeURIComponent;

/** Runs one request per container; docker prints each failure and exits 1 at the end. */
async function forEach(names: string[], fn: (name: string) => Promise<void>): Promise<void> {
  let failed = false;
  for (const n of names) {
    try {
      await fn(n);
    } catch (e) {
      if (!(e instanceof EngineError)) throw e;
      process.stderr.write(`Error response from daemon: ${e.message}\n`);
      failed = true;
    }
  }
  if (failed) throw new ExitError(1);
}

async function post(client: ApiClient, path: string, query: Record<string, string | number | undefined> = {}, body?: unknown): Promise<void> {
  (await client.request('POST', path, { query, body })).resume();
}

const simple = (program: Command, container: Command, name: string, desc: string, fn: (c: Command) => Command, aliases: string[] = []) => {
  const out = [program.command(name), container.command(name)];
  for (const a of aliases) out[1]!.alias(a);
  for (const c of out) fn(c.description(desc));
  return out;
};

/** The container commands that are not run/create, ps/stats, exec, logs/export or cp (each in its own module). */
export function containerCommands(program: Command, ctx: CliContext): void {
  const container = group(program, 'container');

  simple(program, container, 'start', 'Start one or more stopped containers', (c) =>
    c
      .argument('<CONTAINER...>')
      .option('-a, --attach', 'attach STDOUT/STDERR and forward signals')
      .option('-i, --interactive', "attach container's STDIN")
      .option('--detach-keys <string>', 'override the key sequence for detaching a container')
      .action(async (names: string[], o: { attach?: boolean; interactive?: boolean; detachKeys?: string }) => {
        const client = await ctx.client();
        if (!o.attach && !o.interactive)
          return forEach(names, async (n) => {
            await post(client, `/containers/${enc(n)}/start`);
            process.stdout.write(`${n}\n`);
          });
        if (names.length > 1) throw new EngineError('INVALID_ARGUMENT', 'you cannot start and attach multiple containers at once');
        const info = await containerConfig(client, names[0]!);
        if (info.State.Running) {
          process.stderr.write(`Error response from daemon: container ${info.Id} is already running\n`);
          throw new ExitError(1);
        }
        const tty = info.Config.Tty;
        const r = await runSession(client, {
          id: info.Id,
          tty,
          stdin: !!o.interactive && info.Config.OpenStdin,
          stdout: true,
          stderr: true,
          detachKeys: parseDetachKeys(o.detachKeys ?? 'ctrl-p,ctrl-q'),
          detachKeysRaw: o.detachKeys,
          sigProxy: true,
          start: true,
        });
        if (r.startError) {
          process.stderr.write(`Error response from daemon: ${r.startError.message}\n`);
          throw new ExitError(1);
        }
        if (r.status !== 0) throw new ExitError(r.status);
      }),
  );

  simple(program, container, 'attach', 'Attach local standard input, output, and error streams to a running container', (c) =>
    c
      .argument('<CONTAINER>')
      .option('--no-stdin', 'do not attach STDIN')
      .option('--sig-proxy [bool]', 'proxy all received signals to the process', true)
      .option('--detach-keys <string>', 'override the key sequence for detaching a container')
      .action(async (name: string, o: { stdin: boolean; sigProxy: boolean | string; detachKeys?: string }) => {
        const client = await ctx.client();
        const info = await containerConfig(client, name);
        if (!info.State.Running) throw new EngineError('CONFLICT', 'You cannot attach to a stopped container, start it first');
        if (info.State.Paused) throw new EngineError('CONFLICT', 'You cannot attach to a paused container, unpause it first');
        const r = await runSession(client, {
          id: info.Id,
          tty: info.Config.Tty,
          stdin: o.stdin && info.Config.OpenStdin,
          stdout: true,
          stderr: true,
          detachKeys: parseDetachKeys(o.detachKeys ?? 'ctrl-p,ctrl-q'),
          detachKeysRaw: o.detachKeys,
          sigProxy: typeof o.sigProxy === 'string' ? o.sigProxy !== 'false' : o.sigProxy,
          start: false,
        });
        if (r.detached) {
          process.stderr.write('read escape sequence\n');
          throw new ExitError(1);
        }
        if (r.status !== 0) throw new ExitError(r.status);
      }),
  );

  for (const [verb, desc] of [
    ['stop', 'Stop one or more running containers'],
    ['restart', 'Restart one or more containers'],
  ] as const) {
    simple(program, container, verb, desc, (c) =>
      c
        .argument('<CONTAINER...>')
        .option('-s, --signal <string>', 'signal to send to the container')
        .option('-t, --time <int>', 'seconds to wait before killing the container')
        .action(async (names: string[], o: { signal?: string; time?: string }) => {
          const client = await ctx.client();
          await forEach(names, async (n) => {
            await post(client, `/containers/${enc(n)}/${verb}`, { t: o.time, signal: o.signal });
            process.stdout.write(`${n}\n`);
          });
        }),
    );
  }

  simple(program, container, 'kill', 'Kill one or more running containers', (c) =>
    c
      .argument('<CONTAINER...>')
      .option('-s, --signal <string>', 'signal to send to the container')
      .action(async (names: string[], o: { signal?: string }) => {
        const client = await ctx.client();
        await forEach(names, async (n) => {
          await post(client, `/containers/${enc(n)}/kill`, { signal: o.signal });
          process.stdout.write(`${n}\n`);
        });
      }),
  );

  for (const [name, desc] of [
    ['pause', 'Pause all processes within one or more containers'],
    ['unpause', 'Unpause all processes within one or more containers'],
  ] as const) {
    simple(program, container, name, desc, (c) =>
      c.argument('<CONTAINER...>').action(async (names: string[]) => {
        const client = await ctx.client();
        await forEach(names, async (n) => {
          await post(client, `/containers/${enc(n)}/${name}`);
          process.stdout.write(`${n}\n`);
        });
      }),
    );
  }

  const rm = (c: Command) =>
    c
      .argument('<CONTAINER...>')
      .option('-f, --force', 'force the removal of a running container (uses SIGKILL)')
      .option('-l, --link', 'remove the specified link')
      .option('-v, --volumes', 'remove anonymous volumes associated with the container')
      .action(async (names: string[], o: { force?: boolean; link?: boolean; volumes?: boolean }) => {
        const client = await ctx.client();
        await forEach(names, async (n) => {
          (
            await client.request('DELETE', `/containers/${enc(n)}`, {
              query: { force: o.force ? 1 : undefined, v: o.volumes ? 1 : undefined, link: o.link ? 1 : undefined },
            })
          ).resume();
          process.stdout.write(`${n}\n`);
        });
      });
  rm(program.command('rm').description('Remove one or more containers'));
  rm(container.command('rm').alias('remove').description('Remove one or more containers'));

  simple(program, container, 'wait', 'Block until one or more containers stop, then print their exit codes', (c) =>
    c.argument('<CONTAINER...>').action(async (names: string[]) => {
      const client = await ctx.client();
      await forEach(names, async (n) => {
        const r = await client.json<{ StatusCode: number; Error?: { Message?: string } | null }>('POST', `/containers/${enc(n)}/wait`);
        if (r.Error?.Message) throw new EngineError('INTERNAL', r.Error.Message);
        process.stdout.write(`${r.StatusCode}\n`);
      });
    }),
  );

  simple(program, container, 'rename', 'Rename a container', (c) =>
    c
      .argument('<CONTAINER>')
      .argument('<NEW_NAME>')
      .action(async (name: string, newName: string) => {
        const client = await ctx.client();
        if (!newName.trim()) throw new EngineError('INVALID_ARGUMENT', 'Error: Neither old nor new names may be empty');
        await post(client, `/containers/${enc(name)}/rename`, { name: newName });
      }),
  );

  simple(program, container, 'top', 'Display the running processes of a container', (c) =>
    c
      .argument('<CONTAINER>')
      .argument('[ps OPTIONS...]')
      .passThroughOptions()
      .action(async (name: string, psArgs: string[]) => {
        const client = await ctx.client();
        const r = await client.json<{ Titles: string[]; Processes: string[][] }>('GET', `/containers/${enc(name)}/top`, {
          query: { ps_args: psArgs.length ? psArgs.join(' ') : undefined },
        });
        process.stdout.write(table(r.Titles, r.Processes ?? [], 20));
      }),
  );

  simple(program, container, 'port', 'List port mappings or a specific mapping for the container', (c) =>
    c
      .argument('<CONTAINER>')
      .argument('[PRIVATE_PORT[/PROTO]]')
      .action(async (name: string, port: string | undefined) => {
        const client = await ctx.client();
        const info = await client.json<{ NetworkSettings: { Ports: Record<string, { HostIp: string; HostPort: string }[] | null> | null } }>(
          'GET',
          `/containers/${enc(name)}/json`,
        );
        const ports = info.NetworkSettings.Ports ?? {};
        const fmt = (b: { HostIp: string; HostPort: string }) => `${b.HostIp.includes(':') ? `[${b.HostIp}]` : b.HostIp || '0.0.0.0'}:${b.HostPort}`;
        if (port) {
          const key = port.includes('/') ? port : `${port}/tcp`;
          const binds = ports[key];
          if (!binds?.length) throw new EngineError('NOT_FOUND', `No public port '${key}' published for ${name}`);
          process.stdout.write(binds.map((b) => fmt(b) + '\n').join(''));
          return;
        }
        const keys = Object.keys(ports).sort((a, b) => parseInt(a) - parseInt(b) || a.localeCompare(b));
        for (const k of keys) for (const b of ports[k] ?? []) process.stdout.write(`${k} -> ${fmt(b)}\n`);
      }),
  );

  simple(program, container, 'diff', "Inspect changes to files or directories on a container's filesystem", (c) =>
    c.argument('<CONTAINER>').action(async (name: string) => {
      const client = await ctx.client();
      const changes = await client.json<{ Path: string; Kind: number }[] | null>('GET', `/containers/${enc(name)}/changes`);
      process.stdout.write((changes ?? []).map((ch) => `${'CAD'[ch.Kind] ?? '?'} ${ch.Path}\n`).join(''));
    }),
  );

  simple(program, container, 'update', 'Update configuration of one or more containers', (c) =>
    c
      .argument('<CONTAINER...>')
      .option('-m, --memory <bytes>', 'memory limit')
      .option('--memory-reservation <bytes>', 'memory soft limit')
      .option('--memory-swap <bytes>', 'swap limit equal to memory plus swap: -1 to enable unlimited swap')
      .option('--cpus <decimal>', 'number of CPUs')
      .option('-c, --cpu-shares <int>', 'CPU shares (relative weight)')
      .option('--cpuset-cpus <string>', 'CPUs in which to allow execution (0-3, 0,1)')
      .option('--cpuset-mems <string>', 'MEMs in which to allow execution (0-3, 0,1)')
      .option('--cpu-period <int>', 'limit CPU CFS period')
      .option('--cpu-quota <int>', 'limit CPU CFS quota')
      .option('--blkio-weight <uint16>', 'block IO (relative weight)')
      .option('--pids-limit <int>', 'tune container pids limit (set -1 for unlimited)')
      .option('--restart <string>', 'restart policy to apply when a container exits')
      .action(async (names: string[], o: Record<string, string | undefined>) => {
        const p = <T>(flagName: string, v: string | undefined, f: (s: string) => T): T | undefined => {
          if (v === undefined) return undefined;
          try {
            return f(v);
          } catch (e) {
            if (!(e instanceof FlagError)) throw e;
            process.stderr.write(`keel: invalid argument "${v}" for "${flagName}" flag: ${e.message}\nSee 'keel update --help'.\n`);
            throw new ExitError(125);
          }
        };
        const body = {
          Memory: p('-m, --memory', o.memory, parseMemory),
          MemoryReservation: p('--memory-reservation', o.memoryReservation, parseMemory),
          MemorySwap: p('--memory-swap', o.memorySwap, parseMemorySwap),
          NanoCpus: p('--cpus', o.cpus, parseCpus),
          CpuShares: p('-c, --cpu-shares', o.cpuShares, parseInteger),
          CpusetCpus: o.cpusetCpus,
          CpusetMems: o.cpusetMems,
          CpuPeriod: p('--cpu-period', o.cpuPeriod, parseInteger),
          CpuQuota: p('--cpu-quota', o.cpuQuota, parseInteger),
          BlkioWeight: p('--blkio-weight', o.blkioWeight, parseInteger),
          PidsLimit: p('--pids-limit', o.pidsLimit, parseInteger),
          RestartPolicy: p('--restart', o.restart, parseRestart),
        };
        if (Object.values(body).every((v) => v === undefined)) {
          process.stderr.write("keel: you must provide one or more flags when using this command\nSee 'keel update --help'.\n");
          throw new ExitError(125);
        }
        const client = await ctx.client();
        await forEach(names, async (n) => {
          const r = await client.json<{ Warnings?: string[] | null }>('POST', `/containers/${enc(n)}/update`, { body });
          for (const w of r?.Warnings ?? []) process.stderr.write(`WARNING: ${w}\n`);
          process.stdout.write(`${n}\n`);
        });
      }),
  );

  container
    .command('prune')
    .description('Remove all stopped containers')
    .option('-f, --force', 'do not prompt for confirmation')
    .option('--filter <filter>', 'provide filter values (e.g. "until=<timestamp>")', collect, [])
    .action(async (o: { force?: boolean; filter: string[] }) => {
      if (!o.force && !(await confirm('WARNING! This will remove all stopped containers.\nAre you sure you want to continue?'))) return;
      const client = await ctx.client();
      const r = await client.json<{ ContainersDeleted: string[] | null; SpaceReclaimed: number }>('POST', '/containers/prune', {
        query: { filters: JSON.stringify(filtersFromFlags(o.filter)) },
      });
      if (r.ContainersDeleted?.length) process.stdout.write(`Deleted Containers:\n${r.ContainersDeleted.join('\n')}\n\n`);
      process.stdout.write(`Total reclaimed space: ${humanSize(r.SpaceReclaimed ?? 0)}\n`);
    });

  const inspect = async (names: string[], o: { format?: string; type?: string; size?: boolean }, only?: string) => {
    const client = await ctx.client();
    const kinds = only ? [only] : o.type ? [o.type] : ['container', 'image', 'volume', 'network'];
    for (const k of kinds)
      if (!['container', 'image', 'volume', 'network'].includes(k)) throw new EngineError('INVALID_ARGUMENT', `"${k}" is not a valid value for --type`);
    const paths: Record<string, (n: string) => string> = {
      container: (n) => `/containers/${enc(n)}/json`,
      image: (n) => `/images/${enc(n)}/json`,
      volume: (n) => `/volumes/${enc(n)}`,
      network: (n) => `/networks/${enc(n)}`,
    };
    const out: Record<string, unknown>[] = [];
    const missing: string[] = [];
    for (const n of names) {
      let found: Record<string, unknown> | undefined;
      for (const k of kinds) {
        try {
          found = await client.json(k === 'container' && o.size ? 'GET' : 'GET', paths[k]!(n), { query: k === 'container' && o.size ? { size: 1 } : {} });
          break;
        } catch (e) {
          if (!(e instanceof EngineError) || (e.code !== 'NOT_FOUND' && e.code !== 'INVALID_ARGUMENT')) throw e;
        }
      }
      if (found) out.push(found);
      else missing.push(n);
    }
    if (o.format) process.stdout.write(renderTemplate(o.format, out));
    else process.stdout.write(JSON.stringify(out, null, 4) + '\n');
    if (missing.length) {
      const what = only ?? o.type ?? 'object';
      for (const n of missing) process.stderr.write(`Error: No such ${what}: ${n}\n`);
      throw new ExitError(1);
    }
  };
  program
    .command('inspect')
    .description('Return low-level information on keel objects')
    .argument('<NAME|ID...>')
    .option('-f, --format <string>', 'format output using a custom template')
    .option('-s, --size', 'display total file sizes if the type is container')
    .option('--type <string>', 'return JSON for specified type (container, image, volume, network)')
    .action((names: string[], o: { format?: string; type?: string; size?: boolean }) => inspect(names, o));
  container
    .command('inspect')
    .description('Display detailed information on one or more containers')
    .argument('<CONTAINER...>')
    .option('-f, --format <string>', 'format output using a custom template')
    .option('-s, --size', 'display total file sizes')
    .action((names: string[], o: { format?: string; size?: boolean }) => inspect(names, o, 'container'));

  simple(program, container, 'commit', "Create a new image from a container's changes", (c) =>
    c
      .argument('<CONTAINER>')
      .argument('[REPOSITORY[:TAG]]')
      .option('-a, --author <string>', 'author (e.g., "John Hannibal Smith <hannibal@a-team.com>")')
      .option('-c, --change <list>', 'apply Dockerfile instruction to the created image', collect, [])
      .option('-m, --message <string>', 'commit message')
      .option('-p, --pause [bool]', 'pause container during commit', true)
      .action(async (name: string, ref: string | undefined, o: { author?: string; change: string[]; message?: string; pause: boolean | string }) => {
        const client = await ctx.client();
        let repo = ref;
        let tag: string | undefined;
        if (ref) {
          const i = ref.lastIndexOf(':');
          if (i > ref.lastIndexOf('/')) [repo, tag] = [ref.slice(0, i), ref.slice(i + 1)];
        }
        const pause = o.pause === true || (typeof o.pause === 'string' && o.pause !== 'false');
        const r = await client.json<{ Id: string }>('POST', '/commit', {
          query: { container: name, repo, tag, comment: o.message, author: o.author, pause: pause ? undefined : 0, changes: o.change },
          body: {},
        });
        process.stdout.write(`${r.Id}\n`);
      }),
  );
}
