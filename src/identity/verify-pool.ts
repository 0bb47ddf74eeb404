// VerifyPool: Ed25519 check 5 on worker threads running libsodium, batched per postMessage; while
// every worker is full, the event loop verifies a bounded share of what waits, once per turn of
// the loop. A worker that dies or stalls has its requests re-run inline, never lost.
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { sodiumModulePath } from '../util/sodium.ts';
import { concatBytes } from '../util/bytes.ts';

/** Requests one worker holds at once; more wait in the pool's queue (in order) until it answers.
 *  About 23 ms of work here: more than a caller-runs share (CALLER_RUNS_MS), during which the
 *  worker's replies wait, so the worker does not run dry meanwhile. */
export const MAX_IN_FLIGHT_PER_WORKER = 512;
/** Requests per postMessage. A larger backlog is split, so that every worker gets a share. */
export const MAX_BATCH = 64;
/** Bytes of messages per postMessage; a batch closes once past it (a single larger request still goes). */
export const MAX_BATCH_BYTES = 1 << 20;
/**
 * Milliseconds the event loop spends verifying itself, at most, per turn of the loop, while every
 * worker is full and requests wait (caller runs): about 440 small updates here. The share is
 * renewed by a setImmediate, so however the answers chain (each verdict lets a stream take in
 * more, whose requests find the workers still full), timers, I/O and worker replies run between
 * two shares. Time the event loop spends verifying is time it does not read its sockets, and a
 * message's updates are verified, applied and stored in one burst rather than one by one as a
 * worker answers: measured on 2 cores (bench/e2e.ts replica sync of 100,000 updates, medians of
 * 4-5 interleaved rounds), the replica's peak RSS went from 210-222 MB (two workers, no
 * caller-runs) to 176-188 with this share and one worker, the sync as fast or faster. With 256
 * in flight per worker, a 10 ms share gave 192 and a 40 ms share 177, but a 17% slower sync (the
 * worker ran dry).
 */
export const CALLER_RUNS_MS = 20;
/** A request with a message larger than this always waits for a worker: one verification of
 *  256 KiB costs the event loop about 1 ms here, one of 16 MiB 35 ms. */
export const CALLER_RUNS_BYTES = 256 * 1024;
/** A worker that owes answers and sends none for this long is abandoned: its requests run inline. */
export const WORKER_STALL_MS = 30_000;
/** Workers started to replace dead ones, per pool; past it the pool stops and verifies inline. */
export const MAX_WORKER_RESTARTS = 16;

/** One request as packed for a worker: u32 LE message length, signature 64, public key 32, message. */
const HEAD = 4 + 64 + 32;
/** Bytes of one staging chunk: requests are packed into one when they are made (see Staging). */
export const STAGING_BYTES = 64 * 1024;
/** Emptied staging chunks kept for reuse, past the one being filled. */
const SPARE_STAGING = 4;
/**
 * Heap limits of a worker. It holds one batch at a time (at most MAX_BATCH_BYTES, plus views), so
 * a small heap serves; V8's defaults let each worker's young generation grow to tens of MB, which
 * a replica's peak RSS paid twice (bench: 30 MB less with these, same CPU). A worker that breaks
 * them dies, and its requests are answered inline, like any dead worker's.
 */
export const WORKER_RESOURCE_LIMITS = { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 16 } as const;

// Plain CommonJS, run with `eval: true`, so the same text works under tsx (src/) and from dist/.
// It loads sodium-native by the absolute path the main thread resolved (any cwd), and answers
// each batch with one verdict byte per request (1 = the equation holds).
const WORKER_SOURCE = `'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const sodium = require(workerData.modulePath);
parentPort.on('message', ({ id, data }) => {
  const bytes = new Uint8Array(data);
  const view = new DataView(data);
  const count = view.getUint32(0, true);
  const verdicts = new Uint8Array(count);
  let at = 4;
  for (let i = 0; i < count; i++) {
    const length = view.getUint32(at, true);
    const signature = bytes.subarray(at + 4, at + 68);
    const publicKey = bytes.subarray(at + 68, at + ${HEAD});
    const message = bytes.subarray(at + ${HEAD}, at + ${HEAD} + length);
    at += ${HEAD} + length;
    let ok = false;
    try { ok = sodium.crypto_sign_verify_detached(signature, message, publicKey) === true; } catch {}
    verdicts[i] = ok ? 1 : 0;
  }
  parentPort.postMessage({ id, verdicts }, [verdicts.buffer]);
});`;

