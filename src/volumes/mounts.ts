/**
 * Turns a container's mount requests — HostConfig.Binds (`-v`),
 * HostConfig.Mounts (`--mount`), HostConfig.Tmpfs (`--tmpfs`), the image's
 * VOLUME list and `--volumes-from` — into one list of ResolvedMount, with
 * dockerd 20.10's parsing rules, precedence and error messages
 * (volume/mounts/linux_parser.go, daemon/volumes.go registerMountPoints).
 *
 * Pure: no volume is created here and nothing on the host changes except a
 * stat of `--mount type=bind` sources, which docker requires to exist. The
 * VolumeService creates/acquires the volumes afterwards.
 */
import fs from 'node:fs';
import path from 'node:path';
import { invalid } from '../common/errors.ts';
import { newId } from '../common/ids.ts';
import { validateVolumeName } from './store.ts';

/** HostConfig.Mounts[] of the Engine API. */
export interface MountSpec {
  Type?: string;
  Source?: string;
  Target?: string;
  ReadOnly?: boolean;
  Consistency?: string;
  BindOptions?: { Propagation?: string; NonRecursive?: boolean } | null;
  VolumeOptions?: {
    NoCopy?: boolean;
    Labels?: Record<string, string> | null;
    DriverConfig?: { Name?: string; Options?: Record<string, string> | null } | null;
  } | null;
  TmpfsOptions?: { SizeBytes?: number; Mode?: number } | null;
}

export type MountType = 'bind' | 'volume' | 'tmpfs';

/** One mount of a container, ready for setupMounts(); plain JSON, keep it in the container record. */
export interface ResolvedMount {
  type: MountType;
  /** Host path: the bind source or the volume's _data ('' for tmpfs). */
  source: string;
  /** Clean absolute path inside the container. */
  destination: string;
  readonly: boolean;
  /** The mode string as given to -v (docker's MountPoint.Mode). */
  mode: string;
  /** Bind propagation (default rprivate); '' for volumes and tmpfs. */
  propagation: string;
  nonRecursive?: boolean;
  /** Volume name (volume mounts). */
  name?: string;
  driver?: string;
  /** A volume nobody named (image VOLUME, `-v /path`, `--mount type=volume` without source): removed by `rm -v`/`--rm`. */
  anonymous?: boolean;
  /** Fill an empty volume from the image at the destination: once, at create (cleared after). */
  copyData?: boolean;
  /** `-v /host:/x` creates a missing host directory; `--mount` never does. */
  createSource?: boolean;
  /** How to create the volume if it does not exist (--mount volume-opt / volume-label / volume-driver). */
  volumeCreate?: { labels?: Record<string, string> | null; options?: Record<string, string> | null; driver?: string };
  /** tmpfs mount data (size=, mode=, ro, exec...). */
  tmpfsOptions?: string[];
  /** Came from HostConfig.Tmpfs (docker lists those nowhere in inspect's Mounts). */
  fromTmpfsFlag?: boolean;
}

export interface MountInput {
  binds?: string[] | null;
  mounts?: MountSpec[] | null;
  tmpfs?: Record<string, string> | null;
  /** Keys of the image config's Volumes. */
  imageVolumes?: string[] | null;
  /** Mounts of the containers named by --volumes-from, with the mode from `name:mode` (parseVolumesFrom). */
  volumesFrom?: { mounts: ResolvedMount[]; mode?: string }[] | null;
  /** HostConfig.VolumeDriver. */
  volumeDriver?: string;
}

const MAX_ENTRIES = 1000;
const MAX_LEN = 4096;

class MountConfigError extends Error {}

const specError = (raw: string) => invalid(`invalid volume specification: '${raw}'`);
const modeError = (mode: string) => invalid(`invalid mode: ${mode}`);
const mountConfigError = (type: string | undefined, msg: string) => invalid(`invalid mount config for type ${JSON.stringify(type ?? '')}: ${msg}`);
const duplicate = (dest: string) => invalid(`Duplicate mount point: ${dest}`);

const RW_MODES = new Set(['rw', 'ro']);
const LABEL_MODES = new Set(['z', 'Z']);
const PROPAGATION_MODES = new Set(['private', 'rprivate', 'slave', 'rslave', 'shared', 'rshared']);
const COPY_MODES = new Set(['nocopy']);
const CONSISTENCY_MODES = new Set(['consistent', 'cached', 'delegated']);

