/**
 * The one error type of the engine. `code` says what kind of failure it is;
 * front ends map it (api/ to an HTTP status, cli/ to an exit code). The
 * message is written for the user: it says what went wrong and, where it can,
 * what to do about it.
 */
export type ErrorCode =
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'INVALID_ARGUMENT'
  | 'NOT_MODIFIED'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'UNAVAILABLE'
  | 'TIMEOUT'
  | 'CANCELLED'
  | 'CANNOT_EXECUTE'
  | 'COMMAND_NOT_FOUND'
  | 'INTERNAL';

/** All codes, to check one that arrives from outside (the API's error header). */
export const ERROR_CODES: readonly ErrorCode[] = [
  'NOT_FOUND',
  'CONFLICT',
  'INVALID_ARGUMENT',
  'NOT_MODIFIED',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'UNAVAILABLE',
  'TIMEOUT',
  'CANCELLED',
  'CANNOT_EXECUTE',
  'COMMAND_NOT_FOUND',
  'INTERNAL',
];

/**
 * The HTTP response header in which keel's API sends an error's code beside
 * docker's `{"message"}` body (docker clients ignore it; keel's CLI reads it).
 */
export const ERROR_CODE_HEADER = 'X-Keel-Error-Code';

export class EngineError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EngineError';
    this.code = code;
  }
}

/**
 * A program run by common/exec.ts that exited non-zero (or was killed): its
 * argv, exit and output, so callers decide by them instead of by matching
 * the message. The message is the same as any EngineError's of exec().
 */
export class ExecError extends EngineError {
  readonly argv: readonly string[];
  /** The exit status; 128 when a signal ended it (see `signal`). */
  readonly exitCode: number;
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;

  constructor(message: string, o: { argv: readonly string[]; exitCode: number; signal: string | null; stdout: string; stderr: string }) {
    super('INTERNAL', message);
    this.name = 'ExecError';
    this.argv = o.argv;
    this.exitCode = o.exitCode;
    this.signal = o.signal;
    this.stdout = o.stdout;
    this.stderr = o.stderr;
  }
}

export const notFound = (msg: string) => new EngineError('NOT_FOUND', msg);
export const conflict = (msg: string) => new EngineError('CONFLICT', msg);
export const invalid = (msg: string) => new EngineError('INVALID_ARGUMENT', msg);

export function isEngineError(e: unknown, code?: ErrorCode): e is EngineError {
  return e instanceof EngineError && (code === undefined || e.code === code);
}

/** Node's system errors carry an errno code such as ENOENT. */
export function errnoCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof (e as { code: unknown }).code === 'string' ? (e as { code: string }).code : undefined;
}

/** A failed system call's reason as Go's tools print it ("no such file or directory"); else Node's message. */
export function errnoText(e: unknown): string {
  return errnoCode(e) === 'ENOENT' ? 'no such file or directory' : (e as Error).message;
}
