import fs from 'node:fs';
import { EngineError, errnoCode } from '../common/errors.ts';
import type { EngineOptions } from '../engine/engine.ts';
import { normalizeRlimit } from '../runtime/defaults.ts';
import { parseMemory, parseUlimit } from './opts.ts';

/**
 * The daemon's settings, from its flags and its config file
 * (/etc/keel/daemon.json, or --config-file), as dockerd takes them: the file
 * uses dockerd's key names where keel has the same setting, a key keel does
 * not know is an error, and a setting given both as a flag and in the file is
 * an error (dockerd refuses it rather than pick one). Values are checked
 * before anything starts, and the error names the key.
 */
export const DEFAULT_CONFIG_FILE = '/etc/keel/daemon.json';
const MAX_CONFIG_BYTES = 1 << 20;

/** The daemon command's options after parsing, in commander's camelCase. */
export interface DaemonFlags {
  configFile: string;
  dataRoot: string;
  execRoot: string;
  host?: string;
  pidfile?: string;
  logLevel: string;
  cgroupParent: string;
  bridge: string;
  bip?: string;
  defaultAddressPool?: string;
  networkPrefix?: string;
  logDriver?: string;
  logOpt: string[];
  registryMirror: string[];
  insecureRegistry: string[];
  defaultUlimit: string[];
  defaultPidsLimit?: string;
  maxLayerSize?: string;
  maxImageSize?: string;
}

type FlagKey = Exclude<keyof DaemonFlags, 'configFile'>;

const fail = (file: string, key: string, why: string) => new EngineError('INVALID_ARGUMENT', `invalid value for "${key}" in ${file}: ${why}`);

function str(file: string, key: string, v: unknown): string {
  if (typeof v !== 'string' || !v) throw fail(file, key, 'expected a non-empty string');
  return v;
}

function strList(file: string, key: string, v: unknown): string[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || !x)) throw fail(file, key, 'expected a list of non-empty strings');
  return v as string[];
}

/** Each file key: the flag (option) it stands for, and how its JSON value becomes that flag's value. */
const KEYS: Record<string, { option: FlagKey; parse: (file: string, key: string, v: unknown) => unknown }> = {
  'data-root': { option: 'dataRoot', parse: str },
  'exec-root': { option: 'execRoot', parse: str },
  hosts: {
    option: 'host',
    parse: (file, key, v) => {
      const l = strList(file, key, v);
      if (l.length !== 1) throw fail(file, key, 'keel listens on exactly one unix socket: give one unix:///path entry');
      return l[0];
    },
  },
  pidfile: { option: 'pidfile', parse: str },
  'log-level': { option: 'logLevel', parse: str },
  'cgroup-parent': { option: 'cgroupParent', parse: str },
  bridge: { option: 'bridge', parse: str },
  bip: { option: 'bip', parse: str },
  'default-address-pools': {
    option: 'defaultAddressPool',
    parse: (file, key, v) => {
      if (!Array.isArray(v) || v.length !== 1) throw fail(file, key, 'keel takes exactly one pool: [{"base": "10.81.0.0/16", "size": 24}]');
      const p = v[0] as { base?: unknown; size?: unknown };
      if (typeof p !== 'object' || p === null || typeof p.base !== 'string' || !Number.isInteger(p.size))
        throw fail(file, key, 'expected [{"base": "CIDR", "size": N}]');
      return `base=${p.base},size=${p.size}`;
    },
  },
  'network-prefix': { option: 'networkPrefix', parse: str },
  'log-driver': { option: 'logDriver', parse: str },
  'log-opts': {
    option: 'logOpt',
    parse: (file, key, v) => {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw fail(file, key, 'expected an object of string values');
      return Object.entries(v).map(([k, x]) => {
        if (typeof x !== 'string') throw fail(file, key, `the value of "${k}" must be a string (as in dockerd: "max-size": "10m")`);
        return `${k}=${x}`;
      });
    },
  },
  'registry-mirrors': { option: 'registryMirror', parse: strList },
  'insecure-registries': { option: 'insecureRegistry', parse: strList },
  'default-ulimits': {
    option: 'defaultUlimit',
    parse: (file, key, v) => {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw fail(file, key, 'expected {"nofile": {"Name": "nofile", "Soft": 1024, "Hard": 2048}}');
      return Object.entries(v).map(([name, u]) => {
        const o = u as { Name?: unknown; Soft?: unknown; Hard?: unknown };
        if (typeof o !== 'object' || o === null || !Number.isInteger(o.Soft) || !Number.isInteger(o.Hard))
          throw fail(file, key, `"${name}" needs integer "Soft" and "Hard"`);
        if (o.Name !== undefined && o.Name !== name) throw fail(file, key, `"${name}" has "Name": ${JSON.stringify(o.Name)}`);
        return `${name}=${o.Soft}:${o.Hard}`;
      });
    },
  },
  'default-pids-limit': {
    option: 'defaultPidsLimit',
    parse: (file, key, v) => {
      if (!Number.isInteger(v)) throw fail(file, key, 'expected an integer');
      return String(v);
    },
  },
  'max-layer-size': { option: 'maxLayerSize', parse: (file, key, v) => (typeof v === 'number' ? String(v) : str(file, key, v)) },
  'max-image-size': { option: 'maxImageSize', parse: (file, key, v) => (typeof v === 'number' ? String(v) : str(file, key, v)) },
};

