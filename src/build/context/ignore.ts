/**
 * `.dockerignore` with docker's rules (moby/patternmatcher and its
 * ignorefile reader, re-implemented): one pattern a line, `#` comments only
 * at the very start of a line, `!` re-includes, patterns cleaned like Go's
 * filepath.Clean with a leading `/` dropped; `*` and `?` stay inside one path
 * segment, `**` crosses any number of them, `[a-z]` classes and `\` escapes
 * as Go's regexp. A pattern matching a directory excludes everything under it
 * unless a later `!` pattern matches the file. Paths are case-sensitive.
 *
 * @balena/dockerignore (a port of moby 19.03) was weighed: it ignores case by
 * default, and has no way to tell whether an excluded directory can be
 * skipped whole, which a context walk needs.
 */
import { EngineError } from '../../common/errors.ts';

/** Go's path.Clean: lexical, `/` separators. */
export function cleanPath(p: string): string {
  if (p === '') return '.';
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(seg);
  }
  const s = (rooted ? '/' : '') + out.join('/');
  return s === '' ? '.' : s;
}

/** The patterns of a .dockerignore text, comments and blank lines removed, each cleaned as docker does. */
export function parseDockerignore(text: string): string[] {
  const out: string[] = [];
  const lines = (text.startsWith('\ufeff') ? text.slice(1) : text).split('\n');
  for (const rawLine of lines) {
    if (rawLine.startsWith('#')) continue;
    let p = rawLine.trim();
    if (p === '') continue;
    const invert = p.startsWith('!');
    if (invert) p = p.slice(1).trim();
    if (p.length > 0) {
      p = cleanPath(p);
      if (p.length > 1 && p.startsWith('/')) p = p.slice(1);
    }
    out.push(invert ? `!${p}` : p);
  }
  return out;
}

interface Pattern {
  exclusion: boolean;
  cleaned: string;
  /** Per path segment: undefined for a `**` segment, else its matcher (built once, used per directory walked). */
  segments: (((seg: string) => boolean) | undefined)[];
  test: (path: string) => boolean;
  /**
   * Segments a matching path has, when fixed: without `**` or a [class] (which may match `/`), `*` and
   * `?` stay inside a segment, so only the path or ancestor of that depth can match.
   */
  depth: number | undefined;
}

const ESCAPE = new Set('.+()|{}$'.split(''));

/** One pattern as a predicate, with patternmatcher's fast paths (exact, `dir/**` prefix, `**\/x` suffix). */
function compile(pattern: string): (path: string) => boolean {
  let re = '^';
  let kind: 'exact' | 'prefix' | 'suffix' | 'regexp' = 'exact';
  const cps = Array.from(pattern);
  for (let i = 0, n = 0; i < cps.length; i++, n++) {
    const c = cps[i]!;
    if (c === '*') {
      if (cps[i + 1] === '*') {
        i++;
        if (cps[i + 1] === '/') i++;
        if (i + 1 >= cps.length) {
          if (kind === 'exact') kind = 'prefix';
          else {
            re += '[^\\n]*';
            kind = 'regexp';
          }
        } else {
          re += '([^\\n]*/)?';
          kind = 'regexp';
        }
        if (n === 0) kind = 'suffix';
      } else {
        re += '[^/]*';
        kind = 'regexp';
      }
    } else if (c === '?') {
      re += '[^/]';
      kind = 'regexp';
    } else if (ESCAPE.has(c)) re += '\\' + c;
    else if (c === '\\') {
      if (i + 1 < cps.length) {
        re += '\\' + cps[++i]!;
        kind = 'regexp';
      } else re += '\\\\';
    } else if (c === '[' || c === ']') {
      re += c;
      kind = 'regexp';
    } else re += c; // as Go does: `^` and `-` keep their meaning inside a [class]
  }
  switch (kind) {
    case 'exact':
      return (p) => p === pattern;
    case 'prefix': {
      const prefix = pattern.slice(0, -2);
      return (p) => p.startsWith(prefix);
    }
    case 'suffix': {
      const suffix = pattern.slice(2);
      return (p) => p.endsWith(suffix) || (suffix.startsWith('/') && p === suffix.slice(1));
    }
    default: {
      let rx: RegExp;
      try {
        rx = new RegExp(re + '$');
      } catch {
        throw new EngineError('INVALID_ARGUMENT', `syntax error in .dockerignore pattern ${JSON.stringify(pattern)}`);
      }
      return (p) => rx.test(p);
    }
  }
}

