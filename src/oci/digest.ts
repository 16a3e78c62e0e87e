import { EngineError } from '../common/errors.ts';

/** A content digest, `sha256:<64 lowercase hex>` (the only algorithm keel stores). */
export type Digest = `sha256:${string}`;

const SHA256 = /^sha256:[a-f0-9]{64}$/;
/** Algorithms the OCI spec registers; only sha256 is accepted for storage. */
const ANY = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export function isDigest(s: unknown): s is Digest {
  return typeof s === 'string' && SHA256.test(s);
}

/**
 * Validates a digest that came from outside (a manifest, a registry, an API
 * request). The hex part becomes a file name, so anything but exactly
 * `sha256:` + 64 lowercase hex digits is refused.
 */
export function parseDigest(s: unknown, what = 'digest'): Digest {
  if (isDigest(s)) return s;
  const shown = typeof s === 'string' ? JSON.stringify(s.slice(0, 100)) : typeof s;
  if (typeof s === 'string' && ANY.test(s) && !s.startsWith('sha256:')) {
    throw new EngineError('INVALID_ARGUMENT', `unsupported ${what} algorithm in ${shown}: only sha256 is supported`);
  }
  throw new EngineError('INVALID_ARGUMENT', `invalid ${what} ${shown}: expected sha256: followed by 64 lowercase hex digits`);
}

export function digestHex(d: Digest): string {
  return d.slice(7);
}

export function sha256(data: string | Uint8Array): Digest {
  // node:crypto on first use, not at import: the CLI parses references through this module
  // and loading node:crypto would cost each of its commands ~6 ms
  const { createHash } = process.getBuiltinModule('node:crypto');
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}
