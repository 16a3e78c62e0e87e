/**
 * Validation of each compose file against the compose specification's
 * published JSON schema (schema/compose-spec.json, shipped in the repo),
 * with ajv's draft 2020-12 validator (compiled ahead of time). Of ajv's errors the most specific
 * one (the deepest location, as compose-go picks it) is reported, with the
 * file, the service and the key.
 */
import { createRequire } from 'node:module';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { EngineError } from '../common/errors.ts';

let validator: ValidateFunction | undefined;

/**
 * The schema's validator, generated ahead of time by schema/generate.ts
 * (compiling the schema here would cost each command ~250 ms). Durations
 * (the schema's `duration` format) are checked where normalize.ts parses
 * them, with the same Go syntax.
 */
function compile(): ValidateFunction {
  validator ??= createRequire(import.meta.url)('./schema/compose-spec.validate.cjs') as ValidateFunction;
  return validator;
}

/** Throws INVALID_ARGUMENT naming the file and the location of the most specific violation. */
export function validateFile(data: unknown, file: string): void {
  const v = compile();
  if (v(data)) return;
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
