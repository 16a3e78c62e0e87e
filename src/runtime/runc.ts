import { EngineError, type ErrorCode, isEngineError, notFound } from '../common/errors.ts';
import { exec } from '../common/exec.ts';

/** runc's own view of a container (`runc state`). */
export interface RuncState {
  id: string;
  pid: number;
  status: 'created' | 'running' | 'paused' | 'stopped' | 'creating';
  bundle: string;
  rootfs: string;
  created: string;
}

export const DEFAULT_RUNC = '/usr/bin/runc';
const ID_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

export function checkId(id: string): void {
  if (!ID_PATTERN.test(id)) throw new EngineError('INVALID_ARGUMENT', `invalid container id "${id}": use letters, digits, _ . - (at most 128)`);
}

/** Thin wrapper over the runc CLI with one --root. Every call is a short-lived runc process. */
export class Runc {
  readonly binary: string;
  readonly root: string;

  constructor(opts: { root: string; binary?: string }) {
    this.root = opts.root;
    this.binary = opts.binary ?? DEFAULT_RUNC;
  }

  private async run(args: string[], what: string, id?: string): Promise<string> {
    const res = await exec([this.binary, '--root', this.root, ...args], { allowFailure: true, timeoutMs: 60_000 });
    if (res.code === 0) return res.stdout;
    const failure = parseRuncFailure(res.stderr || res.stdout);
    const msg = failure.message || `exit status ${res.code}`;
    if (id && failure.noSuchContainer) throw notFound(`no such container in the runtime: ${id}`);
    throw new RuntimeError('INTERNAL', `runc ${what} failed: ${msg}`, failure);
  }

  async state(id: string): Promise<RuncState> {
    checkId(id);
    const out = await this.run(['state', id], 'state', id);
    try {
      return JSON.parse(out) as RuncState;
    } catch {
      throw new EngineError('INTERNAL', `runc state ${id}: unreadable output`);
    }
  }

  async list(): Promise<RuncState[]> {
    const out = await this.run(['list', '--format', 'json'], 'list');
    const parsed = JSON.parse(out.trim() || 'null') as RuncState[] | null;
    return parsed ?? [];
  }

  async start(id: string): Promise<void> {
    checkId(id);
    await this.run(['start', id], 'start', id);
  }

  async kill(id: string, signal: string | number, all = false): Promise<void> {
    checkId(id);
    await this.run(['kill', ...(all ? ['--all'] : []), id, normalizeSignal(signal)], 'kill', id);
  }

  async pause(id: string): Promise<void> {
    checkId(id);
    await this.run(['pause', id], 'pause', id);
  }

  async resume(id: string): Promise<void> {
    checkId(id);
    await this.run(['resume', id], 'resume', id);
  }

  /** Deletes runc's state and the container's cgroup; NOT_FOUND when runc has no such container. */
  async delete(id: string, force = false): Promise<void> {
    checkId(id);
    await this.run(['delete', ...(force ? ['--force'] : []), id], 'delete', id);
  }
}

/** runc prints logrus lines (`time="..." level=error msg="..."`); keep the message. */
export function cleanRuncError(text: string): string {
  const lines = text.trim().split('\n').filter(Boolean);
  const msgs = lines.map((l) => {
    const m = /msg="((?:[^"\\]|\\.)*)"/.exec(l);
    return m ? m[1]!.replace(/\\"/g, '"').replace(/\\\\/g, '\\') : l;
  });
  return msgs.join('; ');
}

/**
 * What a runc failure means. runc says it only in text (logrus lines, or
 * the message conmon relays from runc create/exec): it is read here, once,
 * and callers decide by these fields.
 */
export interface RuncFailure {
  /** runc's messages without the logrus decoration. */
  message: string;
  /** runc has no such container. */
  noSuchContainer: boolean;
  /** The container's process has already exited (a signal finds nobody). */
  notRunning: boolean;
  /** The container is stopped or paused (nothing can be exec'd in it). */
  inactive: boolean;
  /** The process could not be executed: docker's exit codes 127 and 126. */
  exec?: 'COMMAND_NOT_FOUND' | 'CANNOT_EXECUTE';
}

export function parseRuncFailure(text: string): RuncFailure {
  const message = cleanRuncError(text);
  const isExec = /exec/i.test(message);
  return {
    message,
    noSuchContainer: /does not exist|not found|no such file/i.test(message),
    notRunning: /not running|process already finished/i.test(message),
    inactive: /not running|stopped|paused/i.test(message),
    exec:
      isExec && /executable file not found|no such file or directory/i.test(message)
        ? 'COMMAND_NOT_FOUND'
        : isExec && /permission denied/i.test(message)
          ? 'CANNOT_EXECUTE'
          : undefined,
  };
}

/** A runc command that failed, with what its failure means. */
export class RuntimeError extends EngineError {
  readonly failure: RuncFailure;

  constructor(code: ErrorCode, message: string, failure: RuncFailure) {
    super(code, message);
    this.failure = failure;
  }
}

/** The container's process was gone when it was signalled (the caller's exit monitor handles it). */
export function isNotRunning(e: unknown): boolean {
  return isEngineError(e, 'NOT_FOUND') || (e instanceof RuntimeError && e.failure.notRunning);
}

