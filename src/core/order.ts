// The one total order on updates: (version, sourceId, updateHash). Last-writer-wins and
// equivocation both resolve by it, so every node picks the same winner in any arrival order.
import { compareHashes, type Update } from '../envelope/update.ts';

/** Negative if `a` orders before `b`, positive if after, 0 only for the same update. */
export function compareUpdates(a: Update, b: Update): number {
  if (a.version !== b.version) return a.version - b.version;
  if (a.source !== b.source) return a.source < b.source ? -1 : 1;
  return compareHashes(a, b);
}

/** The first 8 bytes of an update hash, carried in digests to detect equivocation cheaply. */
export const hashPrefix = (update: Update): Uint8Array => update.hash.subarray(0, 8);
