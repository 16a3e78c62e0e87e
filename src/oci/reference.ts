import { EngineError } from '../common/errors.ts';
import { type Digest, parseDigest } from './digest.ts';

/**
 * An image reference normalized the way docker does:
 * `busybox` → docker.io/library/busybox:latest, `localhost:5000/a/b@sha256:…`.
 */
export interface ImageReference {
  /** Registry host (with port), e.g. `docker.io`, `127.0.0.1:5000`. */
  domain: string;
  /** Repository path inside the registry, e.g. `library/busybox`. */
  path: string;
  tag?: string;
  digest?: Digest;
}

export const DEFAULT_DOMAIN = 'docker.io';
export const DEFAULT_TAG = 'latest';

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const MAX_NAME = 255;

function bad(ref: string, why: string): never {
  throw new EngineError('INVALID_ARGUMENT', `invalid reference format "${ref.slice(0, 300)}": ${why}`);
}

function isDomain(s: string): boolean {
  const [host, port, ...rest] = s.split(':');
  if (rest.length || host === undefined) return false;
  if (port !== undefined && !/^\d{1,5}$/.test(port)) return false;
  if (/^\[[0-9a-fA-F:]+\]$/.test(host)) return true;
  return host.split('.').every((c) => DOMAIN_COMPONENT.test(c));
}

/**
 * Parses a user- or client-given reference. With `defaultTag` false, a
 * reference without tag or digest keeps neither (for "all tags").
 */
export function parseReference(input: string, opts: { defaultTag?: boolean } = {}): ImageReference {
  const ref = input.trim();
  if (!ref) bad(input, 'empty reference');
  if (ref.length > 1024) bad(input, 'too long');
  let rest = ref;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = parseDigest(rest.slice(at + 1), 'reference digest');
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastColon = rest.lastIndexOf(':');
  if (lastColon > rest.lastIndexOf('/')) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!TAG.test(tag)) bad(input, `invalid tag "${tag}"`);
  }
  let domain = DEFAULT_DOMAIN;
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first === 'localhost' || first.includes('.') || first.includes(':') || first !== first.toLowerCase()) {
      if (!isDomain(first)) bad(input, `invalid registry host "${first}"`);
      domain = first;
      path = rest.slice(slash + 1);
    }
  }
  if (domain === 'index.docker.io' || domain === 'registry-1.docker.io') domain = DEFAULT_DOMAIN;
  if (path !== path.toLowerCase()) bad(input, 'repository name must be lowercase');
  if (!path.split('/').every((c) => COMPONENT.test(c))) bad(input, `invalid repository name "${path}"`);
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = `library/${path}`;
  if (domain.length + 1 + path.length > MAX_NAME) bad(input, `repository name longer than ${MAX_NAME} characters`);
  if (!tag && !digest && opts.defaultTag !== false) tag = DEFAULT_TAG;
  return { domain, path, tag, digest };
}

/** `docker.io/library/busybox` */
export function repositoryName(r: ImageReference): string {
  return `${r.domain}/${r.path}`;
}

/** The full normalized form, `docker.io/library/busybox:latest`. */
export function formatReference(r: ImageReference): string {
  return repositoryName(r) + (r.tag ? `:${r.tag}` : '') + (r.digest ? `@${r.digest}` : '');
}

/** The short form docker shows: `busybox:latest`, `foo/bar:1`, `127.0.0.1:5000/x:y`. */
export function familiarName(r: ImageReference): string {
  return familiarRepository(r) + (r.tag ? `:${r.tag}` : '') + (r.digest ? `@${r.digest}` : '');
}

export function familiarRepository(r: ImageReference): string {
  if (r.domain !== DEFAULT_DOMAIN) return `${r.domain}/${r.path}`;
  return r.path.startsWith('library/') && r.path.split('/').length === 2 ? r.path.slice(8) : r.path;
}

/** Normalizes a reference string to its full form, e.g. for store keys. */
export function normalizeReference(input: string): string {
  return formatReference(parseReference(input));
}
