/**
 * What the command modules share with main.ts, kept apart from it so a
 * command module loads without the command table (main imports the
 * modules lazily; see there).
 */
import type { Command } from 'commander';
import type { EngineOptions } from '../engine/engine.ts';
import type { ApiClient } from './client.ts';

/** What every command gets: a client for the daemon the user chose. */
export interface CliContext {
  client(): Promise<ApiClient>;
  /**
   * Runs the daemon (`keel daemon`) until a signal stops it. Given by the
   * program's entry (bin/keel → src/daemon/), which may import the API
   * server; cli/ may not (front ends do not import each other).
   */
  serveDaemon?: (o: DaemonOptions) => Promise<void>;
}

/** What `keel daemon`'s flags decide. */
export interface DaemonOptions {
  socketPath: string;
  pidfile: string;
  engine: EngineOptions;
}

/** Collects a repeatable option (`-f a -f b`). */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** A command group (`container`, `image`, ...): main.ts creates them all, with their descriptions. */
export function group(program: Command, name: string): Command {
  const g = program.commands.find((c) => c.name() === name);
  if (!g) throw new Error(`keel: no command group ${name}`);
  return g;
}

/** Thrown by commands that must exit with a specific status (run, wait, exec). */
export class ExitError extends Error {
  readonly status: number;

  constructor(status: number, message = '') {
    super(message);
    this.status = status;
  }
}
