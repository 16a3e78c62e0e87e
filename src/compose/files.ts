/**
 * Finding and reading compose files. A compose file is untrusted input:
 * its size is checked before it is read, YAML aliases are bounded (a
 * "billion laughs" file fails in milliseconds), and parse errors name the
 * file and line.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseDocument, Scalar, type ScalarTag, visit } from 'yaml';
import { EngineError } from '../common/errors.ts';
import { Override, RESET } from './merge.ts';

/** The names docker compose looks for, in its order of preference. */
export const DEFAULT_FILES = ['compose.yaml', 'compose.yml', 'docker-compose.yml', 'docker-compose.yaml'];
export const OVERRIDE_FILES = ['compose.override.yaml', 'compose.override.yml', 'docker-compose.override.yml', 'docker-compose.override.yaml'];

/** Compose files are configuration, not data: 8 MiB is far beyond any real one. */
export const MAX_FILE_BYTES = 8 << 20;
/** How many alias expansions a file may make (the yaml library's guard against alias bombs). */
export const MAX_ALIASES = 1000;

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

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Reads a text file up to `max` bytes, refusing a larger one before reading it. */
export function readBounded(file: string, max = MAX_FILE_BYTES): string {
  let fd: number;
  try {
    // `-f -`: the compose file on standard input
    fd = file === '-' ? 0 : fs.openSync(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new EngineError(
      code === 'ENOENT' ? 'NOT_FOUND' : 'INVALID_ARGUMENT',
      `${file}: ${code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}`,
    );
  }
  try {
    const st = fs.fstatSync(fd);
    if (st.isDirectory()) throw new EngineError('INVALID_ARGUMENT', `${file}: is a directory`);
    if (st.isFile() && st.size > max)
      throw new EngineError('INVALID_ARGUMENT', `${file}: file is too large (${st.size} bytes; a compose file may have at most ${max})`);
    // a pipe has no size: room for the limit, and one byte to notice more
    const buf = Buffer.alloc((st.isFile() ? Math.min(st.size, max) : max) + 1);
    let n = 0;
    // read to EOF rather than trust st.size (a pipe or a growing file)
    for (;;) {
      let r: number;
      try {
        r = fs.readSync(fd, buf, n, buf.length - n, null);
      } catch (e) {
        // a non-blocking stdin with nothing yet
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') continue;
        throw e;
      }
      if (r === 0) break;
      n += r;
      if (n >= buf.length) throw new EngineError('INVALID_ARGUMENT', `${file}: file is too large (a compose file may have at most ${max} bytes)`);
    }
    return buf.subarray(0, n).toString('utf8');
  } finally {
    if (fd !== 0) fs.closeSync(fd);
  }
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
    throw new EngineError('INVALID_ARGUMENT', `${file}: yaml: ${e.message.split('\n')[0]}${at}`);
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
    throw new EngineError('INVALID_ARGUMENT', `${file}: yaml: ${(e as Error).message}`);
  }
  if (data === null || data === undefined) throw new EngineError('INVALID_ARGUMENT', `${file}: empty compose file`);
  if (typeof data !== 'object' || Array.isArray(data)) throw new EngineError('INVALID_ARGUMENT', `${file}: top-level object must be a mapping`);
  return data as Record<string, unknown>;
}
