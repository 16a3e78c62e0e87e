/**
 * Test helper: an attacker that swaps two paths (a directory and a symlink
 * out of the tree) with renameat2(RENAME_EXCHANGE) in a tight loop, so each
 * name is, at every instant, either the directory or the symlink. It runs as
 * a separate process (optionally as another uid, like a host user owning a
 * bind-mount source) until stop(), which returns how many swaps it made.
 *
 * Run directly: node testrace.ts <a> <b> [<a2> <b2> ...]  (loops until SIGTERM, then prints the count).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const self = fileURLToPath(import.meta.url);

export interface Swapper {
  stop(): Promise<number>;
}

/** Swaps a with b; more pairs (a2, b2, ...) are swapped in turn by the same process. */
export async function startSwapper(a: string, b: string, opts: { uid?: number; gid?: number; more?: [string, string][] } = {}): Promise<Swapper> {
  const child = spawn(process.execPath, [self, a, b, ...(opts.more ?? []).flat()], { uid: opts.uid, gid: opts.gid, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Wait for the first swaps, so the race is on before the caller starts its work.
  await new Promise<void>((resolve, reject) => {
    const onData = () => {
      if (out.includes('started')) {
        child.stdout.off('data', onData);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.once('exit', (c) => reject(new Error(`swapper exited with ${c} before starting: ${out}`)));
  });
  return {
    async stop() {
      child.kill('SIGTERM');
      await exited;
      const m = /swaps (\d+)/.exec(out);
      return m ? Number(m[1]) : 0;
    },
  };
}

if (process.argv[1] === self) {
  const args = process.argv.slice(2);
  const pairs: [string, string][] = [];
  for (let i = 0; i + 1 < args.length; i += 2) pairs.push([args[i]!, args[i + 1]!]);
  const { default: koffi } = await import('koffi');
  const libc = koffi.load('libc.so.6');
  const renameat2 = libc.func('int renameat2(int, str, int, str, uint32)');
  const AT_FDCWD = -100;
  const RENAME_EXCHANGE = 2;
  let swaps = 0;
  let stopping = false;
  process.on('SIGTERM', () => (stopping = true));
  const burst = () => {
    for (let i = 0; i < 2000; i++) {
      const [a, b] = pairs[i % pairs.length]!;
      if (renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) === 0) swaps++;
    }
    if (stopping) {
      process.stdout.write(`swaps ${swaps}\n`, () => process.exit(0));
      return;
    }
    setImmediate(burst);
  };
  for (const [a, b] of pairs) {
    if (renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) !== 0) {
      process.stderr.write(`renameat2 ${a} ${b}: errno ${koffi.errno()}\n`);
      process.exit(1);
    }
    swaps++;
  }
  process.stdout.write('started\n');
  burst();
}
