import { EngineError } from '../common/errors.ts';
import { type Digest, parseDigest } from './digest.ts';
import { isIndexType, isManifestType, MediaType } from './mediatypes.ts';

/** Largest manifest, index or image config keel reads (as containerd/docker do). */
export const MAX_DOCUMENT_SIZE = 4 << 20;

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
}

export interface Manifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface Index {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/** The runtime part of an image config (docker's `Config`). */
/** A health check (Dockerfile HEALTHCHECK; durations in nanoseconds, 0 = the default). */
export interface HealthConfig {
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  /** API 1.44: the interval while starting, within StartPeriod (0: Interval, as dockerd 20.10). */
  StartInterval?: number;
  Retries?: number;
}

export interface ContainerConfig {
  User?: string;
  ExposedPorts?: Record<string, object>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, object>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  Healthcheck?: HealthConfig;
  OnBuild?: string[] | null;
  Shell?: string[];
  ArgsEscaped?: boolean;
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

export interface ImageConfig {
  architecture: string;
  os: string;
  variant?: string;
  created?: string;
  author?: string;
  config?: ContainerConfig;
  rootfs: { type: 'layers'; diff_ids: Digest[] };
  history?: HistoryEntry[];
  // Docker-specific fields kept when present.
  container?: string;
  container_config?: ContainerConfig;
  docker_version?: string;
  comment?: string;
}

function fail(what: string, why: string): never {
  throw new EngineError('INVALID_ARGUMENT', `invalid ${what}: ${why}`);
}

function parseJson(buf: Uint8Array, what: string): Record<string, unknown> {
  if (buf.length > MAX_DOCUMENT_SIZE) fail(what, `${buf.length} bytes is over the ${MAX_DOCUMENT_SIZE}-byte limit`);
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(buf).toString('utf8'));
  } catch (e) {
    fail(what, `not JSON (${(e as Error).message})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(what, 'not a JSON object');
  return v as Record<string, unknown>;
}

export function parseDescriptor(v: unknown, what: string): Descriptor {
  if (typeof v !== 'object' || v === null) fail(what, 'descriptor is not an object');
  const d = v as Record<string, unknown>;
  if (typeof d.mediaType !== 'string' || d.mediaType.length > 255) fail(what, 'descriptor has no valid mediaType');
  const digest = parseDigest(d.digest, `${what} digest`);
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) fail(what, `descriptor ${digest} has an invalid size`);
  if (d.urls !== undefined && (!Array.isArray(d.urls) || !d.urls.every((u) => typeof u === 'string'))) fail(what, 'urls must be strings');
  return d as unknown as Descriptor;
}

export type ParsedDocument = { kind: 'manifest'; manifest: Manifest } | { kind: 'index'; index: Index };

/**
 * Parses a manifest or index from untrusted bytes. `declaredType` is what the
 * registry or archive said it is (Content-Type or descriptor); a document
 * whose own mediaType disagrees, or that looks like both kinds, is refused.
 */
export function parseImageDocument(buf: Uint8Array, declaredType?: string): ParsedDocument {
  const what = 'image manifest';
  const o = parseJson(buf, what);
  if (o.schemaVersion !== 2) fail(what, `schemaVersion ${JSON.stringify(o.schemaVersion)} is not supported (only 2)`);
  const own = typeof o.mediaType === 'string' ? o.mediaType : undefined;
  const hasManifests = 'manifests' in o;
  const hasLayers = 'layers' in o || 'config' in o;
  if (hasManifests && hasLayers) fail(what, 'document has both "manifests" and "layers"/"config" (ambiguous)');
  const declared = declaredType && (isManifestType(declaredType) || isIndexType(declaredType)) ? declaredType : undefined;
  if (own && declared && own !== declared) fail(what, `mediaType ${own} disagrees with the declared type ${declared}`);
  const type = own ?? declared;
  if (hasManifests || isIndexType(type)) {
    if (type && !isIndexType(type)) fail(what, `an index cannot have mediaType ${type}`);
    if (!Array.isArray(o.manifests)) fail(what, '"manifests" must be an array');
    if (o.manifests.length > 1000) fail(what, 'index lists more than 1000 manifests');
    const manifests = o.manifests.map((m) => parseDescriptor(m, 'index entry'));
    return { kind: 'index', index: { schemaVersion: 2, mediaType: type, manifests, annotations: o.annotations as Index['annotations'] } };
  }
  if (type && !isManifestType(type)) fail(what, `unsupported mediaType ${type}`);
  const config = parseDescriptor(o.config, 'manifest config');
  if (!Array.isArray(o.layers)) fail(what, '"layers" must be an array');
  if (o.layers.length > 500) fail(what, 'more than 500 layers');
  const layers = o.layers.map((l) => parseDescriptor(l, 'manifest layer'));
  return {
    kind: 'manifest',
    manifest: { schemaVersion: 2, mediaType: type ?? MediaType.OciManifest, config, layers, annotations: o.annotations as Manifest['annotations'] },
  };
}

export function parseImageConfig(buf: Uint8Array): ImageConfig {
  const what = 'image config';
  const o = parseJson(buf, what);
  const rootfs = o.rootfs as Record<string, unknown> | undefined;
  if (!rootfs || rootfs.type !== 'layers' || !Array.isArray(rootfs.diff_ids)) fail(what, 'rootfs.diff_ids is missing');
  rootfs.diff_ids.forEach((d) => parseDigest(d, 'diff_id'));
  if (typeof o.architecture !== 'string') o.architecture = 'amd64';
  if (typeof o.os !== 'string') o.os = 'linux';
  if (o.config !== undefined && (typeof o.config !== 'object' || Array.isArray(o.config))) fail(what, '"config" must be an object');
  return o as unknown as ImageConfig;
}

/** The platform keel runs: linux on the host architecture, in OCI's names. */
export function hostPlatform(): Platform {
  const arch = ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x' } as Record<string, string>)[process.arch];
  return { os: 'linux', architecture: arch ?? process.arch };
}

/** Parses `os/arch[/variant]` as given to `--platform`. */
export function parsePlatform(s: string): Platform {
  const parts = s.toLowerCase().split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9._-]+$/.test(p))) {
    throw new EngineError('INVALID_ARGUMENT', `invalid platform "${s}": expected os/arch[/variant], e.g. linux/amd64`);
  }
  const [os, architecture, variant] = parts as [string, string, string?];
  return variant ? { os, architecture, variant } : { os, architecture };
}

export function platformMatches(want: Platform, have: Platform | undefined): boolean {
  if (!have) return false;
  if (want.os !== have.os || want.architecture !== have.architecture) return false;
  if (want.variant && have.variant && want.variant !== have.variant) return false;
  return true;
}
