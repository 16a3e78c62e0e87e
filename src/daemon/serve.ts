/**
 * daemon/ — the keel daemon's process: the engine served over the Docker
 * API on a unix socket. It sits above both front ends: cli/ parses `keel
 * daemon`'s flags and calls this through its context (bin/keel gives it),
 * and this wires the engine to api/'s server.
 */
import fs from 'node:fs';
import path from 'node:path';
import { log } from '../common/log.ts';
import type { DaemonOptions } from '../cli/context.ts';

/** Opens the engine, listens, writes the pid file; runs until SIGTERM or SIGINT, then exits. */
export async function serveDaemon(o: DaemonOptions): Promise<void> {
  const { socketPath, pidfile } = o;
  // The engine and API server load only here, so other commands start fast.
  const { useSpawnHelper } = await import('../common/exec.ts');
  // Programs (mount, ip, runc...) start from a small helper, whatever this process's memory (see spawn-helper.ts).
  useSpawnHelper();
  const { Engine } = await import('../engine/engine.ts');
  const { buildRouter, createApiServer, listenUnix } = await import('../api/server.ts');
  const engine = new Engine(o.engine);
  await engine.open();
  const server = createApiServer(engine, buildRouter());
  fs.mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o755 });
  await listenUnix(server, socketPath);
  fs.writeFileSync(pidfile, `${process.pid}\n`);
  log.info('keel daemon listening', { socket: socketPath, dataRoot: engine.dataRoot, execRoot: engine.execRoot });
  const stop = async (sig: string) => {
    log.info('shutting down', { signal: sig });
    server.close();
    server.closeAllConnections();
    await engine.close();
    fs.rmSync(pidfile, { force: true });
    fs.rmSync(socketPath, { force: true });
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
  await new Promise(() => {});
}
