/**
 * Argument forms of the instructions that are not about files or commands:
 * ENV/LABEL pairs, ARG words, EXPOSE ports, HEALTHCHECK, ONBUILD, --chmod,
 * with BuildKit's rules and messages.
 */
import { parseGoDuration } from '../../common/units.ts';
import { parseFlags, type FlagKind } from './flags.ts';
import type { Instruction, RawInstruction, SourceLocation } from './types.ts';

type Escape = '\\' | '`';
const WS = /[\t\v\f\r ]+/;
const atLeastOne = (kw: string) => new Error(`${kw} requires at least one argument`);

export const HEALTHCHECK_FLAGS: Record<string, FlagKind> = {
  interval: 'string',
  timeout: 'string',
  'start-period': 'string',
  'start-interval': 'string',
  retries: 'string',
};

function duration(name: string, v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  const d = parseGoDuration(v);
  if (d === 0) return 0;
  if (d < 1e6) throw new Error(`Interval "${name}" cannot be less than 1ms`);
  return d;
}

/** `--chmod`: octal up to 07777, or chmod(1) symbolic clauses (`u+x,go=r`), as BuildKit accepts. */
export function checkChmod(v: string): void {
  if (/^[0-7]+$/.test(v)) {
    if (parseInt(v, 8) > 0o7777) throw new Error(`invalid chmod parameter: '${v}'. it should be octal string and between 0 and 07777`);
    return;
  }
  if (/^[+-]?\d+$/.test(v)) throw new Error(`invalid chmod parameter: '${v}'. it should be octal string and between 0 and 07777`);
  if (!v.split(',').every((c) => /^[ugoa]*(?:[-+=](?:[rwxXst]*|[ugo]))+$/.test(c))) throw new Error(`invalid chmod parameter: '${v}'`);
}

export function healthcheck(raw: RawInstruction, base: { loc: SourceLocation; original: string }): Instruction {
  const m = /^(\S+)\s*([\s\S]*)$/u.exec(raw.rest);
  if (!m) throw atLeastOne('HEALTHCHECK');
  const type = m[1]!.toUpperCase();
  const rest = m[2]!;
  if (type === 'NONE') {
    // BuildKit does not parse the flags of HEALTHCHECK NONE.
    if (rest !== '') throw new Error('HEALTHCHECK NONE takes no arguments');
    return { kind: 'HEALTHCHECK', ...base, test: ['NONE'] };
  }
  const f = parseFlags(raw.flags, HEALTHCHECK_FLAGS);
  if (type !== 'CMD') throw new Error(`Unknown type "${m[1]}" in HEALTHCHECK (try CMD)`);
  let json: string[] | undefined;
  try {
    const t = JSON.parse(rest.trimStart()) as unknown;
    if (rest.trimStart().startsWith('[') && Array.isArray(t)) {
      if (!t.every((s) => typeof s === 'string')) throw new TypeError('when using JSON array syntax, arrays must be comprised of strings only');
      json = t as string[];
    }
  } catch (e) {
    if (e instanceof TypeError) throw e;
  }
  const cmd = json ?? (rest === '' ? [] : [rest]);
  if (cmd.length === 0) throw new Error('Missing command after HEALTHCHECK CMD');
  const inst: Instruction = { kind: 'HEALTHCHECK', ...base, test: [json ? 'CMD' : 'CMD-SHELL', ...cmd] };
  const set = (k: 'interval' | 'timeout' | 'startPeriod' | 'startInterval', flag: string) => {
    const d = duration(flag, f.string(flag));
    if (d !== undefined) inst[k] = d;
  };
  set('interval', 'interval');
  set('timeout', 'timeout');
  set('startPeriod', 'start-period');
  set('startInterval', 'start-interval');
  const retries = f.string('retries');
  if (retries !== undefined && retries !== '') {
    if (!/^[+-]?\d+$/.test(retries) || Math.abs(Number(retries)) > 2 ** 31 - 1)
      throw new Error(`strconv.ParseInt: parsing ${JSON.stringify(retries)}: invalid syntax`);
    const n = Number(retries);
    if (n < 0) throw new Error(`--retries cannot be negative (${n})`);
    inst.retries = n;
  }
  return inst;
}

