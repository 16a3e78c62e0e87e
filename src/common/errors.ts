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

export class EngineError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EngineError';
    this.code = code;
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
  return typeof e === 'object' && e !== null && 'code' in e && typeof (e as { code: unknown }).code === 'string'
    ? (e as { code: string }).code
    : undefined;
}
