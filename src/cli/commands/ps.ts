import type { Command } from 'commander';
import { EngineError } from '../../common/errors.ts';
import { filtersFromFlags } from '../../engine/filters.ts';
import type { ApiClient } from '../client.ts';
import { ago, humanSize, renderTemplate, table } from '../format.ts';
import { type CliContext, collect, group } from '../context.ts';

interface Port {
  IP?: string;
  PrivatePort: number;
  PublicPort?: number;
  Type: string;
}

interface ContainerSummary {
  Id: string;
  Names: string[];
  Image: string;
  ImageID: string;
  Command: string;
  Created: number;
  Ports: Port[] | null;
  SizeRw?: number;
  SizeRootFs?: number;
  Labels: Record<string, string> | null;
  State: string;
  Status: string;
  Mounts?: { Name?: string; Source?: string }[] | null;
  NetworkSettings?: { Networks?: Record<string, unknown> | null } | null;
}

type Row = Record<string, string>;

/** Renders `--format`, with header names from `headers` for `table` formats ("json" means {{json .}}). */
export function renderRows(format: string, rows: Row[], headers: Record<string, string>): string {
  if (format === 'json') return renderTemplate('{{json .}}', rows);
  if (!format.startsWith('table')) return renderTemplate(format, rows);
  const tpl = format.slice(5).trimStart().replace(/\\t/g, '\t');
  const lines = renderTemplate(tpl, rows).split('\n').slice(0, rows.length);
  const header = tpl.replace(/\{\{\s*(?:json\s+)?\.([\w.]*)\s*\}\}/g, (_m, f: string) => headers[f] ?? f.toUpperCase());
  return table(
    header.split('\t'),
    lines.map((l) => l.split('\t')),
  );
}

/** Go's strings ellipsis as the docker CLI uses it (runes, "…"). */
export function ellipsis(s: string, max: number): string {
  const r = [...s];
  return r.length > max ? r.slice(0, max - 1).join('') + '…' : s;
}

/** docker's api.DisplayablePorts: ports published on the same number fold into ranges, the rest are listed one by one. */
export function displayPorts(ports: Port[]): string {
  const sorted = [...ports].sort(
    (a, b) =>
      a.PrivatePort - b.PrivatePort ||
      ((a.IP ?? '') < (b.IP ?? '') ? -1 : (a.IP ?? '') > (b.IP ?? '') ? 1 : 0) ||
      (a.PublicPort ?? 0) - (b.PublicPort ?? 0) ||
      (a.Type < b.Type ? -1 : a.Type > b.Type ? 1 : 0),
  );
  const groups = new Map<string, { first: number; last: number }>();
  const result: string[] = [];
  const hostMappings: string[] = [];
  const form = (key: string, g: { first: number; last: number }) => {
    const i = key.lastIndexOf('/');
    const [ip, type] = i >= 0 ? [key.slice(0, i), key.slice(i + 1)] : ['', key];
    let group = String(g.first);
    if (g.first !== g.last) group += `-${g.last}`;
    if (ip) group = `${ip}:${group}->${group}`;
    return `${group}/${type}`;
  };
  for (const p of sorted) {
    let key = p.Type;
    if (p.IP) {
      if (p.PublicPort !== p.PrivatePort) {
        const host = p.IP.includes(':') ? `[${p.IP}]` : p.IP;
        hostMappings.push(`${host}:${p.PublicPort}->${p.PrivatePort}/${p.Type}`);
        continue;
      }
      key = `${p.IP}/${p.Type}`;
    }
    const g = groups.get(key);
    if (!g) groups.set(key, { first: p.PrivatePort, last: p.PrivatePort });
    else if (p.PrivatePort === g.last + 1) g.last = p.PrivatePort;
    else {
      result.push(form(key, g));
      groups.delete(key);
      groups.set(key, { first: p.PrivatePort, last: p.PrivatePort });
    }
  }
  for (const [key, g] of groups) result.push(form(key, g));
  return [...result, ...hostMappings].join(', ');
}

const psHeaders = {
  ID: 'CONTAINER ID',
  Image: 'IMAGE',
  Command: 'COMMAND',
  CreatedAt: 'CREATED AT',
  RunningFor: 'CREATED',
  Ports: 'PORTS',
  State: 'STATE',
  Status: 'STATUS',
  Size: 'SIZE',
  Names: 'NAMES',
  Labels: 'LABELS',
  Mounts: 'MOUNTS',
  Networks: 'NETWORKS',
  LocalVolumes: 'LOCAL VOLUMES',
};

