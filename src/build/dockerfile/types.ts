/**
 * The Dockerfile as the builder sees it: the contract between the parser
 * (dockerfile/, pure, no I/O) and the executor (build/). The parser reads the
 * text into raw instructions (nothing expanded: ARG and ENV values are only
 * known while a stage runs); the executor asks for each instruction in turn
 * to be compiled with the variables in scope at that point, and gets a typed
 * instruction whose words are already expanded where docker expands them.
 */

/** Parser directives at the top of the file (`# syntax=`, `# escape=`, `# check=`). */
export interface Directives {
  /** Accepted and ignored: keel has one frontend. */
  syntax?: string;
  /** The escape character: `\` (default) or `` ` ``. */
  escape: '\\' | '`';
  /** Accepted and ignored (BuildKit's build checks). */
  check?: string;
}

/** Where an instruction is in the file (1-based lines, inclusive). */
export interface SourceLocation {
  line: number;
  endLine: number;
}

/** A here-document (`<<EOF`, `<<-EOF` strips leading tabs, `<<"EOF"` does not expand). */
export interface Heredoc {
  name: string;
  content: string;
  /** False when the delimiter was quoted: no variable expansion of the content. */
  expand: boolean;
  /** `<<-`: leading tabs are stripped from each line (already done in a compiled COPY/ADD heredoc). */
  chomp?: boolean;
  /** The file descriptor written before `<<` (`3<<EOF`), 0 when none. */
  fd?: number;
}

/** `--name=value` flags as written, before expansion; a flag may repeat (`--mount`, `--exclude`). */
export interface RawFlag {
  name: string;
  /** undefined for a bare boolean flag (`--link`). */
  value?: string;
}

/** One instruction as written, continuation lines joined, comments removed. */
export interface RawInstruction {
  /** Upper-cased keyword: RUN, COPY, ... (unknown keywords are a parse error). */
  keyword: string;
  /** The instruction's text as written (for error messages, `Step N/M : ...` lines and history). */
  original: string;
  flags: RawFlag[];
  /** The text after the keyword and its flags, continuations joined. */
  rest: string;
  /** Set when `rest` is a JSON array of strings (exec form). */
  json?: string[];
  heredocs: Heredoc[];
  loc: SourceLocation;
  /** The Dockerfile's name as given to parseDockerfile (errors say `${file}:${line}: ...`). */
  file?: string;
  /** The file's escape character (`# escape=`), used by compileFrom. */
  escape?: '\\' | '`';
}

/** `FROM [--platform=P] image [AS name]`, compiled with the meta ARGs (those before the first FROM). */
export interface FromSpec {
  /** An image reference, `scratch`, or the name/index of an earlier stage. */
  image: string;
  platform?: string;
  /** The stage name after AS, lower-cased. */
  name?: string;
}

export interface Stage {
  /** Position among the stages, from 0. */
  index: number;
  /** Lower-cased AS name, if any. */
  name?: string;
  from: RawInstruction;
  instructions: RawInstruction[];
}

export interface Dockerfile {
  directives: Directives;
  /** ARG instructions before the first FROM. */
  metaArgs: RawInstruction[];
  stages: Stage[];
}

/** A command: exec form as given, or shell form (the executor prefixes the stage's SHELL). */
export type Command = { form: 'exec'; args: string[] } | { form: 'shell'; script: string };

/**
 * `RUN --mount=...`, values expanded. `target` is as written: a relative one (or '' when not given) is
 * joined to the WORKDIR by the executor, and BuildKit refuses a mount whose target ends up `/`.
 * Read-only by default except cache and tmpfs, as BuildKit.
 */
export type RunMount =
  | { type: 'bind'; target: string; source?: string; from?: string; readwrite: boolean }
  | {
      type: 'cache';
      target: string;
      id?: string;
      sharing: 'shared' | 'private' | 'locked';
      from?: string;
      source?: string;
      readonly: boolean;
      mode?: number;
      uid?: number;
      gid?: number;
    }
  | { type: 'tmpfs'; target: string; size?: number }
  /** `id` resolved as BuildKit does: id=, else source=, else the target's base name. */
  | { type: 'secret'; id?: string; target?: string; env?: string; required: boolean; mode?: number; uid?: number; gid?: number }
  | { type: 'ssh'; id?: string; target?: string; required: boolean; mode?: number; uid?: number; gid?: number };

