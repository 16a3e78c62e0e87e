/**
 * Create-time rules of a ContainerSpec that depend on the image: docker's
 * merge of the spec with the image config (mergeConfig), and the options
 * a network mode container:<ref> refuses. The wire format is decoded before
 * (api/decode-container.ts); the record's HostConfig is made in record.ts.
 */
import path from 'node:path';
import { invalid } from '../common/errors.ts';
import type { ContainerConfig as ImageRunConfig } from '../oci/types.ts';
import { mergeHealthConfig, parseHealthConfig } from './health.ts';
import { joinedContainer } from './network.ts';
import { type ContainerSpec, healthConfigOf } from './spec.ts';
import type { ContainerConfig, HostConfig, RestartPolicy } from './types.ts';

const MAX_LABELS = 4096;

function envKey(e: string): string {
  const i = e.indexOf('=');
  return i < 0 ? e : e.slice(0, i);
}

/** Image env, then the request's, a later key replacing an earlier one (docker's merge). */
export function mergeEnv(image: string[] | undefined, req: string[] | null | undefined): string[] {
  const out: string[] = [];
  const idx = new Map<string, number>();
  for (const e of [...(image ?? []), ...(req ?? [])]) {
    if (e.includes('\0')) throw invalid('environment variables cannot contain NUL bytes');
    const k = envKey(e);
    if (!k) throw invalid(`invalid environment variable: ${e}`);
    const at = idx.get(k);
    if (at === undefined) idx.set(k, out.push(e) - 1);
    else out[at] = e;
  }
  return out;
}

/** Refuses `..` in a container path (image WorkingDir, Volumes); returns it cleaned. */
export function checkContainerPath(p: string, what: string): string {
  if (!p.startsWith('/')) throw invalid(`the ${what} '${p}' is invalid, it needs to be an absolute path`);
  if (p.split('/').includes('..')) throw invalid(`the ${what} '${p}' is invalid: it must not contain '..'`);
  if (p.includes('\0')) throw invalid(`the ${what} contains a NUL byte`);
  return path.posix.normalize(p);
}

export function parseRestartPolicy(p: Partial<RestartPolicy> | undefined | null, autoRemove: boolean): RestartPolicy {
  const name = (p?.Name ?? '') as RestartPolicy['Name'];
  const max = Number(p?.MaximumRetryCount ?? 0);
  if (!['', 'no', 'always', 'unless-stopped', 'on-failure'].includes(name)) throw invalid(`invalid restart policy '${name}'`);
  if (!Number.isInteger(max) || max < 0) throw invalid('maximum retry count cannot be negative');
  if (max > 0 && name !== 'on-failure') throw invalid(`maximum retry count cannot be used with restart policy '${name}'`);
  if (autoRemove && name !== '' && name !== 'no') throw invalid(`can't create 'AutoRemove' container with restart policy`);
  return { Name: name, MaximumRetryCount: max };
}

const nonEmpty = (v: unknown): boolean => (Array.isArray(v) ? v.length > 0 : !!v && typeof v === 'object' && Object.keys(v).length > 0);

/**
 * Network mode container:<name|id> takes the other container's network as
 * it is: what would configure a network of its own is refused, with
 * dockerd's messages and in its order (runconfig validateNetContainerMode).
 * The exposed ports are the spec's, not the image's: an image's EXPOSE is fine.
 */
export function checkJoinedNetworkOptions(spec: ContainerSpec, h: HostConfig): void {
  if (joinedContainer(h.NetworkMode) === undefined) return;
  const conflicting = (what: string) => invalid(`conflicting options: ${what}`);
  const endpoints = Object.values(spec.endpoints ?? {});
  if (spec.hostname) throw conflicting('hostname and the network mode');
  if (nonEmpty(h.Links)) throw conflicting("container type network can't be used with links. This would result in undefined behavior");
  if (h.Dns.length) throw conflicting('dns and the network mode');
  if (h.ExtraHosts?.length) throw conflicting('custom host-to-IP mapping and the network mode');
  if (spec.macAddress || endpoints.some((e) => e.macAddress)) throw conflicting('mac-address and the network mode');
  if (nonEmpty(h.PortBindings) || h.PublishAllPorts) throw conflicting('port publishing and the container type network mode');
  if (spec.exposedPorts?.length) throw conflicting('port exposing and the container type network mode');
  if (endpoints.some((e) => e.aliases?.length)) throw invalid('network-scoped alias is supported only for containers in user defined networks');
  if (endpoints.some((e) => e.ipv4Address)) throw invalid('user specified IP address is supported on user defined networks only');
}

