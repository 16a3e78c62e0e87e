/**
 * The loader's only ways to look at the filesystem: reading a file
 * (bounded: a compose file is untrusted input) and asking whether a path
 * exists or is a file. Each look can be recorded (`recordInputs`), so the
 * project cache (project-cache.ts) knows exactly what a load depended on
 * and can tell later whether any of it changed. This module stays free of
 * the YAML parser, which the reconciler must not load. The environment
 * is looked at through observeEnv, which records the variables read.
 */
import fs from 'node:fs';
import { EngineError, errnoText } from '../common/errors.ts';

/** Compose files are configuration, not data: 8 MiB is far beyond any real one. */
const MAX_FILE_BYTES = 8 << 20;

/** One look at the filesystem and what it saw. */
export type Input =
  /** `bytes` read; `regular`: from a regular file (not a pipe or a device, which cannot be read twice). */
  | { op: 'read'; path: string; text: string; bytes: number; regular: boolean }
  | { op: 'isFile'; path: string; result: boolean }
  | { op: 'exists'; path: string; result: boolean }
  /** A variable read from the OS environment (`os`) or the project's (the .env files under the OS environment). */
  | { op: 'env'; scope: EnvScope; name: string; value: string | undefined }
  /** The whole environment was enumerated. */
  | { op: 'envAll'; scope: EnvScope; entries: [string, string | undefined][] }
  /** The variables of the project's .env files (the project's environment is these under the OS environment). */
  | { op: 'dotenv'; values: Record<string, string> };

export type EnvScope = 'os' | 'project';

let recording: Input[] | undefined;

/** Runs `fn`, returning its result with every look it took at the filesystem, in order. */
export function recordInputs<T>(fn: () => T): { result: T; inputs: Input[] } {
  const outer = recording;
  const inputs: Input[] = [];
  recording = inputs;
  try {
    return { result: fn(), inputs };
  } finally {
    recording = outer;
    outer?.push(...inputs);
  }
}

/** `env` itself, or while recording, a view of it that records what is read. */
export function observeEnv<T extends Record<string, string | undefined>>(env: T, scope: EnvScope): T {
  if (!recording) return env;
  const read = (t: T, k: string | symbol) => {
    const value = Reflect.get(t, k);
    if (typeof k === 'string') recording?.push({ op: 'env', scope, name: k, value: typeof value === 'string' ? value : undefined });
    return value;
  };
  return new Proxy(env, {
    get: (t, k) => read(t, k),
    has: (t, k) => (read(t, k), Reflect.has(t, k)),
    getOwnPropertyDescriptor: (t, k) => (read(t, k), Reflect.getOwnPropertyDescriptor(t, k)),
    ownKeys: (t) => {
      recording?.push({ op: 'envAll', scope, entries: Object.entries(t) });
      return Reflect.ownKeys(t);
    },
  });
}

/** The variables of the project's .env files, for the record. */
export function noteDotenv(values: Record<string, string>): void {
  recording?.push({ op: 'dotenv', values: { ...values } });
}

export function isFile(p: string): boolean {
  let result: boolean;
  try {
    result = fs.statSync(p).isFile();
  } catch {
    result = false;
  }
  recording?.push({ op: 'isFile', path: p, result });
  return result;
}

export function exists(p: string): boolean {
  const result = fs.existsSync(p);
  recording?.push({ op: 'exists', path: p, result });
  return result;
}

const PAUSE = new Int32Array(new SharedArrayBuffer(4));

/** Reads a text file up to `max` bytes, refusing a larger one before reading it. */
export function readBounded(file: string, max = MAX_FILE_BYTES): string {
  let fd: number;
  try {
    // `-f -`: the compose file on standard input
    fd = file === '-' ? 0 : fs.openSync(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // a caller may go on without the file (env_file with required: false): its absence is an input too
    if (code === 'ENOENT') recording?.push({ op: 'exists', path: file, result: false });
    throw new EngineError(code === 'ENOENT' ? 'NOT_FOUND' : 'INVALID_ARGUMENT', `${file}: ${errnoText(e)}`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (st.isDirectory()) throw new EngineError('INVALID_ARGUMENT', `${file}: is a directory`);
    if (st.isFile() && st.size > max) throw new EngineError('INVALID_ARGUMENT', `${file}: file is too large (${st.size} bytes; at most ${max} are read)`);
    // a pipe has no size: room for the limit, and one byte to notice more
    const buf = Buffer.alloc((st.isFile() ? Math.min(st.size, max) : max) + 1);
    let n = 0;
    // read to EOF rather than trust st.size (a pipe or a growing file)
    for (;;) {
      let r: number;
      try {
        r = fs.readSync(fd, buf, n, buf.length - n, null);
      } catch (e) {
        // a non-blocking stdin with nothing yet: wait a little for it rather than spin
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') {
          Atomics.wait(PAUSE, 0, 0, 10);
          continue;
        }
        throw e;
      }
      if (r === 0) break;
      n += r;
      if (n >= buf.length) throw new EngineError('INVALID_ARGUMENT', `${file}: file is too large (at most ${max} bytes are read)`);
    }
    const text = buf.subarray(0, n).toString('utf8');
    recording?.push({ op: 'read', path: file, text, bytes: n, regular: st.isFile() && file !== '-' });
    return text;
  } finally {
    if (fd !== 0) fs.closeSync(fd);
  }
}
