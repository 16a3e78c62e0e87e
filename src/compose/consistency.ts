/**
 * The project checks compose-go makes after loading (checkConsistency in
 * loader/validate.go) that the schema cannot express: one value given two
 * ways, negative replicas, two mounts on one target, a secret with no
 * source. Each error names the service and the key, in compose-go's words.
 */
import { EngineError } from '../common/errors.ts';
import { cleanPath } from './gojson.ts';
import type { Project, Service } from './types.ts';
import { parseBytes } from './units.ts';

type Tree = Record<string, unknown>;

const invalid = (msg: string) => new EngineError('INVALID_ARGUMENT', msg);

/** A value under deploy.resources.<section>.<key>, parsed; undefined when not there. */
function fromDeploy(s: Service, section: string, key: string, parse: (v: unknown) => number): number | undefined {
  const v = (((s.deploy?.resources as Tree | undefined)?.[section] as Tree | undefined) ?? {})[key];
  return v === undefined || v === null ? undefined : parse(v);
}

function checkService(s: Service): void {
  const w = `services.${s.name}`;
  const replicas = s.deploy?.replicas;
  if (s.scale < 0)
    throw invalid(replicas !== undefined ? `${w}.deploy.replicas: must be greater than or equal to 0` : `${w}.scale: must be greater than or equal to 0`);
  // the loader takes the top-level value over deploy's: a difference means both were given, differently
  for (const [top, section, key, value, parse] of [
    ['cpus', 'limits', 'cpus', s.cpus, Number],
    ['mem_limit', 'limits', 'memory', s.mem_limit, (v: unknown) => parseBytes(v, `${w}.deploy.resources.limits.memory`)],
    ['mem_reservation', 'reservations', 'memory', s.mem_reservation, (v: unknown) => parseBytes(v, `${w}.deploy.resources.reservations.memory`)],
    ['pids_limit', 'limits', 'pids', s.pids_limit, Number],
  ] as const) {
    const d = fromDeploy(s, section, key, parse);
    if (value !== undefined && d !== undefined && d !== value)
      throw invalid(`services.${s.name}: can't set distinct values on '${top}' and 'deploy.resources.${section}.${key}': invalid compose project`);
  }
  const mounts = new Map<string, string>();
  const mount = (target: string, loc: string) => {
    const before = mounts.get(target);
    if (before) throw invalid(`${loc}: target ${target} already mounted as ${before}`);
    mounts.set(target, loc);
  };
  (s.tmpfs ?? []).forEach((t, i) => mount(t.split(':')[0]!, `${w}.tmpfs[${i}]`));
  s.volumes.forEach((v, i) => mount(cleanPath(v.target), `${w}.volumes[${i}]`));
}

export function checkConsistency(p: Project): void {
  for (const s of Object.values(p.services)) checkService(s);
  for (const [name, secret] of Object.entries(p.secrets)) {
    if (!secret.external && secret.file === undefined && secret.environment === undefined)
      throw invalid(`secret "${name}" must declare either \`file\` or \`environment\`: invalid compose project`);
  }
}
