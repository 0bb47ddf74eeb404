// Scuttlebutt: the base every replicated model extends. Owns the clock, the receive
// pipeline (cheap checks, dedupe, async verify, in-order apply, then clock/store/forward),
// equivocation evidence, local signed writes, and the streams attached to it.
import { EventEmitter } from 'node:events';
import type { Identity } from '../identity/identity.ts';
import type { NodeId } from '../identity/node-id.ts';
import { defaultSignatureBackend, type SignatureBackend } from '../identity/signature.ts';
import {
  EnvelopeBacking, backUpdate, compactUpdate, parseAdoptedUpdate, parseUpdate, signUpdate, unbackUpdate, verifyUpdate, isDatasetName, hashId, sameHash,
  type Update, type UpdateOptions,
} from '../envelope/update.ts';
import { nextVersion, wallClockMicros } from '../envelope/version.ts';
import type { Value } from '../envelope/cbor.ts';
import { MAX_CLOCK_SKEW_MICROS, MAX_DEFER_MICROS, OWN_VERSION_RESERVE_MICROS, MAX_UPDATE_BYTES, MAX_UPDATE_BYTES_CEILING, STORE_STALL_MS } from '../limits.ts';
import { assertInteger } from '../util/bytes.ts';
import { StoreError, WriteError, messageOf } from '../errors.ts';
import type { Store, StoreBatch } from '../store/store.ts';
import { open, type WritePolicy } from './policy.ts';
import { compareUpdates } from './order.ts';
import { HeldSet } from './held.ts';
import { InflightTable } from './inflight.ts';
import { Deferrals } from './deferral.ts';
import { Evidence } from './evidence.ts';
import type { RejectReason, Rejection, Equivocation, IngestResult, UpdateOrigin } from './types.ts';
// Type-only: the stream lives in replication/ (a layer up), which registers its factory below.
import type { ReplicationStream, StreamOptions } from '../replication/stream.ts';

/** An applied update waiting for its store commit before it is announced. */
interface Committing {
  update: Update;
  origin: UpdateOrigin | null;
  changed: boolean;
  evidence: boolean;
  meta: Array<[string, number]> | undefined;
}

/** Applied updates committed to the store as one batch, in apply order: gathered during one
 *  turn (see commitApplied), then committed at its end. */
interface CommitGroup {
  entries: Committing[];
  /** What the group writes: its updates, what they superseded, the clock, meta. */
  batch: StoreBatch & { put: Update[]; drop: Update[]; meta: Array<[string, number]> };
  /** Index in batch.clock of each source's entry (one per source: its highest version). */
  clockAt: Map<NodeId, number>;
  /** The updates of batch.put, made once one of them is superseded within the group. */
  puts: Set<Update> | null;
  settled: boolean;
  /** Set once settled if the commit failed, with why. */
  failure?: { error: unknown };
  /** performance.now() when the group began gathering (see watchStore). */
  since: number;
  /** Its commit has been reported as not settling (once). */
  stalled: boolean;
}

/** settle()'s answer when nothing was dropped: one shared array, never written to. */
const NO_DROPS: Update[] = Object.freeze([]) as unknown as Update[];

/** Any Scuttlebutt, whatever its event map (internal plumbing that emits by name). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyScuttlebutt = Scuttlebutt<any>;
type StreamFactory = (sb: AnyScuttlebutt, options?: StreamOptions) => ReplicationStream;
let streamFactory: StreamFactory | null = null;

/** @internal replication/ registers how streams are made, so core never imports upward. */
export function registerStreamFactory(factory: StreamFactory): void {
  streamFactory = factory;
}

/** Options shared by every Scuttlebutt subclass. */
export interface ScuttlebuttOptions {
  /** Signs this node's writes; its id is this instance's id. */
  identity: Identity;
  /** Dataset name, bound into every signed update. Default `'default'`. */
  dataset?: string;
  /** Milliseconds a store commit may stay unsettled before `'error'` reports it (a StoreError,
   *  once per commit; announcing and forwarding wait for it meanwhile). Default {@link STORE_STALL_MS}. */
  storeStallMs?: number;
  /** Who may write which key. Default `open()` (any source, any key). */
  policy?: WritePolicy;
  /** Persistence. Default none (state lives in memory only). */
  store?: Store;
  /** Largest update body. Default 64 KiB. */
  maxUpdateBytes?: number;
  /** How far in the future (µs) an update's version may be before it is deferred. Default 60 s. */
  maxClockSkew?: number;
  /** Re-verify every stored envelope's signature when loading from the store (the store is
   *  local and trusted, so by default they are only parsed). A bad one refuses the store. Default false. */
  verifyOnOpen?: boolean;
  /** Keep the envelopes of held updates in memory even when the store can read them back
   *  (Store.readEnvelope: LmdbStore can). By default such a model keeps, per held update once
   *  the store has committed it, only what names and orders it (hash, version, body length),
   *  and reads the envelope back from the store, checked against the hash, when a value, a body
   *  or the bytes are asked for (a peer's history, `get`). A record the store lost or altered
   *  makes that read throw StoreError; the model reports it (`'error'`) and forgets the update
   *  (see {@link Scuttlebutt.lost}), so a peer that holds it brings it back. True trades that
   *  memory (about the envelope's size per update) for reads from memory. Default false. */
  envelopesInMemory?: boolean;
  /** Refuse further updates from a source once it has equivocated. Default false (a source is
   *  quarantined anyway once it reaches MAX_EVIDENCE_PER_SOURCE equivocations). */
  quarantine?: boolean;
  /** Signature backend. Default {@link defaultSignatureBackend}(): `sodium` where it loads, else `native`. */
  backend?: SignatureBackend;
  /** Refuse every local write with a WriteError carrying this explanation (a replica that
   *  follows a master, say). Updates from peers are still applied. Default: writable. */
  readOnly?: string;
  /** The wall clock in µs (inject for tests). Default {@link wallClockMicros}. */
  now?: () => number;
}

/** Events every Scuttlebutt emits. Subclasses add their own. */
export interface ScuttlebuttEvents {
  /** An update was applied (verified, in order, durable if a store is set). */
  update: [update: Update, origin: UpdateOrigin | null];
  /** An update was rejected; counted against `origin`'s fault budget. */
  invalid: [rejection: Rejection];
  /** An update this node already has (or older) arrived; not a fault. */
  old_data: [update: Update];
  /** A verified update from the future (beyond maxClockSkew) is held until its time; not a fault. */
  deferred: [update: Update];
  /** Two different validly signed updates with one source and version. */
  equivocation: [evidence: Equivocation];
  dispose: [];
  /** A stream closed; the number still open. */
  unstream: [open: number];
  /** An operational failure (store I/O); without a listener it becomes a process warning. */
  error: [error: Error];
}

/** An ingested update waiting for its verdict and its turn. */
interface Pending {
  update: Update;
  origin: UpdateOrigin | null;
  seq: number;
  /** This entry started the verification (and must clear it from the in-flight table). */
  first: boolean;
  ok: boolean | undefined;
  resolve: (result: IngestResult) => void;
}