/** The flag spelling of an option, for dockerd's "specified both as a flag and in the configuration file" error. */
const FLAG_NAMES: Partial<Record<FlagKey, string>> = {
  host: 'host',
  defaultAddressPool: 'default-address-pool',
  logOpt: 'log-opt',
  registryMirror: 'registry-mirror',
  insecureRegistry: 'insecure-registry',
  defaultUlimit: 'default-ulimit',
};

/**
 * Reads the config file into flag values. A missing file is fine when it is
 * the default one and an error when --config-file named it (as in dockerd).
 */
export function readConfigFile(file: string, explicit: boolean): Partial<Record<FlagKey, unknown>> {
  let text: string;
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) throw new EngineError('INVALID_ARGUMENT', `config file ${file} is not a regular file`);
    if (st.size > MAX_CONFIG_BYTES) throw new EngineError('INVALID_ARGUMENT', `config file ${file} is larger than ${MAX_CONFIG_BYTES} bytes`);
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT' && !explicit) return {};
    if (errnoCode(e) === 'ENOENT') throw new EngineError('INVALID_ARGUMENT', `config file ${file} does not exist`);
    throw e;
  }
  if (!text.trim()) return {};
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch (e) {
    throw new EngineError('INVALID_ARGUMENT', `config file ${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new EngineError('INVALID_ARGUMENT', `config file ${file} must hold a JSON object`);
  const unknown = Object.keys(o).filter((k) => !(k in KEYS));
  if (unknown.length)
    throw new EngineError('INVALID_ARGUMENT', `the following directives in ${file} don't match any configuration option: ${unknown.join(', ')}`);
  const out: Partial<Record<FlagKey, unknown>> = {};
  for (const [k, v] of Object.entries(o)) out[KEYS[k]!.option] = KEYS[k]!.parse(file, k, v);
  return out;
}

/**
 * Flags and file together. `fromCli` says which options were given on the
 * command line; one also set in the file is refused, naming both values.
 */
export function mergeConfig(flags: DaemonFlags, file: Partial<Record<FlagKey, unknown>>, fromCli: (k: FlagKey) => boolean): DaemonFlags {
  const both = (Object.keys(file) as FlagKey[]).filter(fromCli);
  if (both.length) {
    const keyOf = (k: FlagKey) => Object.keys(KEYS).find((n) => KEYS[n]!.option === k)!;
    const parts = both.map((k) => `${FLAG_NAMES[k] ?? keyOf(k)}: (from flag: ${JSON.stringify(flags[k])}, from file: ${JSON.stringify(file[k])})`);
    throw new EngineError(
      'INVALID_ARGUMENT',
      `unable to configure the keel daemon with file ${flags.configFile}: the following directives are specified both as a flag and in the configuration file: ${parts.join(', ')}`,
    );
  }
  return { ...flags, ...(file as Partial<DaemonFlags>) };
}

const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'fatal'];

