/**
 * Validation of each compose file against the compose specification's
 * published JSON schema (schema/compose-spec.json, shipped in the repo),
 * with ajv's draft 2020-12 validator (compiled ahead of time). Of ajv's errors the most specific
 * one (the deepest location, as compose-go picks it) is reported, with the
 * file, the service and the key.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import module, { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { EngineError } from '../common/errors.ts';

/**
 * The schema's validator, generated ahead of time by schema/generate.ts
 * (compiling the schema here would cost each command ~250 ms). Durations
 * (the schema's `duration` format) are checked where normalize.ts parses
 * them, with the same Go syntax.
 */
export const GENERATED_VALIDATOR = fileURLToPath(new URL('./schema/compose-spec.validate.cjs', import.meta.url));

interface Loaded {
  validate: ValidateFunction;
  /** Whether V8 took the cached code (else the module was compiled from its source). */
  fromCache: boolean;
  /** Called after a validation: keeps the code V8 compiled for it, once. */
  ran(): void;
}

let loaded: Loaded | undefined;

/**
 * Loads the generated validator. Its code is one 400 KB function tree that
 * V8 compiles lazily, at the first call: Node's compile cache keeps only
 * what is compiled when a module loads, so every command paid that compile
 * again (~15 ms here, more under load, and the larger part of validating).
 * With a compile cache directory (bin/keel enables Node's), the module is
 * compiled here instead, and after its first validation the code V8 made
 * for it, the lazily compiled functions included, is written beside Node's
 * own cache entries, named by the hash of the source (V8 checks only the
 * source length); the next command loads it compiled. Without one (the
 * engine as a library, tests), it is a plain require.
 */
export function loadValidator(cacheDir = module.getCompileCacheDir?.()): Loaded {
  const require = createRequire(GENERATED_VALIDATOR);
  if (!cacheDir) return { validate: require(GENERATED_VALIDATOR) as ValidateFunction, fromCache: false, ran: () => {} };
  const source = fs.readFileSync(GENERATED_VALIDATOR, 'utf8');
  const cacheFile = path.join(cacheDir, `keel-compose-validator-${createHash('sha256').update(source).digest('hex').slice(0, 32)}`);
  let cachedData: Buffer | undefined;
  try {
    cachedData = fs.readFileSync(cacheFile);
  } catch {
    // not made yet: this command makes it
  }
  // CommonJS's own wrapper, on the same line: positions in stack traces stay the file's
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename: GENERATED_VALIDATOR, cachedData });
  const mod = { exports: {} as unknown };
  (script.runInThisContext() as (...a: unknown[]) => void)(mod.exports, require, mod, GENERATED_VALIDATOR, path.dirname(GENERATED_VALIDATOR));
  const fromCache = !!cachedData && script.cachedDataRejected === false;
  let fresh = !fromCache;
  return {
    validate: mod.exports as ValidateFunction,
    fromCache,
    ran() {
      if (!fresh) return;
      fresh = false;
      const tmp = `${cacheFile}.${process.pid}.tmp`;
      try {
        fs.writeFileSync(tmp, script.createCachedData(), { mode: 0o600 });
        fs.renameSync(tmp, cacheFile);
      } catch {
        fs.rmSync(tmp, { force: true }); // a cache that cannot be written only costs the next command the compile
      }
    },
  };
}

/** Throws INVALID_ARGUMENT naming the file and the location of the most specific violation. */
export function validateFile(data: unknown, file: string): void {
  loaded ??= loadValidator();
  const v = loaded.validate;
  const ok = v(data);
  loaded.ran();
  if (ok) return;
  const errs = v.errors ?? [];
  const best = errs.reduce<ErrorObject | undefined>((a, e) => (!a || specificity(e) > specificity(a) ? e : a), undefined);
  if (!best) throw new EngineError('INVALID_ARGUMENT', `validating ${file}: invalid compose file`);
  throw new EngineError('INVALID_ARGUMENT', `validating ${file}: ${describe(best)}`);
}

function specificity(e: ErrorObject): number {
  const depth = e.instancePath.split('/').length;
  return depth + (e.keyword === 'additionalProperties' ? 1 : 0) + (e.keyword === 'type' ? 0.5 : 0);
}

function location(e: ErrorObject): string {
  const parts = e.instancePath
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  return parts.length ? parts.join('.') : '(root)';
}

function describe(e: ErrorObject): string {
  const at = location(e);
  switch (e.keyword) {
    case 'additionalProperties':
      return `${at === '(root)' ? '' : `${at} `}additional properties '${(e.params as { additionalProperty: string }).additionalProperty}' not allowed`;
    case 'type': {
      const t = (e.params as { type: string | string[] }).type;
      const types = (Array.isArray(t) ? t : String(t).split(',')).map((x) => (x === 'object' ? 'mapping' : x === 'array' ? 'sequence' : x));
      return `${at} must be a ${types.length > 1 ? `${types.slice(0, -1).join(', ')} or ${types.at(-1)}` : types[0]}`;
    }
    case 'enum':
      return `${at} must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((x) => JSON.stringify(x)).join(', ')}`;
    case 'format':
      return `${at} must be a valid ${(e.params as { format: string }).format}`;
    case 'required':
      return `${at} is missing required property '${(e.params as { missingProperty: string }).missingProperty}'`;
    case 'uniqueItems':
      return `${at} must not contain duplicate items`;
    default:
      return `${at} ${e.message ?? 'is invalid'}`;
  }
}
