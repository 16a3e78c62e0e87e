/**
 * Dockerfile text → raw instructions, with BuildKit's line rules: parser
 * directives at the top, continuation lines (comment and blank lines inside a
 * continuation are dropped), heredocs after RUN/COPY/ADD, flags before the
 * arguments. Nothing is expanded here: variables are only known while a stage
 * runs (compile.ts).
 */
import { EngineError } from '../../common/errors.ts';
import { lex, noVars } from './lex.ts';
import type { Directives, Heredoc, RawFlag, RawInstruction } from './types.ts';

type Escape = '\\' | '`';

/** Default bound on a Dockerfile's size; BuildKit has none, but a Dockerfile is read whole into memory. */
export const DEFAULT_MAX_DOCKERFILE_BYTES = 4 * 1024 * 1024;

export const INSTRUCTIONS = new Set([
  'ADD',
  'ARG',
  'CMD',
  'COPY',
  'ENTRYPOINT',
  'ENV',
  'EXPOSE',
  'FROM',
  'HEALTHCHECK',
  'LABEL',
  'MAINTAINER',
  'ONBUILD',
  'RUN',
  'SHELL',
  'STOPSIGNAL',
  'USER',
  'VOLUME',
  'WORKDIR',
]);
/** Instructions whose argument may be a JSON array. */
const MAYBE_JSON = new Set(['RUN', 'CMD', 'ENTRYPOINT', 'SHELL', 'ADD', 'COPY', 'VOLUME']);
const HEREDOC_KEYWORDS = new Set(['RUN', 'COPY', 'ADD']);

/** An error at a place in the file, as the builder reports it. */
export class LocatedError extends EngineError {
  readonly line: number;
  readonly detail: string;
  constructor(line: number, detail: string, file = 'Dockerfile') {
    super('INVALID_ARGUMENT', `${file}:${line}: ${detail}`);
    this.line = line;
    this.detail = detail;
  }
}

const fail = (file: string, line: number, msg: string): never => {
  throw new LocatedError(line, msg, file);
};

/** What a JavaScript `\s` also holds that Go's unicode.IsSpace does not, and the reverse, are irrelevant here. */
const isBlank = (c: number) => c === 32 || (c >= 9 && c <= 13) || (c > 127 && /\s/u.test(String.fromCharCode(c)));
/** Index of the first non-blank character (a loop: this runs on every line). */
function firstNonBlank(s: string): number {
  let i = 0;
  while (i < s.length && isBlank(s.charCodeAt(i))) i++;
  return i;
}
const trimLeft = (s: string) => {
  const i = firstNonBlank(s);
  return i === 0 ? s : s.slice(i);
};
/** Trailing CR/LF removed by a loop: an anchored-at-end regex is quadratic on long runs. */
function trimNewline(s: string): string {
  let end = s.length;
  while (end > 0 && (s[end - 1] === '\n' || s[end - 1] === '\r')) end--;
  return end === s.length ? s : s.slice(0, end);
}
const isComment = (s: string) => s.charCodeAt(firstNonBlank(s)) === 35; // '#'

/** Parser directives: `# name=value` lines at the very top; the first other line ends them. */
class DirectiveReader {
  done = false;
  seen = new Set<string>();
  readonly d: Directives;
  constructor(d: Directives) {
    this.d = d;
  }
  /** Returns true when the line was a directive. */
  line(text: string): boolean {
    if (this.done) return false;
    if (!text.startsWith('#')) return ((this.done = true), false);
    const m = /^([a-zA-Z][a-zA-Z0-9]*)\s*=([\s\S]*)$/u.exec(trimLeft(text.slice(1)));
    const key = m?.[1]!.toLowerCase();
    const value = m?.[2]!.trim() ?? '';
    if (!m || value === '' || (key !== 'syntax' && key !== 'escape' && key !== 'check')) return ((this.done = true), false);
    if (this.seen.has(key)) throw new Error(`only one ${key} parser directive can be used`);
    this.seen.add(key);
    if (key === 'escape') {
      if (value !== '\\' && value !== '`') throw new Error(`invalid escape token '${value.slice(0, 40)}' does not match \` or \\`);
      this.d.escape = value;
    } else this.d[key] = value;
    return true;
  }
}

