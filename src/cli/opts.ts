/**
 * Flag value parsers for the container commands, matching the docker CLI's
 * (cli/opts, go-units, go-connections/nat): memory sizes, CPUs, ports,
 * volumes, --mount, ulimits, env files, durations, devices, restart
 * policies. Each throws a FlagError naming what was wrong so the command can
 * print docker's `invalid argument "x" for "-m, --memory" flag: …`.
 */
import fs from 'node:fs';
import { parseGoDuration } from '../common/units.ts';
import { errnoText } from '../common/errors.ts';

export class FlagError extends Error {}

/** go-units RAMInBytes: binary units, optional "b"/"ib" suffix. */
export function parseMemory(s: string): number {
  const m = /^(\d+(?:\.\d+)?) ?([kmgtp])?(i?b)?$/i.exec(s.trim());
  if (!m) throw new FlagError(`invalid size: '${s}'`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 }[(m[2] ?? '').toLowerCase()]!;
  return Math.floor(Number(m[1]) * mult);
}

/** --memory-swap also takes -1 (unlimited). */
export function parseMemorySwap(s: string): number {
  return s.trim() === '-1' ? -1 : parseMemory(s);
}

/** --cpus 1.5 → NanoCpus. */
export function parseCpus(s: string): number {
  if (!/^\d*\.?\d+$/.test(s.trim())) throw new FlagError(`failed to parse ${s} as a rational number`);
  return Math.round(Number(s) * 1e9);
}

export function parseInteger(s: string): number {
  if (!/^-?\d+$/.test(s.trim())) throw new FlagError(`strconv.ParseInt: parsing "${s}": invalid syntax`);
  return Number(s);
}

/** Go's time.ParseDuration → nanoseconds, its errors as FlagErrors. */
export function parseDuration(s: string): number {
  try {
    return parseGoDuration(s);
  } catch (e) {
    throw new FlagError((e as Error).message);
  }
}

export interface PortBinding {
  HostIp: string;
  HostPort: string;
}

function portRange(s: string, what: string, spec: string): [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(s);
  if (!m) throw new FlagError(`invalid ${what}: ${s}`);
  const a = Number(m[1]);
  const b = m[2] ? Number(m[2]) : a;
  if (a > 65535 || b > 65535 || b < a) throw new FlagError(`invalid port range: ${spec}`);
  return [a, b];
}

/**
 * `-p [ip:][hostPort[-end]:]containerPort[-end][/proto]`, IPv6 hosts in
 * brackets. Returns the ExposedPorts and PortBindings docker would send.
 */
export function parsePublish(specs: string[], expose: string[] = []): { exposed: Record<string, object>; bindings: Record<string, PortBinding[]> } {
  const exposed: Record<string, object> = {};
  const bindings: Record<string, PortBinding[]> = {};
  for (const e of expose) {
    const [p, proto = 'tcp'] = e.split('/');
    const [a, b] = portRange(p!, 'range format for --expose', e);
    for (let i = a; i <= b; i++) exposed[`${i}/${proto}`] = {};
  }
  for (const spec of specs) {
    let rest = spec;
    let proto = 'tcp';
    const slash = rest.lastIndexOf('/');
    if (slash >= 0) [rest, proto] = [rest.slice(0, slash), rest.slice(slash + 1).toLowerCase()];
    if (!['tcp', 'udp', 'sctp'].includes(proto)) throw new FlagError(`invalid proto: ${proto}`);
    let ip = '';
    if (rest.startsWith('[')) {
      const end = rest.indexOf(']');
      if (end < 0) throw new FlagError(`invalid IP address: ${spec}`);
      ip = rest.slice(1, end);
      rest = rest.slice(end + 2);
    }
    const parts = rest.split(':');
    if (parts.length > 3) throw new FlagError(`invalid port format for --publish: ${spec}`);
    const container = parts.pop()!;
    const host = parts.pop() ?? '';
    if (parts.length) ip = parts.pop()!;
    if (!container) throw new FlagError(`no port specified: ${spec}<empty>`);
    if (ip && !/^[\d.]+$|:/.test(ip)) throw new FlagError(`invalid IP address: ${ip}`);
    const [ca, cb] = portRange(container, 'containerPort', spec);
    const hr = host ? portRange(host, 'hostPort', spec) : undefined;
    if (hr && hr[1] - hr[0] !== cb - ca && cb !== ca) throw new FlagError(`invalid ranges specified for container and host Ports: ${container} and ${host}`);
    for (let p = ca; p <= cb; p++) {
      const key = `${p}/${proto}`;
      exposed[key] = {};
      let hostPort = '';
      if (hr) hostPort = cb === ca && hr[1] !== hr[0] ? `${hr[0]}-${hr[1]}` : String(hr[0] + (p - ca));
      (bindings[key] ??= []).push({ HostIp: ip, HostPort: hostPort });
    }
  }
  return { exposed, bindings };
}

/**
 * `-v`: `/path` alone is an anonymous volume (Config.Volumes); anything
 * with a source goes to HostConfig.Binds as written.
 */
