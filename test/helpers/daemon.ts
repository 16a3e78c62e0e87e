import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EngineOptions } from '../../src/engine/engine.ts';
import { NetworkManager } from '../../src/network/index.ts';
import { requirePrerequisites } from './prereqs.ts';

// Every test file that runs a daemon needs these; docker() checks for the docker CLI.
requirePrerequisites(['ip', 'iptables', 'busybox']);

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const keelBin = path.join(repoRoot, 'bin/keel');

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program, feeding `input` to stdin, and collects its output. */
export function run(argv: string[], opts: { env?: NodeJS.ProcessEnv; input?: string | Buffer; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b) => out.push(b));
    child.stderr.on('data', (b) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
    child.stdin.end(opts.input);
  });
}

/**
 * A keel daemon on its own temporary data root, exec root and socket, and
 * its own default bridge, address pool, iptables chains and device prefixes,
 * so test files run side by side (and beside a real keel, docker or podman).
 * `keel()` and `docker()` run the two CLIs against it; cleanup() removes
 * every mount, bridge, veth, netns and rule it left behind.
 */
export class TestDaemon {
  readonly dir: string;
  readonly dataRoot: string;
  readonly execRoot: string;
  readonly socket: string;
  /** Distinguishes this daemon's network objects from every other's. */
  readonly tag = randomBytes(2).toString('hex');
  readonly octet = 160 + (randomBytes(1)[0]! % 90);
  readonly prefix = `n${this.tag.slice(0, 3)}`;
  child?: ChildProcess;
  log = '';
  private busyboxTar?: string;

