// Assertions several test files share.
import * as assert from 'uvu/assert';

/** Asserts that `promise` rejects with an instance of `type` whose message matches `pattern`. */
export async function rejects(promise: Promise<unknown>, type: new (...args: never[]) => Error, pattern: RegExp): Promise<void> {
  try {
    await promise;
  } catch (err) {
    assert.instance(err, type);
    assert.match((err as Error).message, pattern);
    return;
  }
  assert.unreachable('should reject');
}