function goTime(unixSeconds: number): string {
  return new Date(unixSeconds * 1000)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' +0000 UTC');
}

function psRow(c: ContainerSummary, noTrunc: boolean): Row {
  const names = c.Names.map((n) => n.replace(/^\//, '')).filter((n) => noTrunc || !n.includes('/'));
  const image = !noTrunc && c.Image.startsWith('sha256:') ? c.Image.slice(7, 19) : c.Image;
  return {
    ID: noTrunc ? c.Id : c.Id.slice(0, 12),
    Image: image,
    Command: JSON.stringify(noTrunc ? c.Command : ellipsis(c.Command, 20)),
    CreatedAt: goTime(c.Created),
    RunningFor: ago(c.Created),
    Ports: displayPorts(c.Ports ?? []),
    State: c.State,
    Status: c.Status,
    Size: c.SizeRw !== undefined ? `${humanSize(c.SizeRw)} (virtual ${humanSize(c.SizeRootFs ?? 0)})` : '',
    Names: names.join(','),
    Labels: Object.entries(c.Labels ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(','),
    Mounts: (c.Mounts ?? []).map((m) => m.Name ?? m.Source ?? '').join(','),
    Networks: Object.keys(c.NetworkSettings?.Networks ?? {}).join(','),
    LocalVolumes: String((c.Mounts ?? []).filter((m) => m.Name).length),
  };
}

export function psCommands(program: Command, ctx: CliContext): void {
  const container = group(program, 'container');
  const ps = async (o: {
    all?: boolean;
    quiet?: boolean;
    last?: string;
    latest?: boolean;
    size?: boolean;
    filter: string[];
    format?: string;
    trunc?: boolean;
  }) => {
    const client = await ctx.client();
    const limit = o.latest ? 1 : o.last !== undefined ? Number(o.last) : undefined;
    const list = await client.json<ContainerSummary[]>('GET', '/containers/json', {
      query: {
        all: o.all ? 1 : undefined,
        limit: limit !== undefined && limit > 0 ? limit : undefined,
        size: o.size ? 1 : undefined,
        filters: o.filter.length ? JSON.stringify(filtersFromFlags(o.filter)) : undefined,
      },
    });
    const noTrunc = o.trunc === false; // commander maps --no-trunc to trunc=false
    if (o.quiet) return void process.stdout.write(list.map((c) => (noTrunc ? c.Id : c.Id.slice(0, 12)) + '\n').join(''));
    const rows = list.map((c) => psRow(c, noTrunc));
    if (o.format) return void process.stdout.write(renderRows(o.format, rows, psHeaders));
    const cols = ['ID', 'Image', 'Command', 'RunningFor', 'Status', 'Ports', 'Names', ...(o.size ? ['Size'] : [])];
    process.stdout.write(
      table(
        cols.map((c) => psHeaders[c as keyof typeof psHeaders]),
        rows.map((r) => cols.map((c) => r[c]!)),
      ),
    );
  };
  const opts = (c: Command) =>
    c
      .option('-a, --all', 'show all containers (default shows just running)')
      .option('-f, --filter <filter>', 'filter output based on conditions provided', collect, [])
      .option('--format <string>', 'format output using a custom template ("table", "json" or a Go template)')
      .option('-n, --last <int>', 'show n last created containers (includes all states)')
      .option('-l, --latest', 'show the latest created container (includes all states)')
      .option('--no-trunc', "don't truncate output")
      .option('-q, --quiet', 'only display container IDs')
      .option('-s, --size', 'display total file sizes')
      .action(ps);
  opts(program.command('ps').description('List containers'));
  opts(container.command('ls').aliases(['ps', 'list']).description('List containers'));

  const stats = async (names: string[], o: { all?: boolean; noStream?: boolean; trunc?: boolean; format?: string; stream: boolean }) => {
    const client = await ctx.client();
    const once = o.stream === false;
    for (;;) {
      const targets = names.length
        ? names.map((n) => ({ id: n, name: n }))
        : (await client.json<ContainerSummary[]>('GET', '/containers/json', { query: { all: o.all ? 1 : undefined } })).map((c) => ({
            id: c.Id,
            name: c.Names[0]?.replace(/^\//, '') ?? '',
          }));
      const rows = await Promise.all(targets.map((t) => statsRow(client, t.id, o.trunc === false)));
      const failed = rows.filter((r): r is EngineError => r instanceof EngineError);
      if (failed.length && names.length) throw failed[0]!;
      const ok = rows.filter((r): r is Row => !(r instanceof EngineError));
      const text = o.format
        ? renderRows(o.format, ok, statsHeaders)
        : renderRows('table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}', ok, statsHeaders);
      if (once) return void process.stdout.write(text);
      process.stdout.write(`\x1b[2J\x1b[H${text}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  };
  const statsOpts = (c: Command) =>
    c
      .description('Display a live stream of container(s) resource usage statistics')
      .argument('[CONTAINER...]')
      .option('-a, --all', 'show all containers (default shows just running)')
      .option('--format <string>', 'format output using a custom template')
      .option('--no-stream', 'disable streaming stats and only pull the first result')
      .option('--no-trunc', "don't truncate output")
      .action(stats);
  statsOpts(program.command('stats'));
  statsOpts(container.command('stats'));
}

const statsHeaders = {
  Container: 'CONTAINER',
  ID: 'CONTAINER ID',
  Name: 'NAME',
  CPUPerc: 'CPU %',
  MemUsage: 'MEM USAGE / LIMIT',
  MemPerc: 'MEM %',
  NetIO: 'NET I/O',
  BlockIO: 'BLOCK I/O',
  PIDs: 'PIDS',
};

/** go-units BytesSize: binary units, 4 significant digits. */
export function bytesSize(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Number(v.toPrecision(4))}${units[i]}`;
}

interface StatsJson {
  id: string;
  name: string;
  cpu_stats: { cpu_usage: { total_usage: number; percpu_usage?: number[] }; system_cpu_usage?: number; online_cpus?: number };
  precpu_stats: { cpu_usage: { total_usage: number }; system_cpu_usage?: number };
  memory_stats: { usage?: number; limit?: number; stats?: Record<string, number> };
  networks?: Record<string, { rx_bytes: number; tx_bytes: number }>;
  blkio_stats?: { io_service_bytes_recursive?: { op: string; value: number }[] | null };
  pids_stats?: { current?: number };
}

/** One stats sample, computed the way the docker CLI does (cli/command/container/stats_helpers.go). */
export function computeStats(s: StatsJson, noTrunc: boolean, fallbackName: string): Row {
  const cpuDelta = s.cpu_stats.cpu_usage.total_usage - (s.precpu_stats?.cpu_usage?.total_usage ?? 0);
  const sysDelta = (s.cpu_stats.system_cpu_usage ?? 0) - (s.precpu_stats?.system_cpu_usage ?? 0);
  const cpus = s.cpu_stats.online_cpus || s.cpu_stats.cpu_usage.percpu_usage?.length || 1;
  const cpu = sysDelta > 0 && cpuDelta > 0 ? (cpuDelta / sysDelta) * cpus * 100 : 0;
  const m = s.memory_stats ?? {};
  const st = m.stats ?? {};
  const cache = st.total_inactive_file !== undefined ? st.total_inactive_file : (st.inactive_file ?? 0);
  const used = (m.usage ?? 0) > cache ? (m.usage ?? 0) - cache : (m.usage ?? 0);
  const limit = m.limit ?? 0;
  let rx = 0;
  let tx = 0;
  for (const n of Object.values(s.networks ?? {})) {
    rx += n.rx_bytes;
    tx += n.tx_bytes;
  }
  let rd = 0;
  let wr = 0;
  for (const e of s.blkio_stats?.io_service_bytes_recursive ?? []) {
    if (/^read$/i.test(e.op)) rd += e.value;
    else if (/^write$/i.test(e.op)) wr += e.value;
  }
  const name = (s.name || fallbackName).replace(/^\//, '');
  return {
    Container: fallbackName,
    ID: noTrunc ? s.id : s.id.slice(0, 12),
    Name: name,
    CPUPerc: `${cpu.toFixed(2)}%`,
    MemUsage: `${bytesSize(used)} / ${bytesSize(limit)}`,
    MemPerc: `${(limit ? (used / limit) * 100 : 0).toFixed(2)}%`,
    NetIO: `${humanSize(rx)} / ${humanSize(tx)}`,
    BlockIO: `${humanSize(rd)} / ${humanSize(wr)}`,
    PIDs: String(s.pids_stats?.current ?? 0),
  };
}

async function statsRow(client: ApiClient, id: string, noTrunc: boolean): Promise<Row | EngineError> {
  try {
    const s = await client.json<StatsJson>('GET', `/containers/${encodeURIComponent(id)}/stats`, { query: { stream: 0 } });
    return computeStats(s, noTrunc, id);
  } catch (e) {
    if (e instanceof EngineError) return e;
    throw e;
  }
}
