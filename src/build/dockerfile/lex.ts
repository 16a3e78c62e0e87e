/**
 * Docker's shell-style word processing (BuildKit's frontend/dockerfile/shell
 * lexer, re-implemented from its documented behaviour): `$V`, `${V}`,
 * `${V:-d}` `${V-d}` `${V:+x}` `${V+x}` `${V:?e}` `${V?e}`, `${V#p}` `${V##p}`
 * `${V%p}` `${V%%p}`, `${V/a/b}` `${V//a/b}`, single quotes (literal), double
 * quotes (only `$` and the escape char are special) and the escape character.
 * It is not a shell: no command substitution, no globbing, no arithmetic.
 */
import { EngineError } from '../../common/errors.ts';
import type { VarLookup } from './types.ts';

export interface LexOptions {
  escape: '\\' | '`';
  /** Keep quote characters in the result (heredoc detection). */
  rawQuotes?: boolean;
  /** Keep escape characters in the result. */
  rawEscapes?: boolean;
  /** Quotes are ordinary characters (COPY heredoc content). */
  skipQuotes?: boolean;
  /** Leave unset variables as written instead of expanding to "". */
  skipUnset?: boolean;
}

/** Nesting of `${...}` inside `${...}` is bounded: each level is a recursion. */
const MAX_DEPTH = 64;

class LexError extends Error {}

/** Go's unicode.IsSpace: JavaScript's \s without U+FEFF, plus U+0085. */
const isSpace = (c: string) => {
  const n = c.charCodeAt(0);
  if (n < 128) return n === 32 || (n >= 9 && n <= 13);
  return n === 0x85 || (n !== 0xfeff && /^\s$/u.test(c));
};
const isNameChar = (cp: string) => /^[\p{L}\p{Nd}_]$/u.test(cp);
const isDigit = (cp: string) => /^\p{Nd}$/u.test(cp);
const SPECIAL_PARAMS = '@*#?-$!0';

/** Words being collected: whitespace from variable values splits words, quoted text does not. */
class Words {
  words: string[] = [];
  private buf = '';
  private inWord = false;
  addChar(c: string): void {
    if (isSpace(c)) {
      if (this.inWord && this.buf.length > 0) {
        this.words.push(this.buf);
        this.buf = '';
        this.inWord = false;
      }
    } else this.addRaw(c);
  }
  addString(s: string): void {
    for (const c of s) this.addChar(c);
  }
  addRaw(s: string): void {
    this.buf += s;
    this.inWord = true;
  }
  finish(): string[] {
    if (this.buf.length > 0) this.words.push(this.buf);
    this.buf = '';
    this.inWord = false;
    return this.words;
  }
}

class Processor {
  private pos = 0;
  private depth = 0;
  private rawEscapes: boolean;
  private readonly src: string;
  private readonly o: LexOptions;
  private readonly vars: VarLookup;
  private readonly seen: Set<string> | undefined;
  constructor(src: string, o: LexOptions, vars: VarLookup, seen?: Set<string>) {
    this.src = src;
    this.o = o;
    this.vars = vars;
    this.seen = seen;
    this.rawEscapes = o.rawEscapes ?? false;
  }

  private peek(): string | undefined {
    return this.pos < this.src.length ? this.src[this.pos] : undefined;
  }
  private next(): string | undefined {
    return this.pos < this.src.length ? this.src[this.pos++] : undefined;
  }
  /** One code point (names may hold letters outside the BMP). */
  private peekCodePoint(): string | undefined {
    if (this.pos >= this.src.length) return undefined;
    return String.fromCodePoint(this.src.codePointAt(this.pos)!);
  }

  run(): { word: string; words: string[] } {
    return this.stopOn(undefined, this.rawEscapes);
  }

