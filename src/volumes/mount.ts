/**
 * Host-side mounts of the local driver's option volumes (`-o type=tmpfs
 * -o device=tmpfs -o o=size=100m`, `-o type=none -o o=bind -o device=/p`),
 * done with mount(8) like docker's local driver does with mount(2).
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { EngineError } from '../common/errors.ts';
import { exec } from '../common/exec.ts';

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export async function mountPoints(): Promise<string[]> {
  const text = await fsp.readFile('/proc/self/mountinfo', 'utf8');
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length > 4) out.push(unescapeMountPath(f[4]!));
  }
  return out;
}

export async function isMountpoint(p: string): Promise<boolean> {
  const abs = path.resolve(p);
  return (await mountPoints()).includes(abs);
}

/** Mount points at or below `dir`, deepest first (the order to unmount them). */
export async function mountsBelow(dir: string): Promise<string[]> {
  const abs = path.resolve(dir);
  const found = (await mountPoints()).filter((m) => m === abs || m.startsWith(abs + '/'));
  return [...new Set(found)].sort((a, b) => b.length - a.length);
}

export async function mountLocal(opts: Record<string, string>, target: string): Promise<void> {
  if (!opts.device) throw new EngineError('INVALID_ARGUMENT', `error while mounting volume '${target}': missing device in volume options`);
  const argv = ['mount', '-t', opts.type ?? 'none'];
  if (opts.o) argv.push('-o', opts.o);
  argv.push(opts.device, target);
  const r = await exec(argv, { allowFailure: true, timeoutMs: 30_000 });
  if (r.code !== 0) {
    throw new EngineError(
      'INTERNAL',
      `error while mounting volume '${target}': failed to mount local volume: mount ${opts.device}:${target}, flags: ${opts.o ?? ''}: ${(r.stderr || r.stdout).trim()}`,
    );
  }
}

export async function unmount(target: string): Promise<void> {
  const r = await exec(['umount', target], { allowFailure: true, timeoutMs: 30_000 });
  if (r.code !== 0) await exec(['umount', '-l', target], { timeoutMs: 30_000 });
}
