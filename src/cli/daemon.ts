import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { EngineError } from '../common/errors.ts';
import { log, setLogLevel } from '../common/log.ts';
import { Engine } from '../engine/engine.ts';
import { buildRouter, createApiServer, listenUnix } from '../api/server.ts';

export function daemonCommand(): Command {
  return new Command('daemon')
    .description('Run the keel daemon: it owns the state root and serves the Docker API')
    .option('--data-root <dir>', 'root of persistent state', '/var/lib/keel')
    .option('--exec-root <dir>', 'root of runtime state (sockets, runc, conmon)', '/run/keel')
    .option('-H, --host <socket>', 'unix socket to listen on (default <exec-root>/keel.sock)')
    .option('-p, --pidfile <file>', 'path of the pid file (default <exec-root>/keel.pid)')
    .option('-l, --log-level <level>', 'logging level: debug, info, warn, error, fatal', 'info')
    .action(async (o: { dataRoot: string; execRoot: string; host?: string; pidfile?: string; logLevel: string }) => {
      setLogLevel(o.logLevel);
      if (process.getuid?.() !== 0) throw new EngineError('FORBIDDEN', 'keel daemon needs root: run it with sudo or as root');
      const socketPath = o.host ? o.host.replace(/^unix:\/\//, '') : path.join(o.execRoot, 'keel.sock');
      if (o.host && !o.host.startsWith('unix://') && !o.host.startsWith('/')) throw new EngineError('INVALID_ARGUMENT', `unsupported host "${o.host}": use unix:///path/to.sock`);
      const pidfile = o.pidfile ?? path.join(o.execRoot, 'keel.pid');
      const engine = new Engine({ dataRoot: o.dataRoot, execRoot: o.execRoot });
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
    });
}