export function validMountMode(mode: string): boolean {
  if (mode === '') return true;
  const counts = [0, 0, 0, 0, 0];
  for (const o of mode.split(',')) {
    if (RW_MODES.has(o)) counts[0]!++;
    else if (LABEL_MODES.has(o)) counts[1]!++;
    else if (PROPAGATION_MODES.has(o)) counts[2]!++;
    else if (COPY_MODES.has(o)) counts[3]!++;
    else if (CONSISTENCY_MODES.has(o)) counts[4]!++;
    else return false;
  }
  return counts.every((c) => c <= 1);
}

const hasPropagation = (mode: string) => mode.split(',').some((o) => PROPAGATION_MODES.has(o));
const propagationOf = (mode: string) => mode.split(',').find((o) => PROPAGATION_MODES.has(o)) ?? 'rprivate';

/** Lexical clean of an absolute container path, as Go's path.Clean. */
export function cleanPath(p: string): string {
  return path.posix.normalize(p.replace(/\\/g, '/')).replace(/(.)\/+$/, '$1');
}

function checkTarget(target: string | undefined): void {
  if (!target) throw new MountConfigError('field Target must not be empty');
  if (cleanPath(target) === '/') throw new MountConfigError("invalid specification: destination can't be '/'");
  if (!target.replace(/\\/g, '/').startsWith('/')) throw new MountConfigError(`invalid mount path: '${target}' mount path must be absolute`);
}

/** docker's ConvertTmpfsOptions: SizeBytes with the largest unit that divides it, Mode in octal. */
function tmpfsOptionsFrom(o: MountSpec['TmpfsOptions'], readonly: boolean): string[] {
  const out: string[] = [];
  if (readonly) out.push('ro');
  if (o?.Mode) {
    if (!Number.isInteger(o.Mode) || o.Mode < 0 || o.Mode > 0o7777) throw new MountConfigError(`invalid tmpfs mode ${o.Mode}`);
    out.push(`mode=${o.Mode.toString(8)}`);
  }
  if (o?.SizeBytes) {
    if (!Number.isSafeInteger(o.SizeBytes) || o.SizeBytes < 0) throw new MountConfigError(`invalid tmpfs size ${o.SizeBytes}`);
    let size = o.SizeBytes;
    let suffix = '';
    for (const [s, d] of [
      ['g', 1 << 30],
      ['m', 1 << 20],
      ['k', 1 << 10],
    ] as const) {
      if (size % d === 0) {
        size /= d;
        suffix = s;
        break;
      }
    }
    out.push(`size=${size}${suffix}`);
  }
  return out;
}

const TMPFS_FLAGS = new Set([
  'defaults',
  'ro',
  'rw',
  'suid',
  'nosuid',
  'dev',
  'nodev',
  'exec',
  'noexec',
  'sync',
  'async',
  'dirsync',
  'remount',
  'mand',
  'nomand',
  'atime',
  'noatime',
  'diratime',
  'nodiratime',
  'bind',
  'rbind',
  'unbindable',
  'runbindable',
  'private',
  'rprivate',
  'shared',
  'rshared',
  'slave',
  'rslave',
  'relatime',
  'norelatime',
  'strictatime',
  'nostrictatime',
]);
const TMPFS_DATA = new Set(['size', 'mode', 'uid', 'gid', 'nr_inodes', 'nr_blocks', 'mpol']);

/** Validates `--tmpfs /run:size=64m,mode=1777` options like moby's ParseTmpfsOptions. */
export function parseTmpfsOptions(options: string): string[] {
  if (options.length > MAX_LEN) throw invalid('tmpfs options too long');
  const out: string[] = [];
  for (const o of options.split(',')) {
    if (o === '') continue;
    const key = o.split('=', 1)[0]!;
    if (!TMPFS_FLAGS.has(o) && !(TMPFS_DATA.has(key) && o.includes('=')))
      throw invalid(
        `Invalid tmpfs option [${o
          .split('=')
          .slice(0, 2)
          .map((x) => JSON.stringify(x))
          .join(' ')}]`,
      );
    if (!out.includes(o)) out.push(o);
  }
  return out;
}

/**
 * `--mount` / HostConfig.Mounts[] → ResolvedMount (docker's parseMountSpec);
 * `fromBind` is the -v path, which skips the bind-source existence check.
 */
