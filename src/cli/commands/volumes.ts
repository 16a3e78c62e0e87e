import type { Command } from 'commander';
import { EngineError } from '../../common/errors.ts';
import { filtersFromFlags } from '../../engine/filters.ts';
import { humanSize, renderTemplate, table } from '../format.ts';
import { type CliContext, collect, group } from '../context.ts';
import { confirm } from '../prompt.ts';

interface Volume {
  Name: string;
  Driver: string;
  Mountpoint: string;
  CreatedAt: string;
  Labels: Record<string, string> | null;
  Options: Record<string, string> | null;
  Scope: string;
}

/** `k=v` flags into a map (docker's MapOpts: a bare key maps to ''). */
function toMap(items: string[]): Record<string, string> | undefined {
  if (!items.length) return undefined;
  const out: Record<string, string> = {};
  for (const i of items) {
    const at = i.indexOf('=');
    if (at < 0) out[i] = '';
    else out[i.slice(0, at)] = i.slice(at + 1);
  }
  return out;
}

/** The fields docker's volume --format knows. */
function row(v: Volume): Record<string, unknown> {
  const labels = Object.entries(v.Labels ?? {})
    .map(([k, x]) => `${k}=${x}`)
    .join(',');
  return { Name: v.Name, Driver: v.Driver, Scope: v.Scope, Mountpoint: v.Mountpoint, Labels: labels, Links: 'N/A', Size: 'N/A', CreatedAt: v.CreatedAt };
}

export function volumeCommands(program: Command, ctx: CliContext): void {
  const volume = group(program, 'volume');

  volume
    .command('create')
    .description('Create a volume')
    .argument('[VOLUME]')
    .option('-d, --driver <name>', 'specify volume driver name', 'local')
    .option('--label <label>', 'set metadata for a volume', collect, [])
    .option('-o, --opt <option>', 'set driver specific options (type, device, o)', collect, [])
    .option('--name <name>', 'specify volume name')
    .action(async (arg: string | undefined, o: { driver: string; label: string[]; opt: string[]; name?: string }) => {
      if (arg && o.name && arg !== o.name)
        throw new EngineError('INVALID_ARGUMENT', 'conflicting options: either specify --name or provide positional arg, not both');
      const client = await ctx.client();
      const v = await client.json<Volume>('POST', '/volumes/create', {
        body: { Name: arg ?? o.name ?? '', Driver: o.driver, DriverOpts: toMap(o.opt) ?? {}, Labels: toMap(o.label) ?? {} },
      });
      process.stdout.write(`${v.Name}\n`);
    });

  volume
    .command('ls')
    .alias('list')
    .description('List volumes')
    .option('-f, --filter <filter>', 'provide filter values (e.g. "dangling=true")', collect, [])
    .option('--format <format>', 'format output using a Go template')
    .option('-q, --quiet', 'only display volume names')
    .action(async (o: { filter: string[]; format?: string; quiet?: boolean }) => {
      const client = await ctx.client();
      const r = await client.json<{ Volumes: Volume[] | null }>('GET', '/volumes', { query: { filters: JSON.stringify(filtersFromFlags(o.filter)) } });
      const vols = (r.Volumes ?? []).sort((a, b) => a.Name.localeCompare(b.Name));
      if (o.quiet) return void process.stdout.write(vols.map((v) => `${v.Name}\n`).join(''));
      if (o.format) return void process.stdout.write(renderTemplate(o.format, vols.map(row)));
      process.stdout.write(
        table(
          ['DRIVER', 'VOLUME NAME'],
          vols.map((v) => [v.Driver, v.Name]),
        ),
      );
    });

  volume
    .command('inspect')
    .description('Display detailed information on one or more volumes')
    .argument('<VOLUME...>')
    .option('-f, --format <format>', 'format output using a Go template')
    .action(async (names: string[], o: { format?: string }) => {
      const client = await ctx.client();
      const out: Volume[] = [];
      for (const n of names) {
        try {
          out.push(await client.json<Volume>('GET', `/volumes/${encodeURIComponent(n)}`));
        } catch (e) {
          if (!(e instanceof EngineError) || e.code !== 'NOT_FOUND') throw e;
          process.stderr.write(`Error response from daemon: ${e.message}\n`);
          process.exitCode = 1;
        }
      }
      if (o.format) process.stdout.write(renderTemplate(o.format, out as unknown as Record<string, unknown>[]));
      else process.stdout.write(JSON.stringify(out, null, 4) + '\n');
    });

  volume
    .command('rm')
    .alias('remove')
    .description('Remove one or more volumes')
    .argument('<VOLUME...>')
    .option('-f, --force', 'force the removal of one or more volumes')
    .action(async (names: string[], o: { force?: boolean }) => {
      const client = await ctx.client();
      for (const n of names) {
        try {
          (await client.request('DELETE', `/volumes/${encodeURIComponent(n)}`, { query: { force: o.force ? 1 : undefined } })).resume();
          process.stdout.write(`${n}\n`);
        } catch (e) {
          if (!(e instanceof EngineError)) throw e;
          process.stderr.write(`Error response from daemon: ${e.message}\n`);
          process.exitCode = 1;
        }
      }
    });

  volume
    .command('prune')
    .description('Remove all unused local volumes')
    .option('-f, --force', 'do not prompt for confirmation')
    .option('--filter <filter>', 'provide filter values (e.g. "label=<label>")', collect, [])
    .action(async (o: { force?: boolean; filter: string[] }) => {
      if (!o.force && !(await confirm('WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue?')))
        return;
      const client = await ctx.client();
      const r = await client.json<{ VolumesDeleted: string[] | null; SpaceReclaimed: number }>('POST', '/volumes/prune', {
        query: { filters: JSON.stringify(filtersFromFlags(o.filter)) },
      });
      if (r.VolumesDeleted?.length) process.stdout.write(`Deleted Volumes:\n${r.VolumesDeleted.map((n) => `${n}\n`).join('')}\n`);
      process.stdout.write(`Total reclaimed space: ${humanSize(r.SpaceReclaimed)}\n`);
    });
}
