import dgram from 'node:dgram';
import fsp from 'node:fs/promises';
import net from 'node:net';
import { EngineError, errnoCode, invalid } from '../common/errors.ts';
import { parseIp } from './addr.ts';
import type { PortBindings, PortMapping, Proto } from './types.ts';

/**
 * Published ports: docker's `-p` grammar (go-connections nat.ParsePortSpec,
 * with its error texts), host port allocation, and conflict detection.
 */

function parseRange(s: string): [number, number] {
  if (s === '') throw new Error('empty string specified for ports');
  const num = (x: string | undefined) => {
    if (x === undefined || !/^\d+$/.test(x) || Number(x) > 65535) throw new Error(`bad port ${x}`);
    return Number(x);
  };
  if (!s.includes('-')) return [num(s), num(s)];
  const [a, b] = s.split('-');
  const r: [number, number] = [num(a), num(b)];
  if (r[1] < r[0]) throw new Error(`invalid range specified for port: ${s}`);
  return r;
}

/** Parses `-p` specs into docker's ExposedPorts keys and HostConfig.PortBindings. */
export function parsePortSpecs(specs: string[]): { exposed: string[]; bindings: PortBindings } {
  const exposed = new Set<string>();
  const bindings: PortBindings = {};
  for (const raw of specs) {
    const parts = raw.split(':');
    const n = parts.length;
    let ip = n >= 3 ? parts.slice(0, n - 2).join(':') : '';
    const hostPort = n >= 2 ? parts[n - 2]! : '';
    let cport = parts[n - 1]!;
    let proto = 'tcp';
    const pp = cport.split('/');
    if (cport === '' || pp[0] === '') cport = '';
    else if (pp.length > 1 && pp[1] !== '') [cport, proto] = [pp[0]!, pp[1]!];
    else cport = pp[0]!;
    if (ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
    if (ip !== '') {
      if (ip.includes(':')) throw invalid(`IPv6 host address ${ip} is not supported: keel publishes ports on IPv4 only`);
      try {
        parseIp(ip);
      } catch {
        throw invalid(`invalid IP address: ${ip}`);
      }
    }
    if (cport === '') throw invalid(`no port specified: ${raw}<empty>`);
    let c: [number, number];
    try {
      c = parseRange(cport);
    } catch {
      throw invalid(`invalid containerPort: ${cport}`);
    }
    let h: [number, number] = [0, 0];
    if (hostPort !== '') {
      try {
        h = parseRange(hostPort);
      } catch {
        throw invalid(`invalid hostPort: ${hostPort}`);
      }
    }
    if (hostPort !== '' && c[1] - c[0] !== h[1] - h[0] && c[1] !== c[0]) {
      throw invalid(`invalid ranges specified for container and host Ports: ${cport} and ${hostPort}`);
    }
    proto = proto.toLowerCase();
    if (!['tcp', 'udp', 'sctp'].includes(proto)) throw invalid(`invalid proto: ${proto}`);
    for (let i = 0; i <= c[1] - c[0]; i++) {
      const key = `${c[0] + i}/${proto}`;
      let hp = hostPort === '' ? '' : String(h[0] + i);
      // One container port with a host range: the range is where to allocate from.
      if (c[0] === c[1] && h[0] !== h[1]) hp = `${h[0]}-${h[1]}`;
      exposed.add(key);
      (bindings[key] ??= []).push({ HostIp: ip, HostPort: hp });
    }
  }
  return { exposed: [...exposed], bindings };
}

export interface PortRequest {
  proto: Proto;
  containerPort: number;
  hostIp: string;
  /** [0, 0] = any port of the ephemeral range. */
  hostRange: [number, number];
}

/** Flattens PortBindings (+ -P over exposed ports) into requests. */
export function portRequests(bindings: PortBindings | undefined, publishAll: boolean, exposed: string[]): PortRequest[] {
  const out: PortRequest[] = [];
  const keyOf = (k: string): [number, Proto] => {
    const [p, pr = 'tcp'] = k.split('/');
    const port = Number(p);
    if (!/^\d+$/.test(p ?? '') || port < 1 || port > 65535) throw invalid(`invalid port specification: "${k}"`);
    if (!['tcp', 'udp', 'sctp'].includes(pr)) throw invalid(`invalid proto: ${pr}`);
    return [port, pr as Proto];
  };
  for (const [k, list] of Object.entries(bindings ?? {})) {
    const [containerPort, proto] = keyOf(k);
    for (const b of list ?? [{}]) {
      const hostIp = b.HostIp || '0.0.0.0';
      if (hostIp.includes(':')) continue; // docker skips IPv6 bindings when IPv6 is off
      parseIp(hostIp);
      let hostRange: [number, number] = [0, 0];
      if (b.HostPort && b.HostPort !== '0') {
        try {
          hostRange = parseRange(b.HostPort);
        } catch {
          throw invalid(`invalid hostPort: ${b.HostPort}`);
        }
      }
      out.push({ proto, containerPort, hostIp, hostRange });
    }
  }
  if (publishAll) {
    for (const k of exposed) {
      if (bindings && k in bindings) continue;
      const [containerPort, proto] = keyOf(k.includes('/') ? k : `${k}/tcp`);
      if (out.some((r) => r.containerPort === containerPort && r.proto === proto)) continue;
      out.push({ proto, containerPort, hostIp: '0.0.0.0', hostRange: [0, 0] });
    }
  }
  return out;
}

export async function ephemeralRange(): Promise<[number, number]> {
  try {
    const [a, b] = (await fsp.readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')).trim().split(/\s+/).map(Number);
    if (a && b && a <= b) return [a, b];
  } catch {}
  return [32768, 60999];
}

type Holder = { close(): void };

/**
 * Host port reservations. A port belongs to one owner per (proto, host IP);
 * 0.0.0.0 clashes with every IP. Each reservation also holds a bound socket
 * (as docker's port mapper does), which proves no host process uses the port
 * and keeps one from taking it later; DNAT catches the traffic before it
 * ever reaches that socket.
 */
export class PortAllocator {
  private taken = new Map<string, { owner: string; hostIp: string; holder?: Holder }[]>();
  private cursor = 0;
  private range: [number, number];

  constructor(range: [number, number]) {
    this.range = range;
  }

  private clash(proto: string, port: number, ip: string): string | undefined {
    const l = this.taken.get(`${proto}/${port}`) ?? [];
    return l.find((t) => t.hostIp === '0.0.0.0' || ip === '0.0.0.0' || t.hostIp === ip)?.owner;
  }

  /** Allocates all requests or none. `endpoint` names the container in errors. */
  async allocate(owner: string, endpoint: string, reqs: PortRequest[], containerIp: string): Promise<PortMapping[]> {
    const done: PortMapping[] = [];
    try {
      for (const r of reqs) {
        const m = await this.one(owner, endpoint, r, containerIp);
        done.push(m);
      }
      return done;
    } catch (e) {
      this.release(owner, done);
      throw e;
    }
  }

  private async one(owner: string, endpoint: string, r: PortRequest, containerIp: string): Promise<PortMapping> {
    const [lo, hi] = r.hostRange[0] ? r.hostRange : this.range;
    const n = hi - lo + 1;
    const start = r.hostRange[0] ? 0 : this.cursor % n;
    for (let i = 0; i < n; i++) {
      const port = lo + ((start + i) % n);
      if (this.clash(r.proto, port, r.hostIp)) {
        if (n === 1) throw new EngineError('CONFLICT', `Bind for ${r.hostIp}:${port} failed: port is already allocated`);
        continue;
      }
      let holder: Holder | undefined;
      try {
        holder = await hold(r.proto, r.hostIp, port);
      } catch (e) {
        if (n > 1) continue;
        throw new EngineError(
          'CONFLICT',
          `driver failed programming external connectivity on endpoint ${endpoint}: Error starting userland proxy: listen ${r.proto}4 ${r.hostIp}:${port}: bind: ${errnoCode(e) === 'EADDRINUSE' ? 'address already in use' : (e as Error).message}`,
        );
      }
      const key = `${r.proto}/${port}`;
      this.taken.set(key, [...(this.taken.get(key) ?? []), { owner, hostIp: r.hostIp, holder }]);
      if (!r.hostRange[0]) this.cursor = port - lo + 1;
      return { Proto: r.proto, HostIp: r.hostIp, HostPort: port, ContainerPort: r.containerPort, ContainerIp: containerIp };
    }
    const what = r.hostRange[0] ? `${r.hostRange[0]}-${r.hostRange[1]}` : 'the ephemeral range';
    throw new EngineError('CONFLICT', `Bind for ${r.hostIp}:${what} failed: port is already allocated`);
  }

  /** Re-registers mappings of a live container after a daemon restart (holding sockets where possible). */
  async adopt(owner: string, maps: PortMapping[]): Promise<void> {
    for (const m of maps) {
      if (this.clash(m.Proto, m.HostPort, m.HostIp)) continue;
      const holder = await hold(m.Proto, m.HostIp, m.HostPort).catch(() => undefined);
      const key = `${m.Proto}/${m.HostPort}`;
      this.taken.set(key, [...(this.taken.get(key) ?? []), { owner, hostIp: m.HostIp, holder }]);
    }
  }

  release(owner: string, maps?: PortMapping[]): void {
    for (const [key, l] of this.taken) {
      const keep = l.filter((t) => {
        const mine = t.owner === owner && (!maps || maps.some((m) => `${m.Proto}/${m.HostPort}` === key && m.HostIp === t.hostIp));
        if (mine) t.holder?.close();
        return !mine;
      });
      if (keep.length) this.taken.set(key, keep);
      else this.taken.delete(key);
    }
  }

  closeAll(): void {
    for (const l of this.taken.values()) for (const t of l) t.holder?.close();
    this.taken.clear();
  }
}

function hold(proto: Proto, ip: string, port: number): Promise<Holder> {
  // SCTP has no Node socket; conflicts among keel containers are still caught.
  if (proto === 'sctp') return Promise.resolve({ close() {} });
  return new Promise((resolve, reject) => {
    if (proto === 'udp') {
      const s = dgram.createSocket('udp4');
      s.once('error', reject);
      s.bind({ address: ip, port, exclusive: true }, () => {
        s.removeListener('error', reject);
        s.unref();
        resolve({ close: () => s.close() });
      });
      return;
    }
    const s = net.createServer();
    s.once('error', reject);
    s.listen({ host: ip, port, exclusive: true, backlog: 1 }, () => {
      s.removeListener('error', reject);
      s.unref();
      resolve({ close: () => s.close() });
    });
  });
}
