/**
 * Raw instruction + the variables in scope → a typed instruction, with
 * BuildKit's argument rules and messages, expanding exactly the words docker
 * expands: ADD/COPY sources, destination, --chown, --chmod, --checksum; ENV
 * and LABEL keys and values; ARG names and defaults; EXPOSE, USER, WORKDIR,
 * VOLUME, STOPSIGNAL; RUN --mount values; FROM's image and --platform (with
 * the meta ARGs). RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK, ONBUILD and
 * MAINTAINER are kept as written (the shell expands at run time).
 *
 * The same code checks a whole file before anything runs (`checkInstruction`,
 * no variables known): then only what does not depend on variables is judged.
 */
import { EngineError } from '../../common/errors.ts';
import { normalizeSignal } from '../../runtime/runc.ts';
import { parseFlags, suggest, type FlagKind } from './flags.ts';
import { expand, expandWords, lex, noVars } from './lex.ts';
import { checkChmod, healthcheck, keyValues, onbuild, parsePort, parseWords } from './forms.ts';
import { parseMount } from './mounts.ts';
import { INSTRUCTIONS, LocatedError, parseHeredocWord } from './parser.ts';
import type { Command, FromSpec, Heredoc, Instruction, RawInstruction, RunMount, SourceLocation, VarLookup } from './types.ts';

type Escape = '\\' | '`';
/** Expands one word; undefined while checking (variables not known). */
type Expander = ((word: string) => string) | undefined;

const WS = /[\t\v\f\r ]+/;
const splitWs = (s: string) => (s === '' ? [] : s.split(WS));

const FLAGS: Record<string, Record<string, FlagKind>> = {
  FROM: { platform: 'string' },
  RUN: { mount: 'strings', network: 'string', security: 'string' },
  COPY: { chown: 'string', from: 'string', chmod: 'string', link: 'bool', exclude: 'strings', parents: 'bool' },
  ADD: { chown: 'string', chmod: 'string', link: 'bool', 'keep-git-dir': 'bool', checksum: 'string', unpack: 'bool', exclude: 'strings' },
};

const STAGE_NAME = /^[a-z][a-z0-9-_.]*$/;

function located(raw: RawInstruction, e: unknown): never {
  if (e instanceof LocatedError) throw e;
  const msg = e instanceof EngineError ? e.message : (e as Error).message;
  throw new LocatedError(raw.loc.line, msg, raw.file ?? 'Dockerfile');
}

/** Arguments as BuildKit's parser splits them for each instruction. */
function args(raw: RawInstruction): string[] {
  if (raw.json) return raw.json;
  switch (raw.keyword) {
    case 'RUN':
    case 'CMD':
    case 'ENTRYPOINT':
    case 'SHELL':
    case 'MAINTAINER':
    case 'USER':
    case 'WORKDIR':
    case 'STOPSIGNAL':
      return raw.rest === '' ? [] : [raw.rest];
    default:
      return splitWs(raw.rest);
  }
}

const exactlyOne = (raw: RawInstruction): string => {
  const a = args(raw);
  if (a.length !== 1) throw new Error(`${raw.keyword} requires exactly one argument`);
  return a[0]!;
};
const atLeastOne = (kw: string) => new Error(`${kw} requires at least one argument`);

/** Stage name after AS, checked; the image word is args[0]. */
function fromArgs(raw: RawInstruction): { image: string; name?: string } {
  const a = splitWs(raw.rest);
  if (a.length === 3 && a[1]!.toLowerCase() === 'as') {
    const name = a[2]!.toLowerCase();
    if (!STAGE_NAME.test(name)) throw new Error(`invalid name for build stage: "${a[2]}", name can't start with a number or contain symbols`);
    return { image: a[0]!, name };
  }
  if (a.length !== 1) throw new Error('FROM requires either one or three arguments');
  return { image: a[0]! };
}

/** `FROM [--platform=P] image [AS name]` with the meta ARGs. */
export function compileFrom(raw: RawInstruction, vars: VarLookup): FromSpec {
  try {
    const { image, name } = fromArgs(raw);
    const flags = parseFlags(raw.flags, FLAGS.FROM!);
    const escape = raw.escape ?? '\\';
    const spec: FromSpec = { image: expand(image, vars, escape) };
    if (spec.image === '') throw new Error(`base name (${image}) should not be blank`);
    const platform = flags.string('platform');
    if (platform !== undefined && platform !== '') spec.platform = expand(platform, vars, escape);
    if (name !== undefined) spec.name = name;
    return spec;
  } catch (e) {
    located(raw, e);
  }
}

/** Compile with the variables in scope (ENV then ARGs of the stage). */
export function compileInstruction(raw: RawInstruction, vars: VarLookup, escape: Escape): Instruction {
  try {
    return build(raw, escape, (w) => expand(w, vars, escape), vars);
  } catch (e) {
    located(raw, e);
  }
}

