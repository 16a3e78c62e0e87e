import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { NetworkManager } from '../../src/network/index.ts';
import { TestDaemon } from '../helpers/daemon.ts';

/**
 * A TestDaemon with its own default bridge, address pool, iptables chain and
 * device prefixes, so network test files run beside each other and beside a
 * real keel/docker/podman. cleanup() removes every bridge, veth, netns and
 * rule the daemon left behind.
 */
export class NetDaemon extends TestDaemon {
  readonly tag: string;
  readonly octet: number;
  readonly prefix: string;

  constructor(name = 'keel-net') {
    super(name);
    this.tag = randomBytes(2).toString('hex');
    this.octet = 160 + (randomBytes(1)[0]! % 90);
    this.prefix = `n${this.tag.slice(0, 3)}`;
  }

  get bridge(): string {
    return `kn${this.tag}0`;
  }

  override async start(extra: string[] = []): Promise<void> {
    await super.start([
      '--bridge', this.bridge, '--bip', `10.${this.octet}.0.1/24`,
      '--default-address-pool', `base=10.${this.octet}.128.0/17,size=24`, '--network-prefix', this.prefix, ...extra,
    ]);
  }

  /** Tears down what the daemon's network layer programmed (it keeps it across restarts by design). */
  async destroyNetworking(): Promise<void> {
    const nm = new NetworkManager({
      dataDir: path.join(this.dataRoot, 'network'), runDir: path.join(this.execRoot, 'network'), netnsDir: path.join(this.execRoot, 'netns'),
      defaultBridge: { bridgeName: this.bridge, subnet: `10.${this.octet}.0.0/24`, gateway: `10.${this.octet}.0.1` },
      pool: `10.${this.octet}.128.0/17`, poolPrefix: 24, chainPrefix: this.prefix.toUpperCase(), vethPrefix: this.prefix, bridgePrefix: `${this.prefix}-`,
      dnsPort: 0,
    });
    await nm.init().catch(() => {});
    await nm.destroyAll();
  }

  override async cleanup(): Promise<void> {
    await this.stop();
    await this.destroyNetworking();
    await super.cleanup();
  }
}

/** docker's table output as rows of cells (split on 2+ spaces). */
export function rows(out: string): string[][] {
  return out.trim().split('\n').map((l) => l.trim().split(/\s{2,}/));
}
