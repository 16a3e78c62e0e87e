import type { Command } from 'commander';
import { EngineError } from '../../common/errors.ts';
import { formatReference, parseReference } from '../../oci/reference.ts';
import { CredentialStore, encodeAuthHeader } from '../../registry/credentials.ts';
import { parseJsonLines, renderProgress } from '../progress.ts';
import { type CliContext, group } from '../context.ts';

/** X-Registry-Auth for an image's registry from the user's config.json, as the docker CLI sends it. */
export async function authHeaderFor(ref: string): Promise<Record<string, string>> {
  let domain: string;
  try {
    domain = parseReference(ref).domain;
  } catch {
    return {};
  }
  const auth = await new CredentialStore().get(domain).catch(() => undefined);
  return auth ? { 'X-Registry-Auth': encodeAuthHeader(auth) } : {};
}

/** Splits `name[:tag|@digest]` into the fromImage/tag pair the API takes. */
function splitRef(ref: string): { name: string; tag?: string } {
  const at = ref.indexOf('@');
  if (at >= 0) return { name: ref.slice(0, at), tag: ref.slice(at + 1) };
  const i = ref.lastIndexOf(':');
  return i > ref.lastIndexOf('/') ? { name: ref.slice(0, i), tag: ref.slice(i + 1) } : { name: ref };
}

/** Pulls through the API, rendering progress; shared with `run`/`create`. */
export async function pullThroughApi(
  ctx: CliContext,
  ref: string,
  o: { allTags?: boolean; platform?: string; quiet?: boolean; out?: NodeJS.WriteStream },
): Promise<void> {
  const client = await ctx.client();
  const { name, tag } = splitRef(ref);
  const res = await client.request('POST', '/images/create', {
    query: { fromImage: name, tag: o.allTags ? undefined : (tag ?? 'latest'), platform: o.platform },
    headers: await authHeaderFor(ref),
  });
  await renderProgress(parseJsonLines(res), o.out ?? process.stdout, { quiet: o.quiet });
}

export function registryCommands(program: Command, ctx: CliContext): void {
  const pull = async (ref: string, o: { allTags?: boolean; platform?: string; quiet?: boolean }) => {
    await pullThroughApi(ctx, ref, o);
    if (o.quiet && !o.allTags) process.stdout.write(`${ref}\n`);
    else if (!o.allTags) process.stdout.write(`${formatReference(parseReference(ref))}\n`);
  };
  const image = group(program, 'image');
  for (const c of [program.command('pull'), image.command('pull')]) {
    c.description('Download an image from a registry')
      .argument('<NAME[:TAG|@DIGEST]>')
      .option('-a, --all-tags', 'download all tagged images in the repository')
      .option('--platform <platform>', 'set platform if server is multi-platform capable (os/arch[/variant])')
      .option('-q, --quiet', 'suppress verbose output')
      .action(pull);
  }

  const push = async (ref: string, o: { allTags?: boolean; quiet?: boolean }) => {
    const client = await ctx.client();
    const { name, tag } = splitRef(ref);
    const res = await client.request('POST', `/images/${encodeURIComponent(name)}/push`, {
      query: { tag: o.allTags ? undefined : (tag ?? 'latest') },
      headers: { 'X-Registry-Auth': (await authHeaderFor(ref))['X-Registry-Auth'] ?? Buffer.from('{}').toString('base64') },
    });
    await renderProgress(parseJsonLines(res), process.stdout, { quiet: o.quiet });
    if (o.quiet) process.stdout.write(`${ref}\n`);
  };
  for (const c of [program.command('push'), image.command('push')]) {
    c.description('Upload an image to a registry')
      .argument('<NAME[:TAG]>')
      .option('-a, --all-tags', 'push all tags of an image to the repository')
      .option('-q, --quiet', 'suppress verbose output')
      .action(push);
  }

  program
    .command('login')
    .description('Log in to a registry (credentials are kept in ~/.docker/config.json, or $DOCKER_CONFIG)')
    .argument('[SERVER]')
    .option('-u, --username <username>', 'username')
    .option('-p, --password <password>', 'password (prefer --password-stdin)')
    .option('--password-stdin', 'take the password from stdin')
    .action(async (server: string | undefined, o: { username?: string; password?: string; passwordStdin?: boolean }) => {
      let password = o.password;
      if (o.passwordStdin) {
        if (o.password) throw new EngineError('INVALID_ARGUMENT', '--password and --password-stdin are mutually exclusive');
        if (!o.username) throw new EngineError('INVALID_ARGUMENT', 'must provide --username with --password-stdin');
        const chunks: Buffer[] = [];
        for await (const c of process.stdin) chunks.push(c as Buffer);
        password = Buffer.concat(chunks)
          .toString()
          .replace(/\r?\n$/, '');
      }
      if (!o.username || !password) throw new EngineError('INVALID_ARGUMENT', 'username and password are required (-u USER --password-stdin)');
      const client = await ctx.client();
      const r = await client.json<{ Status: string; IdentityToken?: string }>('POST', '/auth', {
        body: { username: o.username, password, serveraddress: server ?? '' },
      });
      const { domainOfServerAddress } = await import('../../registry/login.ts');
      const domain = domainOfServerAddress(server);
      await new CredentialStore().store(domain, r.IdentityToken ? { identitytoken: r.IdentityToken } : { username: o.username, password });
      if (o.password) process.stderr.write('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
      process.stdout.write(`${r.Status}\n`);
    });

  program
    .command('logout')
    .description('Log out from a registry')
    .argument('[SERVER]')
    .action(async (server: string | undefined) => {
      const { domainOfServerAddress } = await import('../../registry/login.ts');
      const domain = domainOfServerAddress(server);
      await new CredentialStore().erase(domain);
      process.stdout.write(`Removing login credentials for ${server ?? 'https://index.docker.io/v1/'}\n`);
    });
}
