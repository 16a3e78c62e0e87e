import type { Command } from 'commander';
import { EngineError } from '../../common/errors.ts';
import { filtersFromFlags } from '../../engine/filters.ts';
import { renderTemplate, table } from '../format.ts';
import { type CliContext, collect, group } from '../context.ts';
import { confirm } from '../prompt.ts';

interface NetworkJson {
  Name: string;
  Id: string;
  Created: string;
  Scope: string;
  Driver: string;
  EnableIPv6: boolean;
  Internal: boolean;
  Labels: Record<string, string> | null;
}

/** "a=b,c=d" as docker's --format {{.Labels}} shows labels. */
const labelList = (l: Record<string, string> | null) =>
  Object.entries(l ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

/** Parses repeatable KEY=VALUE flags (-l, -o). */
function keyValues(list: string[], what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list) {
    const i = kv.indexOf('=');
    if (i === 0) throw new EngineError('INVALID_ARGUMENT', `invalid ${what} "${kv}": expected KEY=VALUE`);
    if (i < 0) out[kv] = '';
    else out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

/** `keel network …`: the docker CLI's network commands, over the Docker API. */
export function networkCommands(program: Command, ctx: CliContext): void {
  const network = group(program, 'network');

  network
    .command('create')
    .description('Create a network')
    .argument('<NETWORK>')
    .option('-d, --driver <driver>', 'driver to manage the network', 'bridge')
    .option('--subnet <cidr>', 'subnet in CIDR format that represents a network segment')
    .option('--gateway <ip>', 'IPv4 gateway for the subnet')
    .option('--ip-range <cidr>', 'allocate container IPs from a sub-range')
    .option('--internal', 'restrict external access to the network')
    .option('--attachable', 'enable manual container attachment (always on in keel)')
    .option('-l, --label <label>', 'set metadata on a network', collect, [])
    .option('-o, --opt <opt>', 'set driver specific options', collect, [])
    .action(
      async (
        name: string,
        o: { driver: string; subnet?: string; gateway?: string; ipRange?: string; internal?: boolean; attachable?: boolean; label: string[]; opt: string[] },
      ) => {
        if ((o.gateway || o.ipRange) && !o.subnet) throw new EngineError('INVALID_ARGUMENT', 'every ip-range or gateway must have a corresponding subnet');
        const client = await ctx.client();
        const r = await client.json<{ Id: string; Warning?: string }>('POST', '/networks/create', {
          body: {
            Name: name,
            CheckDuplicate: true,
            Driver: o.driver,
            Internal: !!o.internal,
            Attachable: !!o.attachable,
            IPAM: { Driver: 'default', Options: {}, Config: o.subnet ? [{ Subnet: o.subnet, Gateway: o.gateway, IPRange: o.ipRange }] : [] },
            Options: keyValues(o.opt, 'option'),
            Labels: keyValues(o.label, 'label'),
          },
        });
        if (r.Warning) process.stderr.write(`WARNING: ${r.Warning}\n`);
        process.stdout.write(`${r.Id}\n`);
      },
    );

  network
    .command('ls')
    .alias('list')
    .description('List networks')
    .option('-f, --filter <filter>', 'provide filter values (e.g. "driver=bridge")', collect, [])
    .option('--format <format>', 'format output using a Go template')
    .option('--no-trunc', 'do not truncate the output')
    .option('-q, --quiet', 'only display network IDs')
    .action(async (o: { filter: string[]; format?: string; trunc: boolean; quiet?: boolean }) => {
      const client = await ctx.client();
      const nets = await client.json<NetworkJson[]>('GET', '/networks', { query: { filters: JSON.stringify(filtersFromFlags(o.filter)) } });
      nets.sort((a, b) => a.Name.localeCompare(b.Name, 'en', { numeric: true }));
      const id = (n: NetworkJson) => (o.trunc ? n.Id.slice(0, 12) : n.Id);
      if (o.quiet) return void process.stdout.write(nets.map((n) => `${id(n)}\n`).join(''));
      const rows = nets.map((n) => ({
        ID: id(n),
        Name: n.Name,
        Driver: n.Driver,
        Scope: n.Scope,
        IPv6: String(n.EnableIPv6),
        Internal: String(n.Internal),
        Labels: labelList(n.Labels),
        CreatedAt: n.Created,
      }));
      if (o.format) return void process.stdout.write(renderTemplate(o.format, rows));
      process.stdout.write(
        table(
          ['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE'],
          rows.map((r) => [r.ID, r.Name, r.Driver, r.Scope]),
        ),
      );
    });

  network
    .command('inspect')
    .description('Display detailed information on one or more networks')
    .argument('<NETWORK...>')
    .option('-f, --format <format>', 'format output using a Go template')
    .option('-v, --verbose', 'verbose output for diagnostics')
    .action(async (names: string[], o: { format?: string }) => {
      const client = await ctx.client();
      const out: Record<string, unknown>[] = [];
      let failed = false;
      for (const n of names) {
        try {
          out.push(await client.json('GET', `/networks/${encodeURIComponent(n)}`));
        } catch (e) {
          if (!(e instanceof EngineError) || e.code !== 'NOT_FOUND') throw e;
          process.stderr.write(`Error response from daemon: ${e.message}\n`);
          failed = true;
        }
      }
      if (o.format) process.stdout.write(renderTemplate(o.format, out));
      else process.stdout.write(JSON.stringify(out, null, 4) + '\n');
      if (failed) process.exitCode = 1;
    });

  network
    .command('rm')
    .alias('remove')
    .description('Remove one or more networks')
    .argument('<NETWORK...>')
    .option('-f, --force', 'do not error if the network does not exist')
    .action(async (names: string[], o: { force?: boolean }) => {
      const client = await ctx.client();
      for (const n of names) {
        try {
          await client.request('DELETE', `/networks/${encodeURIComponent(n)}`).then((r) => r.resume());
          process.stdout.write(`${n}\n`);
        } catch (e) {
          if (!(e instanceof EngineError)) throw e;
          if (o.force && e.code === 'NOT_FOUND') continue;
          process.stderr.write(`Error response from daemon: ${e.message}\n`);
          process.exitCode = 1;
        }
      }
    });

  network
    .command('prune')
    .description('Remove all unused networks')
    .option('-f, --force', 'do not prompt for confirmation')
    .option('--filter <filter>', 'provide filter values (e.g. "until=<timestamp>", "label=<key>=<value>")', collect, [])
    .action(async (o: { force?: boolean; filter: string[] }) => {
      if (!o.force && !(await confirm('WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?')))
        return;
      const client = await ctx.client();
      const r = await client.json<{ NetworksDeleted: string[] | null }>('POST', '/networks/prune', {
        query: { filters: JSON.stringify(filtersFromFlags(o.filter)) },
      });
      if (r.NetworksDeleted?.length) process.stdout.write(`Deleted Networks:\n${r.NetworksDeleted.map((n) => `${n}\n`).join('')}`);
    });

  network
    .command('connect')
    .description('Connect a container to a network')
    .argument('<NETWORK>')
    .argument('<CONTAINER>')
    .option('--alias <alias>', 'add network-scoped alias for the container', collect, [])
    .option('--ip <ip>', 'IPv4 address (e.g. "172.30.100.104")')
    .action(async (net: string, container: string, o: { alias: string[]; ip?: string }) => {
      const client = await ctx.client();
      await client
        .request('POST', `/networks/${encodeURIComponent(net)}/connect`, {
          body: { Container: container, EndpointConfig: { Aliases: o.alias, IPAMConfig: o.ip ? { IPv4Address: o.ip } : {} } },
        })
        .then((r) => r.resume());
    });

  network
    .command('disconnect')
    .description('Disconnect a container from a network')
    .argument('<NETWORK>')
    .argument('<CONTAINER>')
    .option('-f, --force', 'force the container to disconnect from a network')
    .action(async (net: string, container: string, o: { force?: boolean }) => {
      const client = await ctx.client();
      await client
        .request('POST', `/networks/${encodeURIComponent(net)}/disconnect`, { body: { Container: container, Force: !!o.force } })
        .then((r) => r.resume());
    });
}
