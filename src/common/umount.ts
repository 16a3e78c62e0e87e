import { ExecError } from './errors.ts';
import { exec } from './exec.ts';

/**
 * umount(8) says a target holds no mount (or is gone) only in its message;
 * it is read here, once, for every caller that tolerates that.
 */
export function notMounted(e: ExecError): boolean {
  return /not mounted|no mount point|No such file/i.test(e.stderr);
}

/**
 * Unmounts `target`; resolves false when nothing was mounted there (or the
 * path is gone), true when it unmounted. Any other failure throws its
 * ExecError.
 */
export async function umount(target: string, opts: { lazy?: boolean; timeoutMs?: number } = {}): Promise<boolean> {
  try {
    await exec(['umount', ...(opts.lazy ? ['-l'] : []), target], { timeoutMs: opts.timeoutMs });
    return true;
  } catch (e) {
    if (e instanceof ExecError && notMounted(e)) return false;
    throw e;
  }
}