const SIGNALS = [
  'HUP',
  'INT',
  'QUIT',
  'ILL',
  'TRAP',
  'ABRT',
  'BUS',
  'FPE',
  'KILL',
  'USR1',
  'SEGV',
  'USR2',
  'PIPE',
  'ALRM',
  'TERM',
  'STKFLT',
  'CHLD',
  'CONT',
  'STOP',
  'TSTP',
  'TTIN',
  'TTOU',
  'URG',
  'XCPU',
  'XFSZ',
  'VTALRM',
  'PROF',
  'WINCH',
  'IO',
  'PWR',
  'SYS',
];

/** `SIGTERM`, `term`, `15` → what runc accepts; RTMIN+n too. */
export function normalizeSignal(sig: string | number): string {
  if (typeof sig === 'number' || /^\d+$/.test(sig)) {
    const n = Number(sig);
    if (!Number.isInteger(n) || n < 1 || n > 64) throw new EngineError('INVALID_ARGUMENT', `invalid signal number ${sig}`);
    return String(n);
  }
  const s = sig.toUpperCase().replace(/^SIG/, '');
  if (SIGNALS.includes(s) || /^RTMIN(\+\d+)?$|^RTMAX(-\d+)?$/.test(s)) return s;
  throw new EngineError('INVALID_ARGUMENT', `invalid signal "${sig}"`);
}

/** Signal number for exit codes (128+n) and docker's StopSignal handling. */
export function signalNumber(sig: string | number): number {
  const s = normalizeSignal(sig);
  if (/^\d+$/.test(s)) return Number(s);
  const i = SIGNALS.indexOf(s);
  if (i >= 0) return i + 1;
  const m = /^RTMIN(?:\+(\d+))?$/.exec(s);
  if (m) return 34 + Number(m[1] ?? 0);
  const x = /^RTMAX(?:-(\d+))?$/.exec(s);
  return 64 - Number(x?.[1] ?? 0);
}

export interface RuncVersion {
  version: string;
  commit?: string;
  spec?: string;
  libseccomp?: string;
}

export async function runcVersion(binary = DEFAULT_RUNC): Promise<RuncVersion> {
  const res = await exec([binary, '--version'], { timeoutMs: 10_000 });
  const get = (k: string) => new RegExp(`^${k}:?\\s*(.+)$`, 'mi').exec(res.stdout)?.[1]?.trim();
  const version = /runc version\s+(\S+)/.exec(res.stdout)?.[1];
  if (!version) throw new EngineError('INTERNAL', `cannot read the runc version from "${res.stdout.trim()}"`);
  return { version, commit: get('commit'), spec: get('spec'), libseccomp: get('libseccomp') };
}

function cmp(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d) return d;
  }
  return 0;
}

/** 1.1.5+ds1 → [1,1,5]; 1.0.0-rc6 → [1,0,0,-1,6] so release candidates sort before the release. */
function parseVersion(v: string): number[] {
  const m = /^(\d+)\.(\d+)\.(\d+)(?:-rc\.?(\d+))?/.exec(v);
  if (!m) return [0];
  return [Number(m[1]), Number(m[2]), Number(m[3]), m[4] ? -1 : 0, Number(m[4] ?? 0)];
}

interface Advisory {
  cve: string;
  fixedIn: string;
  what: string;
  /** Debian package revisions (the `commit:` line) known to carry the fix. */
  debianFixed?: RegExp;
}

const ADVISORIES: Advisory[] = [
  { cve: 'CVE-2019-5736', fixedIn: '1.0.0-rc7', what: 'a container can overwrite the host runc binary' },
  { cve: 'CVE-2021-30465', fixedIn: '1.0.0-rc95', what: 'symlink-exchange race in mounts escapes the rootfs' },
  { cve: 'CVE-2024-21626', fixedIn: '1.1.12', what: 'leaked host fd lets a process escape via its working directory', debianFixed: /deb1[12]u\d|deb13/ },
  { cve: 'CVE-2024-45310', fixedIn: '1.1.14', what: 'a racing bind mount can create empty files or directories on the host' },
  { cve: 'CVE-2025-31133', fixedIn: '1.2.8', what: 'masked-path race (/dev/null replaced) gives write access to host procfs' },
  { cve: 'CVE-2025-52565', fixedIn: '1.2.8', what: '/dev/console bind-mount race gives write access to host procfs' },
  { cve: 'CVE-2025-52881', fixedIn: '1.2.8', what: 'procfs write redirection bypasses LSM labels' },
];

/**
 * Known container-escape advisories that apply to this runc. Debian
 * backports fixes without changing the upstream number, so the package
 * revision (runc's `commit:` line, e.g. 1.1.5+ds1-1+deb12u1) is checked too:
 * deb12u1 carries the CVE-2024-21626 fix (its changelog says so).
 */
export function runcAdvisories(v: RuncVersion): { cve: string; message: string }[] {
  const have = parseVersion(v.version);
  const out: { cve: string; message: string }[] = [];
  for (const a of ADVISORIES) {
    if (cmp(have, parseVersion(a.fixedIn)) >= 0) continue;
    if (a.debianFixed && v.commit && a.debianFixed.test(v.commit)) continue;
    out.push({
      cve: a.cve,
      message: `runc ${v.version} (${v.commit ?? 'unknown build'}) is affected by ${a.cve}: ${a.what} (fixed in ${a.fixedIn}); update runc`,
    });
  }
  return out;
}