  private stopOn(stop: string | undefined, rawEscapes: boolean): { word: string; words: string[] } {
    if (++this.depth > MAX_DEPTH) throw new LexError('substitutions nested too deeply');
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      let result = '';
      const words = new Words();
      for (let c = this.peek(); c !== undefined; c = this.peek()) {
        if (stop !== undefined && c === stop) {
          this.pos++;
          return { word: result, words: words.finish() };
        }
        if (c === '$') {
          const v = this.dollar();
          result += v;
          words.addString(v);
        } else if (c === '<') {
          const v = this.possibleHeredoc();
          result += v;
          words.addRaw(v);
        } else if (!this.o.skipQuotes && (c === "'" || c === '"')) {
          const v = c === "'" ? this.singleQuote() : this.doubleQuote();
          result += v;
          words.addRaw(v);
        } else {
          this.pos++;
          if (c === this.o.escape) {
            if (this.rawEscapes) {
              words.addRaw(c);
              result += c;
            }
            const n = this.next();
            if (n === undefined) break;
            words.addRaw(n);
            result += n;
          } else {
            words.addChar(c);
            result += c;
          }
        }
      }
      if (stop !== undefined) throw new LexError(`unexpected end of statement while looking for matching ${stop}`);
      return { word: result, words: words.finish() };
    } finally {
      this.rawEscapes = saved;
      this.depth--;
    }
  }

  private singleQuote(): string {
    let out = this.o.rawQuotes ? "'" : '';
    this.pos++;
    const end = this.src.indexOf("'", this.pos);
    if (end < 0) throw new LexError('unexpected end of statement while looking for matching single-quote');
    out += this.src.slice(this.pos, end);
    this.pos = end + 1;
    return this.o.rawQuotes ? out + "'" : out;
  }

  private doubleQuote(): string {
    let out = this.o.rawQuotes ? '"' : '';
    this.pos++;
    for (;;) {
      const c = this.peek();
      if (c === undefined) throw new LexError('unexpected end of statement while looking for matching double-quote');
      if (c === '"') {
        this.pos++;
        return this.o.rawQuotes ? out + '"' : out;
      }
      if (c === '$') {
        out += this.dollar();
        continue;
      }
      this.pos++;
      if (c === this.o.escape) {
        if (this.rawEscapes) out += c;
        const n = this.peek();
        if (n === undefined) continue; // reported as the missing closing quote
        if (n === '"' || n === '$' || n === this.o.escape) {
          this.pos++;
          out += n;
          continue;
        }
      }
      out += c;
    }
  }

  private lookup(name: string): string | undefined {
    this.seen?.add(name);
    return this.vars(name);
  }

  private name(): string {
    let name = '';
    for (let cp = this.peekCodePoint(); cp !== undefined; cp = this.peekCodePoint()) {
      if (name === '' && isDigit(cp)) {
        while ((cp = this.peekCodePoint()) !== undefined && isDigit(cp)) {
          name += cp;
          this.pos += cp.length;
        }
        return name;
      }
      if (name === '' && SPECIAL_PARAMS.includes(cp)) {
        this.pos++;
        return cp;
      }
      if (!isNameChar(cp)) break;
      name += cp;
      this.pos += cp.length;
    }
    return name;
  }

  private dollar(): string {
    this.pos++; // '$'
    if (this.peek() !== '{') {
      const name = this.name();
      if (name === '') return '$';
      const v = this.lookup(name);
      if (v === undefined && this.o.skipUnset) return '$' + name;
      return v ?? '';
    }
    this.pos++; // '{'
    const first = this.peek();
    if (first === undefined) throw new LexError("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') throw new LexError('syntax error: bad substitution');
    const name = this.name();
    let op = this.next();
    if (op === undefined) throw new LexError("syntax error: missing '}'");
    if (op === '}') {
      const v = this.lookup(name);
      if (v === undefined && this.o.skipUnset) return `\${${name}}`;
      return v ?? '';
    }
    if (op === '/') return this.replace(name);
    let mod = op;
    let nullIsUnset = false;
    if (op === ':') {
      nullIsUnset = true;
      op = this.next();
      if (op === undefined) throw new LexError("syntax error: missing '}'");
      mod += op;
    }
    if (!'+-?#%'.includes(op) && !nullIsUnset) throw new LexError(`unsupported modifier (${mod}) in substitution`);
    const patternOp = op === '#' || op === '%';
    if (nullIsUnset && patternOp) throw new LexError(`unsupported modifier (${mod}) in substitution`);
    const word = this.stopOnOrMissing('}', patternOp, "syntax error: missing '}'");
    const value = this.lookup(name);
    const set = value !== undefined;
    if (this.o.skipUnset && !set) return `\${${name}${mod}${word}}`;
    const empty = !set || (nullIsUnset && value === '');
    switch (op) {
      case '-':
        return empty ? word : value!;
      case '+':
        return empty ? '' : word;
      case '?':
        if (!set) throw new LexError(`${name}: ${word || 'is not allowed to be unset'}`);
        if (nullIsUnset && value === '') throw new LexError(`${name}: ${word || 'is not allowed to be empty'}`);
        return value;
      case '#':
      case '%': {
        const greedy = word.startsWith(op);
        const pat = greedy ? word.slice(1) : word;
        return op === '#' ? trimPrefix(pat, value ?? '', greedy) : trimSuffix(pat, value ?? '', greedy);
      }
      default:
        throw new LexError(`unsupported modifier (${mod}) in substitution`);
    }
  }

  private stopOnOrMissing(stop: string, rawEscapes: boolean, missing: string): string {
    try {
      return this.stopOn(stop, rawEscapes).word;
    } catch (e) {
      if (e instanceof LexError && this.peek() === undefined && !/nested too deeply/.test(e.message)) throw new LexError(missing);
      throw e;
    }
  }

  /** `${V/pattern/replacement}`, `${V//pattern/replacement}` (all matches). */
  private replace(name: string): string {
    const all = this.peek() === '/';
    if (all) this.pos++;
    const pattern = this.stopOnOrMissing('/', true, "syntax error: missing '/' in ${}");
    const replacement = this.stopOnOrMissing('}', true, "syntax error: missing '}'");
    const value = this.lookup(name);
    if (value === undefined && this.o.skipUnset) return `\${${name}/${pattern}/${replacement}}`;
    const re = patternToRegex(pattern, true, false, all);
    const v = value ?? '';
    return v.replace(re, () => replacement);
  }

  /** `<<` keeps the blanks after it in the same word, so `<< EOF` is one word (heredoc detection). */
  private possibleHeredoc(): string {
    this.pos++;
    if (this.peek() !== '<') return '<';
    this.pos++;
    let out = '<<';
    for (let c = this.peek(); c === ' ' || c === '\t' || c === '\r'; c = this.peek()) {
      out += c;
      this.pos++;
    }
    return out;
  }
}

