/**
 * Finding and parsing compose files. A compose file is untrusted input:
 * its size is checked before it is read (inputs.ts), YAML aliases are
 * bounded (a "billion laughs" file fails in milliseconds), and parse
 * errors name the file and line.
 */
import path from 'node:path';
import { parseDocument, Scalar, type ScalarTag, visit } from 'yaml';
import { EngineError } from '../common/errors.ts';
import { isFile } from './inputs.ts';
import { Override, RESET } from './merge.ts';

/** The names docker compose looks for, in its order of preference. */
export const DEFAULT_FILES = ['compose.yaml', 'compose.yml', 'docker-compose.yml', 'docker-compose.yaml'];
export const OVERRIDE_FILES = ['compose.override.yaml', 'compose.override.yml', 'docker-compose.override.yml', 'docker-compose.override.yaml'];

/** How many alias expansions a file may make (the yaml library's guard against alias bombs). */
export const MAX_ALIASES = 1000;

/**
 * How deep a file's mappings and sequences may nest. What reads a project
 * (merge, interpolation, the schema, hashing, `config`'s YAML) recurses,
 * and a few hundred levels overflow its stack; no compose file nests near
 * this.
 */
export const MAX_DEPTH = 100;

/**
 * The compose file (and its override file, when present) docker compose
 * would pick from `dir`: the first directory up from dir that holds one.
 */
export function findComposeFiles(dir: string): string[] {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    const found = DEFAULT_FILES.find((f) => isFile(path.join(d, f)));
    if (found) {
      const over = OVERRIDE_FILES.find((f) => isFile(path.join(d, f)));
      return [path.join(d, found), ...(over ? [path.join(d, over)] : [])];
    }
    if (path.dirname(d) === d) break;
  }
  throw new EngineError(
    'NOT_FOUND',
    `no configuration file provided: not found (looked for ${DEFAULT_FILES.join(', ')} in ${path.resolve(dir)} and its parents)`,
  );
}

/**
 * `0440` is an octal number, as compose-go's YAML parser (yaml.v3) reads it
 * for compatibility with YAML 1.1: a file `mode: 0440` is 0o440, not 440.
 */
const legacyOctal: ScalarTag = {
  tag: 'tag:yaml.org,2002:int',
  default: true,
  test: /^0[0-7]+$/,
  identify: () => false,
  resolve: (s) => parseInt(s, 8),
};

/**
 * Parses one YAML document into plain data. `!reset` and `!override`
 * become the merge markers of merge.ts; `<<` merge keys are honoured.
 */
export function parseYaml(text: string, file: string): Record<string, unknown> {
  const doc = parseDocument(text, { merge: true, uniqueKeys: true, prettyErrors: false, customTags: (tags) => [legacyOctal, ...tags] });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const at = e.linePos ? ` (line ${e.linePos[0].line}, column ${e.linePos[0].col})` : '';
    throw new EngineError('INVALID_ARGUMENT', `${file}: yaml: ${tooDeep(e.message.split('\n')[0]!)}${at}`);
  }
  visit(doc, {
    Node(_key, node) {
      if (node.tag === '!reset') return new Scalar(RESET);
      if (node.tag === '!override') {
        node.tag = undefined;
        return new Scalar(new Override(node.toJS(doc, { maxAliasCount: MAX_ALIASES })));
      }
      return undefined;
    },
  });
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (e) {
    throw new EngineError('INVALID_ARGUMENT', `${file}: yaml: ${tooDeep((e as Error).message)}`);
  }
  if (data === null || data === undefined) throw new EngineError('INVALID_ARGUMENT', `${file}: empty compose file`);
  if (typeof data !== 'object' || Array.isArray(data)) throw new EngineError('INVALID_ARGUMENT', `${file}: top-level object must be a mapping`);
  checkDepth(data, file);
  return data as Record<string, unknown>;
}

/** The yaml library's own recursion ends a few hundred levels deeper than MAX_DEPTH, in a stack overflow. */
function tooDeep(message: string): string {
  return message.includes('Maximum call stack size exceeded') ? `nested more than ${MAX_DEPTH} levels deep` : message;
}

interface Visit {
  value: unknown;
  key: string;
  parent?: Visit;
  depth: number;
}

/**
 * Refuses data nested deeper than MAX_DEPTH, or holding itself (an alias
 * inside its own anchor: `x: &a {b: *a}`), naming the key where it
 * happens. Iterative: it must not overflow the stack it protects.
 */
function checkDepth(data: unknown, file: string): void {
  const stack: Visit[] = [{ value: data, key: '', depth: 0 }];
  for (let v = stack.pop(); v; v = stack.pop()) {
    if (typeof v.value !== 'object' || v.value === null) continue;
    if (v.depth > MAX_DEPTH) {
      let inside = false;
      for (let a = v.parent; a && !inside; a = a.parent) inside = a.value === v.value;
      const why = inside ? 'refers to itself (an alias inside its own anchor)' : `nested more than ${MAX_DEPTH} levels deep`;
      throw new EngineError('INVALID_ARGUMENT', `${file}: ${keyPath(v)}: ${why}`);
    }
    for (const [key, value] of Object.entries(v.value)) stack.push({ value, key: Array.isArray(v.value) ? `[${key}]` : key, parent: v, depth: v.depth + 1 });
  }
}

/** Where a visit is, as `services.web.x-a[0].b`: its first keys, enough to find it in the file. */
function keyPath(v: Visit): string {
  const keys: string[] = [];
  for (let a: Visit | undefined = v; a?.parent; a = a.parent) keys.unshift(a.key);
  const shown = keys.slice(0, 8).reduce((out, k) => (out && !k.startsWith('[') ? `${out}.${k}` : `${out}${k}`), '');
  return keys.length > 8 ? `${shown}…` : shown;
}