  constructor(name = 'keel-test') {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `${name}-`));
    this.dataRoot = path.join(this.dir, 'data');
    this.execRoot = path.join(this.dir, 'run');
    this.socket = path.join(this.execRoot, 'keel.sock');
  }

  /** Containers' cgroups live under this parent, one per test daemon. */
  get cgroupParent(): string {
    return `/keel-test-${this.tag}`;
  }

  get bridge(): string {
    return `kn${this.tag}0`;
  }

  async start(extra: string[] = []): Promise<void> {
    // Its own (empty) config file, so a host's /etc/keel/daemon.json does not change or break test daemons.
    if (!extra.includes('--config-file')) {
      const cfg = path.join(this.dir, 'daemon.json');
      if (!fs.existsSync(cfg)) fs.writeFileSync(cfg, '{}\n');
      extra = ['--config-file', cfg, ...extra];
    }
    const net = [
      '--cgroup-parent',
      this.cgroupParent,
      '--bridge',
      this.bridge,
      '--bip',
      `10.${this.octet}.0.1/24`,
      '--default-address-pool',
      `base=10.${this.octet}.128.0/17,size=24`,
      '--network-prefix',
      this.prefix,
    ];
    this.child = spawn(
      process.execPath,
      [keelBin, 'daemon', '--data-root', this.dataRoot, '--exec-root', this.execRoot, '--log-level', 'debug', ...net, ...extra],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child.stdout!.on('data', (b) => (this.log += b));
    this.child.stderr!.on('data', (b) => (this.log += b));
    for (let i = 0; i < 400; i++) {
      if (await this.ping()) return;
      if (this.child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`daemon did not start:\n${this.log}`);
  }

  ping(): Promise<boolean> {
    return new Promise((resolve) => {
      const req = http.request({ socketPath: this.socket, path: '/_ping' }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.on('error', () => resolve(false));
      req.end();
    });
  }

  /** Stops the daemon the hard way, as a crash would. */
  async kill9(): Promise<void> {
    if (!this.child || this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child!.once('exit', r));
    this.child.kill('SIGKILL');
    await exited;
  }

  /**
   * Restarts the daemon with KEEL_TEST_CRASH_AT=step (common/crashpoint.ts), runs `fn` (which makes it reach
   * the step), checks that the daemon was killed there, and
   * starts it again, as a restart after `kill -9` at that moment.
   */
  async crashAt(step: string, fn: () => Promise<unknown>): Promise<void> {
    await this.stop();
    process.env.KEEL_TEST_CRASH_AT = step;
    try {
      await this.start();
    } finally {
      delete process.env.KEEL_TEST_CRASH_AT;
    }
    const died = new Promise((r) => this.child!.once('exit', r));
    await fn();
    await died;
    if (this.child!.signalCode !== 'SIGKILL') throw new Error(`the daemon did not die at ${step} (signal ${this.child!.signalCode})`);
    await this.start();
  }

  async stop(): Promise<void> {
    if (!this.child || this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child!.once('exit', r));
    this.child.kill('SIGTERM');
    await exited;
  }

  /** One Docker API request to the test daemon (cheaper than a CLI process in loops). */
  api(method: string, p: string, body?: unknown): Promise<{ status: number; json: any; text: string }> {
    return new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = http.request(
        { socketPath: this.socket, method, path: p, headers: payload ? { 'Content-Type': 'application/json', 'Content-Length': payload.length } : {} },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            let json: unknown;
            try {
              json = text ? JSON.parse(text) : undefined;
            } catch {
              json = undefined;
            }
            resolve({ status: res.statusCode ?? 0, json, text });
          });
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** GET /containers/{id}/archive straight to the API (far cheaper than a docker CLI run, so a race gets many more tries). */
  getArchive(id: string, p: string): Promise<{ status: number; body: Buffer }> {
    return new Promise((resolve, reject) => {
      http
        .get({ socketPath: this.socket, path: `/v1.41/containers/${id}/archive?path=${encodeURIComponent(p)}` }, (res) => {
          const parts: Buffer[] = [];
          res
            .on('data', (c: Buffer) => parts.push(c))
            .on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }))
            .on('error', reject);
        })
        .on('error', reject);
    });
  }

  /** PUT /containers/{id}/archive straight to the API (the docker CLI always sends noOverwriteDirNonDir=true; `query` adds such flags). */
  putArchive(id: string, dir: string, tar: Buffer, query = ''): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const url = `/v1.41/containers/${id}/archive?path=${encodeURIComponent(dir)}${query}`;
      const req = http.request(
        { socketPath: this.socket, method: 'PUT', path: url, headers: { 'Content-Type': 'application/x-tar', 'Content-Length': tar.length } },
        (res) => {
          let body = '';
          res
            .setEncoding('utf8')
            .on('data', (c: string) => (body += c))
            .on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      req.end(tar);
    });
  }

  keel(args: string[], opts: { input?: string | Buffer; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
    return run([process.execPath, keelBin, '-H', `unix://${this.socket}`, ...args], opts);
  }

  docker(args: string[], opts: { input?: string | Buffer; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
    requirePrerequisites(['docker']);
    return run(['docker', ...args], {
      ...opts,
      env: { DOCKER_HOST: `unix://${this.socket}`, DOCKER_CONFIG: path.join(this.dir, 'docker-config'), ...opts.env },
    });
  }

  /** Imports the busybox rootfs (busyboxRootfsTar) as `ref`, with docker import's --change lines. */
  async importBusybox(ref = 'busybox:local', changes: string[] = []): Promise<void> {
    this.busyboxTar ??= busyboxRootfsTar(this.dir);
    const r = await this.docker(['import', ...changes.flatMap((c) => ['--change', c]), this.busyboxTar, ref]);
    if (r.code !== 0) throw new Error(`docker import ${ref} failed: ${r.stderr}`);
  }

  /** A docker-compose (v1) project against this daemon: writes its compose file, returns the command runner. */
  composeProject(project: string, yaml: string): (args: string[]) => Promise<RunResult> {
    const dir = path.join(this.dir, `compose-${project}`);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'docker-compose.yml'), yaml);
    const env = { DOCKER_HOST: `unix://${this.socket}`, COMPOSE_FILE: path.join(dir, 'docker-compose.yml'), COMPOSE_INTERACTIVE_NO_CLI: '1' };
    return (args) => run(['docker-compose', '-p', project, ...args], { env, timeoutMs: 120_000 });
  }

  /** The same roots, cgroup parent and network objects for an in-process Engine (instead of the daemon). */
  engineOptions(): EngineOptions {
    return {
      dataRoot: this.dataRoot,
      execRoot: this.execRoot,
      cgroupParent: this.cgroupParent,
      network: {
        defaultBridge: { bridgeName: this.bridge, subnet: `10.${this.octet}.0.0/24`, gateway: `10.${this.octet}.0.1` },
        pool: `10.${this.octet}.128.0/17`,
        poolPrefix: 24,
        chainPrefix: this.prefix.toUpperCase(),
        vethPrefix: this.prefix,
        bridgePrefix: `${this.prefix}-`,
      },
    };
  }

  /** Tears down what the daemon's network layer programmed (it keeps it across restarts by design). */
  async destroyNetworking(): Promise<void> {
    const nm = new NetworkManager({
      dataDir: path.join(this.dataRoot, 'network'),
      runDir: path.join(this.execRoot, 'network'),
      netnsDir: path.join(this.execRoot, 'netns'),
      defaultBridge: { bridgeName: this.bridge, subnet: `10.${this.octet}.0.0/24`, gateway: `10.${this.octet}.0.1` },
      pool: `10.${this.octet}.128.0/17`,
      poolPrefix: 24,
      chainPrefix: this.prefix.toUpperCase(),
      vethPrefix: this.prefix,
      bridgePrefix: `${this.prefix}-`,
      dnsPort: 0,
    });
    await nm.init().catch(() => {});
    await nm.destroyAll();
  }

  async cleanup(): Promise<void> {
    // Containers outlive their daemon by design: remove them while it still answers,
    // then kill whatever a failed test left under this daemon's roots and cgroups.
    if (await this.ping()) {
      const ids = (await this.docker(['ps', '-aq'])).stdout.split('\n').filter(Boolean);
      if (ids.length) await this.docker(['rm', '-f', ...ids]);
    }
    await this.stop();
    await run([
      'sh',
      '-c',
      `cat /sys/fs/cgroup/pids${this.cgroupParent}/*/cgroup.procs 2>/dev/null | xargs -r kill -9; pkill -9 -f 'conmon .*${this.dir}'; true`,
    ]);
    await this.destroyNetworking().catch(() => {});
    await run(['sh', '-c', `grep -o ' ${this.dir}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l`]);
    await run(['sh', '-c', `rmdir /sys/fs/cgroup/*${this.cgroupParent} /sys/fs/cgroup/unified${this.cgroupParent} 2>/dev/null; true`]);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A busybox rootfs tar made from Debian's busybox-static (the tests' base image). */