const EMPTY = new Uint8Array(0);

function newStaging(size: number): Staging {
  const bytes = new Uint8Array(size);
  return { bytes, view: new DataView(bytes.buffer), used: 0, owed: 0 };
}

/** Synchronous check 5, used when no worker can answer. Must give the workers' verdict and never throw. */
export type InlineVerify = (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array) => boolean;

/** Options for {@link VerifyPool}. */
export interface VerifyPoolOptions {
  /** The same check the workers run, on this thread: answers whatever a worker could not. */
  fallback: InlineVerify;
  /** Worker threads. Default `os.availableParallelism() - 1` (at least 1): the event loop's
   *  thread is the last verifier (see {@link CALLER_RUNS_MS}). */
  size?: number;
  /** Milliseconds the event loop verifies, at most, per turn of the loop while every worker is
   *  full. Default {@link CALLER_RUNS_MS}; 0 leaves every request to the workers (the queue grows). */
  callerRunsMs?: number;
  /** The clock caller-runs is timed by, in milliseconds. Default `performance.now` (tests inject one). */
  now?: () => number;
  /** Absolute path of the module workers load (sodium-native's API). Default {@link sodiumModulePath}. */
  modulePath?: string;
  /** Default {@link MAX_IN_FLIGHT_PER_WORKER}. */
  maxInFlight?: number;
  /** Default {@link WORKER_STALL_MS}. */
  stallMs?: number;
}

/**
 * Where requests wait, packed as a worker reads them, from the moment they are made: a waiting
 * request holds a place in a chunk, not its caller's arrays (the views and the joined message
 * that the caller would otherwise keep alive until the answer; at a replica's rate they outlived
 * V8's young generation and were swept only by full collections). A chunk is reused once every
 * request in it is answered.
 */
interface Staging {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  used: number;
  /** Requests packed here and not yet answered. */
  owed: number;
}

/** A request: bytes [at, at + length) of its chunk (HEAD, then the message). */
interface Request {
  chunk: Staging;
  at: number;
  length: number;
  resolve: (ok: boolean) => void;
}

interface Slot {
  worker: Worker;
  inFlight: number;
  batches: Map<number, Request[]>;
  watchdog: NodeJS.Timeout | null;
  gone: boolean;
}

/** Counters for diagnostics and tests. */
export interface VerifyPoolStats {
  workers: number;
  inFlight: number;
  queued: number;
  /** Requests answered inline after they were queued for a worker: it died, stalled or could not
   *  start, or the pool was closed or gave up on workers. */
  rerunInline: number;
  /** Requests the event loop verified because every worker was full (see {@link CALLER_RUNS_MS}). */
  callerRan: number;
  /** Workers that ended while the pool was open. */
  workerExits: number;
  disabled: boolean;
}

/**
 * A pool of worker threads verifying Ed25519 with libsodium. Idle workers are unref()ed, so the
 * pool never keeps a process alive; a worker is ref()ed only while it owes answers (a pending
 * verification must not be dropped by the process exiting under it). Every promise resolves
 * with the verdict of `fallback` on the same input; none rejects, and no 'error' escapes.
 */
export class VerifyPool {
  private readonly fallback: InlineVerify;
  private readonly size: number;
  private readonly modulePath: string | null;
  private readonly maxInFlight: number;
  private readonly callerRunsMs: number;
  private readonly now: () => number;
  private readonly stallMs: number;
  private readonly slots: Array<Slot | null>;
  private readonly queue: Request[] = [];
  /** The chunk being filled, and emptied ones to reuse. */
  private staging: Staging = newStaging(STAGING_BYTES);
  private readonly spare: Staging[] = [];
  private scheduled = false;
  private started = 0;
  private nextId = 1;
  private closed = false;
  private disabled = false;
  private rerunInline = 0;
  private callerRan = 0;
  /** Milliseconds the event loop has verified itself in this turn of the loop (see CALLER_RUNS_MS). */
  private hereSpent = 0;
  /** A setImmediate is due that renews the share (and pumps what still waits). */
  private renewal = false;
  /** Some of the share was spent since the last renewal, outside one (in the I/O phase). */
  private spentOutside = false;
  /** A renewal's own pump is running (what it spends is not "outside"). */
  private inRenew = false;
  private readonly renewBound = () => this.renew();
  private workerExits = 0;

