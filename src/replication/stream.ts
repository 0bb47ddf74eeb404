// The replication stream: one peer, any Duplex transport. Hello with digest, history in
// MTU batches (scuttle-depth or breadth first, prefix per source), SYNC, then a live tail without echo;
// backpressure both ways, a fault budget, and a cut-off with a reason for protocol abuse.
import { TypedDuplex, type DuplexEvents } from '../util/duplex-events.ts';
import { checkCbor, encodeCbor, type Value } from '../envelope/cbor.ts';
import { bodyLength, type Update } from '../envelope/update.ts';
import type { NodeId } from '../identity/node-id.ts';
import {
  FAULT_BUDGET, HELLO_TIMEOUT_MS, MAX_MESSAGE_BYTES, MAX_META_BYTES, MAX_PENDING_BYTES, MAX_PENDING_VERIFICATIONS, RECONCILE_INTERVAL_MS, RECONCILE_QUIET_MS,
} from '../limits.ts';
import { ProtocolError, messageOf } from '../errors.ts';
import { FORWARD, type AnyScuttlebutt } from '../core/scuttlebutt.ts';
import { hashPrefix } from '../core/order.ts';
import type { Rejection, UpdateOrigin } from '../core/types.ts';
import { bytesEqual } from '../util/bytes.ts';
import { FrameDecoder, MAX_MESSAGE_DEPTH, MSG_UPDATES, decodeMessage, encodeHello, encodeReconcile, encodeSync, encodeUpdates, messageType, type DigestEntry, type Hello } from './messages.ts';
import { HISTORY_ORDERINGS, historyBatches, type HistoryOrdering } from './batches.ts';
import { KeyTableReader, KeyTableWriter } from './compact.ts';
import { Reconciler, type ReconcileSummary } from './reconciler.ts';
import type { ReconcileReason } from '../reconcile/index.ts';

/** Default largest history/live batch in bytes (one update larger than this goes alone). */
export const DEFAULT_MTU = 64 * 1024;
/** Default bytes of live updates queued for a peer that is not reading. Past it: the queue is
 *  dropped and rebuilt from the model when the peer reads again (memory stays bounded). */
export const DEFAULT_MAX_LIVE_BYTES = 4 * 1024 * 1024;
/** Repairs a stream remembers having sent (a hex hash each, ~100 bytes); past it, a repair the
 *  peer keeps refusing may be sent again in a later session. */
const MAX_REPAIRS_REMEMBERED = 65_536;

/** Options for {@link Scuttlebutt.createStream}; every one has a default. */
export interface StreamOptions {
  /** This side sends updates. Default true. `false` makes a write-only (receiving) stream. */
  readable?: boolean;
  /** This side accepts updates. Default true. `false` ignores (and counts) all it is sent. */
  writable?: boolean;
  /** A write-only stream sends its digest so the sender can skip what it has. Default false. */
  sendClock?: boolean;
  /** A read-only stream waits for the peer's digest instead of sending all history. Default false. */
  awaitClock?: boolean;
  /** Keep sending live updates after SYNC. Default true; false ends the stream after sync. */
  tail?: boolean;
  /** Sent to the peer in the hello (`'header'` event on its side). Default null. */
  meta?: Value;
  /** Largest batch in bytes. Default 64 KiB. */
  mtu?: number;
  /**
   * Which sources' history goes first when more is owed than fits in one batch (plasmid's
   * ordering). `'depth'`: the sources the peer is furthest behind on first, each source's owed
   * updates as one run (scuttle-depth). `'breadth'`: round-robin, one update per source in
   * turn, so every source advances with every batch. Either way each source's updates are sent
   * oldest first, so a stream cut mid-history leaves the peer a prefix of every source, never a
   * gap; the final state is the same. Only the history sent before SYNC is ordered; live
   * updates go in the order they happen. Default `'depth'`.
   * ```ts
   * const s = model.createStream({ ordering: 'breadth', mtu: 16 * 1024 });
   * ```
   */
  ordering?: HistoryOrdering;
  /** Largest message accepted from the peer. Default 16 MiB. */
  maxMessageBytes?: number;
  /** Verifications in flight before the stream stops reading. Default 1024. */
  maxPending?: number;
  /** Bytes of envelopes held for verification before the stream stops reading. Default 8 MiB. */
  maxPendingBytes?: number;
  /** How long (ms) to wait for the peer's hello before cutting the stream `hello-timeout`
   *  (a write-only peer without `sendClock` never sends one). Default 30 s; 0 waits forever. */
  helloTimeoutMs?: number;
  /** The peer's node id as proven by the transport (a secure channel's `remote.id`): a hello
   *  that claims another id cuts the stream off `wrong-peer`. Default: not checked. */
  expectedPeer?: NodeId;
  /** Rejections allowed before the stream is cut off. Default 64. */
  faultBudget?: number;
  /** Bytes of live updates queued for a slow reader before falling back to catch-up. Default 4 MiB. */
  maxLiveBytes?: number;
  /** Sends only the updates for which it returns true (the mesh sends a replica only its
   *  master's). Filter whole sources: skipping some of a source's updates leaves the peer a
   *  gap it cannot see. Default: every update. */
  filter?: (update: Update) => boolean;
  /** Reconcile the sets of updates both sides hold after history, so that what a relay withheld
   *  (or an equivocation below a source's latest version) is found and repaired. Default true;
   *  false sends and answers nothing of it (the peer's reconciliation messages are ignored). */
  reconcile?: boolean;
  /** How often (ms) a long-lived stream reconciles again; 0: only after history and when the
   *  live tail has been quiet. Default RECONCILE_INTERVAL_MS (60 s). */
  reconcileIntervalMs?: number;
  /** Quiet time (ms) after live updates before reconciling again; 0: not after live updates.
   *  Default RECONCILE_QUIET_MS (2 s). */
  reconcileQuietMs?: number;
  /** A label for logs. */
  name?: string;
}