/** A shell pattern (`*`, `?`, `\` escapes) as a regular expression. */
function patternToRegex(pattern: string, greedy: boolean, anchored: boolean, global = false): RegExp {
  let out = anchored ? '^' : '';
  // Go's `.` stops at a newline only (JavaScript's also at \r, U+2028, U+2029).
  const star = greedy ? '[^\\n]*' : '[^\\n]*?';
  const cps = Array.from(pattern);
  for (let i = 0; i < cps.length; i++) {
    const c = cps[i]!;
    if (c === '*') out += star;
    else if (c === '?') out += '[^\\n]';
    else if (c === '\\') {
      const n = cps[i + 1];
      if (n === '}' || n === '/') continue;
      if (n !== '*' && n !== '?' && n !== '\\') throw new LexError(`invalid pattern (${pattern}) in substitution: invalid escape '\\${n ?? ''}'`);
      out += '\\' + n;
      i++;
    } else out += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(out, global ? 'gu' : 'u');
}

function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  const m = patternToRegex(pattern, greedy, true).exec(value);
  return m ? value.slice(m[0].length) : value;
}

/** Suffix removal is prefix removal on the reversed value with the reversed pattern. */
function trimSuffix(pattern: string, value: string, greedy: boolean): string {
  const cps = Array.from(pattern);
  const rev: string[] = [];
  for (let i = 0; i < cps.length; i++) {
    if (cps[i] === '\\' && i + 1 < cps.length) {
      rev.unshift('\\' + cps[i + 1]);
      i++;
    } else rev.unshift(cps[i]!);
  }
  const reversed = Array.from(value).reverse().join('');
  return Array.from(trimPrefix(rev.join(''), reversed, greedy))
    .reverse()
    .join('');
}

function run(text: string, vars: VarLookup, o: LexOptions, seen?: Set<string>): { word: string; words: string[] } {
  try {
    return new Processor(text, o, vars, seen).run();
  } catch (e) {
    if (e instanceof LexError) throw new EngineError('INVALID_ARGUMENT', `failed to process ${JSON.stringify(text)}: ${e.message}`);
    throw e;
  }
}

/** Expand one word as docker does (quotes removed, variables substituted, whitespace kept). */
export function expand(word: string, vars: VarLookup, escape: '\\' | '`' = '\\'): string {
  return run(word, vars, { escape }).word;
}

/** Expand and split into words: whitespace splits words unless it was quoted or escaped. */
export function expandWords(text: string, vars: VarLookup, escape: '\\' | '`' = '\\'): string[] {
  return run(text, vars, { escape }).words;
}

/** The lexer with explicit options (heredoc detection, COPY heredoc content, ...). */
export function lex(text: string, vars: VarLookup, o: LexOptions, seen?: Set<string>): { word: string; words: string[] } {
  return run(text, vars, o, seen);
}

export const noVars: VarLookup = () => undefined;
