// Builds one reply within the message limits: merges adjacent skips, counts the exact encoded
// size as it grows, and can take back the last answer when it does not fit.

import { FINGERPRINT_BYTES } from './fingerprint.ts';
import { INFINITY_BOUND } from './items.ts';
import type { ReconcileLimits } from './limits.ts';
import { encodeMessage, needsReply, rangeBytes, type Range } from './messages.ts';
import { varintLength } from './wire.ts';

/** Room kept for the closing range: a fingerprint up to the infinite bound (3 + 16 bytes),
 *  plus 2 bytes in case the range count's varint grows. */
const CLOSING_BYTES = 3 + FINGERPRINT_BYTES + 2;

/** Where the builder stood, to go back to. */
export interface Mark {
  count: number;
  bytes: number;
  ids: number;
  lastSkipUpper: Range['upper'] | undefined;
}

/** One reply under construction, in range order. */
export class ReplyBuilder {
  private readonly ranges: Range[] = [];
  private bytes = 0;
  private ids = 0;

  constructor(private readonly limits: ReconcileLimits) {}

  private previousVersion(index: number): number {
    return index > 0 ? this.ranges[index - 1]!.upper.version : 0;
  }

  mark(): Mark {
    const last = this.ranges.at(-1);
    return { count: this.ranges.length, bytes: this.bytes, ids: this.ids, lastSkipUpper: last?.mode === 'skip' ? last.upper : undefined };
  }

  rollback(mark: Mark): void {
    this.ranges.length = mark.count;
    this.bytes = mark.bytes;
    this.ids = mark.ids;
    const last = this.ranges.at(-1);
    if (last?.mode === 'skip' && mark.lastSkipUpper) last.upper = mark.lastSkipUpper;
  }

  /** Appends a range; a skip after a skip extends it. */
  push(range: Range): void {
    const last = this.ranges.at(-1);
    const at = this.ranges.length;
    if (range.mode === 'skip' && last?.mode === 'skip') {
      this.bytes -= rangeBytes(last, this.previousVersion(at - 1));
      last.upper = range.upper;
      this.bytes += rangeBytes(last, this.previousVersion(at - 1));
      return;
    }
    this.ranges.push({ ...range });
    this.bytes += rangeBytes(range, this.previousVersion(at));
    if (range.mode === 'idList' || range.mode === 'want') this.ids += range.ids.length;
  }

  /** True while the reply, plus a closing fingerprint, is within every limit. */
  fits(): boolean {
    const total = 1 + varintLength(this.ranges.length + 1) + this.bytes + CLOSING_BYTES;
    return total <= this.limits.maxMessageBytes && this.ranges.length + 1 <= this.limits.maxRangesPerMessage && this.ids <= this.limits.maxIdsPerMessage;
  }

  /** Ends the reply early with one fingerprint of everything we hold from here up: the peer
   *  answers it in the next round, so what was not answered now is not lost. */
  close(fingerprint: Uint8Array): void {
    this.push({ mode: 'fingerprint', upper: INFINITY_BOUND, fingerprint });
  }

  /** True when the reply asks the peer for an answer. */
  get asksForReply(): boolean {
    return needsReply(this.ranges);
  }

  /** The encoded reply, without a trailing skip (everything after the last range is skipped). */
  finish(): Uint8Array {
    if (this.ranges.at(-1)?.mode === 'skip') this.ranges.pop();
    return encodeMessage(this.ranges);
  }
}
