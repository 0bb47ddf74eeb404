// Reconciliation on a replication stream: when sessions run, with what salt and items, and what
// their findings become (updates to send, faults to charge). The set-reconciliation engine itself
// (src/reconcile) is pure; this drives it from the stream's events and timers.
import { createHash } from 'node:crypto';
import type { Update } from '../envelope/update.ts';
import type { NodeId } from '../identity/node-id.ts';
import { ProtocolError } from '../errors.ts';
import type { AnyScuttlebutt } from '../core/scuttlebutt.ts';
import { ReconcileSession, newNonce, sessionSalt, type ReconcileReason } from '../reconcile/index.ts';
import { RECONCILE_MIN_GAP_MS } from '../limits.ts';

/** What one reconciliation session found and cost (the stream's `'reconciled'` event). */
export interface ReconcileSummary {
  /** Sessions on this stream so far, this one included. */
  session: number;
  /** This side sent the first message. */
  initiator: boolean;
  /** Items compared on this side. */
  items: number;
  /** Our updates the peer lacked (sent, if this side sends). */
  have: number;
  /** Updates the peer holds that we lacked (it sends them, if it sends). */
  need: number;
  /** Reconciliation messages both ways, and their bytes. */
  messages: number;
  bytes: number;
  /** Claims of the peer that proved false, charged to its fault budget. */
  wasted: number;
}

/** Options of a {@link Reconciler}: the stream's hooks. */
export interface ReconcilerOptions {
  sb: AnyScuttlebutt;
  /** Which held updates take part (the stream's filter and the peer's size limit). */
  include: (update: Update) => boolean;
  /** Sessions again every this many ms (0: never by the clock). */
  intervalMs: number;
  /** A session this long after the last live update (0: none). */
  quietMs: number;
  send: (payload: Uint8Array) => void;
  repair: (updates: Update[]) => void;
  charge: (wasted: number, detail: string) => void;
  cut: (reason: ReconcileReason, detail: string) => void;
  ended: (summary: ReconcileSummary) => void;
}

const SALT_TAG = Buffer.from('signet/reconcile-session/v1', 'ascii');

/** The salt of session number `session` (1, 2, ...) on a stream whose hellos gave `base`
 *  (sessionSalt of both nonces): SHA-256(tag || base || decimal session number). */
export function perSessionSalt(base: Uint8Array, session: number): Uint8Array {
  return createHash('sha256').update(SALT_TAG).update(base).update(String(session)).digest();
}

/**
 * One stream's reconciliation. The side with the lower node id initiates: right after SYNC, on a
 * timer, and once the live tail has been quiet; the other answers. Each session has its own salt,
 * SHA-256(tag || the salt of both hellos' nonces || session number), so no one who could not see
 * both nonces can prepare items that collide in it, and no two sessions share one.
 */
export class Reconciler {
  /** Our share of the salt, sent in the hello. */
  readonly nonce = newNonce();
  private readonly o: ReconcilerOptions;
  private enabled = false;
  private initiator = false;
  private baseSalt: Uint8Array | null = null;
  private session: ReconcileSession<Update> | null = null;
  private items = 0;
  private count = 0;
  private synced = false;
  private stopped = false;
  /** Live updates went by while a session ran: another follows it. */
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private quietTimer: NodeJS.Timeout | null = null;
  /** Live updates went by since the quiet timer was armed. */
  private touched = false;
  /** Responder: a session ended less than the minimum gap ago. */
  private cooling = false;
  private coolTimer: NodeJS.Timeout | null = null;

  constructor(options: ReconcilerOptions) {
    this.o = options;
  }

  /** The peer's hello: who it is, its nonce, and whether sessions run at all (both sides must
   *  reconcile, updates must flow at least one way, and a clone of ourselves needs none). */
  peer(id: NodeId, nonce: Uint8Array, how: { enabled: boolean; sends: boolean; accepts: boolean }): void {
    const self = this.o.sb.id;
    this.enabled = how.enabled && id !== self && (how.sends || how.accepts);
    if (!this.enabled) return;
    this.initiator = self < id;
    this.baseSalt = sessionSalt({ id: self, nonce: this.nonce }, { id, nonce });
  }

