import path from 'node:path';
import { Command } from 'commander';
import { EngineError } from '../common/errors.ts';
import { setLogLevel } from '../common/log.ts';
import type { EngineOptions } from '../engine/engine.ts';
import type { CliContext } from './context.ts';

export function daemonCommand(ctx: CliContext): Command {
  return new Command('daemon')
    .description('Run the keel daemon: it owns the state root and serves the Docker API')
    .option('--data-root <dir>', 'root of persistent state', '/var/lib/keel')
    .option('--exec-root <dir>', 'root of runtime state (sockets, runc, conmon)', '/run/keel')
    .option('-H, --host <socket>', 'unix socket to listen on (default <exec-root>/keel.sock)')
    .option('-p, --pidfile <file>', 'path of the pid file (default <exec-root>/keel.pid)')
    .option('-l, --log-level <level>', 'logging level: debug, info, warn, error, fatal', 'info')
    .option('--cgroup-parent <path>', 'parent cgroup of every container (cgroupfs path)', '/keel')
    .option('-b, --bridge <name>', 'Linux bridge of the default network', 'keel0')
    .option('--bip <cidr>', 'default bridge gateway address and prefix (default 10.80.0.1/16)')
    .option('--default-address-pool <pool>', 'pool of user networks without --subnet: base=CIDR,size=N (default base=10.81.0.0/16,size=24)')
    .option('--network-prefix <p>', 'prefix (1-4 lowercase letters/digits) of keel\'s iptables chains (upper-cased), bridges and veths, to run instances side by side')
    .action(async (o: { dataRoot: string; execRoot: string; host?: string; pidfile?: string; logLevel: string; cgroupParent: string } & DaemonNetworkFlags) => {
      setLogLevel(o.logLevel);
      if (process.getuid?.() !== 0) throw new EngineError('FORBIDDEN', 'keel daemon needs root: run it with sudo or as root');
      const socketPath = o.host ? o.host.replace(/^unix:\/\//, '') : path.join(o.execRoot, 'keel.sock');
      if (o.host && !o.host.startsWith('unix://') && !o.host.startsWith('/')) throw new EngineError('INVALID_ARGUMENT', `unsupported host "${o.host}": use unix:///path/to.sock`);
      const pidfile = o.pidfile ?? path.join(o.execRoot, 'keel.pid');
      if (!/^\/[a-zA-Z0-9_./-]+$/.test(o.cgroupParent) || o.cgroupParent.includes('..')) throw new EngineError('INVALID_ARGUMENT', `invalid --cgroup-parent ${o.cgroupParent}: expected an absolute cgroupfs path such as /keel`);
      if (!ctx.serveDaemon) throw new EngineError('UNAVAILABLE', 'this keel program cannot run the daemon: start it with bin/keel daemon');
      // The engine and API server load only there, so other commands start fast.
      await ctx.serveDaemon({ socketPath, pidfile, engine: { dataRoot: o.dataRoot, execRoot: o.execRoot, network: networkOptions(o), cgroupParent: o.cgroupParent } });
    });
}

interface DaemonNetworkFlags {
  bridge: string;
  bip?: string;
  defaultAddressPool?: string;
  networkPrefix?: string;
}

/** dockerd's --bip/--default-address-pool forms, mapped to the network layer's options. */
function networkOptions(o: DaemonNetworkFlags): NonNullable<EngineOptions['network']> {
  const out: NonNullable<EngineOptions['network']> = { defaultBridge: { bridgeName: o.bridge } };
  if (o.bip) {
    const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(o.bip);
    if (!m || Number(m[5]) > 30 || m.slice(1, 5).some((x) => Number(x) > 255)) throw new EngineError('INVALID_ARGUMENT', `invalid --bip ${o.bip}: expected the gateway address and prefix, e.g. 10.80.0.1/16`);
    const ip = m.slice(1, 5).reduce((a, x) => a * 256 + Number(x), 0);
    const mask = Number(m[5]) === 0 ? 0 : (0xffffffff << (32 - Number(m[5]))) >>> 0;
    const base = (ip & mask) >>> 0;
    out.defaultBridge!.subnet = `${[24, 16, 8, 0].map((s) => (base >>> s) & 255).join('.')}/${m[5]}`;
    out.defaultBridge!.gateway = m.slice(1, 5).join('.');
  }
  if (o.defaultAddressPool) {
    const kv = Object.fromEntries(o.defaultAddressPool.split(',').map((p) => p.split('=', 2) as [string, string]));
    if (!kv.base || !kv.size || !/^\d+$/.test(kv.size)) throw new EngineError('INVALID_ARGUMENT', `invalid --default-address-pool ${o.defaultAddressPool}: expected base=CIDR,size=N`);
    out.pool = kv.base;
    out.poolPrefix = Number(kv.size);
  }
  if (o.networkPrefix) {
    if (!/^[a-z][a-z0-9]{0,3}$/.test(o.networkPrefix)) throw new EngineError('INVALID_ARGUMENT', `invalid --network-prefix ${o.networkPrefix}: 1-4 lowercase letters or digits, starting with a letter`);
    Object.assign(out, { chainPrefix: o.networkPrefix.toUpperCase(), vethPrefix: o.networkPrefix, bridgePrefix: `${o.networkPrefix}-` });
  }
  return out;
}