/** Removes a trailing escape character (and blanks after it); says whether the line continues. */
function trimContinuation(line: string, escape: Escape): [string, boolean] {
  let end = line.length;
  while (end > 0 && (line[end - 1] === ' ' || line[end - 1] === '\t')) end--;
  if (end === 0 || line[end - 1] !== escape) return [line, false];
  if (end >= 2 && line[end - 2] === escape) return [line, false];
  return [line.slice(0, end - 1), true];
}

/** A heredoc named on an instruction line: `<<EOF`, `<<-EOF`, `<<"EOF"`, `2<<EOF`. */
export function parseHeredocWord(word: string): (Heredoc & { chomp: boolean; fd: number }) | undefined {
  const m = /^(\d*)<<(-?)\s*([^<]*)$/u.exec(word);
  if (!m || m[3] === '') return undefined;
  const plain = lex(m[3]!, noVars, { escape: '\\', skipUnset: true }).words;
  if (plain.length !== 1) return undefined;
  const raw = lex(m[3]!, noVars, { escape: '\\', skipUnset: true, rawQuotes: true }).words;
  const quotes = (s: string) => s.split(/['"]/).length - 1;
  return { name: plain[0]!, content: '', expand: quotes(plain[0]!) === quotes(raw[0]!), chomp: m[2] === '-', fd: m[1] ? Number(m[1]) : 0 };
}

function heredocsOfLine(line: string): (Heredoc & { chomp: boolean; fd: number })[] {
  let words: string[];
  try {
    words = lex(line, noVars, { escape: '\\', rawQuotes: true, rawEscapes: true, skipUnset: true }).words;
  } catch {
    return []; // BuildKit ignores a line its lexer cannot split here
  }
  return words.map(parseHeredocWord).filter((h) => h !== undefined);
}

/** `--flag[=value]` words before the arguments; `--` alone ends them. */
function extractFlags(text: string, escape: Escape): { flags: string[]; rest: string } {
  const flags: string[] = [];
  let pos = 0;
  for (;;) {
    while (pos < text.length && /\s/u.test(text[pos]!)) pos++;
    if (pos >= text.length) return { flags, rest: '' };
    if (!text.startsWith('--', pos)) return { flags, rest: text.slice(pos) };
    let word = '';
    let quote = '';
    let blankOk = false;
    for (; pos < text.length; pos++) {
      let c = text[pos]!;
      if (quote) {
        if (c === quote) {
          quote = '';
          continue;
        }
      } else {
        if (/\s/u.test(c)) break;
        if (c === "'" || c === '"') {
          quote = c;
          blankOk = true;
          continue;
        }
      }
      if (c === escape) {
        if (pos + 1 === text.length) {
          quote = '';
          continue;
        }
        c = text[++pos]!;
      }
      word += c;
    }
    if (word === '--' && pos < text.length) return { flags, rest: text.slice(pos) };
    if (word !== '--' && (blankOk || word.length > 0)) flags.push(word);
  }
}

function toRawFlag(word: string): RawFlag {
  const body = word.slice(2);
  const eq = body.indexOf('=');
  return eq < 0 ? { name: body } : { name: body.slice(0, eq), value: body.slice(eq + 1) };
}

/** The argument as a JSON array of strings, undefined when it is not JSON (shell form). */
export function parseJsonArgs(rest: string): string[] | undefined {
  const t = trimLeft(rest);
  if (!t.startsWith('[')) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(t);
  } catch {
    return undefined;
  }
  if (!Array.isArray(v)) return undefined;
  if (!v.every((x) => typeof x === 'string')) throw new Error('when using JSON array syntax, arrays must be comprised of strings only');
  return v as string[];
}

interface LineSource {
  lines: string[];
  /** Index of the next line to read. */
  i: number;
}

/** Builds one raw instruction from a logical line (continuations joined) and reads its heredocs. */
function makeInstruction(src: LineSource, line: string, escape: Escape, startLine: number, file: string): RawInstruction {
  const trimmed = line.trim();
  if (trimmed === '') fail(file, startLine, 'unknown instruction: (an empty line continued by an escape character)');
  const m = /^([^\t\v\f\r ]+)(?:[\t\v\f\r ]+([\s\S]*))?$/u.exec(trimmed)!;
  // An unknown keyword is reported when the instructions are checked, in file order (checkInstruction).
  const keyword = m[1]!.toUpperCase();
  const { flags, rest: afterFlags } = extractFlags(m[2] ?? '', escape);
  const rest = afterFlags.trim();
  let json: string[] | undefined;
  // ONBUILD carries another instruction: its heredocs and form are the trigger's.
  let inner = keyword;
  let innerRest = rest;
  if (keyword === 'ONBUILD') {
    const t = /^(\S+)(?:\s+([\s\S]*))?$/u.exec(rest);
    inner = t?.[1]!.toUpperCase() ?? '';
    innerRest = extractFlags(t?.[2] ?? '', escape).rest.trim();
  }
  try {
    if (MAYBE_JSON.has(keyword)) json = parseJsonArgs(rest);
    else if (keyword === 'ONBUILD' && MAYBE_JSON.has(inner)) parseJsonArgs(innerRest);
  } catch (e) {
    fail(file, startLine, (e as Error).message);
  }
  const heredocs: Heredoc[] = [];
  const innerJson = keyword === 'ONBUILD' ? (MAYBE_JSON.has(inner) ? safeJson(innerRest) : undefined) : json;
  if (HEREDOC_KEYWORDS.has(inner) && innerJson === undefined && line.includes('<<')) {
    for (const h of heredocsOfLine(line)) {
      let content = '';
      let closed = false;
      while (src.i < src.lines.length) {
        const l = src.lines[src.i++]!;
        let candidate = trimNewline(l);
        if (h.chomp) candidate = candidate.replace(/^\t+/, '');
        if (candidate === h.name) {
          closed = true;
          break;
        }
        content += l;
      }
      if (!closed)
        fail(
          file,
          startLine,
          `unterminated heredoc ${JSON.stringify(h.name)} (opened by ${JSON.stringify(trimmed.slice(0, 200))}): no line "${h.name}" closes it`,
        );
      heredocs.push({ ...h, content });
    }
  }
  const inst: RawInstruction = {
    keyword,
    original: line,
    flags: flags.map(toRawFlag),
    rest,
    heredocs,
    loc: { line: startLine, endLine: src.i },
    file,
    escape,
  };
  if (json !== undefined) inst.json = json;
  return inst;
}

function safeJson(s: string): string[] | undefined {
  try {
    return parseJsonArgs(s);
  } catch {
    return undefined;
  }
}

/** Splits text into lines that keep their newline (heredoc content keeps them). */
function splitLines(text: string): string[] {
  const lines = text.split(/(?<=\n)/);
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** Reads every instruction of a text. `directives` is undefined when the text has none (ONBUILD triggers). */
export function readInstructions(text: string, directives: Directives | undefined, escapeIn: Escape, file: string): RawInstruction[] {
  const src: LineSource = { lines: splitLines(text.startsWith('\ufeff') ? text.slice(1) : text), i: 0 };
  const reader = directives ? new DirectiveReader(directives) : undefined;
  const out: RawInstruction[] = [];
  const escape = () => directives?.escape ?? escapeIn;
  while (src.i < src.lines.length) {
    const lineNo = src.i + 1;
    let first = trimLeft(trimNewline(src.lines[src.i++]!));
    try {
      reader?.line(first);
    } catch (e) {
      fail(file, lineNo, (e as Error).message);
    }
    if (isComment(first)) first = '';
    let [part, more] = trimContinuation(first, escape());
    if (!more && part.length === 0) continue;
    const parts = [part];
    while (more && src.i < src.lines.length) {
      const raw = src.lines[src.i++]!;
      reader?.line(trimNewline(raw));
      if (isComment(raw)) continue;
      const l = trimNewline(raw);
      if (firstNonBlank(l) === l.length) continue;
      [part, more] = trimContinuation(l, escape());
      parts.push(part);
    }
    out.push(makeInstruction(src, parts.join(''), escape(), lineNo, file));
  }
  return out;
}
