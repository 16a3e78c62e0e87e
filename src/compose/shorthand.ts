/**
 * The short forms of compose service keys, expanded to their long forms:
 * ports ("127.0.0.1:8080-8081:80-81/udp"), volumes ("./src:/app:ro,z"),
 * and shell-word splitting of string commands.
 */
import { EngineError } from '../common/errors.ts';
import type { PortConfig, VolumeMount } from './types.ts';

/** Splits a command line into words as a POSIX shell would (quotes and backslashes; no expansion). */
export function shellSplit(s: string, where: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === "'") {
      const end = s.indexOf("'", i + 1);
      if (end < 0) throw new EngineError('INVALID_ARGUMENT', `${where}: unterminated single quote in "${s}"`);
      cur += s.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < s.length && s[j] !== '"'; j++) {
        if (s[j] === '\\' && j + 1 < s.length && '"\\$`\n'.includes(s[j + 1]!)) j++;
        cur += s[j];
      }
      if (j >= s.length) throw new EngineError('INVALID_ARGUMENT', `${where}: unterminated double quote in "${s}"`);
      i = j;
      inWord = true;
    } else if (c === '\\' && i + 1 < s.length) {
      cur += s[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) out.push(cur);
  return out;
}

function range(s: string, where: string): [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(s);
  if (!m) throw new EngineError('INVALID_ARGUMENT', `${where}: invalid port "${s}"`);
  const a = Number(m[1]);
  const b = m[2] ? Number(m[2]) : a;
  if (a > 65535 || b > 65535 || b < a) throw new EngineError('INVALID_ARGUMENT', `${where}: invalid port range "${s}"`);
  return [a, b];
}

/** One `ports:` entry (short string, number, or long mapping) as port configs, ranges expanded. */
export function parsePort(v: unknown, where: string): PortConfig[] {
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const p: PortConfig = { target: Number(o.target), protocol: String(o.protocol ?? 'tcp'), mode: String(o.mode ?? 'ingress') };
    if (o.published !== undefined && o.published !== null && o.published !== '') p.published = String(o.published);
    if (o.host_ip) p.host_ip = String(o.host_ip);
    if (o.name) p.name = String(o.name);
    if (o.app_protocol) p.app_protocol = String(o.app_protocol);
    if (!Number.isInteger(p.target) || p.target < 1 || p.target > 65535)
      throw new EngineError('INVALID_ARGUMENT', `${where}: invalid target port "${o.target}"`);
    return [p];
  }
  let s = String(v);
  let protocol = 'tcp';
  const slash = s.lastIndexOf('/');
  if (slash >= 0) {
    protocol = s.slice(slash + 1);
    s = s.slice(0, slash);
  }
  let hostIp: string | undefined;
  const v6 = /^\[([0-9a-fA-F:.]+)\]:(.*)$/.exec(s);
  if (v6) {
    hostIp = v6[1];
    s = v6[2]!;
  }
  const parts = s.split(':');
  if (!v6 && parts.length === 3) hostIp = parts.shift();
  else if (parts.length > 2) throw new EngineError('INVALID_ARGUMENT', `${where}: invalid port "${v}"`);
  const [hostPart, containerPart] = parts.length === 2 ? [parts[0]!, parts[1]!] : [undefined, parts[0]!];
  const [c0, c1] = range(containerPart, where);
  const base = (target: number, published?: string): PortConfig => ({
    target,
    ...(published ? { published } : {}),
    ...(hostIp ? { host_ip: hostIp } : {}),
    protocol,
    mode: 'ingress',
  });
  if (!hostPart) return byPortKey(Array.from({ length: c1 - c0 + 1 }, (_, i) => base(c0 + i)));
  const [h0, h1] = range(hostPart, where);
  if (c0 === c1) return [base(c0, h0 === h1 ? String(h0) : `${h0}-${h1}`)];
  if (h1 - h0 !== c1 - c0) throw new EngineError('INVALID_ARGUMENT', `${where}: port ranges don't match in length: "${v}"`);
  return byPortKey(Array.from({ length: c1 - c0 + 1 }, (_, i) => base(c0 + i, String(h0 + i))));
}

/** A range's ports in compose-go's order (ParsePortConfig sorts the "port/proto" keys as strings: 10, 8, 9), which the config hash sees. */
function byPortKey(l: PortConfig[]): PortConfig[] {
  const key = (p: PortConfig) => `${p.target}/${p.protocol}`;
  return l.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

const PROPAGATION = ['shared', 'rshared', 'slave', 'rslave', 'private', 'rprivate'];

/** One `volumes:` entry of a service. Bind sources are already absolute (load.ts). */
export function parseVolume(v: unknown, where: string): VolumeMount {
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const m: VolumeMount = { type: (o.type as VolumeMount['type']) ?? 'volume', target: String(o.target ?? '') };
    if (o.source !== undefined && o.source !== '') m.source = String(o.source);
    if (o.read_only) m.read_only = true;
    if (o.consistency) m.consistency = String(o.consistency);
    // create_host_path defaults to true inside a given `bind:` (compose-go's defaults); without one, convert.ts creates the path too
    if (o.bind) m.bind = { create_host_path: true, ...(o.bind as VolumeMount['bind']) };
    if (o.volume) m.volume = o.volume as VolumeMount['volume'];
    if (o.tmpfs) m.tmpfs = o.tmpfs as VolumeMount['tmpfs'];
    if (!m.target) throw new EngineError('INVALID_ARGUMENT', `${where}: a volume needs a target`);
    return m;
  }
  const s = String(v);
  const parts = s.split(':');
  // a short-form volume carries an empty `volume:` as in compose-go (docker compose config prints it; the config hash includes it)
  if (parts.length === 1) return { type: 'volume', target: s, volume: {} };
  if (parts.length > 3) throw new EngineError('INVALID_ARGUMENT', `${where}: invalid volume specification "${s}"`);
  const [source, target, mode] = parts as [string, string, string | undefined];
  if (!target) throw new EngineError('INVALID_ARGUMENT', `${where}: invalid volume specification "${s}"`);
  const bind = source.startsWith('/');
  const m: VolumeMount = { type: bind ? 'bind' : 'volume', source, target };
  if (bind) m.bind = { create_host_path: true };
  else m.volume = {};
  for (const opt of (mode ?? '').split(',').filter(Boolean)) {
    if (opt === 'ro') m.read_only = true;
    else if (opt === 'rw') m.read_only = undefined;
    else if (opt === 'nocopy') m.volume = { ...m.volume, nocopy: true };
    else if (opt === 'z' || opt === 'Z') m.bind = { ...m.bind, selinux: opt };
    else if (PROPAGATION.includes(opt)) m.bind = { ...m.bind, propagation: opt };
    else if (['cached', 'delegated', 'consistent'].includes(opt)) m.consistency = opt;
    else throw new EngineError('INVALID_ARGUMENT', `${where}: invalid volume mode "${opt}" in "${s}"`);
  }
  if (m.read_only === undefined) delete m.read_only;
  return m;
}
