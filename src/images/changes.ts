import { EngineError } from '../common/errors.ts';
import { parseGoDuration } from '../common/units.ts';
import type { ContainerConfig } from '../oci/types.ts';

/**
 * Applies `--change` instructions (`docker import` / `docker commit`): the
 * Dockerfile instructions that only touch the image config.
 */
export function applyChanges(config: ContainerConfig, changes: string[]): ContainerConfig {
  const c: ContainerConfig = structuredClone(config);
  for (const raw of changes) {
    const line = raw.trim();
    const m = /^([A-Za-z]+)\s+([\s\S]*)$/.exec(line);
    if (!m) throw bad(raw, 'expected an instruction and its arguments, e.g. CMD ["sh"]');
    const [, instr, rest] = m as unknown as [string, string, string];
    switch (instr.toUpperCase()) {
      case 'CMD':
        c.Cmd = execForm(rest);
        break;
      case 'ENTRYPOINT':
        c.Entrypoint = execForm(rest);
        break;
      case 'ENV':
        for (const [k, v] of keyValues(rest, raw)) c.Env = [...(c.Env ?? []).filter((e) => e.split('=')[0] !== k), `${k}=${v}`];
        break;
      case 'LABEL':
        for (const [k, v] of keyValues(rest, raw)) c.Labels = { ...(c.Labels ?? {}), [k]: v };
        break;
      case 'EXPOSE':
        for (const p of rest.split(/\s+/).filter(Boolean)) {
          if (!/^\d{1,5}(-\d{1,5})?(\/(tcp|udp|sctp))?$/i.test(p)) throw bad(raw, `invalid port "${p}"`);
          c.ExposedPorts = { ...(c.ExposedPorts ?? {}), [p.includes('/') ? p.toLowerCase() : `${p}/tcp`]: {} };
        }
        break;
      case 'USER':
        c.User = rest.trim();
        break;
      case 'WORKDIR':
        c.WorkingDir = rest.trim();
        break;
      case 'STOPSIGNAL':
        c.StopSignal = rest.trim();
        break;
      case 'VOLUME':
        for (const v of rest.trim().startsWith('[') ? execForm(rest) : rest.split(/\s+/).filter(Boolean)) c.Volumes = { ...(c.Volumes ?? {}), [v]: {} };
        break;
      case 'HEALTHCHECK':
        c.Healthcheck = healthcheck(rest, raw);
        break;
      case 'ONBUILD':
        c.OnBuild = [...(c.OnBuild ?? []), rest.trim()];
        break;
      default:
        throw bad(
          raw,
          `${instr.toUpperCase()} is not a supported change (use CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR)`,
        );
    }
  }
  return c;
}

function bad(change: string, why: string): EngineError {
  return new EngineError('INVALID_ARGUMENT', `invalid --change "${change}": ${why}`);
}

/**
 * `HEALTHCHECK NONE` or `HEALTHCHECK [--interval=D] [--timeout=D]
 * [--start-period=D] [--start-interval=D] [--retries=N] CMD command`, with
 * the Dockerfile builder's rules and messages: exec form runs as CMD, shell
 * form as CMD-SHELL; zero durations mean the defaults.
 */
function healthcheck(rest: string, raw: string): NonNullable<ContainerConfig['Healthcheck']> {
  let t = rest.trim();
  const flags: Record<string, string> = {};
  for (let m; (m = /^--([a-z-]+)=(\S*)\s*/.exec(t)); t = t.slice(m[0].length)) {
    if (!['interval', 'timeout', 'start-period', 'start-interval', 'retries'].includes(m[1]!)) throw bad(raw, `unknown flag: --${m[1]}`);
    flags[m[1]!] = m[2]!;
  }
  const [, type = '', args = ''] = /^(\S+)\s*([\s\S]*)$/.exec(t) ?? [];
  if (type.toUpperCase() === 'NONE') {
    if (args || Object.keys(flags).length) throw bad(raw, 'HEALTHCHECK NONE takes no arguments');
    return { Test: ['NONE'] };
  }
  if (type.toUpperCase() !== 'CMD')
    throw bad(raw, type ? `Unknown type "${type.toUpperCase()}" in HEALTHCHECK (try CMD)` : 'HEALTHCHECK requires at least one argument');
  const json = jsonArray(args);
  if (json ? !json.length : !args.trim()) throw bad(raw, 'Missing command after HEALTHCHECK CMD');
  const out: NonNullable<ContainerConfig['Healthcheck']> = { Test: json ? ['CMD', ...json] : ['CMD-SHELL', args.trim()] };
  const durations = { interval: 'Interval', timeout: 'Timeout', 'start-period': 'StartPeriod', 'start-interval': 'StartInterval' } as const;
  for (const [flag, field] of Object.entries(durations)) {
    if (!flags[flag]) continue;
    let d: number;
    try {
      d = parseGoDuration(flags[flag]!);
    } catch (e) {
      throw bad(raw, (e as Error).message);
    }
    if (d !== 0 && d < 1e6) throw bad(raw, `Interval "${flag}" cannot be less than 1ms`);
    if (d) (out as Record<string, unknown>)[field] = d;
  }
  if (flags.retries) {
    const n = Number(flags.retries);
    if (!/^-?\d+$/.test(flags.retries) || !Number.isSafeInteger(n)) throw bad(raw, `strconv.ParseInt: parsing "${flags.retries}": invalid syntax`);
    if (n < 1) throw bad(raw, `--retries must be at least 1 (not ${n})`);
    out.Retries = n;
  }
  return out;
}

/** `["a","b"]` stays as is; anything else is shell form: `/bin/sh -c "…"`. */
function execForm(s: string): string[] {
  return jsonArray(s) ?? ['/bin/sh', '-c', s.trim()];
}

/** A JSON list of strings (exec form), or undefined: docker then treats it as shell form. */
function jsonArray(s: string): string[] | undefined {
  const t = s.trim();
  if (!t.startsWith('[')) return undefined;
  try {
    const v = JSON.parse(t);
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v;
  } catch {
    // not JSON
  }
  return undefined;
}

/** `k=v k2="v 2"` or the legacy `k v` form. */
function keyValues(s: string, raw: string): [string, string][] {
  const t = s.trim();
  if (!t.includes('=') || (/^[^\s=]+\s/.test(t) && !/^[^\s=]+=/.test(t))) {
    const m = /^(\S+)\s+([\s\S]*)$/.exec(t);
    if (!m) throw bad(raw, 'expected key=value');
    return [[m[1]!, m[2]!]];
  }
  const out: [string, string][] = [];
  const re = /([^\s=]+)=("((?:[^"\\]|\\.)*)"|'([^']*)'|(\S*))/g;
  let m: RegExpExecArray | null;
  let consumed = '';
  while ((m = re.exec(t))) {
    out.push([m[1]!, m[3] !== undefined ? m[3].replace(/\\(.)/g, '$1') : (m[4] ?? m[5] ?? '')]);
    consumed += m[0];
  }
  if (!out.length) throw bad(raw, 'expected key=value');
  return out;
}
