/** Assertions the test files share. */
import assert from 'node:assert/strict';
import { BallastError } from '../../src/errors.js';

/**
 * Awaits `promise`, which must reject with a BallastError of `code` (and, when given, a message or
 * hint matching `pattern`); returns the error for further checks.
 */
export async function rejectsWith(
  promise: Promise<unknown>,
  code: string,
  pattern?: RegExp,
): Promise<BallastError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(
      BallastError.is(error),
      `expected a BallastError, got ${String((error as Error)?.stack ?? error)}`,
    );
    assert.equal(error.code, code, error.message);
    if (pattern) assert.match(`${error.message} ${error.hint ?? ''}`, pattern);
    return error;
  }
  assert.fail(`expected ${code}, but it succeeded`);
}