export function parseMountSpec(cfg: MountSpec, opts: { fromBind?: boolean; bindSourceExists?: (p: string) => boolean } = {}): ResolvedMount {
  if (!cfg || typeof cfg !== 'object') throw invalid('invalid mount: expected an object');
  for (const k of ['Type', 'Source', 'Target'] as const) {
    if (cfg[k] !== undefined && cfg[k] !== null && (typeof cfg[k] !== 'string' || cfg[k]!.length > MAX_LEN))
      throw invalid(`invalid mount: ${k} must be a string`);
  }
  try {
    checkTarget(cfg.Target);
    const destination = cleanPath(cfg.Target!);
    const base = { destination, readonly: !!cfg.ReadOnly, mode: '' };
    switch (cfg.Type) {
      case 'bind': {
        if (!cfg.Source) throw new MountConfigError('field Source must not be empty');
        const prop = cfg.BindOptions?.Propagation;
        if (prop && !PROPAGATION_MODES.has(prop)) throw new MountConfigError(`invalid propagation mode: ${prop}`);
        if (cfg.VolumeOptions) throw new MountConfigError('field VolumeOptions must not be specified');
        if (!cfg.Source.replace(/\\/g, '/').startsWith('/')) throw new MountConfigError(`invalid mount path: '${cfg.Source}' mount path must be absolute`);
        const source = cleanPath(cfg.Source);
        if (!opts.fromBind && !(opts.bindSourceExists ?? fs.existsSync)(source)) throw new MountConfigError(`bind source path does not exist: ${source}`);
        return {
          ...base,
          type: 'bind',
          source,
          propagation: prop || 'rprivate',
          ...(cfg.BindOptions?.NonRecursive ? { nonRecursive: true } : {}),
          ...(opts.fromBind ? { createSource: true } : {}),
        };
      }
      case 'volume': {
        if (cfg.BindOptions) throw new MountConfigError('field BindOptions must not be specified');
        const anonymous = !cfg.Source;
        if (anonymous && cfg.ReadOnly) throw new MountConfigError('must not set ReadOnly mode when using anonymous volumes');
        const vo = cfg.VolumeOptions;
        const driver = vo?.DriverConfig?.Name || 'local';
        return {
          ...base,
          type: 'volume',
          source: '',
          propagation: '',
          name: cfg.Source || newId(),
          driver,
          anonymous,
          copyData: !vo?.NoCopy,
          volumeCreate: { labels: vo?.Labels ?? null, options: vo?.DriverConfig?.Options ?? null, driver },
        };
      }
      case 'tmpfs': {
        if (cfg.BindOptions) throw new MountConfigError('field BindOptions must not be specified');
        if (cfg.Source) throw new MountConfigError('field Source must not be specified');
        return { ...base, type: 'tmpfs', source: '', propagation: '', tmpfsOptions: tmpfsOptionsFrom(cfg.TmpfsOptions, !!cfg.ReadOnly) };
      }
      default:
        throw new MountConfigError('mount type unknown');
    }
  } catch (e) {
    if (e instanceof MountConfigError) throw mountConfigError(cfg.Type, e.message);
    throw e;
  }
}

/** A `-v` / HostConfig.Binds entry → ResolvedMount (docker's ParseMountRaw). */
export function parseBind(raw: string, volumeDriver = ''): ResolvedMount {
  if (typeof raw !== 'string' || raw.length > MAX_LEN) throw invalid('invalid volume specification: too long');
  if ((raw.match(/:/g)?.length ?? 0) > 2) throw specError(raw);
  const arr = raw.split(':');
  if (arr[0] === '') throw specError(raw);
  const spec: MountSpec = {};
  let mode = '';
  if (arr.length === 1) spec.Target = arr[0];
  else if (arr.length === 2) {
    // "/foo:rw" is a destination with a mode: not a volume spec.
    if (validMountMode(arr[1]!)) throw specError(raw);
    [spec.Source, spec.Target] = arr;
  } else [spec.Source, spec.Target, mode] = arr;
  if (!validMountMode(mode)) throw modeError(mode);
  spec.Type = spec.Source?.startsWith('/') ? 'bind' : 'volume';
  spec.ReadOnly = mode.split(',').includes('ro');
  if (volumeDriver && spec.Type === 'volume') spec.VolumeOptions = { DriverConfig: { Name: volumeDriver } };
  if (mode.split(',').includes('nocopy')) spec.VolumeOptions = { ...spec.VolumeOptions, NoCopy: true };
  if (hasPropagation(mode)) spec.BindOptions = { Propagation: propagationOf(mode) };
  let m: ResolvedMount;
  try {
    m = parseMountSpec(spec, { fromBind: true });
  } catch (e) {
    throw invalid(`invalid volume specification: '${raw}': ${(e as Error).message}`);
  }
  m.mode = mode;
  if (m.type === 'volume') validateVolumeName(m.name!);
  return m;
}

/** `--volumes-from container[:ro|rw]` → container and mode (docker's ParseVolumesFrom). */
export function parseVolumesFrom(spec: string): { container: string; mode: string } {
  if (!spec) throw invalid('volumes-from specification cannot be an empty string');
  const i = spec.indexOf(':');
  if (i < 0) return { container: spec, mode: 'rw' };
  const mode = spec.slice(i + 1);
  if (!validMountMode(mode) || hasPropagation(mode) || mode.split(',').includes('nocopy')) throw modeError(mode);
  return { container: spec.slice(0, i), mode };
}

