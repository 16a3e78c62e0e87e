/**
 * Instructions that only change the image config (ENV, LABEL, CMD, ...),
 * and the `created_by` text docker's legacy builder writes in history.
 */
import path from 'node:path';
import { invalid } from '../common/errors.ts';
import type { ContainerConfig } from '../oci/types.ts';
import type { Command, Instruction } from './dockerfile/types.ts';
import { setEnv } from './session.ts';

export const DEFAULT_SHELL = ['/bin/sh', '-c'];

export function shellOf(c: ContainerConfig | undefined): string[] {
  return c?.Shell?.length ? c.Shell : DEFAULT_SHELL;
}

export function argvOf(cmd: Command, shell: string[]): string[] {
  return cmd.form === 'exec' ? cmd.args : [...shell, cmd.script];
}

/** `#(nop)` history text of a metadata step, as docker writes it. */
export function nopCreatedBy(shell: string[], text: string): string {
  return `${shell.join(' ')} #(nop)  ${text}`;
}

/** Applies a metadata instruction to a copy of the run config. Returns it and whether CMD was set. */
export function applyMeta(inst: Instruction, cfg: ContainerConfig, cmdSet: boolean): { config: ContainerConfig; cmdSet: boolean; author?: string } {
  const c: ContainerConfig = structuredClone(cfg);
  const shell = shellOf(c);
  switch (inst.kind) {
    case 'ENV':
      for (const [k, v] of inst.pairs) c.Env = setEnv(c.Env, k, v);
      break;
    case 'LABEL':
      for (const [k, v] of inst.pairs) c.Labels = { ...(c.Labels ?? {}), [k]: v };
      break;
    case 'CMD':
      c.Cmd = argvOf(inst.command, shell);
      cmdSet = true;
      break;
    case 'ENTRYPOINT':
      c.Entrypoint = argvOf(inst.command, shell);
      // Docker drops an inherited CMD when ENTRYPOINT is set, unless this stage set CMD itself.
      if (!cmdSet) c.Cmd = null;
      break;
    case 'SHELL':
      if (!inst.shell.length) throw invalid('SHELL requires at least one argument');
      c.Shell = inst.shell;
      break;
    case 'EXPOSE':
      for (const p of inst.ports) for (const k of expandPort(p)) c.ExposedPorts = { ...(c.ExposedPorts ?? {}), [k]: {} };
      break;
    case 'USER':
      c.User = inst.user;
      break;
    case 'WORKDIR':
      c.WorkingDir = path.posix.resolve(c.WorkingDir || '/', inst.path);
      break;
    case 'VOLUME':
      for (const v of inst.paths) {
        if (!v.trim()) throw invalid('VOLUME specified can not be an empty string');
        c.Volumes = { ...(c.Volumes ?? {}), [v]: {} };
      }
      break;
    case 'STOPSIGNAL':
      c.StopSignal = inst.signal;
      break;
    case 'HEALTHCHECK': {
      const h: NonNullable<ContainerConfig['Healthcheck']> = { Test: inst.test };
      if (inst.interval) h.Interval = inst.interval;
      if (inst.timeout) h.Timeout = inst.timeout;
      if (inst.startPeriod) h.StartPeriod = inst.startPeriod;
      if (inst.startInterval) h.StartInterval = inst.startInterval;
      if (inst.retries) h.Retries = inst.retries;
      c.Healthcheck = h;
      break;
    }
    case 'ONBUILD':
      c.OnBuild = [...(c.OnBuild ?? []), inst.trigger];
      break;
    case 'MAINTAINER':
      return { config: c, cmdSet, author: inst.name };
    case 'ARG':
      break;
    default:
      throw invalid(`${inst.kind} is not a metadata instruction`);
  }
  return { config: c, cmdSet };
}

/** `80`, `80/udp`, `8000-8002/tcp` → docker's `port/proto` keys. */
function expandPort(p: string): string[] {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?(?:\/(tcp|udp|sctp))?$/i.exec(p);
  if (!m) throw invalid(`Invalid containerPort: ${p}`);
  const lo = Number(m[1]);
  const hi = m[2] ? Number(m[2]) : lo;
  const proto = (m[3] ?? 'tcp').toLowerCase();
  if (hi < lo || hi > 65535 || hi - lo > 65535) throw invalid(`Invalid range specified for the Port: ${p}`);
  const out: string[] = [];
  for (let i = lo; i <= hi; i++) out.push(`${i}/${proto}`);
  return out;
}

/** The history text docker shows for a metadata instruction. */
export function metaText(inst: Instruction): string {
  switch (inst.kind) {
    case 'ENV':
      return `ENV ${inst.pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`;
    case 'LABEL':
      return `LABEL ${inst.pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`;
    case 'CMD':
    case 'ENTRYPOINT':
      return `${inst.kind} ${inst.command.form === 'exec' ? `[${inst.command.args.map((a) => JSON.stringify(a)).join(' ')}]` : `["${DEFAULT_SHELL.join('" "')}" ${JSON.stringify(inst.command.script)}]`}`;
    case 'ARG':
      return `ARG ${inst.args.map((a) => (a.default !== undefined ? `${a.name}=${a.default}` : a.name)).join(' ')}`;
    default:
      return inst.original.replace(/^\s*\S+/, (k) => k.toUpperCase());
  }
}
