import { TestDaemon } from '../helpers/daemon.ts';

/** Every TestDaemon has its own bridge, pool, chains and prefixes now; the name stays for these tests. */
export class NetDaemon extends TestDaemon {}

/** docker's table output as rows of cells (split on 2+ spaces). */
export function rows(out: string): string[][] {
  return out.trim().split('\n').map((l) => l.trim().split(/\s{2,}/));
}