/**
 * Docker's create-time merge of the spec with the image's config:
 * an entrypoint in the spec drops the image's Cmd; Env merges by key;
 * Labels merge; the rest falls back to the image.
 */
export function mergeConfig(spec: ContainerSpec, image: ImageRunConfig | undefined, id: string): ContainerConfig {
  const img = image ?? {};
  const entrypointGiven = spec.entrypoint !== undefined;
  let entrypoint = entrypointGiven ? [...spec.entrypoint!] : (img.Entrypoint ?? null);
  // `--entrypoint ""` resets the image's entrypoint.
  if (entrypoint && entrypoint.length === 1 && entrypoint[0] === '') entrypoint = null;
  let cmd = spec.cmd ? [...spec.cmd] : null;
  if (!cmd || cmd.length === 0) cmd = entrypointGiven ? null : (img.Cmd ?? null);
  const labels: Record<string, string> = { ...(img.Labels ?? {}) };
  const own = Object.entries(spec.labels ?? {});
  if (own.length > MAX_LABELS) throw invalid(`more than ${MAX_LABELS} labels`);
  for (const [k, v] of own) labels[k] = String(v);
  for (const [p] of Object.entries(img.Volumes ?? {})) checkContainerPath(p, 'image volume');
  let workdir = spec.workingDir ?? '';
  if (workdir) {
    if (!workdir.startsWith('/')) throw invalid(`the working directory '${workdir}' is invalid, it needs to be an absolute path`);
    workdir = path.posix.normalize(workdir);
  } else if (img.WorkingDir) workdir = checkContainerPath(img.WorkingDir, 'image working directory');
  const user = spec.user || (img.User ?? '');
  checkUserSyntax(user);
  const env = mergeEnv(img.Env, spec.env);
  const keys = (l: string[] | undefined) => Object.fromEntries((l ?? []).map((k) => [k, {}]));
  const cfg: ContainerConfig = {
    Hostname: spec.hostname || id.slice(0, 12),
    Domainname: spec.domainname ?? '',
    User: user,
    AttachStdin: !!spec.attachStdin,
    AttachStdout: !!spec.attachStdout,
    AttachStderr: !!spec.attachStderr,
    ...(img.ExposedPorts || spec.exposedPorts ? { ExposedPorts: { ...(img.ExposedPorts ?? {}), ...keys(spec.exposedPorts) } } : {}),
    Tty: !!spec.tty,
    OpenStdin: !!spec.openStdin,
    StdinOnce: !!spec.stdinOnce,
    Env: env,
    Cmd: cmd,
    Image: spec.image,
    Volumes: img.Volumes || spec.volumes ? { ...(img.Volumes ?? {}), ...keys(spec.volumes) } : null,
    WorkingDir: workdir,
    Entrypoint: entrypoint,
    OnBuild: null,
    Labels: labels,
  };
  const stopSignal = spec.stopSignal || img.StopSignal;
  if (stopSignal) cfg.StopSignal = stopSignal;
  if (spec.stopTimeout !== undefined) cfg.StopTimeout = spec.stopTimeout;
  const health = mergeHealthConfig(spec.healthcheck && healthConfigOf(spec.healthcheck), parseHealthConfig(img.Healthcheck, false));
  if (health) cfg.Healthcheck = health;
  if (cfg.Hostname.length > 63 || !/^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?$/.test(cfg.Hostname)) throw invalid(`invalid hostname format: ${cfg.Hostname}`);
  const argv = [...(entrypoint ?? []), ...(cmd ?? [])];
  if (argv.length === 0) throw invalid('No command specified');
  return cfg;
}

/** Catches out-of-range numeric ids at create time (names are checked against the image at start). */
export function checkUserSyntax(user: string): void {
  if (!user) return;
  const parts = user.split(':');
  if (parts.length > 2) throw invalid(`invalid user "${user}": use user[:group]`);
  for (const p of parts) {
    if (/^\d+$/.test(p) && Number(p) > 0x7fffffff) throw invalid(`uids and gids must be in range 0-2147483647: ${user}`);
    if (p.includes('\0') || p.includes('\n')) throw invalid(`invalid user "${user}"`);
  }
}

/** Entrypoint + Cmd, split the way inspect shows Path and Args. */
export function commandOf(cfg: ContainerConfig): { path: string; args: string[] } {
  const argv = [...(cfg.Entrypoint ?? []), ...(cfg.Cmd ?? [])];
  return { path: argv[0] ?? '', args: argv.slice(1) };
}
