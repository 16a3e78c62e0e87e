/**
 * sha256 in hex, for the config hashes compose puts on what it creates
 * (hash.ts, resource-hash.ts). Loading node:crypto costs a command ~20 ms,
 * a large part of a no-op `up`; but the hashes a project needs are known
 * once it is loaded, so the project cache (project-cache.ts) keeps them
 * with the project and hands them back here (`remember`): a command whose
 * project came from the cache hashes what it already knows without
 * loading node:crypto, and anything else the usual way.
 */
import type cryptoTypes from 'node:crypto';

let crypto: typeof cryptoTypes | undefined;
const known = new Map<string, string>();

export function sha256Hex(input: string): string {
  const h = known.get(input);
  if (h !== undefined) return h;
  crypto ??= process.getBuiltinModule('node:crypto');
  return crypto.createHash('sha256').update(input).digest('hex');
}

/** Hashes computed earlier (by sha256Hex): [input, hash] pairs. */
export function remember(pairs: Iterable<readonly [string, string]>): void {
  for (const [input, hash] of pairs) known.set(input, hash);
}
