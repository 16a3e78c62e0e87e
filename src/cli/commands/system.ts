import type { Command } from 'commander';
import { filtersFromFlags } from '../../engine/filters.ts';
import { humanSize, renderTemplate, table } from '../format.ts';
import { type CliContext, collect, group } from '../context.ts';

export function systemCommands(program: Command, ctx: CliContext): void {
  program
    .command('version')
    .description('Show the keel version information')
    .option('-f, --format <format>', 'format output using a Go template')
    .action(async (o: { format?: string }) => {
      const client = await ctx.client();
      const v = await client.json<
        Record<string, unknown> & {
          Version: string;
          ApiVersion: string;
          MinAPIVersion: string;
          Os: string;
          Arch: string;
          GoVersion: string;
          Components: { Name: string; Version: string }[];
        }
      >('GET', '/version');
      const clientInfo = { Version: '0.1.0', ApiVersion: '1.41', Os: 'linux', Arch: v.Arch, NodeVersion: process.versions.node };
      if (o.format) return void process.stdout.write(renderTemplate(o.format, [{ Client: clientInfo, Server: v }]));
      const runc = v.Components.find((c) => c.Name === 'runc');
      process.stdout.write(
        `Client:\n Version:           ${clientInfo.Version}\n API version:       ${clientInfo.ApiVersion}\n Node version:      ${clientInfo.NodeVersion}\n OS/Arch:           linux/${v.Arch}\n\n` +
          `Server:\n Engine:\n  Version:          ${v.Version}\n  API version:      ${v.ApiVersion} (minimum version ${v.MinAPIVersion})\n  Runtime:          ${v.GoVersion}\n  OS/Arch:          ${v.Os}/${v.Arch}\n` +
          (runc ? ` runc:\n  Version:          ${runc.Version}\n` : ''),
      );
    });

  program
    .command('info')
    .description('Display system-wide information')
    .option('-f, --format <format>', 'format output using a Go template')
    .action(async (o: { format?: string }) => {
      const client = await ctx.client();
      const i = await client.json<Record<string, unknown>>('GET', '/info');
      if (o.format) return void process.stdout.write(renderTemplate(o.format, [i]));
      const lines = [
        'Server:',
        ` Containers: ${i.Containers}`,
        `  Running: ${i.ContainersRunning}`,
        `  Paused: ${i.ContainersPaused}`,
        `  Stopped: ${i.ContainersStopped}`,
        ` Images: ${i.Images}`,
        ` Server Version: ${i.ServerVersion}`,
        ` Storage Driver: ${i.Driver}`,
        ` Logging Driver: ${i.LoggingDriver}`,
        ` Cgroup Driver: ${i.CgroupDriver}`,
        ` Cgroup Version: ${i.CgroupVersion}`,
        ` Default Runtime: ${i.DefaultRuntime}`,
        ` Kernel Version: ${i.KernelVersion}`,
        ` Operating System: ${i.OperatingSystem}`,
        ` OSType: ${i.OSType}`,
        ` Architecture: ${i.Architecture}`,
        ` CPUs: ${i.NCPU}`,
        ` Total Memory: ${humanSize(Number(i.MemTotal))}`,
        ` Name: ${i.Name}`,
        ` Docker Root Dir: ${i.DockerRootDir}`,
      ];
      process.stdout.write(lines.join('\n') + '\n');
    });

  const system = group(program, 'system');
  system
    .command('df')
    .description('Show disk usage')
    .option('-v, --verbose', 'show detailed information on space usage')
    .option('--format <format>', 'format output using a Go template')
    .action(async (o: { verbose?: boolean; format?: string }) => {
      const client = await ctx.client();
      const df = await client.json<{
        LayersSize: number;
        Images: { Containers: number; Size: number; SharedSize: number; RepoTags: string[] | null; Id: string; Created: number }[];
        Containers: { SizeRw?: number; State: string }[];
        Volumes: { UsageData?: { Size: number; RefCount: number } }[];
        FrozenLayers?: { Size: number; RefCount: number }[];
      }>('GET', '/system/df');
      const activeImages = df.Images.filter((i) => i.Containers > 0);
      // As the docker CLI computes it: what images in use need is not reclaimable.
      const reclaimImages = df.LayersSize - activeImages.reduce((s, i) => s + i.Size - Math.max(0, i.SharedSize), 0);
      const rows = [
        {
          Type: 'Images',
          TotalCount: String(df.Images.length),
          Active: String(activeImages.length),
          Size: humanSize(df.LayersSize),
          Reclaimable: `${humanSize(reclaimImages)} (${df.LayersSize ? Math.round((reclaimImages * 100) / df.LayersSize) : 0}%)`,
        },
        {
          Type: 'Containers',
          TotalCount: String(df.Containers.length),
          Active: String(df.Containers.filter((c) => c.State === 'running').length),
          Size: humanSize(df.Containers.reduce((s, c) => s + (c.SizeRw ?? 0), 0)),
          Reclaimable: '0B (0%)',
        },
        {
          Type: 'Local Volumes',
          TotalCount: String(df.Volumes.length),
          Active: String(df.Volumes.filter((v) => (v.UsageData?.RefCount ?? 0) > 0).length),
          Size: humanSize(df.Volumes.reduce((s, v) => s + Math.max(0, v.UsageData?.Size ?? 0), 0)),
          Reclaimable: '0B',
        },
        { Type: 'Build Cache', TotalCount: '0', Active: '0', Size: '0B', Reclaimable: '0B' },
      ];
      // Clones' frozen layers (keel only); freed when their last clone goes.
      const frozen = df.FrozenLayers ?? [];
      if (frozen.length)
        rows.push({
          Type: 'Frozen Layers',
          TotalCount: String(frozen.length),
          Active: String(frozen.filter((f) => f.RefCount > 0).length),
          Size: humanSize(frozen.reduce((s, f) => s + f.Size, 0)),
          Reclaimable: '0B',
        });
      if (o.format) return void process.stdout.write(renderTemplate(o.format, rows));
      process.stdout.write(
        table(
          ['TYPE', 'TOTAL', 'ACTIVE', 'SIZE', 'RECLAIMABLE'],
          rows.map((r) => [r.Type, r.TotalCount, r.Active, r.Size, r.Reclaimable]),
        ),
      );
    });
  system
    .command('info')
    .description('Display system-wide information')
    .action(async () => {
      await program.parseAsync(['info'], { from: 'user' });
    });

  const events = async (o: { since?: string; until?: string; filter: string[]; format?: string }) => {
    const client = await ctx.client();
    const res = await client.request('GET', '/events', { query: { since: o.since, until: o.until, filters: JSON.stringify(filtersFromFlags(o.filter)) } });
    for await (const e of client.jsonLines(res)) {
      if (o.format) {
        process.stdout.write(renderTemplate(o.format, [e]));
        continue;
      }
      const ev = e as { timeNano: number; Type: string; Action: string; Actor: { ID: string; Attributes: Record<string, string> } };
      const ns = BigInt(ev.timeNano);
      const iso = new Date(Number(ns / 1_000_000n)).toISOString().replace(/\.\d+Z$/, `.${String(ns % 1_000_000_000n).padStart(9, '0')}Z`);
      const attrs = Object.entries(ev.Actor.Attributes)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => `${k}=${v}`)
        .join(', ');
      process.stdout.write(`${iso} ${ev.Type} ${ev.Action} ${ev.Actor.ID}${attrs ? ` (${attrs})` : ''}\n`);
    }
  };
  for (const c of [program.command('events'), system.command('events')]) {
    c.description('Get real time events from the server')
      .option('--since <time>', 'show all events created since timestamp')
      .option('--until <time>', 'stream events until this timestamp')
      .option('-f, --filter <filter>', 'filter output based on conditions provided', collect, [])
      .option('--format <format>', 'format the output using the given Go template')
      .action(events);
  }
}