/** What a peer said in its hello (the `'header'` event). */
export interface Header {
  id: NodeId;
  dataset: string;
  clock: Map<NodeId, number>;
  meta: Value;
}

/** Counters for one stream. */
export interface StreamStats {
  /** Updates received from the peer. */
  received: number;
  applied: number;
  old: number;
  rejected: number;
  /** Updates received on a stream that is not writable (dropped unread). */
  ignored: number;
  sent: number;
  /** Updates not sent because their body is larger than the peer accepts (its hello says). */
  skipped: number;
  /** Verified updates from the future, held by the model until their time. */
  deferred: number;
}

/** Why a stream cut its peer off (`stream.closeReason.reason`, the `'cut'` event). */
export type CutReason =
  | 'bad-signature' | 'fault-budget' | 'too-large' | 'malformed' | 'unknown-message' | 'unsupported-version'
  | 'second-hello' | 'second-sync' | 'no-hello' | 'hello-timeout' | 'wrong-dataset' | 'wrong-peer' | 'internal-error'
  | ReconcileReason;

/** Progress of the history a peer owes us, from its digest: sources it is ahead on, and how
 *  many of them have caught up; updates received from it so far. */
export interface Progress {
  sourcesDone: number;
  sourcesTotal: number;
  received: number;
}

/** Every event a replication stream emits, typed (a misspelt name does not compile). */
export interface ReplicationStreamEvents extends DuplexEvents {
  /** The peer's hello. */
  header: [header: Header];
  /** History sent (SYNC written). */
  syncSent: [];
  /** The peer's history received and applied. */
  syncReceived: [];
  /** Both directions caught up (once). */
  sync: [];
  /** While the peer's history arrives: how far along it is. */
  progress: [progress: Progress];
  /** An update from the peer was refused (counted in `faults`). */
  invalid: [rejection: Rejection];
  /** The peer broke the protocol: the stream is destroyed, without an 'error' event. */
  cut: [reason: ProtocolError];
  /** A reconciliation session ended: what it found and what it cost. */
  reconciled: [summary: ReconcileSummary];
}

/** A replication stream over one peer. Bytes in and out; pipe it to the peer's stream. */
export class ReplicationStream extends TypedDuplex<ReplicationStreamEvents> implements UpdateOrigin {
  readonly name: string | undefined;
  /** The peer's hello, once received. */
  remote: Header | null = null;
  /** Rejections counted against this peer. */
  faults = 0;
  /** Why the stream was cut off, if it was. */
  closeReason: ProtocolError | null = null;
  readonly stats: StreamStats = { received: 0, applied: 0, old: 0, rejected: 0, ignored: 0, sent: 0, skipped: 0, deferred: 0 };
  syncSent: boolean;
  syncReceived: boolean;