export function busyboxRootfsTar(dir: string): string {
  const rootfs = path.join(dir, 'bb-rootfs');
  fs.mkdirSync(path.join(rootfs, 'bin'), { recursive: true });
  fs.mkdirSync(path.join(rootfs, 'etc'), { recursive: true });
  fs.mkdirSync(path.join(rootfs, 'tmp'), { recursive: true, mode: 0o1777 });
  fs.copyFileSync('/bin/busybox', path.join(rootfs, 'bin/busybox'));
  fs.chmodSync(path.join(rootfs, 'bin/busybox'), 0o755);
  for (const a of [
    'sh',
    'echo',
    'cat',
    'ls',
    'true',
    'false',
    'sleep',
    'id',
    'env',
    'ps',
    'top',
    'grep',
    'wc',
    'touch',
    'rm',
    'mkdir',
    'head',
    'hostname',
    'printf',
    'wget',
    'nc',
    'ping',
    'ip',
    'nslookup',
    'httpd',
  ]) {
    fs.symlinkSync('busybox', path.join(rootfs, 'bin', a));
  }
  fs.writeFileSync(path.join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  fs.writeFileSync(path.join(rootfs, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  const tar = path.join(dir, 'busybox-rootfs.tar');
  spawnSyncOk(['tar', '-C', rootfs, '-cf', tar, '.']);
  return tar;
}

function spawnSyncOk(argv: string[]): void {
  const r = spawnSync(argv[0]!, argv.slice(1));
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed: ${r.stderr}`);
}

/** A TCP port nobody listens on right now (on any address). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '0.0.0.0', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
    s.on('error', reject);
  });
}