/**
 * Resolves all mount requests of a container, with docker's precedence:
 * --volumes-from first, overridden by -v and --mount at the same
 * destination (which may not repeat each other or a --tmpfs); image VOLUMEs
 * only where nothing else is mounted. `volumePath` gives a volume's host
 * data path (VolumeStore.dataPath).
 */
export function resolveMounts(
  input: MountInput,
  opts: { volumePath: (name: string) => string; bindSourceExists?: (p: string) => boolean },
): { mounts: ResolvedMount[] } {
  const count = (input.binds?.length ?? 0) + (input.mounts?.length ?? 0) + Object.keys(input.tmpfs ?? {}).length + (input.imageVolumes?.length ?? 0);
  if (count > MAX_ENTRIES) throw invalid(`too many mounts (over ${MAX_ENTRIES})`);
  const byDest = new Map<string, ResolvedMount>();
  const tmpfsDests = new Set(Object.keys(input.tmpfs ?? {}).map(cleanPath));

  for (const vf of input.volumesFrom ?? []) {
    const rw = !(vf.mode ?? 'rw').split(',').includes('ro');
    for (const m of vf.mounts) {
      if (m.type === 'tmpfs') continue;
      byDest.set(m.destination, { ...m, readonly: m.readonly || !rw, copyData: false, createSource: false, volumeCreate: undefined });
    }
  }

  const userDests = new Set<string>();
  for (const raw of input.binds ?? []) {
    const m = parseBind(raw, input.volumeDriver);
    if (userDests.has(m.destination) || tmpfsDests.has(m.destination)) throw duplicate(m.destination);
    userDests.add(m.destination);
    byDest.set(m.destination, m);
  }
  for (const cfg of input.mounts ?? []) {
    const m = parseMountSpec(cfg, { bindSourceExists: opts.bindSourceExists });
    if (m.type === 'volume' && !m.anonymous) validateVolumeName(m.name!);
    if (userDests.has(m.destination) || tmpfsDests.has(m.destination)) throw duplicate(cfg.Target!);
    userDests.add(m.destination);
    byDest.set(m.destination, m);
  }
  for (const [dest, options] of Object.entries(input.tmpfs ?? {})) {
    try {
      checkTarget(dest);
    } catch (e) {
      throw invalid((e as Error).message);
    }
    const d = cleanPath(dest);
    byDest.set(d, {
      type: 'tmpfs',
      source: '',
      destination: d,
      readonly: false,
      mode: '',
      propagation: '',
      tmpfsOptions: parseTmpfsOptions(options ?? ''),
      fromTmpfsFlag: true,
    });
  }
  for (const v of input.imageVolumes ?? []) {
    if (typeof v !== 'string' || v.length > MAX_LEN) throw invalid('image config: invalid volume path');
    try {
      checkTarget(v);
    } catch (e) {
      throw invalid(`image config: volume ${JSON.stringify(v)}: ${(e as Error).message}`);
    }
    const d = cleanPath(v);
    if (byDest.has(d)) continue;
    byDest.set(d, {
      type: 'volume',
      source: '',
      destination: d,
      readonly: false,
      mode: '',
      propagation: '',
      name: newId(),
      driver: 'local',
      anonymous: true,
      copyData: true,
      volumeCreate: { driver: input.volumeDriver || 'local' },
    });
  }

  const mounts = [...byDest.values()];
  for (const m of mounts) if (m.type === 'volume' && !m.source) m.source = opts.volumePath(m.name!);
  return { mounts: sortMounts(mounts) };
}

/** Parents before children (docker sorts by path depth) so a nested mount is not hidden by its parent's. */
export function sortMounts(mounts: ResolvedMount[]): ResolvedMount[] {
  const depth = (p: string) => p.split('/').filter(Boolean).length;
  return [...mounts].sort((a, b) => depth(a.destination) - depth(b.destination));
}

/** docker inspect's `Mounts` entry of a container (MountPoint as the API shows it). */
export function toDockerMountPoint(m: ResolvedMount): Record<string, unknown> {
  return {
    Type: m.type,
    ...(m.type === 'volume' ? { Name: m.name } : {}),
    Source: m.source,
    Destination: m.destination,
    ...(m.type === 'volume' ? { Driver: m.driver ?? 'local' } : {}),
    Mode: m.type === 'volume' && m.mode === '' && !m.anonymous ? 'z' : m.mode,
    RW: !m.readonly,
    Propagation: m.propagation,
  };
}