  private readonly sb: AnyScuttlebutt;
  private readonly opts: Required<Omit<StreamOptions, 'name' | 'meta' | 'expectedPeer' | 'filter'>> & { meta: Value; expectedPeer: NodeId | undefined };
  /** Runs the reconciliation sessions with the peer (after SYNC). */
  private readonly reconciler: Reconciler;
  /** The peer's hello said it sends updates (and so a SYNC). */
  private remoteReadable = false;
  /** The peer's hello said it accepts updates. */
  private remoteWritable = false;
  /** Updates reconciliation found the peer lacks, waiting to be framed (at most maxLiveBytes). */
  private repair: Update[] = [];
  private repairBytes = 0;
  /** Hashes of the repairs queued or sent on this stream (each goes once; see queueRepair). */
  private readonly repairSeen = new Set<string>();
  private readonly sendFilter: ((update: Update) => boolean) | undefined;
  private helloTimer: NodeJS.Timeout | null = null;
  /** Sources the peer's digest is ahead on, with its version: shrinks as their history arrives. */
  private behind = new Map<NodeId, number>();
  private progress: Progress = { sourcesDone: 0, sourcesTotal: 0, received: 0 };
  private readonly decoder: FrameDecoder;
  /** The source keys this side named to the peer, and those the peer named to it (compact.ts). */
  private readonly keysOut: KeyTableWriter;
  private readonly keysIn: KeyTableReader;
  /** A pump() is queued as a microtask: live updates applied in the same synchronous run (a
   *  burst of writes, a verified batch) go out together, in frames of up to the MTU (a full
   *  MTU's worth goes at once), ahead of anything the caller awaits next. */
  private liveFlush = false;
  /** pump() frames live updates only while a whole MTU's worth is queued (the rest waits for
   *  the scheduled flush). */
  private fullBatchesOnly = false;
  /** What the peer holds, as far as we know: its digest, plus what we sent and it sent us. */
  private readonly known = new Map<NodeId, number>();
  private readonly control: Buffer[] = [];
  private history: Iterator<Update[]> | null = null;
  private historyDone = false;
  private live: Update[] = [];
  private liveBytes = 0;
  private lagging = false;
  /** _read() asked for data and push() has not refused any since. */
  private wanted = false;
  private started = false;
  private gotSync = false;
  private syncEmitted = false;
  private ending = false;
  private pending = 0;
  private pendingBytes = 0;
  /** push(null) was called: nothing may be pushed after it. */
  private pushedEnd = false;
  /** Largest update body the peer accepts (from its hello). */
  private peerMaxUpdateBytes = Infinity;
  private waiters: Array<() => void> = [];
  private readonly onForward = (update: Update, origin: UpdateOrigin | null, evidence: boolean) => this.forward(update, origin, evidence);
  private readonly onDispose = () => this.disposeStream();

