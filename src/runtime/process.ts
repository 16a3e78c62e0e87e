import { processEnv } from './spec.ts';
import type { Process } from './spec-types.ts';

/**
 * The Process for an exec, derived from the container's own (so it keeps the
 * container's capabilities, rlimits and no_new_privs), as docker/podman do.
 * A different user drops effective caps unless it is root; privileged
 * exec gets the bounding set as effective too.
 */
export function execProcess(
  base: Process,
  o: { args: string[]; env?: string[]; cwd?: string; user?: Process['user']; tty?: boolean; privileged?: boolean; bounding?: string[] },
): Process {
  const merged = [...base.env];
  for (const e of o.env ?? []) {
    const k = e.split('=')[0];
    const i = merged.findIndex((x) => x.split('=')[0] === k);
    if (i >= 0) merged[i] = e;
    else merged.push(e);
  }
  const env = processEnv(merged);
  const user = o.user ?? base.user;
  const bounding = o.privileged && o.bounding ? o.bounding : (base.capabilities?.bounding ?? []);
  const eff = user.uid === 0 ? bounding : (base.capabilities?.effective ?? []);
  const p: Process = {
    terminal: !!o.tty,
    user,
    args: o.args,
    env,
    cwd: o.cwd || base.cwd || '/',
    capabilities: { bounding, effective: eff, permitted: eff, inheritable: [], ambient: [] },
    noNewPrivileges: base.noNewPrivileges,
  };
  if (base.rlimits) p.rlimits = base.rlimits;
  if (base.apparmorProfile) p.apparmorProfile = base.apparmorProfile;
  return p;
}