/** Everything about an instruction that can be judged before its variables are known (the whole file is checked up front). */
export function checkInstruction(raw: RawInstruction, escape: Escape): void {
  try {
    if (!INSTRUCTIONS.has(raw.keyword)) {
      const written = raw.original.trim().split(/[\t\v\f\r ]/, 1)[0]!;
      const hint = suggest(raw.keyword, [...INSTRUCTIONS]);
      throw new Error(`unknown instruction: ${written}${hint ? ` (did you mean ${hint}?)` : ''}`);
    }
    if (raw.keyword === 'FROM') {
      fromArgs(raw);
      parseFlags(raw.flags, FLAGS.FROM!);
    } else build(raw, escape, undefined, noVars);
  } catch (e) {
    located(raw, e);
  }
}

function command(raw: RawInstruction): Command {
  return raw.json ? { form: 'exec', args: raw.json } : { form: 'shell', script: raw.rest };
}

const chomp = (s: string) => s.replace(/^\t+/gm, '');

function build(raw: RawInstruction, escape: Escape, x: Expander, vars: VarLookup): Instruction {
  const kw = raw.keyword;
  const base = { loc: { ...raw.loc } as SourceLocation, original: raw.original };
  const ex = (w: string) => (x ? x(w) : w);
  const flagsOf = (spec: Record<string, FlagKind>) => parseFlags(raw.flags, spec);
  switch (kw) {
    case 'RUN': {
      const f = flagsOf(FLAGS.RUN!);
      const network = f.string('network') ?? 'default';
      if (network !== 'default' && network !== 'none' && network !== 'host') throw new Error(`invalid network mode "${network}"`);
      const security = f.string('security') ?? 'sandbox';
      if (security !== 'sandbox' && security !== 'insecure') throw new Error(`security "${security}" is not valid`);
      const mounts: RunMount[] = [];
      for (const m of f.strings('mount')) {
        const parsed = parseMount(m, x);
        if (parsed) mounts.push(parsed);
      }
      if (!raw.json && raw.rest === '') throw atLeastOne('RUN');
      // The heredocs are folded into `command` (and pipeFile): none is left for the executor to apply again.
      const inst: Instruction = { kind: 'RUN', ...base, command: runCommand(raw), mounts, heredocs: [] };
      if (f.string('network') !== undefined) inst.network = network;
      if (f.string('security') !== undefined) inst.security = security;
      const pipe = heredocScriptFile(raw);
      if (pipe) inst.pipeFile = pipe;
      return inst;
    }
    case 'CMD':
    case 'ENTRYPOINT':
      flagsOf({});
      return { kind: kw, ...base, command: raw.json ? { form: 'exec', args: raw.json } : raw.rest === '' ? { form: 'exec', args: [] } : command(raw) };
    case 'SHELL':
      flagsOf({});
      if (!raw.json) {
        if (raw.rest === '') throw atLeastOne('SHELL');
        throw new Error('SHELL requires the arguments to be in JSON form');
      }
      if (raw.json.length === 0) throw atLeastOne('SHELL');
      return { kind: 'SHELL', ...base, shell: raw.json };
    case 'COPY':
    case 'ADD':
      return copy(raw, kw, x, escape, vars);
    case 'ENV':
    case 'LABEL': {
      flagsOf({});
      const pairs = keyValues(raw, escape);
      if (pairs.length === 0) throw atLeastOne(kw);
      return { kind: kw, ...base, pairs: pairs.map(([k, v]) => [ex(k), ex(v)]) };
    }
    case 'ARG': {
      // BuildKit never parses ARG's flags (they are ignored) and never expands its names. A default is
      // expanded with the variables in scope plus the args declared before it on the same line.
      const words = parseWords(raw.rest, escape);
      if (words.length === 0) throw atLeastOne('ARG');
      const earlier = new Map<string, string>();
      const scoped: VarLookup = (n) => (earlier.has(n) ? earlier.get(n) : vars(n));
      return {
        kind: 'ARG',
        ...base,
        args: words.map((w) => {
          const eq = w.indexOf('=');
          if (eq === 0) throw new Error('ARG names can not be blank');
          if (eq < 0) return { name: w };
          const name = w.slice(0, eq);
          const written = w.slice(eq + 1);
          const value = x ? expand(written, scoped, escape) : written;
          earlier.set(name, value);
          return { name, default: value, rawDefault: written };
        }),
      };
    }
    case 'EXPOSE': {
      flagsOf({});
      const words = splitWs(raw.rest);
      if (words.length === 0) throw atLeastOne('EXPOSE');
      if (!x) {
        for (const w of words) if (!w.includes('$')) parsePort(w);
        return { kind: 'EXPOSE', ...base, ports: words };
      }
      const ports = words
        .sort()
        .flatMap((p) => expandWords(p, vars, escape))
        .flatMap(parsePort);
      return { kind: 'EXPOSE', ...base, ports: [...new Set(ports)] };
    }
    case 'USER':
    case 'WORKDIR':
    case 'STOPSIGNAL': {
      if (kw !== 'STOPSIGNAL') flagsOf({}); // BuildKit never parses STOPSIGNAL's flags
      const v = ex(exactlyOne(raw));
      if (kw === 'USER') return { kind: 'USER', ...base, user: v };
      if (kw === 'WORKDIR') return { kind: 'WORKDIR', ...base, path: v };
      if (x || !v.includes('$')) {
        try {
          normalizeSignal(v);
        } catch {
          throw new Error(`Invalid signal: ${v}`);
        }
      }
      return { kind: 'STOPSIGNAL', ...base, signal: v };
    }
    case 'VOLUME': {
      flagsOf({});
      const a = args(raw);
      if (a.length === 0) throw atLeastOne('VOLUME');
      const paths = a.map((p) => {
        const v = ex(p.trim());
        if (p.trim() === '' || v === '') throw new Error('VOLUME specified can not be an empty string');
        return v;
      });
      return { kind: 'VOLUME', ...base, paths };
    }
    case 'MAINTAINER':
      flagsOf({});
      return { kind: 'MAINTAINER', ...base, name: exactlyOne(raw) };
    case 'HEALTHCHECK':
      return healthcheck(raw, base);
    case 'ONBUILD':
      return onbuild(raw, base);
    case 'FROM':
      throw new Error('FROM starts a stage: compile it with compileFrom');
    default:
      throw new Error(`unknown instruction: ${kw}`);
  }
}