  constructor(sb: AnyScuttlebutt, options: StreamOptions = {}) {
    super({ readableHighWaterMark: 64 * 1024, writableHighWaterMark: 64 * 1024, allowHalfOpen: true });
    this.sb = sb;
    this.name = options.name;
    if (options.filter !== undefined && typeof options.filter !== 'function') throw new TypeError('"filter" expected a function');
    this.sendFilter = options.filter;
    this.opts = {
      readable: options.readable !== false,
      writable: options.writable !== false,
      sendClock: options.sendClock === true,
      awaitClock: options.awaitClock === true,
      tail: options.tail !== false,
      meta: options.meta ?? null,
      mtu: options.mtu ?? DEFAULT_MTU,
      ordering: options.ordering ?? 'depth',
      maxMessageBytes: options.maxMessageBytes ?? MAX_MESSAGE_BYTES,
      maxPending: options.maxPending ?? MAX_PENDING_VERIFICATIONS,
      maxPendingBytes: options.maxPendingBytes ?? MAX_PENDING_BYTES,
      expectedPeer: options.expectedPeer,
      helloTimeoutMs: options.helloTimeoutMs ?? HELLO_TIMEOUT_MS,
      faultBudget: options.faultBudget ?? FAULT_BUDGET,
      maxLiveBytes: options.maxLiveBytes ?? DEFAULT_MAX_LIVE_BYTES,
      reconcile: options.reconcile !== false,
      reconcileIntervalMs: options.reconcileIntervalMs ?? RECONCILE_INTERVAL_MS,
      reconcileQuietMs: options.reconcileQuietMs ?? RECONCILE_QUIET_MS,
    };
    for (const k of ['mtu', 'maxMessageBytes', 'maxPending', 'maxPendingBytes', 'faultBudget', 'maxLiveBytes'] as const) {
      const v = this.opts[k];
      if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`"${k}" expected a positive integer, got ${v}`);
    }
    for (const k of ['helloTimeoutMs', 'reconcileIntervalMs', 'reconcileQuietMs'] as const) {
      const v = this.opts[k];
      if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`"${k}" expected a non-negative integer, got ${v}`);
    }
    if (typeof this.opts.ordering !== 'string') throw new TypeError(`"ordering" expected 'depth' or 'breadth', got ${typeof this.opts.ordering}`);
    if (!HISTORY_ORDERINGS.includes(this.opts.ordering)) throw new RangeError(`"ordering" expected 'depth' or 'breadth', got ${JSON.stringify(this.opts.ordering.slice(0, 40))}`);
    checkMeta(this.opts.meta);
    this.decoder = new FrameDecoder(this.opts.maxMessageBytes);
    this.keysOut = new KeyTableWriter(sb.dataset);
    this.keysIn = new KeyTableReader(sb.dataset);
    this.syncReceived = !this.opts.writable;
    this.syncSent = !this.opts.readable;
    this.reconciler = new Reconciler({
      sb, include: (u) => (this.sendFilter === undefined || this.sendFilter(u)) && bodyLength(u) <= this.peerMaxUpdateBytes, intervalMs: this.opts.reconcileIntervalMs, quietMs: this.opts.reconcileQuietMs,
      send: (payload) => this.sendControl(payload),
      repair: (updates) => this.queueRepair(updates),
      charge: (wasted, detail) => this.charge(wasted, detail),
      cut: (reason, detail) => this.cut(reason, detail),
      ended: (summary) => this.reconcileEnded(summary),
    });
    sb.streams++;
    sb.on(FORWARD, this.onForward);
    sb.once('dispose', this.onDispose);
    this.once('close', () => {
      this.clearHelloTimer();
      this.reconciler.close();
      sb.off(FORWARD, this.onForward);
      sb.off('dispose', this.onDispose);
      sb.streams--;
      sb.emit('unstream', sb.streams);
      for (const w of this.waiters.splice(0)) w();
    });
    if (sb.isDisposed) {
      queueMicrotask(() => this.disposeStream());
      return;
    }
    if (this.opts.readable || this.opts.sendClock) this.control.push(encodeHello(this.hello()));
    // Every stream waits for the peer's hello except a read-only one that sends all history at once.
    const needsHello = !(this.opts.readable && !this.opts.writable && !this.opts.awaitClock);
    if (needsHello && this.opts.helloTimeoutMs > 0) {
      this.helloTimer = setTimeout(() => {
        this.cut('hello-timeout', `no hello from the peer within ${this.opts.helloTimeoutMs} ms (a write-only peer sends one only with sendClock)`);
      }, this.opts.helloTimeoutMs);
      this.helloTimer.unref();
    }
    if (this.opts.readable && !this.opts.writable && !this.opts.awaitClock) this.startHistory(new Map());
  }

  private hello(): Hello {
    const digest = new Map<NodeId, DigestEntry>();
    for (const [source, version] of this.sb.clock) {
      const held = this.sb.latestUpdates(source);
      // the highest hash at the latest version: equal on two nodes that hold the same updates
      const top = held.reduce<Update | undefined>((a, u) => (!a || Buffer.compare(u.hash, a.hash) > 0 ? u : a), undefined);
      digest.set(source, { version, hashPrefix: top ? hashPrefix(top) : new Uint8Array(8) });
    }
    return {
      dataset: this.sb.dataset, id: this.sb.id, digest, meta: this.opts.meta,
      readable: this.opts.readable, writable: this.opts.writable, maxUpdateBytes: this.sb.maxUpdateBytes,
      nonce: this.reconciler.nonce, reconcile: this.opts.reconcile,
    };
  }

  // ---- sending ------------------------------------------------------------------------------

  /** Snapshot of what the peer lacks; live updates from now on go to the tail. */
  private startHistory(peer: Map<NodeId, DigestEntry>): void {
    if (this.started) return;
    this.started = true;
    const clock = new Map<NodeId, number>();
    for (const [source, e] of peer) clock.set(source, e.version);
    for (const [source, v] of clock) this.known.set(source, v);
    const owed = this.sb.history(clock);
    // Same version, different latest hash: send ours so equivocations meet.
    for (const [source, e] of peer) {
      if (this.sb.clock.get(source) !== e.version) continue;
      for (const u of this.sb.latestUpdates(source)) if (!bytesEqual(hashPrefix(u), e.hashPrefix)) owed.push(u);
    }
    this.history = historyBatches(owed.filter((u) => this.fitsPeer(u)), this.opts.mtu, this.opts.ordering);
    this.pump();
  }

  /** Queues an applied update for the peer. `evidence`: a second update at its source's latest
   *  version, sent even though the peer's clock covers that version (so equivocations meet). */
  private forward(update: Update, origin: UpdateOrigin | null, evidence = false): void {
    if (origin === this) return; // never echo
    if (!this.opts.readable || !this.started || !this.opts.tail || this.ending) return;
    // The peer has seen this source up to `known`: an update at that version it has (a different
    // one there comes flagged as evidence). One below may be a repair it lacks too: sent.
    if (!evidence && update.version === this.known.get(update.source)) return;
    if (this.lagging || !this.fitsPeer(update)) return;
    if (this.liveBytes + update.byteLength > this.opts.maxLiveBytes) {
      // The peer is not reading: drop the queue, rebuild it from the model when it reads again.
      this.live = [];
      this.liveBytes = 0;
      this.lagging = true;
      return;
    }
    this.live.push(update);
    this.liveBytes += update.byteLength;
    this.reconciler.activity();
    // A full batch goes now; a partial one waits for the end of the current synchronous run.
    if (this.liveBytes >= this.opts.mtu) {
      this.fullBatchesOnly = true;
      this.pump();
      this.fullBatchesOnly = false;
      return;
    }
    if (this.liveFlush) return;
    this.liveFlush = true;
    queueMicrotask(() => {
      this.liveFlush = false;
      this.pump();
    });
  }

  /** False (and counted) for an update larger than the peer's hello said it accepts: it
   *  would be refused there, and an honest sender does not send what will be refused. */
  private fitsPeer(update: Update): boolean {
    if (this.sendFilter !== undefined && !this.sendFilter(update)) return false;
    if (bodyLength(update) <= this.peerMaxUpdateBytes) return true;
    this.stats.skipped++;
    return false;
  }

  override _read(): void {
    this.wanted = true;
    this.pump();
  }

  /** Frames while the reader asked for data (_read, until push() refuses) or the buffer is
   *  below its high-water mark. Every applied update calls pump(): pushing regardless would
   *  move the live queue into the readable buffer without bound. Past the mark, updates wait
   *  in the bounded live queue until _read() calls back. */
  private pump(): void {
    if (this.destroyed || this.pushedEnd) return;
    while (this.wanted || this.readableLength < this.readableHighWaterMark) {
      let next: Buffer | 'end' | null;
      try {
        next = this.nextFrame();
      } catch (err) {
        // An update this side must send could not be read back (its store lost it, or was
        // closed under a running model: a StoreError that says which): stop rather than skip it.
        this.cut('internal-error', messageOf(err));
        return;
      }
      if (next === null) return;
      if (next === 'end') {
        this.pushedEnd = true;
        this.push(null);
        return;
      }
      if (!this.push(next)) {
        this.wanted = false;
        return;
      }
    }
  }

  /** The next frame to send: control messages, then history, SYNC, then the live tail. */
  private nextFrame(): Buffer | 'end' | null {
    const c = this.control.shift();
    if (c) return c;
    if (this.history && !this.historyDone) {
      const batch = this.history.next();
      if (!batch.done) return this.batchFrame(batch.value);
      this.historyDone = true;
      this.syncSent = true;
      queueMicrotask(() => {
        this.emit('syncSent');
        this.checkSync();
      });
      return encodeSync();
    }
    if (this.historyDone && this.repair.length > 0) {
      const [batch, bytes] = takeBatch(this.repair, this.opts.mtu);
      this.repairBytes -= bytes;
      return this.batchFrame(batch);
    }
    if (this.historyDone) {
      if (this.lagging && this.live.length === 0) {
        this.lagging = false;
        this.live = this.sb.history(this.known).filter((u) => this.fitsPeer(u));
        this.liveBytes = this.live.reduce((n, u) => n + u.byteLength, 0);
      }
      if (this.live.length > 0 && (!this.fullBatchesOnly || this.liveBytes >= this.opts.mtu)) {
        const [batch, bytes] = takeBatch(this.live, this.opts.mtu);
        this.liveBytes -= bytes;
        return this.batchFrame(batch);
      }
    }
    if (this.ending && this.control.length === 0 && this.repair.length === 0 && (this.historyDone || !this.started)) return 'end';
    return null;
  }

  private batchFrame(batch: Update[]): Buffer {
    for (const u of batch) if (u.version > (this.known.get(u.source) ?? 0)) this.known.set(u.source, u.version);
    this.stats.sent += batch.length;
    return encodeUpdates(batch.map((u) => this.keysOut.encode(u)));
  }

  // ---- receiving ----------------------------------------------------------------------------

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    // receive() handles every peer fault itself; anything it throws is our bug, and the peer
    // is cut off rather than left hanging on a silently dropped chunk.
    this.receive(chunk).then(
      () => callback(),
      (err) => {
        this.cut('internal-error', messageOf(err));
        callback();
      },
    );
  }

  override _final(callback: (err?: Error | null) => void): void {
    // The peer finished sending: wait for what it sent to apply, then end our side too.
    this.drained().then(() => {
      this.finish();
      callback();
      // Nobody reads our side any more (the peer's stream is gone): nothing can drain it, so close.
      if (!this.hasConsumer()) this.destroy();
    });
  }

  private async receive(chunk: Buffer): Promise<void> {
    if (this.closeReason) return;
    const messages = this.decoder.push(chunk);
    if (typeof messages === 'string') return this.cut('too-large', messages);
    for (const bytes of messages) {
      if (this.destroyed) return;
      // Updates before the hello: refused from the type alone, before the envelopes are read.
      if (!this.remote && messageType(bytes) === MSG_UPDATES) return this.cut('no-hello', 'the peer sent data before its hello');
      const r = decodeMessage(bytes);
      if (!r.ok) {
        const reason: CutReason = r.reason.startsWith('unknown') ? 'unknown-message' : r.reason.startsWith('unsupported') ? 'unsupported-version' : 'malformed';
        return this.cut(reason, r.reason);
      }
      const m = r.message;
      if (m.type === 'hello') {
        if (this.remote) return this.cut('second-hello', 'the peer sent a second hello');
        if (m.hello.dataset !== this.sb.dataset) return this.cut('wrong-dataset', `peer replicates ${JSON.stringify(m.hello.dataset)}`);
        if (this.opts.expectedPeer !== undefined && m.hello.id !== this.opts.expectedPeer) {
          return this.cut('wrong-peer', `hello claims ${m.hello.id}, the transport proved ${this.opts.expectedPeer}`);
        }
        this.peerMaxUpdateBytes = m.hello.maxUpdateBytes ?? Infinity;
        const clock = new Map<NodeId, number>();
        for (const [s, e] of m.hello.digest) clock.set(s, e.version);
        this.remote = { id: m.hello.id, dataset: m.hello.dataset, clock, meta: m.hello.meta };
        this.clearHelloTimer();
        if (this.opts.writable && m.hello.readable) {
          for (const [source, v] of clock) if (v > (this.sb.clock.get(source) ?? 0)) this.behind.set(source, v);
          this.progress.sourcesTotal = this.behind.size;
        }
        this.remoteReadable = m.hello.readable;
        this.remoteWritable = m.hello.writable;
        this.reconciler.peer(m.hello.id, m.hello.nonce!, {
          // Both sides must have said hello (a write-only side without sendClock says nothing).
          enabled: this.opts.reconcile && m.hello.reconcile === true && (this.opts.readable || this.opts.sendClock),
          // Reconciliation moves updates from a side that sends to one that accepts.
          sends: this.opts.readable && m.hello.writable,
          accepts: this.opts.writable && m.hello.readable,
        });
        this.emit('header', this.remote);
        if (this.opts.readable && !this.ending) this.startHistory(m.hello.digest);
      } else if (!this.remote) {
        return this.cut('no-hello', 'the peer sent data before its hello');
      } else if (m.type === 'updates') {
        if (!this.opts.writable) {
          this.stats.ignored += m.updates.length;
          continue;
        }
        for (const item of m.updates) {
          // Expanded in arrival order: an item may name a key the next ones refer to.
          // An item that stands for no envelope goes on as it is, and is rejected 'bad-shape'
          // against the fault budget like any other garbage envelope.
          const expanded = this.keysIn.expand(item);
          const envelope = typeof expanded === 'string' ? item : expanded;
          if (!this.roomFor(envelope.length)) await this.until(() => this.roomFor(envelope.length));
          if (this.destroyed) return;
          // A rebuilt envelope is new and ours: handed over; a whole one is a view of the message.
          this.ingest(envelope, envelope !== item);
        }
        if (!this.gotSync && this.progress.sourcesTotal > 0) this.emit('progress', { ...this.progress });
        if (this.gotSync) this.reconciler.activity();
      } else if (m.type === 'sync') {
        if (this.gotSync) return this.cut('second-sync', 'the peer sent SYNC twice');
        this.gotSync = true;
        await this.drained(); // history applied before we say so
        if (this.destroyed) return; // closed while we waited: nothing more to say
        this.syncReceived = true;
        if (this.progress.sourcesTotal > 0) this.emit('progress', { ...this.progress });
        this.emit('syncReceived');
        this.checkSync();
      } else if (m.type === 'reconcile') {
        // After the peer's history (a peer that sends none, write-only, has no SYNC to wait for).
        if (!this.gotSync && this.remoteReadable) return this.cut('reconcile-unexpected', 'a reconciliation message before SYNC');
        await this.drained(); // our snapshot includes what the peer sent before it
        if (this.destroyed) return;
        this.reconciler.receive(m.payload);
      }
    }
  }

  /** True if one more envelope of `bytes` may be held for verification (one always may, alone). */
  private roomFor(bytes: number): boolean {
    return this.pending < this.opts.maxPending && (this.pending === 0 || this.pendingBytes + bytes <= this.opts.maxPendingBytes);
  }

  private ingest(envelope: Uint8Array, adopt: boolean): void {
    this.pending++;
    this.pendingBytes += envelope.length;
    this.stats.received++;
    const history = !this.gotSync;
    this.sb.ingest(envelope, this, adopt).then((r) => {
      if (r.status === 'applied') {
        this.stats.applied++;
        if (history) this.caughtUp(r.update);
        if (r.update.version > (this.known.get(r.update.source) ?? 0)) this.known.set(r.update.source, r.update.version);
      } else if (r.status === 'old') this.stats.old++;
      else if (r.status === 'deferred') this.stats.deferred++;
      else if (r.status === 'rejected') this.stats.rejected++;
      this.pending--;
      this.pendingBytes -= envelope.length;
      this.release();
    });
  }

  /** History progress: one more update received, and its source done once at the peer's version. */
  private caughtUp(update: Update): void {
    this.progress.received++;
    const target = this.behind.get(update.source);
    if (target !== undefined && update.version >= target) {
      this.behind.delete(update.source);
      this.progress.sourcesDone++;
    }
  }

  private clearHelloTimer(): void {
    if (this.helloTimer) clearTimeout(this.helloTimer);
    this.helloTimer = null;
  }

  /** Frames a reconciliation message ahead of any update. */
  private sendControl(payload: Uint8Array): void {
    if (this.ending && !this.reconciler.active) return;
    this.control.push(encodeReconcile(payload));
    this.pump();
  }

  /**
   * Queues updates reconciliation found the peer lacks (only where we send and it accepts). Each
   * is sent at most once on this stream: one the peer still lacks after we sent it was refused
   * there (stale, compacted), and sending it again every session would help nobody. The queue is
   * bounded like the live tail (`maxLiveBytes`); what does not fit is found again next session.
   */
  private queueRepair(updates: Update[]): void {
    if (!this.opts.readable || !this.remoteWritable) return;
    for (const u of updates) {
      if (this.repairSeen.has(u.hashHex) || !this.fitsPeer(u)) continue;
      if (this.repairBytes + u.byteLength > this.opts.maxLiveBytes) break;
      if (this.repairSeen.size < MAX_REPAIRS_REMEMBERED) this.repairSeen.add(u.hashHex);
      this.repair.push(u);
      this.repairBytes += u.byteLength;
    }
    this.pump();
  }

  /** A session ended: tell listeners; a stream without a tail ends now (its own SYNC, history and
   *  repairs are queued before the end). */
  private reconcileEnded(summary: ReconcileSummary): void {
    this.emit('reconciled', summary);
    if (!this.opts.tail) this.finish();
  }

  /** Charges a peer for reconciliation work it made us do for nothing (see ReconcileStep.wasted). */
  private charge(wasted: number, detail: string): void {
    this.faults += wasted;
    if (this.faults > this.opts.faultBudget) this.cut('fault-budget', `${this.faults} faults (the last: ${detail})`);
  }

  /** Counts a rejection; a bad signature or an exhausted budget cuts the peer off. */
  fault(rejection: Rejection): void {
    this.faults++;
    this.emit('invalid', rejection);
    if (rejection.reason === 'bad-signature') this.cut('bad-signature', rejection.detail);
    else if (this.faults > this.opts.faultBudget) this.cut('fault-budget', `${this.faults} rejected updates`);
  }

  /** Cuts the peer off: records why, emits `'cut'`, and destroys the stream without an error event. */
  cut(reason: CutReason, detail: string): void {
    if (this.closeReason || this.destroyed) return;
    this.closeReason = new ProtocolError(reason, `replication stream cut off: ${reason}: ${detail}`);
    this.emit('cut', this.closeReason);
    this.destroy();
  }

  /** Emits `'sync'` once, when both directions are done (a one-way stream starts with one done). */
  private checkSync(): void {
    if (this.syncSent && this.syncReceived && !this.syncEmitted && !this.destroyed) {
      this.syncEmitted = true;
      this.emit('sync');
      // Without a tail the stream ends after sync, or after reconciling if it reconciles.
      if (!this.reconciler.afterSync() && !this.opts.tail) this.finish();
    }
  }

  /** Ends our readable side once everything queued (history, SYNC) is out. Our writable side
   *  ends when the peer ends it (ending it here could race the peer's last writes). */
  private finish(): void {
    if (this.ending) return;
    this.pump(); // live updates waiting for their batch go first, as far as the reader takes them
    this.ending = true;
    this.live = [];
    this.reconciler.stop();
    this.pump();
  }

  /** The model was disposed: send what is queued and end, then close, so `'unstream'` fires
   *  even when the peer never ends its side or nobody reads this one. */
  private disposeStream(): void {
    this.finish();
    if (this.destroyed) return;
    if (this.readableEnded || !this.hasConsumer()) this.destroy();
    else this.once('end', () => this.destroy());
  }

  /** True while something reads our readable side (a pipe, a 'data' or 'readable' listener). */
  private hasConsumer(): boolean {
    return this.listenerCount('data') > 0 || this.listenerCount('readable') > 0;
  }

  private release(): void {
    if (this.waiters.length === 0) return;
    const ready = this.waiters.splice(0);
    for (const w of ready) w();
  }

  /** Resolves when `ready()` holds after a verdict (or the stream closed). */
  private async until(ready: () => boolean): Promise<void> {
    while (!ready() && !this.destroyed) await new Promise<void>((r) => this.waiters.push(r));
  }

  /** Resolves when no verification is in flight (or the stream closed). */
  private drained(): Promise<void> {
    return this.until(() => this.pending === 0);
  }

  /** Bytes of live updates queued for the peer and not yet framed (at most `maxLiveBytes`). */
  get liveQueueBytes(): number {
    return this.liveBytes;
  }

  /** How far the peer's history has come (see the `'progress'` event). */
  get progressNow(): Progress {
    return { ...this.progress };
  }

  /** Verifications in flight for this peer. */
  get inFlight(): number {
    return this.pending;
  }
}

