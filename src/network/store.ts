import fsp from 'node:fs/promises';
import path from 'node:path';
import { EngineError, errnoCode, notFound } from '../common/errors.ts';
import { mkdirp, writeJsonAtomic } from '../common/fs.ts';
import { newId } from '../common/ids.ts';
import type { NetworkRecord } from './types.ts';

export interface DefaultBridgeConfig {
  /** Linux bridge name of the default network (default keel0). */
  bridgeName: string;
  subnet: string;
  gateway: string;
}

/**
 * Network records, one JSON file per network under <dir>/networks. The
 * predefined networks (bridge, host, none) are created on first load and are
 * always present, as docker lists them.
 */
export class NetworkStore {
  readonly dir: string;
  private byId = new Map<string, NetworkRecord>();

  constructor(dir: string) {
    this.dir = path.join(dir, 'networks');
  }

  async load(dflt: DefaultBridgeConfig): Promise<void> {
    await mkdirp(this.dir);
    this.byId.clear();
    for (const f of await fsp.readdir(this.dir)) {
      if (!/^[0-9a-f]{64}\.json$/.test(f)) continue;
      try {
        const r = JSON.parse(await fsp.readFile(path.join(this.dir, f), 'utf8')) as NetworkRecord;
        this.byId.set(r.Id, r);
      } catch (e) {
        if (errnoCode(e) !== 'ENOENT') throw new EngineError('INTERNAL', `corrupt network record ${f}: ${(e as Error).message}`);
      }
    }
    const base = { IPRange: '', Internal: false, Labels: {}, Options: {}, Predefined: true };
    const bridge = this.byName('bridge');
    if (!bridge) {
      await this.put({
        ...base,
        Id: newId(),
        Name: 'bridge',
        Driver: 'bridge',
        Created: new Date().toISOString(),
        Subnet: dflt.subnet,
        Gateway: dflt.gateway,
        BridgeName: dflt.bridgeName,
        Options: {
          'com.docker.network.bridge.default_bridge': 'true',
          'com.docker.network.bridge.enable_icc': 'true',
          'com.docker.network.bridge.enable_ip_masquerade': 'true',
          'com.docker.network.bridge.host_binding_ipv4': '0.0.0.0',
          'com.docker.network.bridge.name': dflt.bridgeName,
          'com.docker.network.driver.mtu': '1500',
        },
      });
    } else if (bridge.Subnet !== dflt.subnet || bridge.Gateway !== dflt.gateway || bridge.BridgeName !== dflt.bridgeName) {
      // The daemon's configuration decides the default bridge; follow it.
      await this.put({ ...bridge, Subnet: dflt.subnet, Gateway: dflt.gateway, BridgeName: dflt.bridgeName });
    }
    for (const [name, driver] of [
      ['host', 'host'],
      ['none', 'null'],
    ] as const) {
      if (!this.byName(name)) {
        await this.put({ ...base, Id: newId(), Name: name, Driver: driver, Created: new Date().toISOString(), Subnet: '', Gateway: '', BridgeName: '' });
      }
    }
  }

  list(): NetworkRecord[] {
    return [...this.byId.values()].sort((a, b) => a.Created.localeCompare(b.Created) || a.Name.localeCompare(b.Name));
  }

  byName(name: string): NetworkRecord | undefined {
    for (const r of this.byId.values()) if (r.Name === name) return r;
    return undefined;
  }

  /** Finds by full id, then exact name, then unique id prefix (docker's order). */
  find(idOrName: string): NetworkRecord | undefined {
    const full = this.byId.get(idOrName);
    if (full) return full;
    const named = this.byName(idOrName);
    if (named) return named;
    if (!/^[0-9a-f]+$/.test(idOrName)) return undefined;
    const hits = [...this.byId.values()].filter((r) => r.Id.startsWith(idOrName));
    if (hits.length > 1) throw new EngineError('CONFLICT', `network ${idOrName} is ambiguous (${hits.length} matches found on name)`);
    return hits[0];
  }

  get(idOrName: string): NetworkRecord {
    const r = this.find(idOrName);
    if (!r) throw notFound(`network ${idOrName} not found`);
    return r;
  }

  async put(r: NetworkRecord): Promise<void> {
    await writeJsonAtomic(path.join(this.dir, `${r.Id}.json`), r, 0o644);
    this.byId.set(r.Id, r);
  }

  async remove(id: string): Promise<void> {
    await fsp.rm(path.join(this.dir, `${id}.json`), { force: true });
    this.byId.delete(id);
  }
}
