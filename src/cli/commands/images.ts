import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { type Command, Option } from 'commander';
import { EngineError } from '../../common/errors.ts';
import { filtersFromFlags } from '../../engine/filters.ts';
import { ago, humanSize, renderTemplate, table } from '../format.ts';
import { type CliContext, collect, group } from '../context.ts';
import { confirm } from '../prompt.ts';

interface ImageSummary {
  Id: string;
  RepoTags: string[] | null;
  RepoDigests: string[] | null;
  Created: number;
  Size: number;
  Containers: number;
  Labels: Record<string, string> | null;
}

/** One row per repo:tag, as `docker images` lists them. */
function imageRows(images: ImageSummary[], digests: boolean, noTrunc: boolean) {
  const rows = [];
  for (const img of images) {
    const tags = img.RepoTags?.length ? img.RepoTags : ['<none>:<none>']; // dockerd sends <none>:<none> itself
    for (const t of tags) {
      const i = t.lastIndexOf(':');
      const repo = t.slice(0, i);
      const digest = img.RepoDigests?.find((d) => d.startsWith(`${repo}@`))?.split('@')[1] ?? '<none>';
      rows.push({
        Repository: repo,
        Tag: t.slice(i + 1),
        ID: noTrunc ? img.Id : img.Id.slice(7, 19),
        Digest: digests ? digest : digest,
        CreatedSince: ago(img.Created),
        CreatedAt: new Date(img.Created * 1000)
          .toISOString()
          .replace('T', ' ')
          .replace(/\.\d+Z$/, ' +0000 UTC'),
        Size: humanSize(img.Size),
        Containers: img.Containers < 0 ? 'N/A' : String(img.Containers),
      });
    }
  }
  return rows;
}

