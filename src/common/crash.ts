/**
 * Test hook for crash safety: with KEEL_TEST_CRASH_AT=<step> in its
 * environment the process SIGKILLs itself when it reaches that named step,
 * as a `kill -9` at the worst moment would. Tests restart the daemon after
 * it and check that reconcile left nothing behind. Unset, this is one
 * comparison.
 */
export function crashPoint(step: string): void {
  if (process.env.KEEL_TEST_CRASH_AT === step) process.kill(process.pid, 'SIGKILL');
}
