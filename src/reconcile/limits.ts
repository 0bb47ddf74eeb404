// The named limits of range-based set reconciliation: what one message, one session and one
// peer may cost us. Each says what happens past it. Both sides must use the same values.

import { assertInteger } from '../util/bytes.ts';

/** Largest reconciliation message. A received one past it is refused `reconcile-too-large`
 *  before it is parsed; our own replies stop growing before it (the rest of the key space is
 *  then covered by one fingerprint, answered in a later round). */
export const MAX_RECONCILE_MESSAGE_BYTES = 256 * 1024;
/** Most ranges in one message. Past it: `reconcile-too-many-ranges`, checked on the declared
 *  count before any range is read; our replies stop growing before it. */
export const MAX_RANGES_PER_MESSAGE = 8192;
/** Most 32-byte hashes (id lists and wants together) in one message. Past it:
 *  `reconcile-too-many-ids`, checked on each declared count before the ids are read. */
export const MAX_IDS_PER_MESSAGE = 8192;
/** Most messages a session receives (a round trip is one message each way). Past it:
 *  `reconcile-rounds`, so a peer that claims ranges differ forever costs at most this many
 *  messages of bounded work. An honest session receives about (log_B(n / t) + 3) / 2 (4 at
 *  n = 100,000), more only when replies were cut at the size limit, which takes a difference
 *  of tens of thousands of items. */
export const MAX_ROUNDS = 64;
/** Most hashes one session reports in `need`. Past it the peer's further items are not asked
 *  for in this session (no error: the next session finds them again), so a peer listing
 *  invented hashes costs at most ~3 MiB (a copy and a set key per hash). */
export const MAX_NEED_PER_SESSION = 16_384;
/** Ranges a differing range is split into (B). Each difference costs about B fingerprints per
 *  level over log_B(n / t) levels. B = 8 with t = 8 was the best trade-off in a sweep at
 *  n = 100,000, d = 10 (7.8 KiB in 4 round trips; B = 4 saves ~15% of the bytes for ~35% more
 *  messages, B = 16 costs ~40% more bytes to save half a round trip). */
export const RECONCILE_BRANCHING = 8;
/** A differing range in which we hold at most this many items is answered with the list of
 *  their hashes instead of being split. A received id list longer than this is refused
 *  `reconcile-too-many-ids`; a `want` for a range where we hold more is `reconcile-bad-want`
 *  (we never list such a range). At least RECONCILE_BRANCHING, so a split never makes an
 *  empty part. */
export const IDLIST_THRESHOLD = 8;

/** The limits of one session. The defaults above are protocol constants of format 1: change
 *  them only for tests and measurements, and on both sides alike. */
export interface ReconcileLimits {
  /** Default {@link MAX_RECONCILE_MESSAGE_BYTES}. */
  maxMessageBytes: number;
  /** Default {@link MAX_RANGES_PER_MESSAGE}. */
  maxRangesPerMessage: number;
  /** Default {@link MAX_IDS_PER_MESSAGE}. */
  maxIdsPerMessage: number;
  /** Default {@link MAX_ROUNDS}. */
  maxRounds: number;
  /** Default {@link MAX_NEED_PER_SESSION}. */
  maxNeed: number;
  /** Default {@link RECONCILE_BRANCHING}. */
  branching: number;
  /** Default {@link IDLIST_THRESHOLD}. */
  idListThreshold: number;
}

/** The protocol's limits, as a session uses them unless told otherwise. */
export const DEFAULT_RECONCILE_LIMITS: Readonly<ReconcileLimits> = Object.freeze({
  maxMessageBytes: MAX_RECONCILE_MESSAGE_BYTES,
  maxRangesPerMessage: MAX_RANGES_PER_MESSAGE,
  maxIdsPerMessage: MAX_IDS_PER_MESSAGE,
  maxRounds: MAX_ROUNDS,
  maxNeed: MAX_NEED_PER_SESSION,
  branching: RECONCILE_BRANCHING,
  idListThreshold: IDLIST_THRESHOLD,
});

/** Bytes of the largest single range: bound (9-byte version code, 1-byte length, 84-byte
 *  prefix), mode, then a 16-byte fingerprint; an id list's length varint is counted apart. */
export const MAX_RANGE_HEAD_BYTES = 9 + 1 + 84 + 1;

/**
 * The defaults overridden by `partial`, checked so that one answered range always fits in a
 * reply (every reply makes progress).
 * @throws TypeError / RangeError naming the bad field.
 */
export function resolveLimits(partial: Partial<ReconcileLimits> = {}): ReconcileLimits {
  const limits = { ...DEFAULT_RECONCILE_LIMITS, ...partial };
  assertInteger(limits.branching, 'limits.branching', 2, 256);
  assertInteger(limits.idListThreshold, 'limits.idListThreshold', limits.branching, 1024);
  assertInteger(limits.maxRounds, 'limits.maxRounds', 1, 1_000_000);
  assertInteger(limits.maxNeed, 'limits.maxNeed', 0, 100_000_000);
  // A reply must hold one split (B ranges) or one full id list, plus the closing fingerprint.
  assertInteger(limits.maxRangesPerMessage, 'limits.maxRangesPerMessage', limits.branching + 2, 1_000_000);
  assertInteger(limits.maxIdsPerMessage, 'limits.maxIdsPerMessage', limits.idListThreshold, 1_000_000);
  const oneRange = Math.max(limits.branching * (MAX_RANGE_HEAD_BYTES + 16), MAX_RANGE_HEAD_BYTES + 5 + 32 * limits.idListThreshold);
  const minBytes = 16 + oneRange + 2 * (MAX_RANGE_HEAD_BYTES + 16);
  assertInteger(limits.maxMessageBytes, 'limits.maxMessageBytes', minBytes, 64 * 1024 * 1024);
  return limits;
}