/** Internal event that carries applied updates to attached streams. */
export const FORWARD = Symbol('signet.forward');

/**
 * The scuttlebutt base. Subclasses implement {@link history}, {@link applyUpdate} and
 * {@link keyOf}; everything a peer sends goes through {@link ingest}.
 */
/** An event name and a listener of event map `E`, typed as node:events types EventEmitter<E>'s
 *  own methods (its Key and Listener1, which it does not export). */
type EventKey<K, E> = E extends [never] ? string | symbol : K | keyof E;
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- node's own typing of an untyped emitter
type EventListener<K, E> = E extends [never] ? (...args: any[]) => void : K extends keyof E ? (E[K] extends unknown[] ? (...args: E[K]) => void : never) : never;

/** Emits without the subclass's typed event map (the base emits its own events by name). */
const emitUntyped = EventEmitter.prototype.emit as (this: unknown, name: string | symbol, ...args: unknown[]) => boolean;

/** The scuttlebutt base, generic over its event map `E` (subclasses pass theirs, so their
 *  listeners are typed; a bare `Scuttlebutt` accepts any subclass). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- node's EventMap constraint; any for a bare Scuttlebutt
export abstract class Scuttlebutt<E extends ScuttlebuttEvents & Record<keyof E, any[]> = any> extends EventEmitter<E> {
  readonly id: NodeId;
  readonly identity: Identity;
  readonly dataset: string;
  readonly policy: WritePolicy;
  /** Resolves once the stored state (if any) has been loaded. */
  readonly ready: Promise<void>;
  protected readonly options: ScuttlebuttOptions;
  protected readonly store: Store | undefined;
  protected readonly now: () => number;
  /** Largest update body this instance accepts (and writes). */
  readonly maxUpdateBytes: number;
  private readonly maxClockSkew: number;
  private readonly backend: SignatureBackend;
  /** Options objects made once, not per received update. */
  private readonly verifyOptions: { backend: SignatureBackend };
  private readonly parseOptions: UpdateOptions;
  private readonly sources = new Map<NodeId, number>();
  /** Updates applied at each source's latest version: the update, or several distinct ones (by
   *  hash) only after equivocation, at most MAX_EVIDENCE_PER_SOURCE + 1 (the source is
   *  quarantined then). One object per source, not a Map per applied update. */
  private readonly latest = new Map<NodeId, Update | Update[]>();
  private readonly inflight = new InflightTable<Promise<boolean>>();
  /** Per source, updates in arrival order waiting for their verification and their turn. */
  private readonly queues = new Map<NodeId, Pending[]>();
  /** Equivocation evidence, pinned updates, quarantined sources (see Evidence). */
  private readonly evidence: Evidence;
  /** Verified updates from the near future, waiting for their time. */
  private readonly deferrals: Deferrals;
  /** Every version this node may have signed in this dataset is at most this (from the store). */
  private ownFloor = 0;
  /** The own-version reservation known to be durable in the store (see localUpdate). */
  private ownDurable = 0;
  /** A reservation written and not yet committed, or 0. */
  private ownPending = 0;
  /** Per origin, the ingest number of its first rejection: for all its sources (the source was
   *  unreadable) or per source. What that origin sent afterwards is not applied (see ingest). */
  private readonly broken = new WeakMap<UpdateOrigin, { all: number; sources: Map<NodeId, number> }>();
  private ingested = 0;
  private pendingDrops: Update[] = [];
  /** The group gathering this turn's applied updates, not committed yet (see commitApplied). */
  private gathering: CommitGroup | null = null;
  private readonly commitGatheredBound = () => this.commitGathered();
  /** Every group not announced yet, oldest first: announced in this order, each once its own
   *  commit and every earlier one have settled (see commitApplied). */
  private readonly unannounced: CommitGroup[] = [];
  /** Checks that the oldest unannounced group's commit settles (see watchStore); armed while
   *  groups wait. */
  private storeWatch: NodeJS.Timeout | null = null;
  private readonly storeStallMs: number;
  private readonly watchStoreBound = () => this.watchStore();
  /** What the store holds: the model's live updates and the evidence (see HeldSet). */
  private readonly held = new HeldSet();
  /** With a store that reads envelopes back (Store.readEnvelope): where held updates' envelopes
   *  are read from once they are backed (see backLater), else null. */
  private readonly backing: EnvelopeBacking | null;
  /** Committed updates to back at the next turn (see backLater). */
  private toBack: Update[] = [];
  /** Updates this model let go (a drop of theirs may be in flight): never backed again. */
  private readonly letGo = new WeakSet<Update>();
  /** Backed updates the store lost or altered, to forget at the end of this turn (see lost). */
  private lostPending: Map<Update, StoreError> | null = null;
  /** This instance and its clones (same identity and dataset), or null if never cloned. */
  private siblings: Set<AnyScuttlebutt> | null = null;
  private loaded = false;
  private disposed = false;
  /** Number of streams attached. */
  streams = 0;

  constructor(options: ScuttlebuttOptions) {
    super();
    if (!options || typeof options !== 'object') throw new TypeError('"options" expected an object with an identity');
    if (!options.identity || typeof options.identity.sign !== 'function') throw new TypeError('"identity" expected an Identity');
    const dataset = options.dataset ?? 'default';
    if (!isDatasetName(dataset)) throw new RangeError('"dataset" expected 1..128 characters without control characters');
    if (options.policy !== undefined && typeof options.policy !== 'function') throw new TypeError('"policy" expected a function');
    if (options.readOnly !== undefined && typeof options.readOnly !== 'string') throw new TypeError('"readOnly" expected a string (why local writes are refused)');
    this.options = options;
    this.identity = options.identity;
    this.id = options.identity.id;
    this.dataset = dataset;
    this.policy = options.policy ?? open();
    this.store = options.store;
    const store = options.store;
    this.backing = store !== undefined && typeof store.readEnvelope === 'function' && options.envelopesInMemory !== true
      ? new EnvelopeBacking((u) => store.readEnvelope!(dataset, u), `dataset ${dataset}`, (u, err) => this.lost(u, err))
      : null;
    this.now = options.now ?? wallClockMicros;
    this.maxUpdateBytes = options.maxUpdateBytes ?? MAX_UPDATE_BYTES;
    // Checked here: parseUpdate() throws on a bad value, which would cut off every peer.
    assertInteger(this.maxUpdateBytes, 'maxUpdateBytes', 1, MAX_UPDATE_BYTES_CEILING);
    this.storeStallMs = options.storeStallMs ?? STORE_STALL_MS;
    assertInteger(this.storeStallMs, 'storeStallMs', 1, 0x7fff_ffff);
    this.maxClockSkew = options.maxClockSkew ?? MAX_CLOCK_SKEW_MICROS;
    assertInteger(this.maxClockSkew, 'maxClockSkew', 0, Number.MAX_SAFE_INTEGER);
    this.backend = options.backend ?? defaultSignatureBackend();
    this.verifyOptions = { backend: this.backend };
    this.parseOptions = { dataset, maxUpdateBytes: this.maxUpdateBytes };
    this.setMaxListeners(0);
    this.evidence = new Evidence(options.quarantine === true);
    this.deferrals = new Deferrals({
      now: this.now, skew: this.maxClockSkew, fail: (err) => this.fail(err),
      due: (d) => (this.disposed ? undefined : void this.applyVerified(d.update, d.origin?.deref() ?? null, d.seq)),
    });
    this.ready = this.load();
    this.ready.catch(() => {}); // surfaced to whoever awaits ready
  }

  // ---- what subclasses provide ---------------------------------------------------------

  /** All held updates the other side lacks according to `clock`, oldest first per source. */
  abstract history(clock?: ReadonlyMap<NodeId, number>): Update[];
  /** Applies a verified update; returns whether the model changed. Never throws on a body
   *  that {@link keyOf} accepted, except for a user's merge rule that broke its contract
   *  (Model's ResolveError: from a local write it propagates, with nothing applied; from a peer
   *  it is reported as `'error'`). Call {@link dropUpdate} for updates it supersedes. */
  abstract applyUpdate(update: Update): boolean;
  /** The key an update writes (for the write policy), or null if the body's shape is wrong. */
  protected abstract keyOf(body: Value): string | null;
  /** {@link keyOf} for an update; subclasses that can read the key from `update.bodyBytes`
   *  without decoding the whole body override this (peer bytes are not materialised). */
  protected keyOfUpdate(update: Update): string | null {
    return this.keyOf(update.body);
  }

  // ---- listeners -------------------------------------------------------------------------

  /** Told of every listener added, before it is (by any of the five ways below): subclasses
   *  check or note the name (Events: patterns; Model: per-key events). May throw to refuse it. */
  protected listenTo(_eventName: unknown): void {}

  /** EventEmitter's `on`, typed by this class's event map. */
  override on<K>(eventName: EventKey<K, E>, listener: EventListener<K, E>): this {
    this.listenTo(eventName);
    return super.on(eventName as never, listener as never);
  }

  /** {@link on}. */
  override addListener<K>(eventName: EventKey<K, E>, listener: EventListener<K, E>): this {
    this.listenTo(eventName);
    return super.addListener(eventName as never, listener as never);
  }

  /** {@link on}, first in line. */
  override prependListener<K>(eventName: EventKey<K, E>, listener: EventListener<K, E>): this {
    this.listenTo(eventName);
    return super.prependListener(eventName as never, listener as never);
  }

  /** {@link on}, for the next event only. */
  override once<K>(eventName: EventKey<K, E>, listener: EventListener<K, E>): this {
    this.listenTo(eventName);
    return super.once(eventName as never, listener as never);
  }

  /** {@link once}, first in line. */
  override prependOnceListener<K>(eventName: EventKey<K, E>, listener: EventListener<K, E>): this {
    this.listenTo(eventName);
    return super.prependOnceListener(eventName as never, listener as never);
  }

  // ---- clock -----------------------------------------------------------------------------

  /** source id -> highest applied version. */
  get clock(): ReadonlyMap<NodeId, number> {
    return this.sources;
  }

  /** Updates held at `source`'s latest version (one, or more after equivocation). */
  latestUpdates(source: NodeId): readonly Update[] {
    const held = this.latest.get(source);
    return held === undefined ? [] : Array.isArray(held) ? [...held] : [held];
  }

  /** Evidence of every equivocation seen. */
  equivocations(): readonly Equivocation[] {
    return this.evidence.list;
  }

  /** True if `source` is refused after equivocating (option `quarantine`). */
  isQuarantined(source: NodeId): boolean {
    return this.evidence.isQuarantined(source);
  }

  // ---- local writes ------------------------------------------------------------------------

  /**
   * Signs `body` as this node's next update and applies it at once.
   * @throws WriteError if disposed, not yet loaded, or the policy refuses `key`;
   * RangeError / TypeError if the body breaks a limit.
   */
  protected localUpdate(body: unknown): Update {
    if (this.disposed) throw new WriteError(`dataset ${this.dataset} is disposed`);
    if (this.options.readOnly !== undefined) throw new WriteError(`dataset ${this.dataset} is read-only: ${this.options.readOnly}`);
    if (!this.loaded) throw new WriteError(`dataset ${this.dataset} is still loading; await ready first`);
    const version = nextVersion(Math.max(this.sources.get(this.id) ?? 0, this.ownFloor), this.now());
    const update = signUpdate(this.identity, { dataset: this.dataset, version, body }, { maxUpdateBytes: this.maxUpdateBytes });
    const key = this.keyOfUpdate(update);
    if (key === null) throw new TypeError('"body" does not have the shape this model expects');
    if (!this.policy(this.id, key)) throw new WriteError(`policy ${this.policy.policyName ?? 'custom'} forbids ${this.id.slice(0, 8)}… to write ${JSON.stringify(key)}`);
    // Own versions are never reused after a restart: a durable high-water mark stays ahead of
    // every version signed (written on open, and renewed in a write's own batch once versions
    // come within half of OWN_VERSION_RESERVE_MICROS of it), so a write signed but killed before
    // its batch committed is still below the mark on reopen. (Only a wall clock jumping forward
    // by more than half the reservation, then a kill within one commit, could outrun it.)
    let reserve: Array<[string, number]> | undefined;
    if (this.store && this.ownPending === 0 && version > this.ownDurable - OWN_VERSION_RESERVE_MICROS / 2) {
      this.ownPending = version + OWN_VERSION_RESERVE_MICROS;
      reserve = [['ownVersion', this.ownPending]];
    }
    try {
      this.commitApplied(update, null, reserve);
    } catch (err) {
      // A write the model refused (a custom merge rule breaking its contract): nothing was
      // applied, stored or sent; the reservation it carried did not land either.
      if (reserve) this.ownPending = 0;
      throw err;
    }
    // A model and its clones are one source: each applies the others' writes at once, so the
    // source's versions reach every instance in order (as npm scuttlebutt's synchronous clone did).
    for (const sibling of this.siblings ?? []) {
      if (sibling !== this && !sibling.disposed && update.version > (sibling.sources.get(this.id) ?? 0)) sibling.commitApplied(update, null);
    }
    return update;
  }

  // ---- the receive pipeline ----------------------------------------------------------------

  /**
   * Takes one envelope from a peer through the pipeline in DESIGN order: cheap checks,
   * dedupe, asynchronous verification, in-order apply per source, then clock, store and
   * forward. Resolves with the verdict; never rejects on any input bytes. `adopt` (@internal, for
   * the replication stream): the bytes are a fresh envelope the caller hands over and never
   * touches again, followed in their buffer by 32 bytes the model may write (see
   * parseAdoptedUpdate), kept without a copy. Leave it false: any other caller's bytes are copied.
   */
  ingest(bytes: Uint8Array, origin: UpdateOrigin | null = null, adopt = false): Promise<IngestResult> {
    if (this.disposed) return Promise.resolve({ status: 'ignored' });
    const seq = ++this.ingested;
    const parsed = adopt ? parseAdoptedUpdate(bytes, this.parseOptions) : parseUpdate(bytes, this.parseOptions);
    if (!parsed.ok) {
      return Promise.resolve(this.reject(origin, parsed.reason, parsed.detail, undefined, seq));
    }
    const update = parsed.update;
    const early = this.cheapChecks(update);
    if (early === 'superseded') return this.supersededArrival(update, origin);
    if (early === 'old') return Promise.resolve(this.old(update));
    if (early !== null) return Promise.resolve(this.reject(origin, early, 'refused before verification', update, seq));

    // dedupe: one verification per distinct envelope, however many peers send it. The key
    // covers the signature too: a forged copy of an update (same payload, bad signature)
    // must not share, and so sink, the verdict on the genuine one.
    let verified = this.inflight.get(update);
    let first = false; // this arrival started the verification the table holds (and clears it)
    if (verified === undefined) {
      verified = verifyUpdate(update, this.verifyOptions);
      // Refused past a few signatures of one payload (forgeries): verified on its own.
      first = this.inflight.set(update, verified);
    }
    // Apply in arrival order per source, each only after its own verification and every
    // earlier one from that source: a queue per source, drained as verdicts come in.
    const source = update.source;
    return new Promise<IngestResult>((resolve) => {
      const entry: Pending = { update, origin, seq, first, ok: undefined, resolve };
      let queue = this.queues.get(source);
      if (!queue) this.queues.set(source, (queue = []));
      queue.push(entry);
      verified!.then(
        (ok) => {
          entry.ok = ok;
          this.drain(source);
        },
        (err) => {
          entry.ok = false;
          this.fail(err);
          this.drain(source);
        },
      );
    });
  }

  /** Finishes the verified updates at the head of `source`'s queue, in order. */
  private drain(source: NodeId): void {
    if (!this.loaded) {
      this.ready.then(() => this.drain(source), () => {});
      return;
    }
    const queue = this.queues.get(source);
    while (queue && queue.length > 0 && queue[0]!.ok !== undefined) {
      const e = queue.shift()!;
      let result: IngestResult;
      try {
        result = this.finish(e);
      } catch (err) {
        this.fail(err); // a bug: the queue must go on for every later update
        result = { status: 'ignored' };
      }
      e.resolve(result);
    }
    if (queue && queue.length === 0) this.queues.delete(source);
  }

  private finish(e: Pending): IngestResult {
    if (e.first) this.inflight.delete(e.update);
    if (!e.ok) return this.reject(e.origin, 'bad-signature', 'signature does not verify', e.update, e.seq);
    // A peer sends each source's updates oldest first, and a clock entry means "everything up
    // to here". Once something this origin sent was refused (perhaps a genuine update it
    // altered), applying its later updates would move the clock past a gap that no peer would
    // ever fill: leave them for another connection.
    if (this.brokenBefore(e.origin, e.update.source, e.seq)) return { status: 'ignored' };
    return this.applyVerified(e.update, e.origin, e.seq);
  }

  /** Checks that need no signature. Returns a reason, 'old' or 'superseded' (not a fault), or null. An update
   *  less than MAX_DEFER_MICROS beyond the skew is not refused here: it is verified, then
   *  deferred (see applyVerified); one further out is refused `future` and counted. */
  private cheapChecks(update: Update): RejectReason | 'old' | 'superseded' | null {
    if (this.evidence.isQuarantined(update.source)) return 'quarantined';
    // The clock is "the highest version seen", not "everything below it": a relay may have
    // withheld an older update, so one below the clock is judged on what we hold. A copy we hold
    // is old; another update at a version where we hold one (or at the latest) is equivocation,
    // worth verifying even if it would lose; else one the model would drop at once (superseded,
    // behind a purge or a compaction) is old.
    if (this.held.has(update)) return 'old';
    // Shape, policy and the far future first: an update its source may not write is refused
    // however it would fare, so nothing of a forbidden source is ever kept, even as evidence.
    // Beyond what any deferral would hold: no honest relay's clock is that far ahead of ours.
    if (update.version > this.now() + this.maxClockSkew + MAX_DEFER_MICROS) return 'future';
    const key = this.keyOfUpdate(update);
    if (key === null) return 'bad-shape';
    if (!this.policy(update.source, key)) return 'forbidden';
    if (!this.equivocates(update)) {
      if (this.superseded(update, key)) return 'superseded';
      if (this.isStale(update)) return 'old';
    }
    return null;
  }

  /** Subclasses refuse (as old, not a fault, clock untouched) an update that only a state they
   *  have deliberately forgotten could order (Model: writes behind a purged tombstone). */
  protected isStale(_update: Update): boolean {
    return false;
  }

  /** Subclasses say (given the key it writes, already read) whether {@link applyUpdate} would drop this update at once (Model: its key
   *  holds a later write; Events: it would be compacted), so it is neither verified nor kept. */
  protected superseded(_update: Update, _key: string): boolean {
    return false;
  }

  /**
   * An update the model would drop at once: old, unless its other side is among the superseded
   * updates that arrived lately. Two updates at one source and version that both lost here
   * (their keys moved on) are still an equivocation a peer holds as evidence: both are verified,
   * then kept as evidence, so this node's evidence and reconciled set match the peer's instead of
   * being offered them again every session. The memory of recent arrivals is bounded
   * (RECENT_SUPERSEDED): a flood of other updates can push one side out, which delays detection
   * until the peer sends the pair again (its next session), never prevents it.
   */
  private supersededArrival(update: Update, origin: UpdateOrigin | null): Promise<IngestResult> {
    const rival = this.evidence.takeRival(update);
    if (!rival) return Promise.resolve(this.old(update));
    return Promise.all([verifyUpdate(rival, { backend: this.backend }), verifyUpdate(update, { backend: this.backend })]).then(
      ([first, second]) => {
        if (this.disposed) return { status: 'ignored' } as const;
        // The rival came from some peer unverified; only this one's origin is known to answer for it.
        if (!second) return this.reject(origin, 'bad-signature', 'signature does not verify', update, ++this.ingested);
        if (!first || this.held.has(update) || this.evidence.isQuarantined(update.source)) return this.old(update);
        this.recordEvidence(rival, update, true);
        if (!this.evidence.isPinned(update)) return this.old(update); // past MAX_EVIDENCE_PER_SOURCE
        this.keepEvidence(update);
        for (const u of [rival, update]) emitUntyped.call(this, FORWARD, u, null, true);
        return this.old(update);
      },
      (err) => {
        this.fail(err);
        return { status: 'ignored' } as const;
      },
    );
  }

  /** Subclasses say which held updates their own bookkeeping may read the body of (at a
   *  reconciliation session, when an update arrives, in history): those keep their envelope in
   *  memory rather than read it back from the store (see backLater). Here every one does: a
   *  subclass opts in to backing for the updates it never reads (Model: plain writes). */
  protected readsBodyOf(_update: Update): boolean {
    return true;
  }

  /** Subclasses say whether a held update is due to be forgotten by `now` (Model: a tombstone or
   *  expired entry past the horizon), which takes it out of the reconciled set. */
  protected forgettable(_update: Update, _now: number): boolean {
    return false;
  }

  /**
   * The updates reconciliation compares with a peer's, in the total order (version, source,
   * hash): every update held (the model's live updates and the evidence of equivocations),
   * except those due to be forgotten now (so a node that has purged them and one that has not
   * yet agree). Items near that boundary may differ between two clocks for a moment: the peer
   * then refuses what we send as stale, which costs it nothing but the bytes.
   */
  reconcileSet(): Update[] {
    const now = this.now();
    // A quarantined source's other updates are left out too: nodes that quarantined it at
    // different moments hold different ones, and would offer them to each other every session.
    return this.held.inOrder().filter((u) => this.evidence.isPinned(u) || (!this.forgettable(u, now) && !this.evidence.isQuarantined(u.source)));
  }

  /**
   * The options two copies of this dataset must share to converge without offering each other
   * the same updates forever (the model's kind, merge rule, history bounds), as a short string
   * a Node compares with each peer's before it replicates (a mismatch is refused
   * `config-mismatch`). Empty here; Model and Events say theirs.
   */
  get replicationProfile(): string {
    return '';
  }

  /** Number of updates held (live and evidence). */
  get heldCount(): number {
    return this.held.size;
  }

  /** Updates we hold, or held last, at this update's source and version that are not it. */
  private rivals(update: Update): Update[] {
    const out = this.held.at(update.source, update.version).filter((u) => !sameHash(u, update));
    if (update.version === this.sources.get(update.source)) {
      for (const u of this.latestUpdates(update.source)) {
        if (!sameHash(u, update) && !out.includes(u)) out.push(u);
      }
    }
    return out;
  }

  /** True if {@link rivals} would find any (asked twice per received update: without allocating). */
  private equivocates(update: Update): boolean {
    if (this.held.holdsOtherAt(update.source, update.version, update)) return true;
    if (update.version !== this.sources.get(update.source)) return false;
    const latest = this.latest.get(update.source);
    if (latest === undefined) return false;
    if (!Array.isArray(latest)) return !sameHash(latest, update);
    return latest.some((u) => !sameHash(u, update));
  }

  /** Runs once the update's signature verified and every earlier update from its source applied. */
  private applyVerified(update: Update, origin: UpdateOrigin | null, seq: number): IngestResult {
    if (this.disposed) return { status: 'ignored' };
    const reason = this.cheapChecks(update); // state may have moved while we verified
    if (reason === 'old' || reason === 'superseded') return this.old(update);
    if (reason !== null) return this.reject(origin, reason, 'refused after verification', update, seq);
    // From the future, or behind a deferred update of its source (order per source is kept):
    // held until its time, charged to nobody (a relay whose clock is ahead is not at fault).
    if (this.deferrals.mustWait(update)) return this.defer(update, origin, seq);
    // Same source and version, different signed payload: proof of equivocation.
    const rival = this.equivocates(update) ? this.rivals(update)[0] : undefined; // rivals allocates: only when there is one
    if (rival) this.recordEvidence(rival, update, true);
    this.commitApplied(update, origin);
    return { status: 'applied', update };
  }

  /** Keeps two updates with one source and version as evidence (pinned in the store; see
   *  Evidence.record for the cap) and reports it. */
  private recordEvidence(a: Update, b: Update, announce: boolean): void {
    const ev = this.evidence.record(a, b);
    if (!ev) return;
    // The rival may have been superseded since (a relay sent this one late): evidence is held
    // again, in the store too, so it survives a restart and reconciliation passes it on.
    if (this.loaded) this.keepEvidence(a);
    if (announce) emitUntyped.call(this, 'equivocation', ev);
  }

  /** Holds an evidence update that the model does not keep (and stores it). */
  private keepEvidence(u: Update): void {
    if (this.held.has(u)) return;
    this.held.add(u);
    if (this.store) this.storeCommit({ put: [u], drop: [], clock: [] }).catch((err) => this.fail(err));
  }

  /** Holds a verified future update (bounded by MAX_DEFERRED_BYTES). Past the bound it is
   *  refused `future`, blamelessly, and its origin's later updates from that source are left for
   *  another connection (no gap). */
  private defer(update: Update, origin: UpdateOrigin | null, seq: number): IngestResult {
    const held = this.deferrals.hold(update, origin, seq);
    if (held === 'full') return this.reject(origin, 'future', 'the deferred-update budget is full', update, seq, true);
    if (held === 'duplicate') return this.old(update);
    emitUntyped.call(this, 'deferred', update);
    return { status: 'deferred' };
  }

  /** Applies, in version order per source, the deferred updates whose time has come. Runs on a
   *  timer by itself; call it after moving an injected clock. @returns how many were taken. */
  flushDeferred(): number {
    return this.deferrals.flush();
  }

  /** Number of deferred updates held (memory: at most MAX_DEFERRED_BYTES of envelopes). */
  get deferredCount(): number {
    return this.deferrals.count;
  }

  /** Updates received and waiting for their signature's verdict or their turn (the verify queue). */
  get pendingVerifications(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  /** Apply, advance the clock, store, then announce and forward. */
  private commitApplied(update: Update, origin: UpdateOrigin | null, meta?: Array<[string, number]>): void {
    if (this.pendingDrops.length > 0) this.pendingDrops = [];
    const changed = this.applyUpdate(update);
    const have = this.sources.get(update.source) ?? 0;
    const evidence = this.evidence.isPinned(update); // one side of an equivocation
    const advanced = update.version > have;
    const drops = this.settle(update, have);
    const extra = this.takeMeta();
    if (extra) meta = [...(meta ?? []), ...extra];
    if (this.store) {
      // Durable before it is announced or forwarded. The updates applied in one turn (a verify
      // batch's verdicts, a burst of set() calls) go to the store as one batch at its end: one
      // clock entry per source rather than one per update, and one commit to wait on.
      let group = this.gathering;
      if (group === null) {
        group = this.gathering = {
          entries: [], batch: { put: [], drop: [], clock: [], meta: [] }, clockAt: new Map(), puts: null, settled: false,
          since: performance.now(), stalled: false,
        };
        this.unannounced.push(group);
        queueMicrotask(this.commitGatheredBound);
        if (this.storeWatch === null) this.armStoreWatch(this.storeStallMs);
      }
      const batch = group.batch;
      for (let i = 0; i < drops.length; i++) {
        const u = drops[i]!;
        if (u === update) continue; // superseded at once: neither stored nor dropped
        // Superseded before its own commit: never stored, so nothing to drop (taken out of
        // batch.put when the group commits: one pass, however many are superseded).
        if (group.puts === null && batch.put.length > 0) group.puts = new Set(batch.put);
        if (group.puts?.delete(u) !== true) batch.drop.push(u);
      }
      if (!drops.includes(update)) {
        batch.put.push(update);
        group.puts?.add(update);
      }
      if (advanced) {
        const at = group.clockAt.get(update.source);
        if (at === undefined) {
          group.clockAt.set(update.source, batch.clock.length);
          batch.clock.push([update.source, update.version]);
        } else if (update.version > batch.clock[at]![1]) {
          batch.clock[at]![1] = update.version;
        }
      }
      if (meta) for (const m of meta) batch.meta.push(m);
      group.entries.push({ update, origin, changed, evidence, meta });
    } else {
      this.announce(update, origin, changed, evidence);
    }
  }

  /** Commits the group gathered this turn (at its end, or before anything else goes to the store:
   *  the store sees every write in the order the model made it). A store may settle two commits
   *  out of order (LmdbStore: one that carried an ownVersion reservation waits on more than one
   *  lmdb-js promise): groups are announced and forwarded in the order they were applied, or a
   *  listener, or a peer that applies per source in arrival order, would see a key's older
   *  write after its newer one. */
  private commitGathered(): void {
    const group = this.gathering;
    if (group === null) return;
    this.gathering = null;
    const batch = group.batch;
    const puts = group.puts;
    if (puts !== null) batch.put = group.batch.put.filter((u: Update) => puts.has(u));
    this.commitBatch(batch).then(
      () => {
        group.settled = true;
        this.announceSettled();
      },
      (err) => {
        group.settled = true;
        group.failure = { error: err };
        // After dispose() nothing is announced, but a write the store refused is still reported.
        if (this.disposed) this.fail(err);
        else this.announceSettled();
      },
    );
  }

  private armStoreWatch(ms: number): void {
    this.storeWatch = setTimeout(this.watchStoreBound, ms);
    this.storeWatch.unref();
  }

  /** Reports, once, a commit that has not settled in storeStallMs: a store that never answers
   *  would otherwise hold back every later announcement and forward without a word. Runs while
   *  groups wait (one timer per model). */
  private watchStore(): void {
    this.storeWatch = null;
    const head = this.unannounced[0];
    if (head === undefined || this.disposed) return; // the next group arms it again
    const waited = performance.now() - head.since;
    if (waited < this.storeStallMs) return this.armStoreWatch(this.storeStallMs - waited);
    if (!head.stalled) {
      head.stalled = true;
      let waiting = 0;
      for (const g of this.unannounced) waiting += g.entries.length;
      this.fail(new StoreError(`signet dataset ${this.dataset}: a store commit has not settled in ${Math.round(waited)} ms; ${waiting} applied updates wait for it to be announced and forwarded`));
    }
    this.armStoreWatch(this.storeStallMs);
  }

  /** Commits `batch` on its own, after the group gathered so far (see commitGathered). */
  private storeCommit(batch: StoreBatch): Promise<void> {
    this.commitGathered();
    return this.commitBatch(batch);
  }

  /** The store's commit of `batch`; a store that throws rather than rejects rejects here. */
  private commitBatch(batch: StoreBatch): Promise<void> {
    try {
      return this.store!.commit(this.dataset, batch);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Announces, oldest first, the groups whose commits and every earlier group's have settled. */
  private announceSettled(): void {
    while (this.unannounced.length > 0 && this.unannounced[0]!.settled) {
      const group = this.unannounced.shift()!;
      if (group.failure === undefined) {
        for (const e of group.entries) this.committed(e);
        continue;
      }
      for (const e of group.entries) {
        if (e.meta) this.ownPending = 0; // the reservation did not land: the next write renews it
        if (this.backing !== null && this.held.has(e.update)) compactUpdate(e.update); // held fresh: never backed now
        this.fail(group.failure.error);
      }
    }
  }

  /** An applied update whose store commit resolved: the reservation it carried is durable; announce it. */
  private committed(e: Committing): void {
    const meta = e.meta;
    if (meta && this.ownPending !== 0 && meta.some(([name, v]) => name === 'ownVersion' && v === this.ownPending)) {
      this.ownDurable = this.ownPending;
      this.ownPending = 0;
    }
    this.announce(e.update, e.origin, e.changed, e.evidence);
    if (this.backing !== null) this.backLater(e.update);
  }

  /**
   * A committed update is backed by the store at the next turn (only its hash, body length,
   * first body byte and a check of its signature stay in memory; see backUpdate), once the
   * streams that forward it have read it from memory (their flush was scheduled first). Its
   * envelope has been in the store since its commit resolved, and stays there until this model
   * lets it go (release() turns it compact again first).
   */
  private backLater(update: Update): void {
    this.toBack.push(update);
    if (this.toBack.length === 1) setImmediate(() => this.backPending());
  }

  private backPending(): void {
    const list = this.toBack;
    this.toBack = [];
    for (const u of list) {
      // One let go since (a drop of it may be in flight) stays as it is, for whoever has it.
      if (this.letGo.has(u) || !this.held.has(u)) continue;
      // Held fresh (see settle): backed, or compact if it cannot be (shared with a clone, read
      // by the model's bookkeeping, or disposed meanwhile).
      if (this.disposed || this.readsBodyOf(u) || !backUpdate(u, this.backing!)) compactUpdate(u);
    }
  }

  /** After an apply: advances the clock and the latest set, holds the update, lets go of what
   *  it superseded (evidence stays), and forgets sources that hold nothing any more.
   *  @returns the updates dropped (the applied one among them if it was superseded at once). */
  private settle(update: Update, have: number): Update[] {
    this.hold(update, have);
    // Fresh until its commit lands, then backed (see backLater): never a compact record between.
    this.held.add(update, this.backing !== null && !this.readsBodyOf(update));
    if (this.pendingDrops.length === 0) return NO_DROPS; // the common case: nothing superseded
    const drops = this.pendingDrops.filter((u) => !this.evidence.isPinned(u));
    this.pendingDrops = [];
    for (const u of drops) this.release(u);
    return drops;
  }

  /** Lets go of a held update; a source left with nothing held is forgotten (clock and latest),
   *  except this node's own: memory and digests follow what is held, so throwaway identities
   *  that wrote once and were overwritten cost nothing. What they sent again is judged by the
   *  model (superseded or stale: old), so forgetting them never lets an old write back in. */
  private release(update: Update): void {
    this.evidence.remember(update);
    if (this.backing !== null) {
      // Whoever still has it (a stream's queue, a listener) may read it after the store drops it.
      this.letGo.add(update);
      try {
        unbackUpdate(update, this.backing);
      } catch (err) {
        this.fail(err); // the store lost it already: reads of it will say so
      }
    }
    if (this.held.remove(update) && update.source !== this.id) {
      this.sources.delete(update.source);
      this.latest.delete(update.source);
    }
  }

  /**
   * A held update whose envelope the store no longer gives back intact (a read of it found
   * nothing or other bytes, and threw). Policy: the loss is reported (`'error'`, once per
   * update), then the update is forgotten as if it had never been held, at the end of this turn
   * (not under whoever was reading): the subclass forgets it, its name is dropped from the store,
   * and the source's clock goes too if it holds nothing else here. So it is no longer served,
   * and no peer's stream is cut for it again; a peer that holds it sends it back (in history if
   * the source was forgotten, else through reconciliation: it arrives below the clock, unheld,
   * and applies after verification like any other).
   */
  private lost(update: Update, err: StoreError): void {
    if (this.lostPending === null) {
      this.lostPending = new Map();
      queueMicrotask(() => this.forgetLost());
    }
    if (!this.lostPending.has(update)) this.lostPending.set(update, err);
  }

  private forgetLost(): void {
    const lost = this.lostPending!;
    this.lostPending = null;
    const gone: Update[] = [];
    for (const [u, err] of lost) {
      if (this.disposed || this.letGo.has(u) || !this.held.has(u)) continue; // let go meanwhile
      this.fail(err);
      this.letGo.add(u);
      this.evidence.forget(u);
      if (this.held.remove(u) && u.source !== this.id) {
        this.sources.delete(u.source);
        this.latest.delete(u.source);
      } else {
        // Still the source's latest: a peer's digest naming another update at that version
        // would make a stream owe it, and a rival arriving would take it for evidence again.
        const latest = this.latest.get(u.source);
        if (latest === u) this.latest.delete(u.source);
        else if (Array.isArray(latest) && latest.includes(u)) {
          const rest = latest.filter((x) => x !== u);
          this.latest.set(u.source, rest.length === 1 ? rest[0]! : rest);
        }
      }
      gone.push(u);
    }
    if (gone.length === 0) return;
    try {
      this.forgetUpdates(new Set(gone));
    } catch (err) {
      this.fail(err);
    }
    if (this.store) this.storeCommit({ put: [], drop: gone, clock: [] }).catch((err) => this.fail(err));
  }

  /** Subclasses forget their own state for held updates the store lost (see lost): the updates
   *  are no longer held, and must no longer be served or read. */
  protected forgetUpdates(_updates: ReadonlySet<Update>): void {}

  /** Named numbers a subclass wants stored with the update being applied (Events: compaction
   *  floors). Called once per apply, after {@link applyUpdate}. */
  protected takeMeta(): Array<[string, number]> | undefined {
    return undefined;
  }

  /** Advances the clock and the latest-version set for an applied update. */
  private hold(update: Update, have: number): void {
    if (update.version > have) {
      this.sources.set(update.source, update.version);
      this.latest.set(update.source, update);
    } else if (update.version === have) {
      const held = this.latest.get(update.source);
      if (held === undefined) this.latest.set(update.source, update);
      else if (!Array.isArray(held)) {
        if (!sameHash(held, update)) this.latest.set(update.source, [held, update]);
      } else if (!held.some((u) => sameHash(u, update))) held.push(update);
    }
  }

  /** Evidence travels over live links too: a peer that holds the first update at that version
   *  (and so a clock that covers it) still gets the second. */
  private announce(update: Update, origin: UpdateOrigin | null, changed: boolean, evidence: boolean): void {
    if (this.disposed) return; // durable, but nobody is told after dispose()
    // A listener that throws (or a bug) must neither stop the update being forwarded nor, when
    // this runs after a store commit, become an unhandled rejection: it goes to fail().
    // Three steps, each on its own: once per applied update, so no array of closures.
    try {
      this.announced(update, changed);
    } catch (err) {
      this.fail(err);
    }
    try {
      emitUntyped.call(this, 'update', update, origin);
    } catch (err) {
      this.fail(err);
    }
    try {
      emitUntyped.call(this, FORWARD, update, origin, evidence);
    } catch (err) {
      this.fail(err);
    }
  }

  /** Called once on load with the named numbers subclasses stored (see {@link dropStored}). */
  protected loadedMeta(_meta: ReadonlyMap<string, number>): void {}

  /** Called when an applied update is durable, just before `'update'`: subclasses emit their
   *  own change events here, so nothing is reported before it is stored. */
  protected announced(_update: Update, _changed: boolean): void {}

  /** Subclasses call this from {@link applyUpdate} for each update the new one supersedes. */
  protected dropUpdate(update: Update): void {
    this.pendingDrops.push(update);
  }

  /** Subclasses call this when they discard updates outside an apply (TTL purge, compaction). */
  protected dropStored(updates: Update[], meta?: Array<[string, number]>): void {
    const gone = updates.filter((u) => !this.evidence.isPinned(u));
    for (const u of gone) this.release(u);
    if (this.store && (gone.length > 0 || meta)) {
      this.storeCommit({ put: [], drop: gone, clock: [], meta }).catch((err) => this.fail(err));
    }
  }

  /** True if `origin` had an update refused (of `source`, or of an unreadable source) before ingest number `seq`. */
  private brokenBefore(origin: UpdateOrigin | null, source: NodeId, seq: number): boolean {
    const b = origin && this.broken.get(origin);
    return !!b && (b.all < seq || (b.sources.get(source) ?? Infinity) < seq);
  }

  /** An operational failure (store I/O, a bug): `'error'` if someone listens, else a process
   *  warning. Never thrown into the pipeline, which must go on for every other update. */
  private fail(err: unknown): void {
    if (EventEmitter.prototype.listenerCount.call(this, 'error') > 0) {
      try {
        emitUntyped.call(this, 'error', err);
      } catch (thrown) {
        // An 'error' listener that throws must not break off its caller (the announce loop, a
        // store callback: the updates after this one would never be announced): reported aside.
        process.emitWarning(`signet dataset ${this.dataset}: an 'error' listener threw (${messageOf(thrown)}) on: ${messageOf(err)}`, { code: 'SIGNET_LISTENER' });
      }
    } else {
      process.emitWarning(`signet dataset ${this.dataset}: ${messageOf(err)}`, { code: 'SIGNET_STORE' });
    }
  }

  private old(update: Update): IngestResult {
    if (EventEmitter.prototype.listenerCount.call(this, 'old_data') > 0) {
      compactUpdate(update); // a listener may keep it: a record of its own, not a view of a shared chunk
      emitUntyped.call(this, 'old_data', update);
    }
    return { status: 'old' };
  }

  private reject(
    origin: UpdateOrigin | null, reason: RejectReason, detail: string, update: Update | undefined, seq: number, unheld = false,
  ): IngestResult {
    // Policy: a quarantined source's updates are refused but are no fault of the peer that
    // relays them (it may not have seen the equivocation yet); counting them would let one
    // equivocating writer cut honest peers off from each other.
    // Likewise a verified future update we had no room to hold (`unheld`): the sender's clock
    // may be ahead of ours by a millisecond. Its origin's later updates from that source are
    // still left for another connection (no gap).
    const blameless = reason === 'quarantined' || unheld;
    if (origin && reason !== 'quarantined') {
      let b = this.broken.get(origin);
      if (!b) this.broken.set(origin, (b = { all: Infinity, sources: new Map() }));
      if (!update) b.all = Math.min(b.all, seq);
      else if (!b.sources.has(update.source)) b.sources.set(update.source, seq);
    }
    if (update) compactUpdate(update); // listeners may keep it: a record of its own, not a view of a shared chunk
    const rejection: Rejection = { reason, detail, update, origin };
    emitUntyped.call(this, 'invalid', rejection);
    if (!blameless) origin?.fault(rejection);
    return { status: 'rejected', reason };
  }

  // ---- persistence -----------------------------------------------------------------------------

  private async load(): Promise<void> {
    if (!this.store) {
      this.loaded = true;
      return;
    }
    const state = await this.store.load(this.dataset);
    const updates: Update[] = [];
    /** What the store holds under its name (see StoredState.byName): only those can be backed. */
    const byName = new WeakSet<Update>();
    for (const [i, bytes] of state.updates.entries()) {
      // Stored envelopes were verified before they were stored: parsed (under the largest limit
      // any configuration allows), not trusted blindly. One that does not parse means damage.
      const parsed = parseUpdate(bytes, { dataset: this.dataset, maxUpdateBytes: MAX_UPDATE_BYTES_CEILING });
      if (!parsed.ok) throw new StoreError(`dataset ${this.dataset}: stored record ${i} is not a valid update (${parsed.reason}: ${parsed.detail}); the store is damaged: restore it from a backup`);
      updates.push(parsed.update);
      if (state.byName?.[i] === true) byName.add(parsed.update);
    }
    if (this.options.verifyOnOpen) await this.verifyStored(updates);
    const meta = new Map(state.meta ?? []);
    this.ownFloor = meta.get('ownVersion') ?? 0;
    // Reserve ahead before the first local write can be signed (ready waits for it).
    this.ownDurable = Math.max(this.ownFloor, this.now()) + OWN_VERSION_RESERVE_MICROS;
    await this.store.commit(this.dataset, { put: [], drop: [], clock: [], meta: [['ownVersion', this.ownDurable]] });
    updates.sort(compareUpdates);
    // The subclass's floors (purge, compaction) first: replay must not revive what they cover.
    this.loadedMeta(meta);
    // Sides of equivocations (two stored updates at one source and version) are stored whatever
    // the model did with them; one that is stale now (a tombstone that beat it has been purged)
    // is held as evidence but not replayed into the model, or a deleted key would come back.
    const count = new Map<string, number>();
    for (const u of updates) count.set(`${u.source}:${u.version}`, (count.get(`${u.source}:${u.version}`) ?? 0) + 1);
    const first = new Map<string, Update>(); // source and version -> the first update seen there
    for (const update of updates) {
      const at = `${update.source}:${update.version}`;
      if (count.get(at)! < 2 || !this.isStale(update)) this.applyUpdate(update);
      const other = first.get(at);
      if (other) this.recordEvidence(other, update, false); // evidence survives a restart
      else first.set(at, update);
      this.hold(update, this.sources.get(update.source) ?? 0);
      this.held.add(update, this.backing !== null && byName.has(update) && !this.readsBodyOf(update)); // backed or compacted below
    }
    for (const [source, version] of state.clock) {
      // A stored clock entry of a source that holds nothing is forgotten (see release()).
      if (source !== this.id && !this.held.holdsSource(source)) continue;
      if (version > (this.sources.get(source) ?? 0)) {
        this.sources.set(source, version);
        // The updates held are older than the clock: they are not that version's, and a
        // different update at the clock's version is no proof of equivocation against them.
        this.latest.delete(source);
      }
    }
    // What the model let go while replaying (Events compacted to a smaller maxHistory) leaves
    // the store too; evidence stays.
    const dropped = this.pendingDrops.filter((u) => !this.evidence.isPinned(u));
    this.pendingDrops = [];
    for (const u of dropped) this.release(u);
    this.takeMeta();
    if (dropped.length > 0) await this.store.commit(this.dataset, { put: [], drop: dropped, clock: [] });
    // What the store holds under its name reads back from there (what cannot be backed, or the
    // model reads, is compacted).
    if (this.backing !== null) {
      for (const u of this.held.inOrder()) if (!byName.has(u) || this.readsBodyOf(u) || !backUpdate(u, this.backing)) compactUpdate(u);
    }
    this.loaded = true;
  }

  /** verifyOnOpen: every stored signature, checked in chunks on the signature pool.
   *  @throws StoreError naming the first record whose signature does not verify. */
  private async verifyStored(updates: Update[]): Promise<void> {
    const CHUNK = 1024;
    for (let i = 0; i < updates.length; i += CHUNK) {
      const chunk = updates.slice(i, i + CHUNK);
      const verdicts = await Promise.all(chunk.map((u) => verifyUpdate(u, { backend: this.backend })));
      const bad = verdicts.indexOf(false);
      if (bad >= 0) {
        const u = chunk[bad]!;
        throw new StoreError(`dataset ${this.dataset}: stored update ${u.hashHex} (source ${u.source}, version ${u.version}) does not verify; the store was altered: restore it from a backup`);
      }
    }
  }

  // ---- streams ---------------------------------------------------------------------------------

  /**
   * A replication stream to one peer (pipe it to the peer's stream, over any transport).
   * @throws Error if the replication layer was not loaded (import from 'signet').
   */
  createStream(options?: StreamOptions): ReplicationStream {
    if (!streamFactory) throw new Error('replication streams need the replication layer: import from the signet package root');
    return streamFactory(this, options);
  }

  /** A stream that only sends (npm scuttlebutt `createReadStream`). */
  createReadStream(options?: StreamOptions): ReplicationStream {
    return this.createStream({ ...options, writable: false, readable: true });
  }

  /** A stream that only receives (npm scuttlebutt `createWriteStream`). */
  createWriteStream(options?: StreamOptions): ReplicationStream {
    return this.createStream({ ...options, writable: true, readable: false });
  }

  /**
   * Another instance of the same model with the same identity and options (no store),
   * attached by a live stream pair. Resolves once it is in sync.
   */
  clone(): Promise<this> {
    const done = this.disposed ? Promise.reject(new WriteError(`dataset ${this.dataset} is disposed; nothing to clone`)) : this.cloneNow();
    // Disposing this model before its clone is in sync rejects the promise; a caller who did not
    // await it must not see the process die of an unhandled rejection for it.
    done.catch(() => {});
    return done;
  }

  private async cloneNow(): Promise<this> {
    const Ctor = this.constructor as new (options: ScuttlebuttOptions) => this;
    const copy = new Ctor({ ...this.options, store: undefined });
    this.siblings ??= new Set([this]);
    this.siblings.add(copy);
    copy.siblings = this.siblings;
    const a = this.createStream();
    const b = copy.createStream();
    a.pipe(b).pipe(a);
    try {
      await new Promise<void>((resolve, reject) => {
        b.once('sync', resolve);
        b.once('close', () => reject(new WriteError(`dataset ${this.dataset}: the clone's stream closed before sync (disposed?)`)));
      });
    } catch (err) {
      copy.dispose();
      throw err;
    }
    return copy;
  }

  // ---- lifecycle -------------------------------------------------------------------------------

  /** True after {@link dispose}. */
  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Ends every attached stream and refuses further writes. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.commitGathered(); // what was applied is stored, though no longer announced
    this.unannounced.length = 0; // nothing is announced after dispose() (see committed)
    if (this.storeWatch !== null) clearTimeout(this.storeWatch);
    this.storeWatch = null;
    this.deferrals.close();
    this.siblings?.delete(this);
    emitUntyped.call(this, 'dispose');
  }
}
