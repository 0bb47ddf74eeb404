// Versions: per source, strictly increasing, never reused even after the source loses its
// store, because fresh versions follow the wall clock in microseconds.

/** The wall clock in whole microseconds since the epoch (a safe integer until the year 2255). */
export function wallClockMicros(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000);
}

/**
 * The next version for a source whose last version was `last`: max(last + 1, now).
 * @throws RangeError if the result would not be a safe integer (the source must rotate keys).
 */
export function nextVersion(last: number, now: number = wallClockMicros()): number {
  const next = Math.max(last + 1, now);
  if (!Number.isSafeInteger(next)) throw new RangeError(`"version" would exceed Number.MAX_SAFE_INTEGER (last=${last})`);
  return next;
}
