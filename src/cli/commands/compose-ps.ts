/** `compose ps`: the project's containers as docker compose lists them (table, -q, --services, --format json). */
import type { Command } from 'commander';
import { EngineError } from '../../common/errors.ts';
import type { ContainerSummary, PortSummary } from '../../compose/backend.ts';
import * as L from '../../compose/labels.ts';
import { containersOf } from '../../compose/ops.ts';
import { collect } from '../context.ts';
import { ago, renderTemplate, table } from '../format.ts';
import type { ComposeCli } from './compose.ts';

export function portsText(ports: PortSummary[]): string {
  return ports
    .map((p) => (p.publicPort ? `${p.ip || '0.0.0.0'}:${p.publicPort}->${p.privatePort}/${p.type}` : `${p.privatePort}/${p.type}`))
    .filter((x, i, all) => all.indexOf(x) === i)
    .join(', ');
}

const quoteCommand = (c: string) => JSON.stringify(c.length > 20 ? `${c.slice(0, 19)}…` : c);

export function psCommand(compose: Command, cli: ComposeCli): void {
  compose
    .command('ps')
    .description('List containers')
    .argument('[SERVICE...]')
    .option('-a, --all', 'show all stopped containers (including those created by the run command)')
    .option('-q, --quiet', 'only display IDs')
    .option('--services', 'display services')
    .option('--status <status>', 'filter services by status (paused|restarting|removing|running|dead|created|exited)', collect, [])
    .option('--filter <filter>', 'filter services by a property (status=running)', collect, [])
    .option('--format <format>', 'format the output: table, json, or a Go template', 'table')
    .option('--no-trunc', "don't truncate output")
    .action(
      cli.act(
        async (
          services: string[],
          o: { all?: boolean; quiet?: boolean; services?: boolean; status: string[]; filter: string[]; format: string; trunc: boolean },
          cmd: Command,
        ) => {
          const t = await cli.target(cmd);
          const b = await cli.backend();
          let list: ContainerSummary[] = await containersOf(b, t, services, { all: true, oneoff: !!o.all });
          if (!o.all) list = list.filter((c) => c.state === 'running' || c.state === 'restarting' || c.state === 'paused' || c.state === 'removing');
          for (const f of o.filter) {
            const m = /^status=(.+)$/.exec(f);
            if (!m) throw new EngineError('INVALID_ARGUMENT', `invalid filter "${f}": only status=<state> is supported`);
            o.status.push(m[1]!);
          }
          if (o.status.length) list = list.filter((c) => o.status.includes(c.state));
          if (o.quiet) return void process.stdout.write(list.map((c) => `${c.id}\n`).join(''));
          if (o.services) return void process.stdout.write([...new Set(list.map((c) => c.labels[L.SERVICE]))].map((s) => `${s}\n`).join(''));
          const rows = await Promise.all(
            list.map(async (c) => {
              const d = await b.inspectContainer(c.id).catch(() => undefined);
              return {
                Command: JSON.stringify(c.command),
                CreatedAt: new Date(c.created * 1000)
                  .toISOString()
                  .replace('T', ' ')
                  .replace(/\.\d+Z$/, ' +0000 UTC'),
                ExitCode: d?.exitCode ?? 0,
                Health: d?.health && d.health !== 'none' ? d.health : '',
                ID: c.id,
                Image: c.image,
                Labels: Object.entries(c.labels)
                  .map(([k, v]) => `${k}=${v}`)
                  .join(','),
                LocalVolumes: '0',
                Mounts: '',
                Name: c.name,
                Names: c.name,
                Networks: Object.keys(d?.networks ?? {}).join(','),
                Ports: portsText(c.ports),
                Project: c.labels[L.PROJECT] ?? t.name,
                Publishers: c.ports.map((p) => ({ URL: p.ip ?? '', TargetPort: p.privatePort, PublishedPort: p.publicPort ?? 0, Protocol: p.type })),
                RunningFor: ago(c.created),
                Service: c.labels[L.SERVICE] ?? '',
                Size: '0B',
                State: c.state,
                Status: c.status,
              };
            }),
          );
          if (o.format === 'json') return void process.stdout.write(rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
          if (o.format !== 'table') {
            if (!o.format.includes('{{')) throw new EngineError('INVALID_ARGUMENT', `invalid --format "${o.format}": use table, json or a Go template`);
            return void process.stdout.write(renderTemplate(o.format, rows));
          }
          process.stdout.write(
            table(
              ['NAME', 'IMAGE', 'COMMAND', 'SERVICE', 'CREATED', 'STATUS', 'PORTS'],
              rows.map((r) => [r.Name, r.Image, o.trunc ? quoteCommand(JSON.parse(r.Command)) : r.Command, r.Service, r.RunningFor, r.Status, r.Ports]),
            ),
          );
        },
      ),
    );
}
