/**
 * One error type for the whole library. The CLI maps `exitCode` to the process exit code and prints
 * `message` (plus `hint`) as one line; a stack trace only with --debug.
 */

export type ErrorCode =
  | 'USAGE'
  | 'REFERENCE_INVALID'
  | 'PLATFORM_INVALID'
  | 'PLATFORM_NOT_FOUND'
  | 'NOT_FOUND'
  | 'MANIFEST_INVALID'
  | 'MEDIA_TYPE_UNSUPPORTED'
  | 'DIGEST_MISMATCH'
  | 'SIZE_MISMATCH'
  | 'AUTH_FAILED'
  | 'DENIED'
  | 'NETWORK'
  | 'TLS'
  | 'HTTP'
  | 'ARCHIVE_INVALID'
  | 'LAYOUT_INVALID'
  | 'LAYER_INVALID'
  | 'DAEMON_UNAVAILABLE'
  | 'CREDENTIALS'
  | 'CHECK_FAILED'
  | 'IO';

const brand = Symbol.for('ballast.error');

export interface BallastErrorOptions {
  hint?: string;
  cause?: unknown;
  exitCode?: 1 | 2 | 3;
}

export class BallastError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  /** 1: operational error, 2: usage error, 3: a check that ran and failed. */
  readonly exitCode: 1 | 2 | 3;

  constructor(code: ErrorCode, message: string, options: BallastErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BallastError';
    this.code = code;
    this.hint = options.hint;
    this.exitCode = options.exitCode ?? (code === 'USAGE' || code === 'REFERENCE_INVALID' ? 2 : 1);
    Object.defineProperty(this, brand, { value: true });
  }

  /** Works across two copies of the package, unlike instanceof. */
  static is(value: unknown): value is BallastError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand] === true;
  }
}

export function usageError(message: string, hint?: string): BallastError {
  return new BallastError('USAGE', message, { hint, exitCode: 2 });
}

/** Removes anything that looks like a secret from text that may reach a terminal or a log. */
export function redact(text: string, secrets: readonly (string | undefined)[] = []): string {
  let out = text.replace(/(Authorization:\s*)(Bearer|Basic)\s+\S+/gi, '$1$2 <redacted>');
  out = out.replace(/\/\/([^/@:\s]+):([^/@\s]+)@/g, '//$1:<redacted>@');
  for (const secret of secrets) {
    if (secret && secret.length >= 3) out = out.split(secret).join('<redacted>');
  }
  return out;
}