/**
 * RUN's command. A heredoc RUN becomes a shell script as BuildKit makes it:
 * `RUN <<EOF` alone runs the heredoc's content as the script (tabs stripped
 * for `<<-`); otherwise the line and its heredocs are given to the shell
 * as written (`RUN python3 <<EOF` feeds the document to python's stdin).
 */
function runCommand(raw: RawInstruction): Command {
  if (raw.json || raw.heredocs.length === 0) return command(raw);
  const only = parseHeredocWord(raw.rest);
  if (only) {
    const h = raw.heredocs[0]!;
    const data = h.chomp ? chomp(h.content) : h.content;
    if (data.startsWith('#!')) return { form: 'exec', args: [`/dev/pipes/${h.name}`] };
    return { form: 'shell', script: data };
  }
  let script = raw.rest;
  for (const h of raw.heredocs) script += `\n${h.content}${h.name}`;
  return { form: 'shell', script };
}

/** `RUN <<EOF` whose content starts with `#!`: BuildKit writes it to /dev/pipes/<name> (mode 0755) and runs that file. */
function heredocScriptFile(raw: RawInstruction): { path: string; content: string } | undefined {
  if (raw.json || raw.heredocs.length === 0 || !parseHeredocWord(raw.rest)) return undefined;
  const h = raw.heredocs[0]!;
  const data = h.chomp ? chomp(h.content) : h.content;
  return data.startsWith('#!') ? { path: `/dev/pipes/${h.name}`, content: data } : undefined;
}

function copy(raw: RawInstruction, kw: 'COPY' | 'ADD', x: Expander, escape: Escape, vars: VarLookup): Instruction {
  const f = parseFlags(raw.flags, FLAGS[kw]!);
  const a = args(raw);
  if (a.length < 2) throw new Error(`${kw} requires at least two arguments, but only one was provided. Destination could not be determined`);
  const dest = a[a.length - 1]!;
  if (parseHeredocWord(dest)) throw new Error(`${kw} cannot accept a heredoc as a destination`);
  const byName = new Map(raw.heredocs.map((h) => [h.name, h]));
  const sources: string[] = [];
  const heredocs: Heredoc[] = [];
  for (const src of a.slice(0, -1)) {
    const h = parseHeredocWord(src);
    if (!h) {
      sources.push(x ? x(src) : src);
      continue;
    }
    let content = byName.get(h.name)?.content ?? '';
    if (h.chomp) content = chomp(content);
    // Heredoc content expands with quotes as plain characters, unless the delimiter was quoted.
    if (h.expand && x) content = lex(content, vars, { escape: '\\', skipQuotes: true }).word;
    heredocs.push({ name: h.name, content, expand: h.expand });
  }
  const from = kw === 'COPY' ? f.string('from') : undefined;
  if (from !== undefined && from !== '' && lex(from, noVars, { escape }).word !== from) {
    throw new Error('variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround');
  }
  const opt = (v: string | undefined) => (v === undefined || v === '' ? undefined : x ? x(v) : v);
  const spec: Instruction = {
    kind: kw,
    loc: { ...raw.loc },
    original: raw.original,
    sources,
    dest: x ? x(dest) : dest,
    link: f.bool('link') ?? false,
    parents: f.bool('parents') ?? false,
    exclude: f.strings('exclude'),
    heredocs,
  };
  if (from) spec.from = from;
  const chown = opt(f.string('chown'));
  if (chown) spec.chown = chown;
  const chmod = opt(f.string('chmod'));
  if (chmod) {
    if (x) checkChmod(chmod);
    spec.chmod = chmod;
  }
  if (kw === 'ADD') {
    const checksum = opt(f.string('checksum'));
    if (checksum) spec.checksum = checksum;
    const keep = f.bool('keep-git-dir');
    if (keep !== undefined) spec.keepGitDir = keep;
    const unpack = f.bool('unpack');
    if (unpack !== undefined) spec.unpack = unpack;
  }
  return spec;
}