/** Takes from the front of `queue` the updates that fit in `mtu` bytes (at least one).
 *  @returns them and their bytes. */
function takeBatch(queue: Update[], mtu: number): [Update[], number] {
  let count = 0;
  let bytes = 0;
  while (count < queue.length && (count === 0 || bytes + queue[count]!.byteLength <= mtu)) bytes += queue[count++]!.byteLength;
  return [queue.splice(0, count), bytes];
}

/** A local `meta` must pass the checks the peer applies (size, depth, decode budget, valid UTF-8).
 *  @throws TypeError if CBOR cannot carry it; RangeError if the peer would refuse it. */
function checkMeta(meta: Value): void {
  let bytes: Uint8Array;
  try {
    bytes = encodeCbor(meta);
  } catch (err) {
    throw new TypeError(`"meta" cannot be encoded: ${(err as Error).message}`);
  }
  if (bytes.length > MAX_META_BYTES) throw new RangeError(`"meta" is ${bytes.length} bytes encoded; the limit is ${MAX_META_BYTES}`);
  const problem = checkCbor(bytes, { maxDepth: MAX_MESSAGE_DEPTH - 1 });
  if (problem !== null) throw new RangeError(`"meta" would be refused by the peer: ${problem}`);
}

/** Creates a replication stream for `sb`. */
export function createStream(sb: AnyScuttlebutt, options?: StreamOptions): ReplicationStream {
  return new ReplicationStream(sb, options);
}
