/**
 * `.env` files (the project's, `--env-file`, a service's `env_file`) in the
 * format docker compose reads (compose-go's dotenv package):
 *   KEY=value, `export KEY=value`, `# comments`, blank lines;
 *   unquoted values are trimmed and end at ` #`;
 *   'single quotes' are literal; "double quotes" take \n \t \\ \" escapes
 *   and may span lines; unquoted and double-quoted values interpolate
 *   variables defined earlier in the file or in the lookup;
 *   a bare `KEY` takes KEY from the lookup (dropped when unset).
 */
import { EngineError } from '../common/errors.ts';
import { interpolateString, type Lookup } from './interpolate.ts';

export function parseDotenv(text: string, file: string, lookup: Lookup = () => undefined): Record<string, string> {
  const out: Record<string, string> = {};
  const look: Lookup = (n) => (Object.hasOwn(out, n) ? out[n] : lookup(n));
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!.trimStart();
    if (!line || line.startsWith('#')) continue;
    if (line.startsWith('export ')) line = line.slice(7).trimStart();
    const m = /^([^=\s]+)\s*(=?)\s*(.*)$/s.exec(line);
    if (!m || !/^[\w.\-\[\]]+$/.test(m[1]!) || (!m[2] && m[3] && !m[3].startsWith('#')))
      throw new EngineError('INVALID_ARGUMENT', `${file}:${i + 1}: invalid line "${lines[i]}"`);
    const key = m[1]!;
    if (!m[2]) {
      const v = lookup(key);
      if (v !== undefined) out[key] = v;
      continue;
    }
    let raw = m[3]!;
    const q = raw[0];
    if (q === "'" || q === '"') {
      // a quoted value may span lines until its closing quote
      let body = raw.slice(1);
      let end = closingQuote(body, q);
      while (end < 0 && i + 1 < lines.length) {
        body += '\n' + lines[++i];
        end = closingQuote(body, q);
      }
      if (end < 0) throw new EngineError('INVALID_ARGUMENT', `${file}: unterminated quoted value for ${key}`);
      const v = body.slice(0, end);
      out[key] = q === "'" ? v : interpolate(unescape(v), look, file, key);
      continue;
    }
    const hash = raw.search(/\s#/);
    if (hash >= 0) raw = raw.slice(0, hash);
    out[key] = interpolate(raw.trim(), look, file, key);
  }
  return out;
}

function closingQuote(s: string, q: string): number {
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\' && q === '"') i++;
    else if (s[i] === q) return i;
  }
  return -1;
}

function unescape(s: string): string {
  return s.replace(/\\([nrt"\\$])/g, (_m, c: string) => ({ n: '\n', r: '\r', t: '\t' })[c as 'n'] ?? (c === '$' ? '$$' : c));
}

function interpolate(v: string, look: Lookup, file: string, key: string): string {
  try {
    return interpolateString(v, look);
  } catch (e) {
    throw new EngineError('INVALID_ARGUMENT', `${file}: ${key}: ${(e as Error).message}`);
  }
}

/**
 * An env_file with `format: raw`: the docker run --env-file format (the
 * docker CLI's kvfile, which docker compose registers as "raw"): values are
 * literal (no quotes, no interpolation, no comments after them); a bare KEY
 * takes KEY from the lookup, or is left out.
 */
export function parseRawEnv(text: string, file: string, lookup: Lookup = () => undefined): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '').trimStart();
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    const key = eq < 0 ? line : line.slice(0, eq);
    if (!key || /\s/.test(key)) throw new EngineError('INVALID_ARGUMENT', `${file}:${i + 1}: variable '${key.trimEnd()}' contains whitespaces`);
    if (eq >= 0) out[key] = line.slice(eq + 1);
    else {
      const v = lookup(key);
      if (v !== undefined) out[key] = v;
    }
  }
  return out;
}