export function onbuild(raw: RawInstruction, base: { loc: SourceLocation; original: string }): Instruction {
  parseFlags(raw.flags, {});
  if (raw.rest === '') throw atLeastOne('ONBUILD');
  const trigger = raw.rest.split(/\s/u, 1)[0]!.toUpperCase();
  if (trigger === 'ONBUILD') throw new Error("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
  if (trigger === 'MAINTAINER' || trigger === 'FROM') throw new Error(`${trigger} isn't allowed as an ONBUILD trigger`);
  let text = raw.original.replace(/^\s*ONBUILD\s*/i, '');
  for (const h of raw.heredocs) text += `\n${h.content}${h.name}`;
  return { kind: 'ONBUILD', ...base, trigger: text };
}

/**
 * ENV/LABEL pairs before expansion: `key value...` (legacy, one pair, the
 * value is the rest of the line) or `k=v k2="v 2"` (quotes kept for the
 * expansion step to remove).
 */
export function keyValues(raw: RawInstruction, escape: Escape): [string, string][] {
  const words = parseWords(raw.rest, escape);
  if (words.length === 0) return [];
  if (!words[0]!.includes('=')) {
    const parts = raw.rest.split(WS);
    if (parts.length < 2) throw new Error(`${raw.keyword} must have two arguments`);
    const m = /^([^\t\v\f\r ]*)[\t\v\f\r ]+([\s\S]*)$/.exec(raw.rest)!;
    if (m[1] === '') throw new Error(`${raw.keyword} names can not be blank`);
    return [[m[1]!, m[2]!]];
  }
  return words.map((w) => {
    const eq = w.indexOf('=');
    if (eq < 0) throw new Error(`Syntax error - can't find = in ${JSON.stringify(w)}. Must be of the form: name=value`);
    if (eq === 0) throw new Error(`${raw.keyword} names can not be blank`);
    return [w.slice(0, eq), w.slice(eq + 1)];
  });
}

/** BuildKit's word splitter for ENV/LABEL/ARG: splits on blanks outside quotes, keeping quotes and escapes for the expansion step. */
export function parseWords(rest: string, escape: Escape): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let quote = '';
  let blankOk = false;
  const cps = Array.from(rest);
  for (let i = 0; i < cps.length; i++) {
    let c = cps[i]!;
    if (!inWord) {
      if (/\s/u.test(c)) continue;
      inWord = true;
    }
    if (!quote) {
      if (/\s/u.test(c)) {
        if (blankOk || cur.length > 0) words.push(cur);
        cur = '';
        blankOk = false;
        inWord = false;
        continue;
      }
      if (c === "'" || c === '"') {
        quote = c;
        blankOk = true;
      } else if (c === escape) {
        if (i + 1 === cps.length) continue;
        cur += c;
        c = cps[++i]!;
      }
      cur += c;
      continue;
    }
    if (c === quote) quote = '';
    else if (c === escape && quote !== "'") {
      if (i + 1 === cps.length) {
        quote = '';
        continue;
      }
      cur += c;
      c = cps[++i]!;
    }
    cur += c;
  }
  if (inWord && (blankOk || cur.length > 0)) words.push(cur);
  return words;
}

/** An EXPOSE word → `port/proto` entries (ranges expanded), as BuildKit's port parser gives them. */
export function parsePort(raw: string): string[] {
  const parts = raw.split(':');
  const container = parts[parts.length - 1]!;
  const slash = container.indexOf('/');
  const port = slash < 0 ? container : container.slice(0, slash);
  const proto = slash < 0 ? 'tcp' : container.slice(slash + 1).toLowerCase();
  if (port === '') throw new Error(`invalid port: ${JSON.stringify(raw)}: no port specified`);
  if (!['tcp', 'udp', 'sctp'].includes(proto)) throw new Error(`invalid port: ${JSON.stringify(raw)}: invalid proto: ${container.slice(slash + 1)}`);
  const num = (s: string) => {
    if (!/^[+-]?\d+$/.test(s)) return NaN;
    const n = Number(s);
    return n < 0 || n > 65535 ? NaN : n;
  };
  const dash = port.indexOf('-');
  const start = num(dash < 0 ? port : port.slice(0, dash));
  const endStr = dash < 0 ? undefined : port.slice(dash + 1);
  const end = endStr === undefined || endStr === port.slice(0, dash) ? start : num(endStr);
  if (Number.isNaN(start) || Number.isNaN(end) || end < start) throw new Error(`invalid containerPort: ${port}`);
  const out: string[] = [];
  for (let p = start; p <= end; p++) out.push(`${p}/${proto}`);
  return out;
}
