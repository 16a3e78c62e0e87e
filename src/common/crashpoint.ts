/**
 * Crash windows, for tests: with KEEL_TEST_CRASH_AT=<step> in its
 * environment the process kills itself (SIGKILL, as `kill -9` or the OOM
 * killer would) when it reaches that step, so a test can check what a
 * restarted daemon makes of the state left at exactly that point. Steps are
 * named where they are marked (e.g. `after-runc-create`).
 */
export function crashPoint(step: string): void {
  if (process.env.KEEL_TEST_CRASH_AT === step) process.kill(process.pid, 'SIGKILL');
}
