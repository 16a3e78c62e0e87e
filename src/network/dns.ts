import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import { log } from '../common/log.ts';

/**
 * The embedded DNS server of a user-defined network: UDP and TCP sockets on
 * the bridge's gateway address, run by the daemon process. Names of the
 * network's members (container name, aliases, short id) get A records,
 * several addresses (replicas, a shared alias) in a new random order each time;
 * everything else is forwarded to upstream resolvers. All work is bounded:
 * packet sizes, forward timeouts, in-flight forwards, TCP connections.
 */

export interface DnsServerOptions {
  address: string;
  port?: number;
  /** Addresses for a member name (lower-case, no trailing dot); undefined = not a member. */
  lookup: (name: string) => string[] | undefined;
  /** Upstream resolvers ("ip" or "ip:port") for a query from `client`. */
  upstreams: (client: string) => string[];
  timeoutMs?: number;
}

const MAX_INFLIGHT = 256;
const MAX_TCP_CONNS = 64;
const TTL = 600;
/** Answers in one reply: 16 A records keep a UDP reply under 512 bytes. */
const MAX_ANSWERS = 16;

/**
 * The addresses in a random order, each reply anew, as Docker's resolver
 * answers (shuffleAddr in libnetwork's resolver.go): clients that take the
 * first record spread over the replicas and the containers sharing an alias.
 */
export function shuffled<T>(list: readonly T[], random: () => number = Math.random): T[] {
  const out = [...list];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

export class DnsServer {
  private opts: Required<DnsServerOptions>;
  private udp?: dgram.Socket;
  private tcp?: net.Server;
  private inflight = 0;
  private conns = new Set<net.Socket>();

  constructor(opts: DnsServerOptions) {
    this.opts = { port: 53, timeoutMs: 2500, ...opts };
  }

  async start(): Promise<void> {
    const { address, port } = this.opts;
    const udp = dgram.createSocket({ type: 'udp4', recvBufferSize: 1 << 20 });
    await new Promise<void>((res, rej) => {
      udp.once('error', rej);
      udp.bind({ address, port, exclusive: true }, () => (udp.removeListener('error', rej), res()));
    });
    udp.on('error', (e) => log.warn('embedded DNS: udp error', { address, error: e.message }));
    udp.on('message', (msg, rinfo) => {
      void this.answer(msg, rinfo.address, 'udp').then((out) => {
        if (out) udp.send(out, rinfo.port, rinfo.address);
      });
    });
    udp.unref();
    this.udp = udp;
    const tcp = net.createServer((s) => this.serveTcp(s));
    tcp.maxConnections = MAX_TCP_CONNS;
    try {
      await new Promise<void>((res, rej) => {
        tcp.once('error', rej);
        tcp.listen({ host: address, port, exclusive: true }, () => (tcp.removeListener('error', rej), res()));
      });
    } catch (e) {
      udp.close();
      throw e;
    }
    tcp.unref();
    this.tcp = tcp;
  }

  close(): void {
    this.udp?.close();
    this.tcp?.close();
    for (const c of this.conns) c.destroy();
    this.udp = undefined;
    this.tcp = undefined;
  }

  private serveTcp(s: net.Socket): void {
    this.conns.add(s);
    s.setTimeout(10_000, () => s.destroy());
    s.on('close', () => this.conns.delete(s));
    s.on('error', () => {});
    let buf = Buffer.alloc(0);
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length > 65537 * 2) return void s.destroy();
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        void this.answer(Buffer.from(msg), s.remoteAddress ?? '', 'tcp').then((out) => {
          if (out && !s.destroyed) s.write(Buffer.concat([u16(out.length), out]));
        });
      }
    });
  }

  /** The reply to one query, or undefined to stay silent (unparsable input). */
  async answer(msg: Buffer, client: string, via: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    let q: dnsPacket.Packet;
    try {
      q = dnsPacket.decode(msg);
    } catch {
      return undefined;
    }
    if (q.type !== 'query' || !q.questions || q.questions.length !== 1) return undefined;
    const question = q.questions[0]!;
    const name = question.name.toLowerCase().replace(/\.$/, '');
    const addrs = this.opts.lookup(name);
    if (addrs) {
      const answers =
        question.type === 'A' || (question.type as string) === 'ANY'
          ? shuffled(addrs)
              .slice(0, MAX_ANSWERS)
              .map((a) => ({ name: question.name, type: 'A' as const, class: 'IN' as const, ttl: TTL, data: a }))
          : [];
      // A member name with no record of this type: NOERROR and no answers, so resolvers don't wait on AAAA.
      return dnsPacket.encode({
        id: q.id,
        type: 'response',
        flags: dnsPacket.AUTHORITATIVE_ANSWER | ((q.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | dnsPacket.RECURSION_AVAILABLE,
        questions: q.questions,
        answers,
      });
    }
    if (this.inflight >= MAX_INFLIGHT) return fail(q, 'SERVFAIL');
    this.inflight++;
    try {
      for (const up of this.opts.upstreams(client)) {
        const r = await (via === 'udp' ? forwardUdp(msg, up, this.opts.timeoutMs) : forwardTcp(msg, up, this.opts.timeoutMs)).catch(() => undefined);
        if (r && r.length >= 12 && r.readUInt16BE(0) === q.id) return r;
      }
      return fail(q, 'SERVFAIL');
    } finally {
      this.inflight--;
    }
  }
}

/** dns-packet takes the rcode from the low bits of `flags` when encoding. */
const RCODE = { SERVFAIL: 2 } as const;

function fail(q: dnsPacket.Packet, rcode: keyof typeof RCODE): Buffer {
  return dnsPacket.encode({
    id: q.id,
    type: 'response',
    flags: ((q.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | dnsPacket.RECURSION_AVAILABLE | RCODE[rcode],
    questions: q.questions,
  });
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

export function splitHostPort(s: string): [string, number] {
  const m = /^(.*):(\d+)$/.exec(s);
  return m && !m[1]!.includes(':') ? [m[1]!, Number(m[2])] : [s, 53];
}

function forwardUdp(msg: Buffer, upstream: string, timeoutMs: number): Promise<Buffer> {
  const [host, port] = splitHostPort(upstream);
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    const t = setTimeout(() => (s.close(), reject(new Error('timeout'))), timeoutMs);
    s.on('error', (e) => (clearTimeout(t), s.close(), reject(e)));
    s.on('message', (r, rinfo) => {
      if (rinfo.address !== host || rinfo.port !== port) return;
      clearTimeout(t);
      s.close();
      resolve(r);
    });
    s.send(msg, port, host);
  });
}

function forwardTcp(msg: Buffer, upstream: string, timeoutMs: number): Promise<Buffer> {
  const [host, port] = splitHostPort(upstream);
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    const t = setTimeout(() => (s.destroy(), reject(new Error('timeout'))), timeoutMs);
    let buf = Buffer.alloc(0);
    s.on('error', (e) => (clearTimeout(t), reject(e)));
    s.on('connect', () => s.write(Buffer.concat([u16(msg.length), msg])));
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length > 65537) return void (clearTimeout(t), s.destroy(), reject(new Error('reply too large')));
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        clearTimeout(t);
        s.destroy();
        resolve(buf.subarray(2, 2 + buf.readUInt16BE(0)));
      }
    });
    s.on('close', () => (clearTimeout(t), reject(new Error('closed'))));
  });
}