export function parseVolumes(specs: string[]): { volumes: Record<string, object>; binds: string[] } {
  const volumes: Record<string, object> = {};
  const binds: string[] = [];
  for (const spec of specs) {
    const parts = spec.split(':');
    if (!spec || parts.length > 3) throw new FlagError(`invalid spec: ${spec}: too many colons`);
    if (parts.length === 1) {
      if (!spec.startsWith('/'))
        throw new FlagError(
          `invalid volume specification: '${spec}': invalid mount config for type "volume": invalid mount path: '${spec}' mount path must be absolute`,
        );
      volumes[spec] = {};
      continue;
    }
    const target = parts[1]!;
    if (!target.startsWith('/'))
      throw new FlagError(`invalid volume specification: '${spec}': invalid mount config: invalid mount path: '${target}' mount path must be absolute`);
    binds.push(spec);
  }
  return { volumes, binds };
}

export interface MountSpec {
  Type: string;
  Source?: string;
  Target: string;
  ReadOnly?: boolean;
  Consistency?: string;
  BindOptions?: { Propagation?: string; NonRecursive?: boolean };
  VolumeOptions?: { NoCopy?: boolean; Labels?: Record<string, string>; DriverConfig?: { Name: string; Options?: Record<string, string> }; Subpath?: string };
  TmpfsOptions?: { SizeBytes?: number; Mode?: number };
}

const truthy = (v: string | undefined) => v === undefined || ['1', 'true', 'yes'].includes(v.toLowerCase());

/** `--mount type=bind,source=/a,target=/b,readonly` (docker's CSV form). */
export function parseMount(spec: string): MountSpec {
  const m: MountSpec = { Type: 'volume', Target: '' };
  for (const field of spec.split(',')) {
    if (!field) continue;
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    const val = eq < 0 ? undefined : field.slice(eq + 1);
    const need = () => {
      if (val === undefined) throw new FlagError(`invalid field '${field}' must be a key=value pair`);
      return val;
    };
    switch (key) {
      case 'type':
        m.Type = need();
        break;
      case 'source':
      case 'src':
        m.Source = need();
        break;
      case 'target':
      case 'destination':
      case 'dst':
        m.Target = need();
        break;
      case 'readonly':
      case 'ro':
        m.ReadOnly = truthy(val);
        break;
      case 'consistency':
        m.Consistency = need();
        break;
      case 'bind-propagation':
        (m.BindOptions ??= {}).Propagation = need();
        break;
      case 'bind-nonrecursive':
        (m.BindOptions ??= {}).NonRecursive = truthy(val);
        break;
      case 'volume-nocopy':
        (m.VolumeOptions ??= {}).NoCopy = truthy(val);
        break;
      case 'volume-subpath':
        (m.VolumeOptions ??= {}).Subpath = need();
        break;
      case 'volume-driver':
        (m.VolumeOptions ??= {}).DriverConfig = { Name: need() };
        break;
      case 'volume-label': {
        const [k, ...v] = need().split('=');
        ((m.VolumeOptions ??= {}).Labels ??= {})[k!] = v.join('=');
        break;
      }
      case 'volume-opt': {
        const [k, ...v] = need().split('=');
        const dc = ((m.VolumeOptions ??= {}).DriverConfig ??= { Name: '' });
        (dc.Options ??= {})[k!] = v.join('=');
        break;
      }
      case 'tmpfs-size':
        (m.TmpfsOptions ??= {}).SizeBytes = parseMemory(need());
        break;
      case 'tmpfs-mode':
        (m.TmpfsOptions ??= {}).Mode = parseInt(need(), 8);
        break;
      default:
        throw new FlagError(`unexpected key '${key}' in '${field}'`);
    }
  }
  if (!['bind', 'volume', 'tmpfs', 'npipe'].includes(m.Type)) throw new FlagError(`invalid mount type '${m.Type}': use bind, volume or tmpfs`);
  if (!m.Target) throw new FlagError('target is required');
  if (m.Type === 'bind' && !m.Source) throw new FlagError('source is required when specifying bind mounts');
  return m;
}

/** `--ulimit nofile=1024[:2048]`. */
export function parseUlimit(s: string): { Name: string; Soft: number; Hard: number } {
  const m = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(s);
  if (!m) throw new FlagError(`invalid ulimit argument: ${s}`);
  const soft = Number(m[2]);
  const hard = m[3] !== undefined ? Number(m[3]) : soft;
  if (soft > hard && hard !== -1) throw new FlagError(`ulimit soft limit must be less than or equal to hard limit: ${soft} > ${hard}`);
  return { Name: m[1]!, Soft: soft, Hard: hard };
}

/** `-e K=V`; `-e K` takes K from `env` (ours by default) when set there (docker's ValidateEnv). */
export function envValue(s: string, env: Record<string, string | undefined> = process.env): string {
  if (s.startsWith('=')) throw new FlagError(`invalid environment variable: ${s}`);
  if (s.includes('=')) return s;
  const v = Object.hasOwn(env, s) ? env[s] : undefined;
  return v === undefined ? s : `${s}=${v}`;
}

