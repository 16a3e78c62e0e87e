import { randomBytes } from 'node:crypto';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { exec } from '../../src/common/exec.ts';
import { newId } from '../../src/common/ids.ts';
import { NetworkManager, type NetworkManagerOptions } from '../../src/network/index.ts';
import { TestDaemon } from '../helpers/daemon.ts';
import { until } from '../helpers/wait.ts';

/**
 * A NetworkManager in its own temp roots, with its own bridge names, iptables
 * chain prefix and subnets, so test files can run beside each other and
 * beside a real keel/docker/podman on the host.
 */
export interface Harness {
  nm: NetworkManager;
  root: string;
  tag: string;
  /** Second octet of the 10.x.0.0/16 this harness uses. */
  octet: number;
  cleanup(): Promise<void>;
}

export async function harness(extra: Partial<NetworkManagerOptions> = {}): Promise<Harness> {
  const tag = randomBytes(2).toString('hex');
  const octet = 160 + (randomBytes(1)[0]! % 90);
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'keel-net-'));
  const nm = new NetworkManager({
    dataDir: path.join(root, 'data'),
    runDir: path.join(root, 'run'),
    netnsDir: path.join(root, 'netns'),
    defaultBridge: { bridgeName: `kt${tag}0`, subnet: `10.${octet}.0.0/24` },
    pool: `10.${octet}.128.0/17`,
    poolPrefix: 24,
    chainPrefix: `KT${tag}`,
    vethPrefix: `k${tag.slice(0, 2)}`,
    bridgePrefix: `kt${tag}-`,
    ...extra,
  });
  await nm.init();
  const h: Harness = {
    nm,
    root,
    tag,
    octet,
    // h.nm: a test may have replaced the manager (a "crash" and restart).
    async cleanup() {
      await h.nm.destroyAll();
      await fsp.rm(root, { recursive: true, force: true });
    },
  };
  return h;
}

export const cid = () => newId();

/** Runs argv inside a netns file. */
export function inNs(netns: string, argv: string[], timeoutMs = 10_000) {
  return exec(['nsenter', `--net=${netns}`, ...argv], { allowFailure: true, timeoutMs });
}

export const BB = '/bin/busybox';

/** Host interface addresses (non-loopback IPv4), e.g. 192.0.2.2. */
export async function hostAddress(): Promise<string> {
  const { networkInterfaces } = await import('node:os');
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  throw new Error('no non-loopback IPv4 address on this host');
}

/**
 * An "outside" host: a netns of the test's own joined to the host by a veth
 * with a /30, standing in for the internet (tests never send traffic out).
 */
export async function outsideNs(root: string, tag: string, octet: number): Promise<{ netns: string; ip: string; close(): Promise<void> }> {
  const netns = path.join(root, 'outside');
  await fsp.writeFile(netns, '');
  const hostIf = `ko${tag}h`;
  const base = `10.${octet}.250`;
  await exec(['unshare', `--net=${netns}`, 'ip', '-batch', '-'], {
    input:
      [
        'link set lo up',
        `link add eth0 type veth peer name ${hostIf} netns ${process.pid}`,
        `addr add ${base}.2/30 dev eth0`,
        'link set eth0 up',
        `route add default via ${base}.1`,
      ].join('\n') + '\n',
  });
  await exec(['ip', '-batch', '-'], { input: `addr add ${base}.1/30 dev ${hostIf}\nlink set ${hostIf} up\n` });
  return {
    netns,
    ip: `${base}.2`,
    async close() {
      await exec(['ip', 'link', 'del', hostIf], { allowFailure: true });
      await exec(['umount', netns], { allowFailure: true });
      await fsp.rm(netns, { force: true });
    },
  };
}

/**
 * Starts a long-running server inside a netns and returns a stopper once it
 * listens on `port` (a fixed sleep was not enough on a loaded CI machine).
 */
export async function serveInNs(netns: string, port: number, argv: string[]): Promise<() => void> {
  const { spawn } = await import('node:child_process');
  const p = spawn('nsenter', [`--net=${netns}`, ...argv], { stdio: 'ignore' });
  const stop = () => p.kill('SIGKILL');
  try {
    await until(
      `${argv.join(' ')} listening on ${port}`,
      async () => {
        if (p.exitCode !== null) throw new Error(`${argv.join(' ')} exited at once with ${p.exitCode}`);
        const ss = await exec(['nsenter', `--net=${netns}`, 'ss', '-Hltn', `sport = :${port}`], { allowFailure: true });
        return ss.stdout.trim() !== '';
      },
      { timeoutMs: 10_000 },
    );
  } catch (e) {
    stop();
    throw e;
  }
  return stop;
}

/** An httpd serving `body` at / inside the netns on `port`. */
export async function httpdInNs(netns: string, root: string, port: number, body: string): Promise<() => void> {
  const dir = await fsp.mkdtemp(path.join(root, 'www-'));
  await fsp.writeFile(path.join(dir, 'index.html'), body);
  return serveInNs(netns, port, [BB, 'httpd', '-f', '-p', String(port), '-h', dir]);
}

/** busybox 1.35's wget crashes with -T here, so the timeout is exec's. */
export function wgetInNs(netns: string, url: string) {
  return inNs(netns, [BB, 'wget', '-q', '-O', '-', url], 5000);
}

/** GET from the host with a timeout; resolves with the body or an Error. */
export async function httpGet(host: string, port: number): Promise<string | Error> {
  const http = await import('node:http');
  return new Promise((resolve) => {
    const req = http.get({ host, port, path: '/', timeout: 3000, agent: false }, (res) => {
      let b = '';
      res.on('data', (d) => (b += d));
      res.on('end', () => resolve(b));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve(e));
  });
}

/** Every TestDaemon has its own bridge, pool, chains and prefixes now; the name stays for these tests. */
export class NetDaemon extends TestDaemon {}

/** docker's table output as rows of cells (split on 2+ spaces). */
export function rows(out: string): string[][] {
  return out
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s{2,}/));
}