export function imageCommands(program: Command, ctx: CliContext): void {
  const listAction = async (
    repo: string | undefined,
    o: { all?: boolean; quiet?: boolean; filter: string[]; format?: string; digests?: boolean; trunc?: boolean },
  ) => {
    const client = await ctx.client();
    const filters = filtersFromFlags(o.filter);
    if (repo) (filters.reference ??= []).push(repo);
    const images = await client.json<ImageSummary[]>('GET', '/images/json', { query: { all: o.all ? 1 : undefined, filters: JSON.stringify(filters) } });
    if (o.quiet) {
      // One line per listed row, as the docker CLI prints them (an image with two tags twice).
      const ids = imageRows(images, false, o.trunc === false).map((r) => r.ID);
      process.stdout.write(ids.map((i) => i + '\n').join(''));
      return;
    }
    const rows = imageRows(images, !!o.digests, o.trunc === false);
    if (o.format) return void process.stdout.write(renderTemplate(o.format, rows));
    const headers = ['REPOSITORY', 'TAG', ...(o.digests ? ['DIGEST'] : []), 'IMAGE ID', 'CREATED', 'SIZE'];
    process.stdout.write(
      table(
        headers,
        rows.map((r) => [r.Repository, r.Tag, ...(o.digests ? [r.Digest] : []), r.ID, r.CreatedSince, r.Size]),
      ),
    );
  };
  const listOptions = (c: Command) =>
    c
      .argument('[REPOSITORY[:TAG]]')
      .option('-a, --all', 'show all images (default hides intermediate images)')
      .option('-q, --quiet', 'only show image IDs')
      .option('-f, --filter <filter>', 'filter output based on conditions provided (dangling, label, before, since, reference)', collect, [])
      .option('--format <format>', 'format output using a Go template ("table {{.Repository}}\\t{{.Tag}}", "{{json .}}")')
      .option('--digests', 'show digests')
      .option('--no-trunc', "don't truncate output")
      .action(listAction);

  const image = group(program, 'image');
  listOptions(program.command('images').description('List images'));
  listOptions(image.command('ls').alias('list').description('List images'));

  const inspect = async (names: string[], o: { format?: string }) => {
    const client = await ctx.client();
    const out: unknown[] = [];
    let failed = false;
    for (const n of names) {
      try {
        out.push(await client.json('GET', `/images/${encodeURIComponent(n)}/json`));
      } catch (e) {
        if (!(e instanceof EngineError) || e.code !== 'NOT_FOUND') throw e;
        process.stderr.write(`Error: No such image: ${n}\n`);
        failed = true;
      }
    }
    if (o.format) process.stdout.write(renderTemplate(o.format, out as Record<string, unknown>[]));
    else process.stdout.write(JSON.stringify(out, null, 4) + '\n');
    if (failed) process.exitCode = 1;
  };
  image
    .command('inspect')
    .description('Display detailed information on one or more images')
    .argument('<IMAGE...>')
    .option('-f, --format <format>', 'format output using a Go template')
    .action(inspect);

  const history = async (name: string, o: { quiet?: boolean; trunc?: boolean; human: boolean; format?: string }) => {
    const noTrunc = o.trunc === false;
    const client = await ctx.client();
    const h = await client.json<{ Id: string; Created: number; CreatedBy: string; Size: number; Comment: string }[]>(
      'GET',
      `/images/${encodeURIComponent(name)}/history`,
    );
    if (o.quiet) return void process.stdout.write(h.map((e) => (noTrunc ? e.Id : e.Id === '<missing>' ? e.Id : e.Id.slice(7, 19)) + '\n').join(''));
    const rows = h.map((e) => ({
      ID: noTrunc || e.Id === '<missing>' ? e.Id : e.Id.slice(7, 19),
      CreatedSince: e.Created ? ago(e.Created) : 'N/A',
      CreatedBy: noTrunc || e.CreatedBy.length <= 45 ? e.CreatedBy : e.CreatedBy.slice(0, 44) + '…',
      Size: o.human ? humanSize(e.Size) : String(e.Size),
      Comment: e.Comment,
    }));
    if (o.format) return void process.stdout.write(renderTemplate(o.format, rows));
    process.stdout.write(
      table(
        ['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'],
        rows.map((r) => [r.ID, r.CreatedSince, r.CreatedBy, r.Size, r.Comment]),
      ),
    );
  };
  for (const c of [program.command('history'), image.command('history')]) {
    c.description('Show the history of an image')
      .argument('<IMAGE>')
      .option('-q, --quiet', 'only show image IDs')
      .option('--no-trunc', "don't truncate output")
      .option('-H, --human [bool]', 'print sizes and dates in human readable format', true)
      .option('--format <format>', 'format output using a Go template')
      .action(history);
  }

  const tag = async (source: string, target: string) => {
    const client = await ctx.client();
    const i = target.lastIndexOf(':');
    const hasTag = i > target.lastIndexOf('/');
    await client.json('POST', `/images/${encodeURIComponent(source)}/tag`, {
      query: { repo: hasTag ? target.slice(0, i) : target, tag: hasTag ? target.slice(i + 1) : undefined },
    });
  };
  for (const c of [program.command('tag'), image.command('tag')])
    c.description('Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE').argument('<SOURCE_IMAGE[:TAG]>').argument('<TARGET_IMAGE[:TAG]>').action(tag);

  const rmi = async (names: string[], o: { force?: boolean; prune: boolean }) => {
    const client = await ctx.client();
    let failed = false;
    for (const n of names) {
      try {
        const res = await client.json<{ Untagged?: string; Deleted?: string }[]>('DELETE', `/images/${encodeURIComponent(n)}`, {
          query: { force: o.force ? 1 : undefined, noprune: o.prune ? undefined : 1 },
        });
        for (const r of res) process.stdout.write(r.Untagged ? `Untagged: ${r.Untagged}\n` : `Deleted: ${r.Deleted}\n`);
      } catch (e) {
        if (!(e instanceof EngineError)) throw e;
        process.stderr.write(`Error response from daemon: ${e.message}\n`);
        failed = true;
      }
    }
    if (failed) process.exitCode = 1;
  };
  for (const c of [program.command('rmi'), image.command('rm').alias('remove')]) {
    c.description('Remove one or more images')
      .argument('<IMAGE...>')
      .option('-f, --force', 'force removal of the image')
      .option('--no-prune', 'do not delete untagged parents')
      .action(rmi);
  }

  image
    .command('prune')
    .description('Remove unused images')
    .option('-a, --all', 'remove all unused images, not just dangling ones')
    .option('-f, --force', 'do not prompt for confirmation')
    .option('--filter <filter>', 'provide filter values (e.g. "until=<timestamp>", "label=<key>=<value>")', collect, [])
    .action(async (o: { all?: boolean; force?: boolean; filter: string[] }) => {
      const what = o.all ? 'all images without at least one container associated to them' : 'all dangling images';
      if (!o.force && !(await confirm(`WARNING! This will remove ${what}.\nAre you sure you want to continue?`))) return;
      const client = await ctx.client();
      const filters = filtersFromFlags(o.filter);
      filters.dangling = [o.all ? 'false' : 'true'];
      const r = await client.json<{ ImagesDeleted: { Untagged?: string; Deleted?: string }[] | null; SpaceReclaimed: number }>('POST', '/images/prune', {
        query: { filters: JSON.stringify(filters) },
      });
      if (r.ImagesDeleted?.length) {
        process.stdout.write('Deleted Images:\n');
        for (const d of r.ImagesDeleted) process.stdout.write(d.Untagged ? `untagged: ${d.Untagged}\n` : `deleted: ${d.Deleted}\n`);
        process.stdout.write('\n');
      }
      process.stdout.write(`Total reclaimed space: ${humanSize(r.SpaceReclaimed)}\n`);
    });

  const save = async (names: string[], o: { output?: string }) => {
    const client = await ctx.client();
    if (!o.output && process.stdout.isTTY) throw new EngineError('INVALID_ARGUMENT', 'cowardly refusing to save to a terminal. Use the -o flag or redirect');
    const res = await client.request('GET', '/images/get', { query: { names } });
    const out = o.output ? fs.createWriteStream(o.output + '.keel-tmp') : process.stdout;
    await pipeline(res, out);
    if (o.output) fs.renameSync(o.output + '.keel-tmp', o.output);
  };
  for (const c of [program.command('save'), image.command('save')])
    c.description('Save one or more images to a tar archive (streamed to STDOUT by default)')
      .argument('<IMAGE...>')
      .option('-o, --output <file>', 'write to a file, instead of STDOUT')
      .action(save);

  const load = async (o: { input?: string; quiet?: boolean }) => {
    const client = await ctx.client();
    if (!o.input && process.stdin.isTTY) throw new EngineError('INVALID_ARGUMENT', 'requested load from stdin, but stdin is empty');
    const stream = o.input ? fs.createReadStream(o.input) : process.stdin;
    const res = await client.request('POST', '/images/load', { query: { quiet: o.quiet ? 1 : undefined }, stream });
    for await (const m of client.jsonLines(res)) {
      if (m.errorDetail) throw new EngineError('INTERNAL', String((m.errorDetail as { message: string }).message));
      if (m.stream) process.stdout.write(String(m.stream));
    }
  };
  for (const c of [program.command('load'), image.command('load')])
    c.description('Load an image from a tar archive or STDIN')
      .option('-i, --input <file>', 'read from tar archive file, instead of STDIN')
      .option('-q, --quiet', 'suppress the load output')
      .action(load);

  const importCmd = async (file: string, repo: string | undefined, o: { change: string[]; message?: string }) => {
    const client = await ctx.client();
    const stream = file === '-' ? process.stdin : fs.createReadStream(file);
    let repository = repo;
    let tagName: string | undefined;
    if (repo) {
      const i = repo.lastIndexOf(':');
      if (i > repo.lastIndexOf('/')) [repository, tagName] = [repo.slice(0, i), repo.slice(i + 1)];
    }
    const res = await client.request('POST', '/images/create', {
      query: { fromSrc: '-', repo: repository, tag: tagName, message: o.message, changes: o.change },
      stream,
    });
    for await (const m of client.jsonLines(res)) {
      if (m.errorDetail) throw new EngineError('INTERNAL', String((m.errorDetail as { message: string }).message));
      if (m.status) process.stdout.write(`${m.status}\n`);
    }
  };
  for (const c of [program.command('import'), image.command('import')]) {
    c.description('Import the contents from a tarball to create a filesystem image')
      .argument('<file|->')
      .argument('[REPOSITORY[:TAG]]')
      .option('-c, --change <instruction>', 'apply Dockerfile instruction to the created image', collect, [])
      .option('-m, --message <message>', 'set commit message for imported image')
      .addOption(new Option('--platform <platform>', 'set platform if server is multi-platform capable').hideHelp())
      .action(importCmd);
  }
}
