import { EngineError } from '../common/errors.ts';
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
      case 'ONBUILD':
        c.OnBuild = [...(c.OnBuild ?? []), rest.trim()];
        break;
      default:
        throw bad(raw, `${instr.toUpperCase()} is not a supported change (use CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR)`);
    }
  }
  return c;
}

function bad(change: string, why: string): EngineError {
  return new EngineError('INVALID_ARGUMENT', `invalid --change "${change}": ${why}`);
}

/** `["a","b"]` stays as is; anything else is shell form: `/bin/sh -c "…"`. */
function execForm(s: string): string[] {
  const t = s.trim();
  if (t.startsWith('[')) {
    try {
      const v = JSON.parse(t);
      if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v;
    } catch {
      // not JSON: docker then treats it as shell form too
    }
  }
  return ['/bin/sh', '-c', t];
}

/** `k=v k2="v 2"` or the legacy `k v` form. */
function keyValues(s: string, raw: string): [string, string][] {
  const t = s.trim();
  if (!t.includes('=') || /^[^\s=]+\s/.test(t) && !/^[^\s=]+=/.test(t)) {
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