export interface CopySpec {
  /** Sources as written after expansion (globs not yet matched); empty when only heredocs are copied. */
  sources: string[];
  dest: string;
  /** `--from=stage|index|image`. */
  from?: string;
  /** `--chown=user[:group]` (names resolved by the executor in the destination rootfs). */
  chown?: string;
  /** `--chmod=0755` (octal) or symbolic as BuildKit accepts. */
  chmod?: string;
  link: boolean;
  parents: boolean;
  exclude: string[];
  /** ADD only. */
  checksum?: string;
  keepGitDir?: boolean;
  /** ADD only: `--unpack[=bool]` when given (BuildKit: force or forbid extracting an archive). */
  unpack?: boolean;
  /** `COPY <<EOF /path`: each heredoc becomes a file named after its delimiter. */
  heredocs: Heredoc[];
}

export interface HealthcheckSpec {
  /** `HEALTHCHECK NONE` gives `['NONE']`; otherwise `['CMD', ...]` or `['CMD-SHELL', script]`. */
  test: string[];
  /** Nanoseconds; undefined = not given. */
  interval?: number;
  timeout?: number;
  startPeriod?: number;
  startInterval?: number;
  retries?: number;
}

/** A compiled instruction: flags validated, words expanded where docker expands them. */
export type Instruction =
  | {
      kind: 'RUN';
      loc: SourceLocation;
      original: string;
      command: Command;
      network?: 'default' | 'none' | 'host';
      security?: 'sandbox' | 'insecure';
      mounts: RunMount[];
      /**
       * Always empty once compiled: a RUN's heredocs are already part of `command` (a lone `<<EOF` is the
       * script itself, otherwise the line and its documents go to the shell as written). The raw
       * instruction keeps them.
       */
      heredocs: Heredoc[];
      /**
       * `RUN <<EOF` whose document starts with `#!`: BuildKit writes it to this path (mode 0755, on a
       * read-only mount of its own) and `command` is then exec form `[path]`.
       */
      pipeFile?: { path: string; content: string };
    }
  | { kind: 'CMD' | 'ENTRYPOINT'; loc: SourceLocation; original: string; command: Command }
  | { kind: 'SHELL'; loc: SourceLocation; original: string; shell: string[] }
  | ({ kind: 'COPY' | 'ADD'; loc: SourceLocation; original: string } & CopySpec)
  | { kind: 'ENV' | 'LABEL'; loc: SourceLocation; original: string; pairs: [string, string][] }
  | {
      kind: 'ARG';
      loc: SourceLocation;
      original: string;
      /**
       * `default` is expanded (with the variables in scope and the earlier defaults of the same line);
       * `rawDefault` is as written: BuildKit expands a default only when no build-arg replaces it, with
       * the earlier args of the line at their final values, so an exact executor re-expands rawDefault
       * when an earlier arg of the same line came from a build-arg.
       */
      args: { name: string; default?: string; rawDefault?: string }[];
    }
  /** Ports as BuildKit stores them: `80/tcp`, protocol lower-cased, ranges expanded, duplicates removed. */
  | { kind: 'EXPOSE'; loc: SourceLocation; original: string; ports: string[] }
  | { kind: 'USER'; loc: SourceLocation; original: string; user: string }
  | { kind: 'WORKDIR'; loc: SourceLocation; original: string; path: string }
  | { kind: 'VOLUME'; loc: SourceLocation; original: string; paths: string[] }
  | { kind: 'STOPSIGNAL'; loc: SourceLocation; original: string; signal: string }
  | ({ kind: 'HEALTHCHECK'; loc: SourceLocation; original: string } & HealthcheckSpec)
  | { kind: 'ONBUILD'; loc: SourceLocation; original: string; trigger: string }
  | { kind: 'MAINTAINER'; loc: SourceLocation; original: string; name: string };

/**
 * Variables in scope while compiling an instruction: the stage's ENV, then
 * declared ARGs with their build-arg or default values. Returns undefined
 * for an unset variable (expands to "" as docker does).
 */
export type VarLookup = (name: string) => string | undefined;
