import type { Command } from 'commander';
import { table } from '../format.ts';
import { type CliContext, group } from '../context.ts';
import { parseInteger } from '../opts.ts';

const enc = encodeURIComponent;

const CLONE_HELP = `
A clone is a new container with SRC's configuration (env, command, mounts,
networks; published ports on new host ports) whose filesystem and volumes
start from SRC's state now.

SRC stopped: SRC's writable layer and volume data are frozen into read-only
layers the clones (and SRC) stack their own writable layer over. Nothing is
copied: a clone costs the same whether SRC holds 1 MB or 10 GB.

SRC running: refused, unless --pause: SRC is frozen (cgroup freezer), synced,
and what it wrote since its last freeze (writable layer and volumes) is
copied, then it is thawed. That costs time proportional to what it wrote, and
SRC is paused meanwhile.

Bind mounts are shared with the clones, not cloned (a warning; --strict
refuses). Cloned volumes are anonymous volumes labelled
keel.clone.origin=<volume>, removed with their clone by rm -v or --rm.`;

/** `keel clone` and `keel pool ...`: keel's clones and warm pools (API extensions, see src/api/EXTENSIONS.md). */
export function cloneCommands(program: Command, ctx: CliContext): void {
  program
    .command('clone')
    .description("Create containers that start from a container's filesystem and volumes, without copying them")
    .argument('<SRC>')
    .option('--count <n>', 'number of clones', '1')
    .option('--name <name>', 'name of the clone (one clone)')
    .option('--name-prefix <prefix>', 'name the clones <prefix>1, <prefix>2, ...')
    .option('--pause', 'clone a running container: pause it while what it wrote is copied')
    .option('--strict', 'refuse a container with bind mounts instead of sharing them')
    .option('--start', 'start the clones too (as docker run does)')
    .addHelpText('after', CLONE_HELP)
    .action(async (src: string, o: { count: string; name?: string; namePrefix?: string; pause?: boolean; strict?: boolean; start?: boolean }) => {
      const client = await ctx.client();
      const count = parseInteger(o.count);
      const out = await client.json<{ Clones: { Id: string; Name: string }[]; Warnings: string[] }>('POST', `/containers/${enc(src)}/clone`, {
        query: {
          count,
          name: o.name,
          'name-prefix': o.namePrefix,
          pause: o.pause ? 1 : undefined,
          strict: o.strict ? 1 : undefined,
          start: o.start ? 1 : undefined,
        },
      });
      for (const w of out.Warnings ?? []) process.stderr.write(`WARNING: ${w}\n`);
      for (const c of out.Clones) process.stdout.write(`${c.Name}\n`);
    });

  const pool = group(program, 'pool');
  pool
    .command('create')
    .description('Keep N clones of a stopped container started and ready')
    .argument('<NAME>')
    .requiredOption('--from <SRC>', 'the container to clone')
    .requiredOption('--size <n>', 'how many ready clones to keep')
    .option(
      '--ready <how>',
      'when a clone is ready: health, port, log:TEXT or running (default: health with a health check, port with published ports, else running)',
    )
    .action(async (name: string, o: { from: string; size: string; ready?: string }) => {
      const client = await ctx.client();
      await client.json('POST', '/keel/pools', { body: { Name: name, From: o.from, Size: parseInteger(o.size), Ready: o.ready } });
      process.stdout.write(`${name}\n`);
    });
  pool
    .command('take')
    .description('Take a ready container from a pool; prints its name and published ports as JSON')
    .argument('<NAME>')
    .option('--timeout <seconds>', 'how long to wait when no container is ready', '60')
    .action(async (name: string, o: { timeout: string }) => {
      const client = await ctx.client();
      const out = await client.json<{ Id: string; Name: string; Ports: Record<string, { HostIp: string; HostPort: string }[] | null>; WaitedMs: number }>(
        'POST',
        `/keel/pools/${enc(name)}/take`,
        { query: { timeout: parseInteger(o.timeout) } },
      );
      const ports: Record<string, string> = {};
      for (const [k, v] of Object.entries(out.Ports ?? {})) if (v?.[0]) ports[k] = v[0].HostPort;
      process.stdout.write(`${JSON.stringify({ name: out.Name, id: out.Id, ports, waitedMs: out.WaitedMs })}\n`);
    });
  pool
    .command('ls')
    .alias('list')
    .description('List pools')
    .action(async () => {
      const client = await ctx.client();
      const pools = await client.json<
        { name: string; sourceName: string; size: number; readyCount: number; starting: number; ready: string; error?: string }[]
      >('GET', '/keel/pools');
      process.stdout.write(
        table(
          ['NAME', 'SOURCE', 'SIZE', 'READY', 'STARTING', 'WHEN READY', 'ERROR'],
          pools.map((p) => [p.name, p.sourceName, String(p.size), String(p.readyCount), String(p.starting), p.ready, p.error ?? '']),
        ),
      );
    });
  pool
    .command('rm')
    .alias('remove')
    .description('Remove pools and the containers they hold ready (taken ones stay)')
    .argument('<NAME...>')
    .action(async (names: string[]) => {
      const client = await ctx.client();
      for (const n of names) {
        (await client.request('DELETE', `/keel/pools/${enc(n)}`)).resume();
        process.stdout.write(`${n}\n`);
      }
    });
}
