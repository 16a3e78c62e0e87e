import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { EngineError } from '../../common/errors.ts';
import { Demuxer } from '../hijack.ts';
import { type CliContext, group } from '../context.ts';
import { FlagError, parseDuration } from '../opts.ts';

/**
 * docker's timetypes.GetTimestamp: a Go duration ("10m") counts back from
 * now, RFC 3339 dates and unix timestamps are absolute; the API takes
 * "seconds[.nanoseconds]".
 */
export function apiTimestamp(v: string, now = Date.now()): string {
  if (/^\d+(\.\d+)?$/.test(v)) return v;
  try {
    return ((now - parseDuration(v) / 1e6) / 1000).toFixed(9);
  } catch {
    // not a duration: a date
  }
  const t = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : v);
  if (Number.isNaN(t)) throw new FlagError(`invalid value for "since": failed to parse value as time or duration: "${v}"`);
  return (t / 1000).toFixed(9);
}

export function logsCommands(program: Command, ctx: CliContext): void {
  const container = group(program, 'container');
  const logs = async (name: string, o: { follow?: boolean; tail?: string; timestamps?: boolean; since?: string; until?: string; details?: boolean }) => {
    const client = await ctx.client();
    // the CLI decides how to read the stream from the container's Config.Tty, as docker does
    const info = await client.json<{ Id: string; Config: { Tty: boolean } }>('GET', `/containers/${encodeURIComponent(name)}/json`);
    let since: string | undefined;
    let until: string | undefined;
    try {
      since = o.since ? apiTimestamp(o.since) : undefined;
      until = o.until ? apiTimestamp(o.until) : undefined;
    } catch (e) {
      if (e instanceof FlagError) throw new EngineError('INVALID_ARGUMENT', e.message);
      throw e;
    }
    const res = await client.request('GET', `/containers/${info.Id}/logs`, {
      query: {
        details: o.details ? 1 : undefined,
        follow: o.follow ? 1 : undefined,
        stderr: 1,
        stdout: 1,
        since,
        until,
        tail: o.tail ?? 'all',
        timestamps: o.timestamps ? 1 : undefined,
      },
    });
    if (info.Config.Tty) return void (await pipeline(res, process.stdout, { end: false }));
    const demux = new Demuxer((s, data) => (s === 2 ? process.stderr : process.stdout).write(data));
    for await (const chunk of res) demux.push(chunk as Buffer);
  };
  for (const c of [program.command('logs'), container.command('logs')]) {
    c.description('Fetch the logs of a container')
      .argument('<CONTAINER>')
      .option('--details', 'show extra details provided to logs')
      .option('-f, --follow', 'follow log output')
      .option('--since <string>', 'show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)')
      .option('-n, --tail <string>', 'number of lines to show from the end of the logs', 'all')
      .option('-t, --timestamps', 'show timestamps')
      .option('--until <string>', 'show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)')
      .action(logs);
  }

  const exportCmd = async (name: string, o: { output?: string }) => {
    const client = await ctx.client();
    if (!o.output && process.stdout.isTTY) throw new EngineError('INVALID_ARGUMENT', 'cowardly refusing to save to a terminal. Use the -o flag or redirect');
    const res = await client.request('GET', `/containers/${encodeURIComponent(name)}/export`);
    if (!o.output) return void (await pipeline(res, process.stdout, { end: false }));
    await pipeline(res, fs.createWriteStream(o.output + '.keel-tmp'));
    fs.renameSync(o.output + '.keel-tmp', o.output);
  };
  for (const c of [program.command('export'), container.command('export')]) {
    c.description("Export a container's filesystem as a tar archive")
      .argument('<CONTAINER>')
      .option('-o, --output <string>', 'write to a file, instead of STDOUT')
      .action(exportCmd);
  }
}