  /** Both directions synced. @returns true if a session will run (the stream must not end yet). */
  afterSync(): boolean {
    if (!this.enabled || this.stopped) return false;
    this.synced = true;
    if (this.initiator) this.begin();
    return true;
  }

  /** A session is in progress. */
  get active(): boolean {
    return this.session !== null;
  }

  /** Live updates went by: the initiator reconciles once they have been quiet for `quietMs`. */
  activity(): void {
    if (!this.synced || this.stopped || !this.initiator || this.o.quietMs === 0) return;
    if (this.session) {
      this.again = true;
      return;
    }
    // One timer per quiet period, not one per update: when it fires after more activity, it
    // waits another period.
    this.touched = true;
    if (!this.quietTimer) this.armQuiet();
  }

  private armQuiet(): void {
    this.touched = false;
    this.quietTimer = setTimeout(() => {
      this.quietTimer = null;
      if (this.touched) this.armQuiet();
      else this.begin();
    }, this.o.quietMs);
    this.quietTimer.unref();
  }

  /** A reconciliation message from the peer. */
  receive(payload: Uint8Array): void {
    if (!this.enabled || this.stopped) return; // we said we do not reconcile: ignored
    if (!this.session) {
      if (this.initiator) return this.o.cut('reconcile-unexpected', 'a reconciliation message while no session is open');
      // Each session costs us a pass over everything we hold: an initiator that starts them back
      // to back pays a fault each time (honest ones wait quietMs at least).
      if (this.cooling) this.o.charge(1, 'a reconciliation session started right after the last one');
      this.session = this.open(false);
    }
    let step;
    try {
      step = this.session.receive(payload);
    } catch (err) {
      if (err instanceof ProtocolError) return this.o.cut(err.reason as ReconcileReason, err.message);
      throw err;
    }
    if (step.wasted > 0) this.o.charge(step.wasted, `${step.wasted} reconciliation ranges it said differ did not`);
    if (step.have.length > 0) this.o.repair(step.have);
    if (step.reply) this.o.send(step.reply);
    if (step.done) this.end();
  }

  /** No new sessions (the stream is ending); one in progress may finish. */
  stop(): void {
    this.stopped = true;
    this.clearTimers();
  }

  /** The stream closed. */
  close(): void {
    this.stop();
    this.session = null;
  }

  private begin(): void {
    if (this.stopped || this.session || !this.enabled) return;
    this.clearTimers();
    this.session = this.open(true);
    this.o.send(this.session.initiate());
  }

  private open(initiator: boolean): ReconcileSession<Update> {
    this.count++;
    const salt = perSessionSalt(this.baseSalt!, this.count);
    const items = this.o.sb.reconcileSet().filter(this.o.include);
    this.items = items.length;
    return new ReconcileSession<Update>({ items, salt, initiator });
  }

  private end(): void {
    const session = this.session!;
    this.session = null;
    if (!this.initiator && !this.stopped) {
      this.cooling = true;
      this.coolTimer = setTimeout(() => {
        this.cooling = false;
        this.coolTimer = null;
      }, Math.min(RECONCILE_MIN_GAP_MS, this.o.quietMs > 0 ? this.o.quietMs : RECONCILE_MIN_GAP_MS));
      this.coolTimer.unref();
    }
    const st = session.stats;
    this.o.ended({
      session: this.count, initiator: this.initiator, items: this.items, have: st.have, need: st.need,
      messages: st.messagesSent + st.messagesReceived, bytes: st.bytesSent + st.bytesReceived, wasted: st.wasted,
    });
    if (this.stopped || !this.initiator) return;
    // Live updates went by meanwhile, or the session used up its message budget (either side
    // ended it there, with differences perhaps left: a large repair takes several sessions):
    // another follows once things are quiet.
    const spent = session.spent || st.messagesReceived + st.messagesSent + 3 > session.limits.maxRounds;
    if (this.again || spent) {
      this.again = false;
      this.activity();
    }
    if (this.o.intervalMs > 0 && !this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.begin();
      }, this.o.intervalMs);
      this.timer.unref();
    }
  }

  private clearTimers(): void {
    if (this.coolTimer) clearTimeout(this.coolTimer);
    this.coolTimer = null;
    if (this.timer) clearTimeout(this.timer);
    if (this.quietTimer) clearTimeout(this.quietTimer);
    this.timer = null;
    this.quietTimer = null;
  }
}