/** Checks every setting and maps them to the engine's options. */
export function engineOptions(o: DaemonFlags): EngineOptions {
  /** Names the setting both ways: it may have come from the file or a flag. */
  const bad = (k: FlagKey, value: unknown, why: string) => {
    const key = Object.keys(KEYS).find((n) => KEYS[n]!.option === k)!;
    return new EngineError('INVALID_ARGUMENT', `invalid "${key}" (--${FLAG_NAMES[k] ?? key}) ${JSON.stringify(value)}: ${why}`);
  };
  if (!LOG_LEVELS.includes(o.logLevel)) throw bad('logLevel', o.logLevel, `use one of ${LOG_LEVELS.join(', ')}`);
  if (!/^\/[a-zA-Z0-9_./-]+$/.test(o.cgroupParent) || o.cgroupParent.includes('..'))
    throw bad('cgroupParent', o.cgroupParent, 'expected an absolute cgroupfs path such as /keel');
  if (!/^[a-zA-Z0-9_.-]{1,15}$/.test(o.bridge)) throw bad('bridge', o.bridge, 'expected a Linux interface name (up to 15 letters, digits, _ . -)');
  if (o.host && !o.host.startsWith('unix://') && !o.host.startsWith('/')) throw bad('host', o.host, 'keel listens on a unix socket: use unix:///path/to.sock');
  const opts: EngineOptions = { dataRoot: o.dataRoot, execRoot: o.execRoot, network: networkOptions(o, bad), cgroupParent: o.cgroupParent };
  if (o.logDriver !== undefined || o.logOpt.length) {
    const config: Record<string, string> = {};
    for (const kv of o.logOpt) {
      const i = kv.indexOf('=');
      if (i <= 0) throw bad('logOpt', kv, 'expected key=value');
      config[kv.slice(0, i)] = kv.slice(i + 1);
    }
    if (o.logDriver !== undefined && !/^[a-z0-9][a-z0-9_.-]*$/.test(o.logDriver)) throw bad('logDriver', o.logDriver, 'not a log driver name');
    opts.defaultLogConfig = { Type: o.logDriver ?? 'json-file', Config: config };
  }
  const mirrors = o.registryMirror.map((m) => {
    let u: URL;
    try {
      u = new URL(m);
    } catch {
      throw bad('registryMirror', m, 'expected an http(s) URL such as https://mirror.example.com');
    }
    if ((u.protocol !== 'http:' && u.protocol !== 'https:') || (u.pathname !== '/' && u.pathname !== '') || u.search)
      throw bad('registryMirror', m, 'expected an http(s) URL with no path');
    return u.origin;
  });
  for (const h of o.insecureRegistry) {
    if (h.includes('/')) throw bad('insecureRegistry', h, 'keel takes host[:port] entries, not URLs or CIDR ranges');
    if (!/^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9a-fA-F:]+\](:\d{1,5})?$/.test(h)) throw bad('insecureRegistry', h, 'expected host[:port]');
  }
  if (mirrors.length || o.insecureRegistry.length) {
    opts.registries = {
      ...(mirrors.length ? { mirrors: { 'docker.io': mirrors } } : {}),
      ...(o.insecureRegistry.length ? { insecure: [...o.insecureRegistry] } : {}),
    };
  }
  const ulimits = o.defaultUlimit.map((u) => {
    try {
      const l = parseUlimit(u);
      normalizeRlimit(l.Name);
      return l;
    } catch (e) {
      throw bad('defaultUlimit', u, (e as Error).message);
    }
  });
  if (new Set(ulimits.map((u) => u.Name)).size !== ulimits.length) throw bad('defaultUlimit', o.defaultUlimit, 'a limit is given twice');
  let pidsLimit: number | undefined;
  if (o.defaultPidsLimit !== undefined) {
    pidsLimit = Number(o.defaultPidsLimit);
    if (!/^-?\d+$/.test(o.defaultPidsLimit) || !Number.isSafeInteger(pidsLimit))
      throw bad('defaultPidsLimit', o.defaultPidsLimit, 'expected an integer (0 or -1: unlimited)');
  }
  if (ulimits.length || (pidsLimit !== undefined && pidsLimit > 0))
    opts.containerDefaults = { ulimits, ...(pidsLimit !== undefined && pidsLimit > 0 ? { pidsLimit } : {}) };
  const size = (k: FlagKey, v: string | undefined) => {
    if (v === undefined) return undefined;
    try {
      const n = parseMemory(v);
      if (!(n > 0)) throw new Error('must be above zero');
      return n;
    } catch (e) {
      throw bad(k, v, `${(e as Error).message} (expected a size such as 512m or 2g)`);
    }
  };
  const maxLayer = size('maxLayerSize', o.maxLayerSize);
  const maxImage = size('maxImageSize', o.maxImageSize);
  if (maxLayer !== undefined || maxImage !== undefined) opts.imageLimits = { maxLayerBytes: maxLayer, maxImageBytes: maxImage };
  return opts;
}

/** dockerd's --bip/--default-address-pool forms, mapped to the network layer's options. */
function networkOptions(o: DaemonFlags, bad: (k: FlagKey, v: unknown, why: string) => Error): NonNullable<EngineOptions['network']> {
  const out: NonNullable<EngineOptions['network']> = { defaultBridge: { bridgeName: o.bridge } };
  if (o.bip) {
    const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(o.bip);
    if (!m || Number(m[5]) > 30 || m.slice(1, 5).some((x) => Number(x) > 255))
      throw bad('bip', o.bip, 'expected the gateway address and prefix, e.g. 10.80.0.1/16');
    const ip = m.slice(1, 5).reduce((a, x) => a * 256 + Number(x), 0);
    const mask = Number(m[5]) === 0 ? 0 : (0xffffffff << (32 - Number(m[5]))) >>> 0;
    const base = (ip & mask) >>> 0;
    out.defaultBridge!.subnet = `${[24, 16, 8, 0].map((s) => (base >>> s) & 255).join('.')}/${m[5]}`;
    out.defaultBridge!.gateway = m.slice(1, 5).join('.');
  }
  if (o.defaultAddressPool) {
    const kv = Object.fromEntries(o.defaultAddressPool.split(',').map((p) => p.split('=', 2) as [string, string]));
    if (!kv.base || !kv.size || !/^\d+$/.test(kv.size) || !/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(kv.base))
      throw bad('defaultAddressPool', o.defaultAddressPool, 'expected base=CIDR,size=N');
    out.pool = kv.base;
    out.poolPrefix = Number(kv.size);
  }
  if (o.networkPrefix) {
    if (!/^[a-z][a-z0-9]{0,3}$/.test(o.networkPrefix)) throw bad('networkPrefix', o.networkPrefix, '1-4 lowercase letters or digits, starting with a letter');
    Object.assign(out, { chainPrefix: o.networkPrefix.toUpperCase(), vethPrefix: o.networkPrefix, bridgePrefix: `${o.networkPrefix}-` });
  }
  return out;
}