/** Go's filepath.Match syntax check: an unclosed `[` or a trailing `\` is a bad pattern. */
function checkSyntax(p: string): void {
  let inClass = false;
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '\\') {
      if (i + 1 >= p.length) throw new EngineError('INVALID_ARGUMENT', `syntax error in .dockerignore pattern ${JSON.stringify(p)}: trailing backslash`);
      i++;
    } else if (c === '[' && !inClass) inClass = true;
    else if (c === ']' && inClass) inClass = false;
  }
  if (inClass) throw new EngineError('INVALID_ARGUMENT', `syntax error in .dockerignore pattern ${JSON.stringify(p)}: unclosed [`);
}

export interface IgnoreMatcher {
  /** True when the path (relative to the context root, `/` separators) is excluded from the context. */
  (relPath: string, isDir: boolean): boolean;
  /** True when some `!` pattern exists (an excluded directory may then hold re-included files). */
  readonly hasExclusions: boolean;
  /**
   * For an excluded directory: may anything under it be re-included by a `!`
   * pattern? False means the walk can skip the directory whole. Errs on the
   * side of true (walking more is only slower).
   */
  mayContainIncluded(dirRelPath: string): boolean;
}

/** A matcher for patterns as parseDockerignore returns them (or as the API's `excludes`). */
export function ignoreMatcher(patterns: string[]): IgnoreMatcher {
  const list: Pattern[] = [];
  for (let p of patterns) {
    p = p.trim();
    if (p === '') continue;
    p = cleanPath(p);
    let exclusion = false;
    if (p.startsWith('!')) {
      if (p.length === 1) throw new EngineError('INVALID_ARGUMENT', 'illegal exclusion pattern: "!"');
      exclusion = true;
      p = p.slice(1);
    }
    checkSyntax(p);
    const segments = exclusion ? p.split('/').map((seg) => (seg.includes('**') ? undefined : compile(seg))) : [];
    const depth = p.includes('**') || p.includes('[') ? undefined : p.split('/').length;
    list.push({ exclusion, cleaned: p, segments, test: compile(p), depth });
  }
  const hasExclusions = list.some((p) => p.exclusion);

  const matches = (relPath: string): boolean => {
    const file = cleanPath(relPath.replace(/^\/+/, ''));
    if (file === '.') return false;
    // The ancestors `a`, `a/b`, ... once per path, not once per pattern.
    const ancestors: string[] = [];
    for (let i = file.indexOf('/'); i >= 0; i = file.indexOf('/', i + 1)) ancestors.push(file.slice(0, i));
    let matched = false;
    for (const pat of list) {
      if (pat.exclusion !== matched) continue; // cannot change the answer
      let m: boolean;
      if (pat.depth === undefined) m = pat.test(file) || ancestors.some(pat.test);
      else if (pat.depth === ancestors.length + 1) m = pat.test(file);
      else m = pat.depth <= ancestors.length && pat.test(ancestors[pat.depth - 1]!);
      if (m) matched = !pat.exclusion;
    }
    return matched;
  };

  const mayContainIncluded = (dirRelPath: string): boolean => {
    if (!hasExclusions) return false;
    const dir = cleanPath(dirRelPath.replace(/^\/+/, ''));
    const dirSegs = dir === '.' ? [] : dir.split('/');
    return list.some((pat) => pat.exclusion && couldMatchBelow(pat.segments, dirSegs));
  };

  const fn = ((relPath: string, _isDir: boolean) => matches(relPath)) as IgnoreMatcher;
  Object.defineProperty(fn, 'hasExclusions', { value: hasExclusions });
  Object.defineProperty(fn, 'mayContainIncluded', { value: mayContainIncluded });
  return fn;
}

/** Could a path below `dir` (segments) match a pattern (segment matchers)? Conservative on `**`. */
function couldMatchBelow(pat: Pattern['segments'], dir: string[]): boolean {
  for (let i = 0; i < dir.length; i++) {
    if (i >= pat.length) return false; // the pattern ends above: it re-includes dir itself, handled by matches()
    const seg = pat[i];
    if (seg === undefined) return true;
    if (!seg(dir[i]!)) return false;
  }
  return pat.length > dir.length;
}