/** Reads a docker env/label file: KEY=VALUE lines, # comments, bare KEY from our environment. */
export function readEnvFile(file: string, bareFromEnv = true): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new FlagError(`open ${file}: ${errnoText(e)}`);
  }
  const out: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/^\s+/, '');
    if (!line || line.startsWith('#')) continue;
    if (/\s/.test(line.split('=')[0]!)) throw new FlagError(`variable '${line.split('=')[0]}' contains whitespaces`);
    out.push(bareFromEnv ? envValue(line) : line);
  }
  return out;
}

/** `k=v` list → map; `k` alone maps to "". */
export function keyValues(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of list) {
    const i = s.indexOf('=');
    if (i === 0) throw new FlagError(`invalid label '${s}': empty name`);
    if (i < 0) out[s] = '';
    else out[s.slice(0, i)] = s.slice(i + 1);
  }
  return out;
}

/** `--restart no|always|unless-stopped|on-failure[:N]`. */
export function parseRestart(s: string): { Name: string; MaximumRetryCount: number } {
  const [name, count, ...extra] = s.split(':');
  if (extra.length) throw new FlagError(`invalid restart policy format: ${s}`);
  if (!['no', 'always', 'unless-stopped', 'on-failure', ''].includes(name!)) throw new FlagError(`invalid restart policy format: ${s}`);
  if (count !== undefined && name !== 'on-failure')
    throw new FlagError(`invalid restart policy format: maximum retry count can only be used with 'on-failure'`);
  if (count !== undefined && !/^\d+$/.test(count)) throw new FlagError(`invalid restart policy format: maximum retry count must be an integer`);
  return { Name: name || 'no', MaximumRetryCount: count ? Number(count) : 0 };
}

/** `--device /dev/x[:/dev/y][:rwm]`. */
export function parseDevice(s: string): { PathOnHost: string; PathInContainer: string; CgroupPermissions: string } {
  const parts = s.split(':');
  const host = parts[0]!;
  let inContainer = host;
  let perms = 'rwm';
  if (parts.length === 2) {
    if (/^[rwm]+$/.test(parts[1]!)) perms = parts[1]!;
    else inContainer = parts[1]!;
  } else if (parts.length === 3) [inContainer, perms] = [parts[1]!, parts[2]!];
  else if (parts.length > 3) throw new FlagError(`invalid device specification: ${s}`);
  if (!/^[rwm]+$/.test(perms) || !inContainer.startsWith('/')) throw new FlagError(`invalid device specification: ${s}`);
  return { PathOnHost: host, PathInContainer: inContainer, CgroupPermissions: perms };
}

/** `--add-host name:ip` (or name=ip) → "name:ip" as the API takes it. */
export function parseAddHost(s: string): string {
  const i = s.includes('=') ? s.indexOf('=') : s.indexOf(':');
  if (i <= 0) throw new FlagError(`bad format for add-host: "${s}"`);
  const ip = s.slice(i + 1).replace(/^\[(.*)\]$/, '$1');
  if (!ip) throw new FlagError(`invalid IP address in add-host: "${ip}"`);
  return `${s.slice(0, i)}:${ip}`;
}

/** `--tmpfs /run[:opts]` entries → HostConfig.Tmpfs. */
export function parseTmpfs(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of list) {
    const i = s.indexOf(':');
    const dst = i < 0 ? s : s.slice(0, i);
    if (!dst.startsWith('/')) throw new FlagError(`invalid mount path: '${dst}' mount path must be absolute`);
    out[dst] = i < 0 ? '' : s.slice(i + 1);
  }
  return out;
}

/** Detach keys ("ctrl-p,ctrl-q") → bytes, as docker's term.ToBytes. */
export function parseDetachKeys(s: string): Buffer {
  const out: number[] = [];
  for (const key of s.split(',')) {
    const k = key.trim();
    if (k.length > 1 && k.startsWith('ctrl-')) {
      const c = k.slice(5);
      if (c.length !== 1) throw new FlagError(`Unknown character: '${k}'`);
      const code = c.toLowerCase().charCodeAt(0);
      if (code >= 97 && code <= 122) out.push(code - 96);
      else if ('@[\\]^_'.includes(c)) out.push([0, 27, 28, 29, 30, 31]['@[\\]^_'.indexOf(c)]!);
      else throw new FlagError(`Unknown character: '${k}'`);
    } else if (k.length === 1) out.push(k.charCodeAt(0));
    else throw new FlagError(`Unknown character: '${k}'`);
  }
  return Buffer.from(out);
}

/** `--security-opt seccomp=FILE` carries the profile's JSON, as the docker CLI sends it. */
export function parseSecurityOpts(list: string[]): string[] {
  return list.map((s) => {
    const [k, ...v] = s.split(/[=:]/);
    const val = v.join('=');
    if (k === 'seccomp' && val && val !== 'unconfined' && val !== 'builtin') {
      try {
        return `seccomp=${JSON.stringify(JSON.parse(fs.readFileSync(val, 'utf8')))}`;
      } catch (e) {
        throw new FlagError(`opening seccomp profile (${val}) failed: ${(e as Error).message}`);
      }
    }
    return s;
  });
}
