// One reconciliation session with one peer: a pure state machine over a snapshot of our items
// (no I/O, no timers). Messages alternate; each answer says what to send and what to expect.

import { assertBytes } from '../util/bytes.ts';
import { answerFingerprint, answerIdList, answerWant, type Answer, type AnswerContext, type Span } from './answer.ts';
import { Fingerprints } from './fingerprint.ts';
import { INFINITY_BOUND, ItemSnapshot, MIN_BOUND, type ReconcileItem } from './items.ts';
import { resolveLimits, type ReconcileLimits } from './limits.ts';
import { decodeMessage, needsReply, type Range } from './messages.ts';
import { unansweredSplits, type SplitSpan } from './progress.ts';
import { ReplyBuilder } from './reply.ts';
import { refuse } from './wire.ts';

/** Options of {@link ReconcileSession}. */
export interface ReconcileSessionOptions<T extends ReconcileItem> {
  /** Our items at the start of the session, in any order (copied: a snapshot; updates applied
   *  later are not seen by this session, the next one reconciles them). */
  items: readonly T[];
  /** The session salt: {@link sessionSalt} of both sides' nonces. */
  salt: Uint8Array;
  /** True on the side that sends the first message ({@link ReconcileSession.initiate}). */
  initiator: boolean;
  /** Overrides of the protocol limits, for tests and measurements; both sides must agree. */
  limits?: Partial<ReconcileLimits>;
}

/** What one received message produced. */
export interface ReconcileStep<T extends ReconcileItem> {
  /** Send this to the peer; null when the peer expects nothing more. */
  reply: Uint8Array | null;
  /** Our items the peer lacks, found now (each reported once per session): send their envelopes. */
  have: T[];
  /** Hashes the peer listed that we lack, found now (copies; each reported once): the peer was
   *  asked for them and will send them. A peer that never does owes us them. */
  need: Uint8Array[];
  /** True when the session is over (after sending `reply`, if any). */
  done: boolean;
  /** Claims of the peer in this message that proved false: a range it said differed where it
   *  holds exactly what we hold. Charge each to its fault budget. */
  wasted: number;
}

/** Cost counters of a session. */
export interface ReconcileStats {
  messagesSent: number;
  messagesReceived: number;
  bytesSent: number;
  bytesReceived: number;
  /** Items reported in `have` and hashes in `need` so far. */
  have: number;
  need: number;
  /** Hashes the peer listed that we lacked but did not ask for, `need` being full. */
  needDropped: number;
  /** Sum of every step's `wasted`. */
  wasted: number;
}

type Turn = 'ours' | 'theirs' | 'done' | 'failed';

/**
 * Range-based set reconciliation (Meyer 2023; Negentropy, NIP-77) between our snapshot and a
 * peer's. Equal sets take one round trip (~25 bytes); d differences about d·B·log_B(n/t)
 * fingerprints (n = 100,000, d = 10: ~8 KiB in 4 round trips; bench/reconcile.ts).
 *
 * Driving it (the replication stream does this):
 * - both sides put `newNonce()` in their hello and derive `sessionSalt(local, remote)`; one side
 *   is the initiator, the same one on both ends (for example the lower node id);
 * - the initiator sends `initiate()`; then each side passes every reconciliation message it
 *   receives to `receive()` and sends `step.reply` when it is not null (an empty 2-byte reply
 *   still must be sent: the peer is waiting for it), until `step.done`;
 * - `step.have` are our items the peer lacks: send their envelopes (an `Update` is an item, so
 *   `update.bytes`), through the ordinary update path; they come in the item order;
 * - `step.need` are hashes the peer listed that we lack: we asked for them, the peer sends
 *   them. Where we were the side that listed, the peer's extra items arrive without being
 *   announced here (the peer finds them in its own `have`), so `need` is what the peer owes,
 *   not all we will receive. Together both sides' `have` are exactly the symmetric difference;
 * - charge `step.wasted` to the peer's fault budget; a thrown ProtocolError (its `reason` a
 *   ReconcileReason) breaks the protocol like any malformed message. `reconcile-rounds` is the
 *   one an honest peer can reach, with a difference of tens of thousands of items.
 *
 * Cost of one session: building it sorts the items and hashes each once with the salt (~1 µs
 * an item, synchronous); it holds ~41 bytes an item (snapshot, running sums, have flags) plus
 * at most maxNeed hashes. Each message costs O(ranges · log n + ids + our items inside the
 * peer's id lists), and a session at most maxRounds messages.
 */
export class ReconcileSession<T extends ReconcileItem> {
  readonly limits: ReconcileLimits;
  /** True if this side ended the session because its message budget was spent (differences
   *  may remain: the next session goes on). */
  spent = false;
  readonly stats: ReconcileStats = { messagesSent: 0, messagesReceived: 0, bytesSent: 0, bytesReceived: 0, have: 0, need: 0, needDropped: 0, wasted: 0 };
  private readonly snapshot: ItemSnapshot<T>;
  private readonly fingerprints: Fingerprints;
  private readonly initiator: boolean;
  private readonly reported: Uint8Array;
  private readonly needed = new Set<string>();
  private turn: Turn;
  private splits: SplitSpan[] = [];

  /** @throws TypeError / RangeError for bad options or items (see ItemSnapshot, resolveLimits). */
  constructor(options: ReconcileSessionOptions<T>) {
    if (typeof options?.initiator !== 'boolean') throw new TypeError('"initiator" expected boolean');
    this.limits = resolveLimits(options.limits);
    this.snapshot = new ItemSnapshot(options.items);
    this.fingerprints = new Fingerprints(this.snapshot.items, options.salt);
    this.reported = new Uint8Array(this.snapshot.size);
    this.initiator = options.initiator;
    this.turn = options.initiator ? 'ours' : 'theirs';
  }

