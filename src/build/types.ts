import type { ResourcesSpec } from '../containers/spec.ts';
import type { AuthConfig } from '../registry/index.ts';
import type { ProgressMessage } from '../registry/progress.ts';
import type { Dockerfile, FromSpec, Instruction, RawInstruction, VarLookup } from './dockerfile/types.ts';

/** What one `docker build` asks for (POST /build's query, decoded; `keel build`'s flags). */
export interface BuildRequest {
  /** The context tar (plain, gzip, zstd, bzip2 or xz). */
  context: AsyncIterable<Uint8Array>;
  /** Path of the Dockerfile inside the context (default `Dockerfile`). */
  dockerfile?: string;
  /** Names to tag the result with. */
  tags?: string[];
  /** Only the aux ID message and errors are sent. */
  quiet?: boolean;
  noCache?: boolean;
  /** Pull base images even when present. */
  pull?: boolean;
  /** Remove intermediate containers after a successful step (default true). */
  rm?: boolean;
  /** Remove intermediate containers even after a failed step. */
  forceRm?: boolean;
  /** `--build-arg`: a null value takes the value from... nowhere here: the key is declared without a value. */
  buildArgs?: Record<string, string | null>;
  labels?: Record<string, string>;
  target?: string;
  /** RUN containers' network: default (bridge), none, host, or a network name. */
  networkMode?: string;
  extraHosts?: string[];
  /** Resource limits for RUN containers. */
  resources?: ResourcesSpec;
  /** Images whose history may serve as cache. */
  cacheFrom?: string[];
  /** Registry credentials by host (X-Registry-Config). */
  auth?: Record<string, AuthConfig>;
  /** `--secret id=x,src=file` contents by id (never in a layer or a cache key). */
  secrets?: Record<string, Buffer>;
  /** Bound on the uncompressed context. */
  maxContextBytes?: number;
  signal?: AbortSignal;
}

/** The build's messages, in docker's JSON stream vocabulary. */
export interface BuildOutput {
  /** Text for the `stream` field (may hold several lines; no newline is added). */
  stream(text: string): void;
  aux(value: unknown): void;
  /** Pull progress while a FROM image is fetched. */
  progress(msg: ProgressMessage): void;
}

export interface BuildResult {
  id: string;
  tags: string[];
}

/** The Dockerfile parser's functions (src/build/dockerfile, written beside the executor). */
export interface Frontend {
  parseDockerfile(text: string, o?: { file?: string; maxBytes?: number }): Dockerfile;
  parseInstruction(text: string, escape?: '\\' | '`'): RawInstruction;
  compileFrom(raw: RawInstruction, vars: VarLookup): FromSpec;
  compileInstruction(raw: RawInstruction, vars: VarLookup, escape: '\\' | '`'): Instruction;
  expand(word: string, vars: VarLookup, escape?: '\\' | '`'): string;
  usedVariables(raw: RawInstruction): string[];
  parseDockerignore(text: string): string[];
  ignoreMatcher(patterns: string[]): (relPath: string, isDir: boolean) => boolean;
}
