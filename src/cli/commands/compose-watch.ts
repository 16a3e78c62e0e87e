/**
 * `compose watch`: brings the services up (unless --no-up), then follows
 * their develop.watch rules until Ctrl-C (compose/watch.ts). `up --watch`
 * runs the same watcher beside the attached logs (compose.ts).
 */
import type { Command } from 'commander';
import type { ComposeBackend } from '../../compose/backend.ts';
import type { Reporter } from '../../compose/reporter.ts';
import type { Project } from '../../compose/types.ts';
import { up } from '../../compose/up.ts';
import type { ComposeCli } from './compose.ts';

/** Watches until `signal` aborts; prints docker compose's lines to stdout. */
export async function runWatch(b: ComposeBackend, p: Project, r: Reporter, o: { services?: string[]; quiet?: boolean; signal: AbortSignal }): Promise<void> {
  const { watchProject } = await import('../../compose/watch.ts');
  await watchProject(b, p, r, {
    services: o.services,
    signal: o.signal,
    log: (l) => void process.stdout.write(`${l}\n`),
    onReady: () => void process.stdout.write('Watch enabled\n'),
    onProgress: (_svc, pr) => void (pr.stream && !o.quiet ? process.stderr.write(pr.stream) : undefined),
  });
}

export function watchCommand(compose: Command, cli: ComposeCli, r: Reporter): void {
  compose
    .command('watch')
    .description('Watch build context for service and rebuild/refresh containers when files are updated')
    .argument('[SERVICE...]')
    .option('--no-up', 'do not build & start services before watching')
    .option('--prune', 'prune dangling images on rebuild (accepted for compatibility)')
    .option('--quiet', 'hide build output')
    .action(
      cli.act(async (services: string[], o: { up: boolean; quiet?: boolean }, cmd: Command) => {
        const p = await cli.project(cmd, services);
        const b = await cli.backend();
        const stop = new AbortController();
        const onSig = () => stop.abort();
        process.on('SIGINT', onSig);
        process.on('SIGTERM', onSig);
        try {
          if (o.up) {
            await up(b, p, r, { services, onProgress: (_s, pr) => void (pr.stream && !o.quiet ? process.stderr.write(pr.stream) : undefined) });
          }
          await runWatch(b, p, r, { services, quiet: o.quiet, signal: stop.signal });
        } finally {
          process.off('SIGINT', onSig);
          process.off('SIGTERM', onSig);
        }
      }),
    );
}
