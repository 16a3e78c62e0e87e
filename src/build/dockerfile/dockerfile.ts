/**
 * A whole Dockerfile: directives, meta ARGs, stages. Every instruction is
 * checked here (keywords, flags, argument counts, JSON forms, stage names) so
 * that a syntax error stops the build before anything runs, as BuildKit does.
 */
import { EngineError } from '../../common/errors.ts';
import { checkInstruction } from './compile.ts';
import { DEFAULT_MAX_DOCKERFILE_BYTES, LocatedError, readInstructions } from './parser.ts';
import type { Directives, Dockerfile, RawInstruction, Stage } from './types.ts';

export interface ParseOptions {
  /** The file's name in error messages (default `Dockerfile`). */
  file?: string;
  /** Refuse a larger text, in UTF-8 bytes (default 4 MiB: BuildKit has no bound, but the text is held whole). */
  maxBytes?: number;
}

export function parseDockerfile(text: string, opts: ParseOptions = {}): Dockerfile {
  const file = opts.file ?? 'Dockerfile';
  const max = opts.maxBytes ?? DEFAULT_MAX_DOCKERFILE_BYTES;
  // Cheap first test on UTF-16 length (never more than the UTF-8 size), then the exact UTF-8 size.
  if (text.length > max || Buffer.byteLength(text, 'utf8') > max) {
    throw new EngineError('INVALID_ARGUMENT', `${file} is too large: ${Buffer.byteLength(text, 'utf8')} bytes, the limit is ${max}`);
  }
  if (text.trim() === '') throw new EngineError('INVALID_ARGUMENT', `${file}: the Dockerfile cannot be empty`);
  const directives: Directives = { escape: '\\' };
  const all = readInstructions(text, directives, '\\', file);
  if (all.length === 0) throw new LocatedError(1, 'file with no instructions', file);
  const metaArgs: RawInstruction[] = [];
  const stages: Stage[] = [];
  const names = new Map<string, number>();
  for (const raw of all) {
    checkInstruction(raw, directives.escape);
    if (raw.keyword === 'FROM') {
      const a = raw.rest.split(/[\t\v\f\r ]+/);
      const name = a.length === 3 ? a[2]!.toLowerCase() : undefined;
      if (name !== undefined) {
        const prev = names.get(name);
        if (prev !== undefined)
          throw new LocatedError(raw.loc.line, `duplicate stage name "${name}" (first defined on line ${prev}): stage names must be unique`, file);
        names.set(name, raw.loc.line);
      }
      const stage: Stage = { index: stages.length, from: raw, instructions: [] };
      if (name !== undefined) stage.name = name;
      stages.push(stage);
    } else if (stages.length === 0) {
      if (raw.keyword !== 'ARG') {
        throw new LocatedError(
          raw.loc.line,
          `no build stage in current context: ${raw.keyword} must come after a FROM (only ARG may come before the first FROM)`,
          file,
        );
      }
      metaArgs.push(raw);
    } else stages[stages.length - 1]!.instructions.push(raw);
  }
  if (stages.length === 0) throw new LocatedError(all[all.length - 1]!.loc.line, 'dockerfile contains no stages to build: add a FROM', file);
  return { directives, metaArgs, stages };
}

/**
 * One instruction from its text: an ONBUILD trigger (which may carry its
 * heredocs after a newline), checked like an instruction of a Dockerfile.
 * BuildKit parses triggers with the default escape character whatever the
 * building Dockerfile's directive says, hence the default.
 */
export function parseInstruction(text: string, escape: '\\' | '`' = '\\'): RawInstruction {
  const all = readInstructions(text, undefined, escape, 'ONBUILD trigger');
  if (all.length !== 1) throw new EngineError('INVALID_ARGUMENT', `expected one instruction, found ${all.length} in ${JSON.stringify(text.slice(0, 200))}`);
  checkInstruction(all[0]!, escape);
  return all[0]!;
}

/**
 * The variable names an instruction's text mentions (`$NAME`, `${NAME...}`),
 * including heredocs: a superset of what its expansion reads, for cache keys.
 */
export function usedVariables(raw: RawInstruction): string[] {
  const seen = new Set<string>();
  const scan = (s: string) => {
    for (const m of s.matchAll(/\$\{?([\p{L}_][\p{L}\p{Nd}_]*)/gu)) seen.add(m[1]!);
  };
  scan(raw.original);
  for (const h of raw.heredocs) scan(h.content);
  return [...seen];
}
