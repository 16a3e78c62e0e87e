import { invalid } from '../common/errors.ts';

/**
 * IPv4 address arithmetic on plain numbers (0 .. 2^32-1). keel's networks are
 * IPv4 only; IPv6 arguments get a clear error instead of a half-working setup.
 */
export interface Cidr {
  /** Network address (host bits cleared). */
  base: number;
  prefix: number;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

export function parseIp(s: string): number {
  const m = IPV4.exec(s.trim());
  if (!m) {
    if (s.includes(':')) throw invalid(`IPv6 address ${s} is not supported: keel networks are IPv4 only`);
    throw invalid(`invalid IP address: ${s}`);
  }
  let n = 0;
  for (let i = 1; i <= 4; i++) {
    const o = Number(m[i]);
    if (o > 255 || (m[i]!.length > 1 && m[i]!.startsWith('0'))) throw invalid(`invalid IP address: ${s}`);
    n = n * 256 + o;
  }
  return n;
}

export function isIp(s: string): boolean {
  try {
    parseIp(s);
    return true;
  } catch {
    return false;
  }
}

export function formatIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Parses "a.b.c.d/n". Docker rejects host bits set in --subnet; so do we. */
export function parseCidr(s: string, what = 'CIDR address', strict = true): Cidr {
  const [ip, len, extra] = s.trim().split('/');
  if (ip === undefined || len === undefined || extra !== undefined || !/^\d{1,2}$/.test(len)) {
    throw invalid(`invalid ${what}: ${s}`);
  }
  const prefix = Number(len);
  if (prefix > 32) throw invalid(`invalid ${what}: ${s}`);
  let addr: number;
  try {
    addr = parseIp(ip);
  } catch (e) {
    // dockerd names the whole argument ("invalid CIDR address: 10.1.2.300/24"), not just the address part.
    if (ip.includes(':')) throw e;
    throw invalid(`invalid ${what}: ${s}`);
  }
  const base = (addr & maskOf(prefix)) >>> 0;
  if (strict && base !== addr) {
    throw invalid(`invalid ${what}: ${s}: host bits are set; did you mean ${formatIp(base)}/${prefix}?`);
  }
  return { base, prefix };
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.base)}/${c.prefix}`;
}

export function size(c: Cidr): number {
  return 2 ** (32 - c.prefix);
}

export function lastAddr(c: Cidr): number {
  return c.base + size(c) - 1;
}

export function contains(c: Cidr, ip: number): boolean {
  return (ip & maskOf(c.prefix)) >>> 0 === c.base;
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.base <= lastAddr(b) && b.base <= lastAddr(a);
}

/** Docker-style MAC for an IP: 02:42 followed by the four address bytes. */
export function macForIp(ip: number): string {
  const b = [0x02, 0x42, ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

export function parseMac(s: string): string {
  const m = s.trim().toLowerCase();
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(m)) throw invalid(`invalid MAC address: ${s}`);
  if (parseInt(m.slice(0, 2), 16) & 1) throw invalid(`invalid MAC address: ${s}: it is a multicast address`);
  return m;
}