  /** True once the session is over. */
  get done(): boolean {
    return this.turn === 'done';
  }

  /**
   * The first message: our fingerprint of everything.
   * @throws Error unless this is the initiator and nothing was sent or received yet.
   */
  initiate(): Uint8Array {
    if (!this.initiator || this.turn !== 'ours' || this.stats.messagesSent > 0) throw new Error('initiate() is called once, by the initiator, first');
    const reply = new ReplyBuilder(this.limits);
    reply.push({ mode: 'fingerprint', upper: INFINITY_BOUND, fingerprint: this.fingerprints.of(0, this.snapshot.size) });
    return this.send(reply.finish(), 'theirs');
  }

  /**
   * Answers one message of the peer.
   * @throws ProtocolError (code ERR_PROTOCOL, `reason` a ReconcileReason) for a message that
   * breaks the protocol or its limits, or comes out of turn; the session is then failed.
   * @throws Error when called on a session that already failed.
   */
  receive(message: Uint8Array): ReconcileStep<T> {
    assertBytes(message, 'message');
    if (this.turn === 'failed') throw new Error('receive() on a failed reconciliation session');
    try {
      if (this.turn === 'done') throw refuse('reconcile-unexpected', 'message after the session ended');
      if (this.turn === 'ours') throw refuse('reconcile-unexpected', 'message before our first message');
      this.stats.messagesReceived++;
      this.stats.bytesReceived += message.length;
      if (this.stats.messagesReceived > this.limits.maxRounds) throw refuse('reconcile-rounds', `more than ${this.limits.maxRounds} messages`);
      const ranges = decodeMessage(message, this.limits);
      return this.answer(ranges, unansweredSplits(this.splits, ranges));
    } catch (error) {
      this.turn = 'failed';
      throw error;
    }
  }

  private answer(ranges: readonly Range[], wastedSplits: number): ReconcileStep<T> {
    const step: ReconcileStep<T> = { reply: null, have: [], need: [], done: false, wasted: wastedSplits };
    const reply = new ReplyBuilder(this.limits);
    const splits: SplitSpan[] = [];
    const ctx = this.context();
    let lower = MIN_BOUND;
    let lo = 0;
    for (const range of ranges) {
      const hi = this.snapshot.lowerBound(range.upper, lo);
      const span: Span = { lo, hi, lower, upper: range.upper };
      const found = answerRange(ctx, span, range);
      const mark = reply.mark();
      for (const r of found.ranges) reply.push(r);
      if (!reply.fits()) {
        reply.rollback(mark);
        reply.close(this.fingerprints.of(lo, this.snapshot.size));
        break;
      }
      this.commit(found, step);
      ctx.needRoom = this.limits.maxNeed - this.stats.need;
      if (found.split) splits.push({ lower, upper: range.upper });
      lower = range.upper;
      lo = hi;
    }
    this.stats.wasted += step.wasted;
    this.splits = splits;
    if (!needsReply(ranges)) {
      this.turn = 'done';
    } else if (reply.asksForReply && this.stats.messagesSent + this.stats.messagesReceived + 3 > this.limits.maxRounds) {
      // Going on would take the session past maxRounds messages (both ways) before it could
      // end: end it now with an empty message (it asks for nothing), keeping what was found. So
      // an honest session never reaches either side's round limit; the next one goes on.
      this.spent = true;
      step.reply = this.send(new ReplyBuilder(this.limits).finish(), 'done');
    } else {
      step.reply = this.send(reply.finish(), reply.asksForReply ? 'theirs' : 'done');
    }
    step.done = this.turn === 'done';
    return step;
  }

  private context(): AnswerContext<T> {
    return {
      snapshot: this.snapshot,
      fingerprints: this.fingerprints,
      limits: this.limits,
      reported: (i) => this.reported[i] === 1,
      needed: (hash) => this.needed.has(keyOf(hash)),
      needRoom: this.limits.maxNeed - this.stats.need,
    };
  }

  private commit(found: Answer, step: ReconcileStep<T>): void {
    for (const i of found.have) {
      this.reported[i] = 1;
      step.have.push(this.snapshot.items[i]!);
    }
    for (const hash of found.need) {
      this.needed.add(keyOf(hash));
      step.need.push(hash);
    }
    this.stats.have += found.have.length;
    this.stats.need += found.need.length;
    this.stats.needDropped += found.dropped;
    step.wasted += found.wasted;
  }

  private send(message: Uint8Array, next: Turn): Uint8Array {
    this.stats.messagesSent++;
    this.stats.bytesSent += message.length;
    this.turn = next;
    return message;
  }
}

function answerRange<T extends ReconcileItem>(ctx: AnswerContext<T>, span: Span, range: Range): Answer {
  switch (range.mode) {
    case 'skip':
      return { ranges: [range], have: [], need: [], dropped: 0, wasted: 0, split: false };
    case 'fingerprint':
      return answerFingerprint(ctx, span, range.fingerprint);
    case 'idList':
      return answerIdList(ctx, span, range.ids);
    case 'want':
      return answerWant(ctx, span, range.ids);
  }
}

const keyOf = (hash: Uint8Array): string => Buffer.from(hash.buffer, hash.byteOffset, hash.length).toString('latin1');
