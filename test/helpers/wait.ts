import fs from 'node:fs';

/**
 * Waits on the state a test needs instead of sleeping for it: `until`
 * checks a condition until it holds or a deadline passes (and then fails
 * saying what it waited for).
 */
export async function until<T>(what: string, check: () => T | Promise<T>, o: { timeoutMs?: number; everyMs?: number } = {}): Promise<NonNullable<T>> {
  const deadline = Date.now() + (o.timeoutMs ?? 30_000);
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, o.everyMs ?? 50));
  }
}

/** Whether a process is gone (a zombie counts as gone: it no longer runs). */
export function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}
