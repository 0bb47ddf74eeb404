// Detects a peer that makes us work for nothing: when its fingerprint of a range differed from
// ours we split the range, so its next message must answer some part of it with a difference.

import { compareBounds, MIN_BOUND, type Bound } from './items.ts';
import type { Range } from './messages.ts';

/** A range we split in our last message, because the peer's fingerprint of it differed. */
export interface SplitSpan {
  lower: Bound;
  upper: Bound;
}

/**
 * How many of `splits` the peer's next message answers with skips only (all parts equal,
 * although the whole differed: impossible for an honest peer, whose fingerprint is a function
 * of the items it holds, barring a 2^-128 collision). A reply cut short at the size limit ends
 * with one fingerprint over everything left, which counts as an answer. Both lists are sorted
 * and disjoint: O(splits + ranges).
 */
export function unansweredSplits(splits: readonly SplitSpan[], ranges: readonly Range[]): number {
  let unanswered = 0;
  let r = 0;
  const lowerOf = (k: number): Bound => (k === 0 ? MIN_BOUND : ranges[k - 1]!.upper);
  for (const split of splits) {
    // Pass the peer's ranges that end at or before this split starts.
    while (r < ranges.length && compareBounds(ranges[r]!.upper, split.lower) <= 0) r++;
    let answered = false;
    for (let k = r; k < ranges.length && compareBounds(lowerOf(k), split.upper) < 0; k++) {
      if (ranges[k]!.mode !== 'skip') {
        answered = true;
        break;
      }
    }
    if (!answered) unanswered++;
  }
  return unanswered;
}