  constructor(options: VerifyPoolOptions) {
    this.fallback = options.fallback;
    this.size = Math.max(1, options.size ?? availableParallelism() - 1);
    this.modulePath = options.modulePath ?? sodiumModulePath();
    this.maxInFlight = Math.max(1, options.maxInFlight ?? MAX_IN_FLIGHT_PER_WORKER);
    this.callerRunsMs = options.callerRunsMs ?? CALLER_RUNS_MS;
    if (!(this.callerRunsMs >= 0 && Number.isFinite(this.callerRunsMs))) {
      throw new RangeError(`"callerRunsMs" must be a finite number >= 0 (got ${String(options.callerRunsMs)})`);
    }
    this.now = options.now ?? (() => performance.now());
    this.stallMs = options.stallMs ?? WORKER_STALL_MS;
    this.slots = new Array<Slot | null>(this.size).fill(null);
    this.disabled = this.modulePath === null;
  }

  /** Check 5 on a worker; resolves with the inline verdict if no worker can answer. Never rejects. */
  verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): Promise<boolean> {
    return this.verifyParts(signature, EMPTY, message, publicKey);
  }

  /** {@link verify} of the message `prefix || message`, without joining the two: they are
   *  copied once, into the request's place in a staging chunk. */
  verifyParts(signature: Uint8Array, prefix: Uint8Array, message: Uint8Array, publicKey: Uint8Array): Promise<boolean> {
    // A signature or key of another length would not fit the layout a worker reads (callers
    // have checked lengths already, in checks 1-4): answered here, by the same rule.
    if (this.disabled || this.closed || signature.length !== 64 || publicKey.length !== 32) {
      const whole = prefix.length === 0 ? message : concatBytes(prefix, message);
      return Promise.resolve(this.inline(signature, whole, publicKey));
    }
    const length = HEAD + prefix.length + message.length;
    const chunk = this.place(length);
    const at = chunk.used;
    chunk.view.setUint32(at, prefix.length + message.length, true);
    chunk.bytes.set(signature, at + 4);
    chunk.bytes.set(publicKey, at + 68);
    chunk.bytes.set(prefix, at + HEAD);
    chunk.bytes.set(message, at + HEAD + prefix.length);
    chunk.used += length;
    chunk.owed++;
    return new Promise((resolve) => {
      this.queue.push({ chunk, at, length, resolve });
      if (!this.scheduled) {
        this.scheduled = true;
        queueMicrotask(() => this.pump());
      }
    });
  }

  /** A chunk with `length` bytes free: the one being filled, a spare, or a new one (its own for
   *  a request larger than a quarter chunk, never reused). */
  private place(length: number): Staging {
    if (length > STAGING_BYTES >> 2) return newStaging(length);
    if (this.staging.used + length > STAGING_BYTES) this.staging = this.spare.pop() ?? newStaging(STAGING_BYTES);
    return this.staging;
  }

  /** Answers one request and gives its place back. */
  private answer(r: Request, ok: boolean): void {
    const chunk = r.chunk;
    if (--chunk.owed === 0 && chunk.bytes.length === STAGING_BYTES) {
      if (chunk === this.staging) chunk.used = 0;
      else if (this.spare.length < SPARE_STAGING) {
        chunk.used = 0;
        this.spare.push(chunk);
      }
    }
    r.resolve(ok);
  }

  /** Ends every worker; whatever they owed, and later requests, are answered inline. */
  close(): Promise<void> {
    this.closed = true;
    const exits = this.slots.map((slot) => (slot === null ? undefined : this.abandon(slot)));
    this.drainInline();
    return Promise.all(exits).then(() => undefined);
  }

  /** Counters for diagnostics and tests. */
  stats(): VerifyPoolStats {
    const live = this.slots.filter((s): s is Slot => s !== null);
    return {
      workers: live.length,
      inFlight: live.reduce((n, s) => n + s.inFlight, 0),
      queued: this.queue.length,
      rerunInline: this.rerunInline,
      callerRan: this.callerRan,
      workerExits: this.workerExits,
      disabled: this.disabled,
    };
  }

  /** @internal Test hook: terminate worker `index` as if it had crashed (its 'exit' re-runs what it owed). */
  terminateWorkerForTests(index: number): Promise<number> | undefined {
    return this.slots[index]?.worker.terminate();
  }

  private inline(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
    try {
      return this.fallback(signature, message, publicKey);
    } catch {
      return false; // the contract says never; refusing is the safe side if it did
    }
  }

  private answerInline(requests: Request[]): void {
    this.rerunInline += requests.length;
    for (let i = 0; i < requests.length; i++) this.answerHere(requests[i]!);
  }

  /** Verifies `r` on this thread, from where it waits in its staging chunk. */
  private answerHere(r: Request): void {
    const b = r.chunk.bytes;
    this.answer(r, this.inline(b.subarray(r.at + 4, r.at + 68), b.subarray(r.at + HEAD, r.at + r.length), b.subarray(r.at + 68, r.at + HEAD)));
  }

  private drainInline(): void {
    this.answerInline(this.queue.splice(0));
  }

  /** Sends queued requests to the least busy workers, in batches, until all are out or all are
   *  full; then, if requests still wait, verifies the oldest of them here, within this turn's share. */
  private pump(): void {
    this.scheduled = false;
    if (this.disabled || this.closed) return this.drainInline();
    while (this.queue.length > 0) {
      const slot = this.pick();
      if (slot === null) {
        if (!this.disabled) this.runHere();
        break;
      }
      const share = Math.ceil(this.queue.length / this.size);
      const take = Math.min(this.maxInFlight - slot.inFlight, MAX_BATCH, share);
      let count = 0;
      let bytes = 4;
      while (count < take && count < this.queue.length && (count === 0 || bytes < MAX_BATCH_BYTES)) {
        bytes += this.queue[count]!.length;
        count++;
      }
      this.send(slot, this.queue.splice(0, count), bytes);
    }
    if (this.disabled) this.drainInline();
  }

  /**
   * Verifies the oldest waiting requests on this thread until the share of time is spent, stepping
   * over any request larger than CALLER_RUNS_BYTES (it keeps its place for a worker: waiting
   * behind it would stall the rest for as long as a worker takes). A setImmediate renews the share
   * if some of it was used, or if it is what stopped us with requests left; not while only
   * requests a worker must take wait (that would spin until it answers, and its reply pumps).
   */
  private runHere(): void {
    if (this.callerRunsMs === 0) return;
    const queue = this.queue;
    let count = 0;
    if (this.hereSpent < this.callerRunsMs) {
      const before = this.hereSpent;
      const start = this.now();
      let kept = 0; // requests stepped over, moved to the front in order
      let i = 0;
      for (; i < queue.length && this.hereSpent < this.callerRunsMs; i++) {
        const r = queue[i]!;
        if (r.length > CALLER_RUNS_BYTES) {
          queue[kept++] = r;
          continue;
        }
        this.answerHere(r);
        count++;
        this.hereSpent = before + (this.now() - start);
      }
      if (count > 0) {
        queue.copyWithin(kept, i);
        queue.length -= i - kept;
        this.callerRan += count;
        if (!this.inRenew) this.spentOutside = true;
      }
    }
    if (!this.renewal && (count > 0 || (queue.length > 0 && this.hereSpent >= this.callerRunsMs))) {
      this.renewal = true;
      setImmediate(this.renewBound);
    }
  }

  /**
   * The check phase of a turn of the loop: a full share again, and what waits is pumped (a worker
   * may be free). A share used since the last renewal outside one (in this turn's I/O phase) was
   * this turn's: the next turn gets the new one, so no two shares run without timers between.
   */
  private renew(): void {
    this.renewal = false;
    this.hereSpent = this.spentOutside ? this.callerRunsMs : 0;
    this.spentOutside = false;
    this.inRenew = true;
    if (this.queue.length > 0 && !this.scheduled) this.pump();
    this.inRenew = false;
  }

  /** The live worker with the most room (starting one in an empty place), or null if all are full. */
  private pick(): Slot | null {
    let best: Slot | null = null;
    for (let i = 0; i < this.size; i++) {
      const slot = this.slots[i] ?? this.spawn(i);
      if (slot !== null && slot.inFlight < this.maxInFlight && (best === null || slot.inFlight < best.inFlight)) best = slot;
    }
    if (best === null && this.slots.every((s) => s === null)) this.disabled = true; // no worker left to start
    return best;
  }

  private spawn(index: number): Slot | null {
    if (this.disabled || this.closed || this.modulePath === null) return null;
    if (this.started >= this.size + MAX_WORKER_RESTARTS) return null;
    let worker: Worker;
    try {
      worker = new Worker(WORKER_SOURCE, {
        eval: true, workerData: { modulePath: this.modulePath }, execArgv: [], resourceLimits: WORKER_RESOURCE_LIMITS,
      });
    } catch {
      this.started = Infinity; // worker threads unavailable here: inline from now on
      return null;
    }
    const slot: Slot = { worker, inFlight: 0, batches: new Map(), watchdog: null, gone: false };
    this.slots[index] = slot;
    this.started++;
    worker.on('message', (reply: unknown) => this.onReply(slot, reply));
    // A crash is followed by 'exit', which re-runs the batches; listening here keeps it from
    // being an unhandled 'error'.
    worker.on('error', () => {});
    worker.on('messageerror', () => void this.abandon(slot));
    worker.on('exit', () => {
      if (!this.closed) this.workerExits++;
      void this.abandon(slot);
      if (this.queue.length > 0) this.pump();
    });
    // After the listeners: adding a 'message' listener refs the worker's port again.
    worker.unref();
    return slot;
  }

  private send(slot: Slot, batch: Request[], bytes: number): void {
    const data = new ArrayBuffer(bytes);
    const out = new Uint8Array(data);
    new DataView(data).setUint32(0, batch.length, true);
    // Requests made one after another lie end to end in a chunk: each run is one copy.
    let at = 4;
    for (let i = 0; i < batch.length; ) {
      const first = batch[i]!;
      let end = first.at + first.length;
      for (i++; i < batch.length && batch[i]!.chunk === first.chunk && batch[i]!.at === end; i++) end += batch[i]!.length;
      out.set(first.chunk.bytes.subarray(first.at, end), at);
      at += end - first.at;
    }
    const id = this.nextId++;
    slot.batches.set(id, batch);
    if (slot.inFlight === 0) {
      slot.worker.ref();
      slot.watchdog = setTimeout(() => void this.abandon(slot), this.stallMs);
      slot.watchdog.unref();
    }
    slot.inFlight += batch.length;
    slot.worker.postMessage({ id, data }, [data]);
  }

  private onReply(slot: Slot, reply: unknown): void {
    const { id, verdicts } = (reply ?? {}) as { id?: unknown; verdicts?: unknown };
    const batch = typeof id === 'number' ? slot.batches.get(id) : undefined;
    if (batch === undefined) return;
    slot.batches.delete(id as number);
    slot.inFlight -= batch.length;
    if (verdicts instanceof Uint8Array && verdicts.length === batch.length) {
      for (let i = 0; i < batch.length; i++) this.answer(batch[i]!, verdicts[i] === 1);
    } else {
      this.answerInline(batch);
    }
    if (slot.inFlight === 0) {
      slot.worker.unref();
      if (slot.watchdog !== null) clearTimeout(slot.watchdog);
      slot.watchdog = null;
    } else {
      slot.watchdog?.refresh();
    }
    if (this.queue.length > 0) this.pump();
  }

  /** Takes a worker out of the pool, answers what it owed inline, and ends it (idempotent). */
  private abandon(slot: Slot): Promise<number> | undefined {
    if (slot.gone) return undefined;
    slot.gone = true;
    const index = this.slots.indexOf(slot);
    if (index >= 0) this.slots[index] = null;
    if (slot.watchdog !== null) clearTimeout(slot.watchdog);
    const owed = [...slot.batches.values()].flat();
    slot.batches.clear();
    slot.inFlight = 0;
    this.answerInline(owed);
    return slot.worker.terminate().catch(() => 0);
  }
}
