import path from 'node:path';
import { Command } from 'commander';
import { EngineError } from '../common/errors.ts';
import { setLogLevel } from '../common/log.ts';
import type { CliContext } from './context.ts';
import { DEFAULT_CONFIG_FILE, type DaemonFlags, engineOptions, mergeConfig, readConfigFile } from './daemonconfig.ts';

const collect = (v: string, prev: string[]) => [...prev, v];

export function daemonCommand(ctx: CliContext): Command {
  return new Command('daemon')
    .description('Run the keel daemon: it owns the state root and serves the Docker API')
    .option('--config-file <file>', "daemon configuration file (dockerd's daemon.json keys)", DEFAULT_CONFIG_FILE)
    .option('--data-root <dir>', 'root of persistent state', '/var/lib/keel')
    .option('--exec-root <dir>', 'root of runtime state (sockets, runc, conmon)', '/run/keel')
    .option('-H, --host <socket>', 'unix socket to listen on (default <exec-root>/keel.sock)')
    .option('-p, --pidfile <file>', 'path of the pid file (default <exec-root>/keel.pid)')
    .option('-l, --log-level <level>', 'logging level: debug, info, warn, error, fatal', 'info')
    .option('--cgroup-parent <path>', 'parent cgroup of every container (cgroupfs path)', '/keel')
    .option('-b, --bridge <name>', 'Linux bridge of the default network', 'keel0')
    .option('--bip <cidr>', 'default bridge gateway address and prefix (default 10.80.0.1/16)')
    .option('--default-address-pool <pool>', 'pool of user networks without --subnet: base=CIDR,size=N (default base=10.81.0.0/16,size=24)')
    .option(
      '--network-prefix <p>',
      "prefix (1-4 lowercase letters/digits) of keel's iptables chains (upper-cased), bridges and veths, to run instances side by side",
    )
    .option('--log-driver <name>', 'default log driver of containers')
    .option('--log-opt <key=value>', 'default log driver option (repeatable)', collect, [])
    .option('--registry-mirror <url>', 'pull-through mirror of docker.io (repeatable)', collect, [])
    .option('--insecure-registry <host>', 'registry host[:port] spoken to over plain HTTP (repeatable)', collect, [])
    .option('--default-ulimit <name=soft[:hard]>', 'ulimit of containers that set none of that name (repeatable)', collect, [])
    .option('--default-pids-limit <n>', 'pids limit of containers that set none (0: unlimited)')
    .option('--max-layer-size <size>', 'largest uncompressed layer accepted from a pull, load or import, e.g. 8g (default 64g)')
    .option('--max-image-size <size>', "largest total uncompressed size of one image's layers, e.g. 32g (default 256g)")
    .action(async (flags: DaemonFlags, cmd: Command) => {
      const explicit = cmd.getOptionValueSource('configFile') === 'cli';
      const o = mergeConfig(flags, readConfigFile(flags.configFile, explicit), (k) => cmd.getOptionValueSource(k) === 'cli');
      const opts = engineOptions(o);
      setLogLevel(o.logLevel);
      if (process.getuid?.() !== 0) throw new EngineError('FORBIDDEN', 'keel daemon needs root: run it with sudo or as root');
      const socketPath = o.host ? o.host.replace(/^unix:\/\//, '') : path.join(o.execRoot, 'keel.sock');
      const pidfile = o.pidfile ?? path.join(o.execRoot, 'keel.pid');
      if (!ctx.serveDaemon) throw new EngineError('UNAVAILABLE', 'this keel program cannot run the daemon: start it with bin/keel daemon');
      // The engine and API server load only there, so other commands start fast.
      await ctx.serveDaemon({ socketPath, pidfile, engine: opts });
    });
}
