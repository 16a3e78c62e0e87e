import fsp from 'node:fs/promises';
import path from 'node:path';
import { newId } from '../common/ids.ts';
import { log } from '../common/log.ts';
import type { Ipam } from './ipam.ts';
import { removeNetns } from './netns.ts';
import { plumbSandbox, type EndpointPlumbing } from './plumbing.ts';
import type { EndpointOptions, SandboxRecord } from './types.ts';

/** What the spare needs from the network manager. */
export interface SpareHost {
  netnsDir: string;
  ipam: Ipam;
  /** Runs fn holding the manager's 'state' lock. */
  inState<T>(fn: () => Promise<T>): Promise<T>;
  /** Validates and leases an endpoint for sb (caller holds 'state'). */
  newEndpoint(sb: SandboxRecord, w: EndpointOptions, index: number): Promise<EndpointPlumbing>;
  bridgeName(networkId: string): string;
}

/**
 * One default-bridge sandbox made ahead of need (netns pinned, veth on the
 * bridge, address leased and configured), so that starting a container on
 * the default network runs no process on its critical path. Making one
 * costs two processes and ~10 ms; it is done after the previous one was
 * taken, while that container starts and runs.
 *
 * The spare belongs to no container: it is not in the runtime state file
 * and its lease is never written (Ipam.keepUnsaved). After a crash the only
 * trace is its netns file, which reconcile removes like any file no
 * sandbox owns; its veth dies with the namespace.
 */
export class SpareSandbox {
  private readonly host: SpareHost;
  private ready?: SandboxRecord;
  private making?: Promise<void>;
  private closed = false;
  /** After a failure, no new attempt before this time (ms since epoch): a broken bridge is not retried per container. */
  private retryAfter = 0;

  constructor(host: SpareHost) {
    this.host = host;
  }

  /**
   * The spare (waiting for one being made), if its host end is still on its
   * bridge: someone may have deleted and re-made the bridge meanwhile. The
   * caller owns it from then on: adopt() or discard() it.
   */
  async take(): Promise<SandboxRecord | undefined> {
    if (!this.ready && this.making) await this.making;
    const s = this.ready;
    this.ready = undefined;
    if (!s) return undefined;
    const ep = Object.values(s.Endpoints)[0]!;
    const master = await fsp.readlink(`/sys/class/net/${ep.HostIfName}/master`).catch(() => '');
    if (path.basename(master) === this.host.bridgeName(ep.NetworkId)) return s;
    void this.discard(s).catch((e) => log.warn('removing a stale spare network sandbox failed', { error: String(e) }));
    return undefined;
  }

  /** Gives the spare's netns and endpoint (address, veth) to sb. Caller holds 'state' and saves. */
  adopt(sb: SandboxRecord, spare: SandboxRecord): void {
    const [netId, ep] = Object.entries(spare.Endpoints)[0]!;
    this.host.ipam.transfer(netId, ep.IPAddress, spare.ContainerId, sb.ContainerId);
    sb.NetnsPath = spare.NetnsPath;
    sb.Endpoints[netId] = { ...ep, EndpointId: newId(), ContainerId: sb.ContainerId, ContainerName: sb.ContainerName };
  }

  async discard(spare: SandboxRecord): Promise<void> {
    await removeNetns(spare.NetnsPath);
    await this.host.inState(() => this.host.ipam.releaseOwner(spare.ContainerId, Object.keys(spare.Endpoints)));
  }

  /** Starts making a spare unless one is ready or on its way. */
  refill(): void {
    if (this.ready || this.making || this.closed || Date.now() < this.retryAfter) return;
    this.making = this.make()
      .then(
        async (s) => {
          if (this.closed)
            await this.discard(s).catch(() => {}); // closed meanwhile: the namespace is swept at the next reconcile
          else this.ready = s;
        },
        (e) => {
          this.retryAfter = Date.now() + 10_000;
          log.warn('could not prepare a network sandbox ahead of time (containers still start, slower)', { error: String(e) });
        },
      )
      .finally(() => (this.making = undefined));
  }

  /** Waits for a spare being made. */
  async settle(): Promise<void> {
    await this.making;
  }

  /** Removes the spare and makes no more (daemon shutdown). */
  async close(): Promise<void> {
    this.closed = true;
    await this.making;
    const s = this.ready;
    this.ready = undefined;
    if (s) await this.discard(s);
  }

  private async make(): Promise<SandboxRecord> {
    const id = newId();
    const sb: SandboxRecord = {
      ContainerId: id,
      ContainerName: '',
      Mode: 'bridge',
      NetnsPath: path.join(this.host.netnsDir, id),
      OwnNetns: true,
      Hostname: '',
      Dns: [],
      DnsSearch: [],
      DnsOptions: [],
      ExtraHosts: [],
      Ports: [],
      Endpoints: {},
    };
    const { ipam } = this.host;
    const p = await this.host.inState(async () => {
      ipam.keepUnsaved(id);
      try {
        return await this.host.newEndpoint(sb, { network: 'bridge' }, 0);
      } catch (e) {
        await ipam.releaseOwner(id, []);
        throw e;
      }
    });
    try {
      await plumbSandbox(sb, [p]);
    } catch (e) {
      await this.host.inState(() => ipam.releaseOwner(id, [p.ep.NetworkId]));
      throw e;
    }
    return sb;
  }
}
