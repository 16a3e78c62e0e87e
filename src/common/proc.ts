import fs from 'node:fs';

/**
 * The fields of /proc/<pid>/stat after the command name (which is in
 * parentheses and may hold spaces): state is [0], ppid [1], starttime [19]
 * (clock ticks since boot). Undefined when the process is gone.
 */
export function procStat(pid: number | string): string[] | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/**
 * A live process, not a zombie. A daemon killed with -9, or conmon (double
 * forked), is reaped by init or a subreaper, which may take a while (about a
 * second on these VMs): until then kill(pid, 0) still succeeds.
 */
export function isAlive(pid: number): boolean {
  const state = procStat(pid)?.[0];
  return state !== undefined && state !== 'Z' && state !== 'X';
}
