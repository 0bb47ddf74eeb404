// How one range of a peer's message is answered, given our items in it: compare a fingerprint
// (equal: skip; else split or list), compare an id list (the whole difference there), or check
// a want. Pure: the session commits what an answer found only once its ranges fit the reply.

import { ProtocolError } from '../errors.ts';
import { bytesEqual, compareBytes } from '../util/bytes.ts';
import type { Fingerprints } from './fingerprint.ts';
import { separatingBound, type Bound, type ItemSnapshot, type ReconcileItem } from './items.ts';
import type { ReconcileLimits } from './limits.ts';
import type { Range } from './messages.ts';
import { refuse } from './wire.ts';

/** Our items [lo, hi) lying between the bounds of one range of the peer's message. */
export interface Span {
  lo: number;
  hi: number;
  lower: Bound;
  upper: Bound;
}

/** What answering one range produced. */
export interface Answer {
  /** Ranges for our reply (a skip when nothing is left to do). */
  ranges: Range[];
  /** Indices of our items the peer lacks. */
  have: number[];
  /** Hashes the peer listed that we lack (asked for in `ranges`). */
  need: Uint8Array[];
  /** Hashes the peer listed that we lack but do not ask for, `need` being full. */
  dropped: number;
  /** 1 when the peer's range proved to hold nothing new although it claimed a difference. */
  wasted: number;
  /** True when we split the range: the peer's next message must show a difference inside it. */
  split: boolean;
}

/** Session state an answer reads (never writes). */
export interface AnswerContext<T extends ReconcileItem> {
  snapshot: ItemSnapshot<T>;
  fingerprints: Fingerprints;
  limits: ReconcileLimits;
  /** True once item `index` was reported in `have`. */
  reported(index: number): boolean;
  /** True when this hash was already reported in `need`. */
  needed(hash: Uint8Array): boolean;
  /** How many more hashes `need` may take this session. */
  needRoom: number;
}

const answer = (ranges: Range[], extra: Partial<Answer> = {}): Answer => ({ ranges, have: [], need: [], dropped: 0, wasted: 0, split: false, ...extra });

/** The peer's fingerprint: skip if it is ours; else list our few items, or split the range
 *  into `branching` parts of equal item counts, each with our fingerprint. */
export function answerFingerprint<T extends ReconcileItem>(ctx: AnswerContext<T>, span: Span, fingerprint: Uint8Array): Answer {
  const { lo, hi, upper } = span;
  if (ctx.fingerprints.matches(lo, hi, fingerprint)) return answer([{ mode: 'skip', upper }]);
  const items = ctx.snapshot.items;
  const count = hi - lo;
  if (count <= ctx.limits.idListThreshold) {
    const ids: Uint8Array[] = [];
    for (let i = lo; i < hi; i++) ids.push(items[i]!.hash);
    return answer([{ mode: 'idList', upper, ids }]);
  }
  const parts = ctx.limits.branching;
  const ranges: Range[] = [];
  let start = lo;
  for (let p = 0; p < parts; p++) {
    const end = start + Math.floor(count / parts) + (p < count % parts ? 1 : 0);
    const bound = end === hi ? upper : separatingBound(items[end - 1]!, items[end]!);
    ranges.push({ mode: 'fingerprint', upper: bound, fingerprint: ctx.fingerprints.of(start, end) });
    start = end;
  }
  return answer(ranges, { split: true });
}

/** The peer's whole list for the range: what we hold that it lacks goes to `have`; what it
 *  holds that we lack goes to `need` and is asked for with a want. Costs O((hi - lo) log t):
 *  each of our items is looked up among the peer's (at most t) sorted hashes. */
export function answerIdList<T extends ReconcileItem>(ctx: AnswerContext<T>, span: Span, ids: readonly Uint8Array[]): Answer {
  const { lo, hi, upper } = span;
  const items = ctx.snapshot.items;
  const theirs = ids.slice().sort(compareBytes);
  const matched = new Uint8Array(theirs.length);
  const have: number[] = [];
  let ours = 0; // our items the peer lacks, reported before or not
  for (let i = lo; i < hi; i++) {
    const at = search(theirs, items[i]!.hash);
    if (at >= 0) matched[at] = 1;
    else {
      ours++;
      if (!ctx.reported(i)) have.push(i);
    }
  }
  const need: Uint8Array[] = [];
  let missing = 0;
  let dropped = 0;
  for (let k = 0; k < theirs.length; k++) {
    if (matched[k]) continue;
    missing++;
    if (ctx.needed(theirs[k]!)) continue;
    if (need.length < ctx.needRoom) need.push(theirs[k]!.slice());
    else dropped++;
  }
  // An honest peer lists a range only when its fingerprint there differed from ours.
  const wasted = ours === 0 && missing === 0 ? 1 : 0;
  const ranges: Range[] = need.length > 0 ? [{ mode: 'want', upper, ids: need }] : [{ mode: 'skip', upper }];
  return answer(ranges, { have, need, dropped, wasted });
}

/** The peer wants hashes of our id list for this range: each must be one of our items there,
 *  and we list only ranges where we hold at most t items.
 *  @throws ProtocolError `reconcile-bad-want` otherwise. */
export function answerWant<T extends ReconcileItem>(ctx: AnswerContext<T>, span: Span, ids: readonly Uint8Array[]): Answer {
  const { lo, hi, upper } = span;
  if (hi - lo > ctx.limits.idListThreshold) throw badWant(`want for a range where we hold ${hi - lo} items (we never listed it)`);
  const items = ctx.snapshot.items;
  const have: number[] = [];
  for (const id of ids) {
    let i = lo;
    while (i < hi && !bytesEqual(items[i]!.hash, id)) i++;
    if (i === hi) throw badWant('want for a hash we do not hold in that range');
    if (!ctx.reported(i)) have.push(i);
  }
  return answer([{ mode: 'skip', upper }], { have });
}

const badWant = (detail: string): ProtocolError => refuse('reconcile-bad-want', detail);

/** Index of `hash` in sorted `list`, or -1. */
function search(list: readonly Uint8Array[], hash: Uint8Array): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = compareBytes(list[mid]!, hash);
    if (c === 0) return mid;
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return -1;
}
