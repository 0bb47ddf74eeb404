// LmdbStore: the embedded default Store on disk (npm lmdb). One LMDB environment per directory
// holds every dataset; a lock file, a format record and a close-time seal guard the directory.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { open as openLmdb, type Database, type RootDatabase } from 'lmdb';
import { StoreError } from '../errors.ts';
import { MAX_STORE_NAME_LENGTH } from '../limits.ts';
import type { NodeId } from '../identity/node-id.ts';
import { assertString } from '../util/bytes.ts';
import type { Store, StoreBatch, StoredState, StoreUpdateName } from './store.ts';
import {
  DATA_FILE, LMDB_STORE_FORMAT, acquireLock, checkFormat, checkHeader, checkSeal, damaged, digestFile, inspectDirectory, notSignet, packageVersion,
  prepareDirectory, releaseLock, writeSeal,
} from './lmdb-directory.ts';
import {
  HASH_KEY_BYTES, ORDERED_KEY_BYTES, checkDataset, envelopeKeyOf, number, planBatch, readNumber, readText, successor, suffixed, text,
  type EnvelopeWrites,
} from './lmdb-keys.ts';

export { LMDB_STORE_FORMAT };

export { MAX_STORE_NAME_LENGTH };

/** Options for {@link LmdbStore}. */
export interface LmdbStoreOptions {
  /**
   * When `commit()` resolves. Default `'process'`.
   * - `'process'`: once the LMDB write transaction holding the batch has committed: its pages and
   *   meta page are in the kernel. Survives the process being killed at any instant (SIGKILL, OOM):
   *   on reopen in the same boot LMDB takes the latest committed meta page. A power loss or kernel
   *   crash may roll the store back to its last flushed transaction (consistent, never torn).
   * - `'flush'`: also once that transaction is flushed to the disk (lmdb-js `flushed`: fdatasync of
   *   the data file, then the flushed meta slot written through the O_DSYNC descriptor). Survives
   *   power loss as far as the disk honours flushes.
   */
  durability?: 'process' | 'flush';
}

const FORMAT_KEY = Buffer.from('format');

/**
 * Address space reserved for the data file when it opens (virtual memory only: the file does
 * not grow to it). Without it lmdb-js starts small and maps the file again each time it grows,
 * and every earlier mapping stays resident while its readers live: measured at 100,000 updates,
 * 8 mappings and 92 MB resident for a 48 MB file, against 1 mapping and 46 MB. A store that
 * outgrows it is remapped by lmdb-js as before.
 */
export const LMDB_MAP_BYTES = 8 * 2 ** 30;

/** `{ mapSize }` unless the process's address space is limited to less than 4x LMDB_MAP_BYTES
 *  (a failed map at open would crash lmdb-js; see below), where lmdb-js keeps its default.
 *  `limits`: the text of /proc/self/limits (read when not given; absent off Linux). */
export function mapSizeOption(limits?: string): { mapSize?: number } {
  if (limits === undefined) {
    try {
      limits = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      limits = ''; // no /proc (not Linux): a 64-bit address space is not limited by default
    }
  }
  const line = limits.split('\n').find((l) => l.startsWith('Max address space'));
  const soft = line?.trim().split(/\s{2,}/)[1];
  if (soft !== undefined && soft !== 'unlimited' && !(Number(soft) >= 4 * LMDB_MAP_BYTES)) return {};
  return { mapSize: LMDB_MAP_BYTES };
}
/** A sub-database with binary keys and values (lmdb-js returns copies of values). */
type Db = Database<Uint8Array, Buffer>;

/**
 * The embedded default {@link Store}: signed envelopes, clocks and named numbers of every dataset
 * in one LMDB environment (one directory). See DESIGN.md, Store.
 *
 * Layout: four named sub-databases, binary keys, every key starting with the dataset's prefix
 * `[n: 1 byte][n UTF-16 code units, big-endian]` (injective for every string, lone surrogates
 * included, and self-delimiting, so no two datasets share a key and a dataset's keys are one range):
 * - `signet`: `format` → JSON `{ format: 2, created, signet }` (package version; `migrated` once
 *   a format-1 store was opened and carried forward);
 * - `envelopes`: prefix + source (32 bytes, the node id base32-decoded) + version (8 bytes,
 *   big-endian) + hash (32 bytes) → envelope bytes, for an update put as a {@link StoreUpdate}; one
 *   source's updates are then neighbours in version order, so a batch of them (a sync, a live
 *   feed) appends to a few pages that LMDB fills whole, where random hash keys dirtied a page per
 *   update and left pages about two thirds full (measured, 100,000 envelopes of 240 bytes: 33 MB
 *   and 15 ms per write transaction against 73-95 MB and 140-200 ms). An envelope put as
 *   `[hash, bytes]` is keyed by prefix + hash (32 bytes), as every envelope was in format 1; the
 *   two lengths never meet, so format 1's keys are format 2's hash-keyed form unchanged;
 * - `clock`: prefix + text(source) → version; `meta`: prefix + text(name) → value
 *   (text = the same length-prefixed UTF-16 encoding; numbers are 8-byte big-endian float64).
 *
 * Formats: a format-1 store (hash keys only) opens and is carried to format 2 by rewriting its
 * format record (its keys are already valid); format-1 code then refuses it as newer, as it must
 * (it could not drop an update kept by source and version). A newer format is refused.
 *
 * Group commit: `commit()` validates its batch, then issues every write synchronously, so all of
 * them fall into one lmdb-js event-turn batch, which its write thread keeps inside one write
 * transaction; every commit issued in the same event turn shares that transaction (and later
 * turns join it while it is still open). A batch is therefore atomic, and the promise resolves
 * only once lmdb-js reports that transaction committed (and, for `'flush'`, flushed).
 * The clock keeps the maximum: values issued but not yet committed are tracked in memory; after
 * any failed write transaction the store refuses further commits (reopen it).
 *
 * Durability (lmdb-js 3.5.6 on Linux, `overlappingSync` on): see {@link LmdbStoreOptions.durability}.
 * Today lmdb-js resolves a write promise only after `mdb_txn_commit` returns, and in
 * overlapping-sync mode that call itself runs the fdatasync (after releasing the writer lock), so
 * both modes currently wait for the flush (measured: with fdatasync delayed 300 ms the write
 * promise resolved after 300 ms). lmdb-js documents the promise as "committed, not yet flushed",
 * so `'flush'` waits for `flushed` explicitly and `'process'` promises only what it needs.
 * `safeRestore` is forced off (it would ignore the same-boot rule that `'process'` relies on,
 * also when set through the LMDB_RESTORE environment variable).
 *
 * lmdb-js rules this class keeps (3.5.6): no synchronous write (`putSync`, `transactionSync`,
 * `openDB`) while asynchronous writes are in flight: it interrupts the write thread, which then
 * commits a half-written event-turn batch. Sub-databases are therefore all opened in the
 * constructor. Nothing may throw between a batch's first and last write (a batch is checked
 * whole first). `mdb_env_open` must not fail: lmdb-js then frees its environment twice and the
 * process dies (SIGSEGV), and a page past the end of the data file kills it with SIGBUS; so the
 * header is checked in JavaScript before LMDB sees the file.
 *
 * Opening: a missing or empty directory becomes a new store; an existing store opens; anything
 * else is refused with a {@link StoreError} naming the path and what to do, and nothing is ever
 * deleted or reset. Refused: a newer format; a damaged data file (not LMDB, truncated, or, after a
 * clean close, changed at all: `signet.seal` holds the size and SHA-256 of `data.mdb` as closed,
 * compared on open; a store that was not closed cleanly gets the header checks only: magic,
 * version, page size, and a file long enough for every meta page's last page); an LMDB
 * environment without the signet format record; a directory of other files and no `data.mdb`.
 * Extra files beside `data.mdb` are left alone. LMDB itself may add `lock.mdb`.
 *
 * Lock: `signet.lock` (created exclusively, holds the pid) while open; a second LmdbStore or
 * process gets a StoreError. A lock left by a dead process (`kill(pid, 0)` fails with ESRCH) is
 * taken over; pids are only meaningful on one host and pid namespace, and two processes taking over
 * the same stale lock at the same instant are not excluded from each other.
 */
export class LmdbStore implements Store {
  /** Absolute path of the store's directory. */
  readonly path: string;
  readonly durability: 'process' | 'flush';
  private readonly root: RootDatabase;
  private readonly envelopes: Db;
  private readonly clock: Db;
  private readonly meta: Db;
  private readonly lockToken: string;
  /** Highest clock value issued per dataset and source, committed or not. */
  private readonly clockIssued = new Map<string, Map<string, number>>();
  /** Dataset key prefixes ({@link text} of the name), made once per dataset. */
  private readonly prefixes = new Map<string, Buffer>();
  /** One promise per lmdb-js write transaction that commits are waiting on (see `commit`). */
  private readonly inflight = new Set<Promise<unknown>>();
  /** The lmdb-js promise of the last commit's writes, and what that commit returned for it:
   *  every commit of one event turn shares one transaction, hence one promise, so they share one. */
  private lastWrite: Promise<boolean> | null = null;
  private lastSettled: Promise<void> | null = null;
  private failure: unknown = null;
  private closing: Promise<void> | null = null;
  /** Set once close() has let the microtasks queued before it run: from then on calls reject. */
  private shut = false;

  /**
   * Opens (or creates) the store in directory `path`.
   * @throws TypeError/RangeError for bad arguments; StoreError if the directory is in use, is not
   * a signet store, holds a newer format or is damaged (the message names the path and the fix).
   */
  constructor(path: string, options: LmdbStoreOptions = {}) {
    assertString(path, 'path');
    const durability = options.durability ?? 'process';
    if (durability !== 'process' && durability !== 'flush') throw new RangeError(`"durability" expected 'process' or 'flush', got ${String(durability)}`);
    this.durability = durability;
    this.path = resolve(path);
    prepareDirectory(this.path);
    this.lockToken = acquireLock(this.path);
    let root: RootDatabase | undefined;
    try {
      const existing = inspectDirectory(this.path);
      if (existing) {
        checkSeal(this.path);
        checkHeader(this.path);
      }
      try {
        // safeRestore off: after a process crash LMDB must take the latest committed meta page.
        const lmdbOptions = { path: this.path, maxDbs: 8, separateFlushed: true, safeRestore: false, ...mapSizeOption() };
        root = openLmdb(lmdbOptions);
      } catch (err) {
        throw damaged(this.path, `LMDB cannot open ${DATA_FILE} (${(err as Error).message})`, err);
      }
      this.root = root;
      // An empty environment (new, or its creation was cut short) holds nothing to lose.
      if ((root.getStats() as { entryCount: number }).entryCount === 0) {
        writeSeal(this.path, { state: 'open' });
        [this.envelopes, this.clock, this.meta] = root.transactionSync(() => {
          const record = { format: LMDB_STORE_FORMAT, created: new Date().toISOString(), signet: packageVersion() };
          this.openDb('signet', true).put(FORMAT_KEY, Buffer.from(JSON.stringify(record)));
          return this.openDbs(true);
        });
      } else {
        const record = this.readFormat();
        checkFormat(this.path, record);
        [this.envelopes, this.clock, this.meta] = this.openDbs(false);
        if ((record as { format: number }).format < LMDB_STORE_FORMAT) this.migrate(record as Record<string, unknown>);
        // From here on the data file changes: the seal of the last clean close no longer applies.
        writeSeal(this.path, { state: 'open' });
      }
    } catch (err) {
      try {
        root?.close();
      } catch {}
      releaseLock(this.path, this.lockToken);
      throw err;
    }
  }

  /** LMDB's id of its last committed write transaction: the difference over a span counts the
   *  write transactions in it (tests of group commit, bench, status). */
  get lastTransactionId(): number {
    this.assertOpen();
    return (this.root.getStats() as { lastTxnId: number }).lastTxnId;
  }

  async load(dataset: string): Promise<StoredState> {
    this.assertOpen();
    checkDataset(dataset);
    await Promise.allSettled([...this.inflight]); // see every commit issued before
    this.assertOpen();
    const prefix = this.prefix(dataset);
    const range = { start: prefix, end: successor(prefix) };
    const updates: Uint8Array[] = [];
    const byName: boolean[] = [];
    const clock: Array<[NodeId, number]> = [];
    const meta: Array<[string, number]> = [];
    // Read synchronously: one snapshot, no commit lands in between.
    for (const { key, value } of this.envelopes.getRange(range)) {
      const rest = key.length - prefix.length;
      if (rest !== HASH_KEY_BYTES && rest !== ORDERED_KEY_BYTES) throw damaged(this.path, `an envelope key of ${key.length} bytes does not decode`);
      updates.push(new Uint8Array(value.buffer, value.byteOffset, value.length));
      // A hash-keyed record ([hash, bytes] put, or format 1) may be keyed by any hash.
      byName.push(rest === ORDERED_KEY_BYTES);
    }
    for (const { key, value } of this.clock.getRange(range)) clock.push([this.textAt(key, prefix.length) as NodeId, this.numberIn(value)]);
    for (const { key, value } of this.meta.getRange(range)) meta.push([this.textAt(key, prefix.length), this.numberIn(value)]);
    // byName only when some record is (absent says none is: an empty dataset reads as before).
    return byName.includes(true) ? { updates, byName, clock, meta } : { updates, clock, meta };
  }

  /**
   * The envelope stored under `update`'s name (source, version, hash) in `dataset`, read
   * synchronously from the last committed state, or undefined (a record put as a `[hash, bytes]`
   * pair, or by format 1, is not found here: `load` says which records are, in `byName`).
   * A copy: the caller owns it.
   * @throws StoreError after close; TypeError/RangeError for a malformed dataset or name.
   */
  readEnvelope(dataset: string, update: StoreUpdateName): Uint8Array | undefined {
    this.assertOpen();
    checkDataset(dataset);
    const value = this.envelopes.getBinary(envelopeKeyOf(this.prefix(dataset), update));
    return value === undefined ? undefined : new Uint8Array(value.buffer, value.byteOffset, value.length);
  }

  /**
   * Applies `batch` atomically (put, drop, clock as a maximum, meta) in a write transaction shared
   * with every commit issued in the same event turn; resolves once durable (see `durability`).
   * Every commit of one transaction gets the same promise, and nothing of a batch is held until
   * it resolves (a fast sync commits thousands of batches per second).
   * @throws (rejects) TypeError/RangeError for a malformed batch; StoreError after close or after
   * a failed write transaction.
   */
  commit(dataset: string, batch: StoreBatch): Promise<void> {
    let prefix: Buffer;
    let envelopes: EnvelopeWrites;
    try {
      this.assertOpen();
      checkDataset(dataset);
      prefix = this.prefix(dataset);
      envelopes = planBatch(prefix, batch);
    } catch (err) {
      return Promise.reject(err);
    }
    // Everything below runs in this turn, after all checks: nothing can throw half-way.
    let last: Promise<boolean> | null = null;
    let earlier: Array<Promise<boolean>> | null = null; // other transactions' promises (none in practice)
    const issue = (p: Promise<boolean>) => {
      if (last !== null && p !== last) (earlier ??= []).push(last);
      last = p;
    };
    const { keys, values } = envelopes;
    for (let i = 0; i < keys.length; i++) {
      const value = values[i]!;
      issue(value === null ? this.envelopes.remove(keys[i]!) : this.envelopes.put(keys[i]!, value));
    }
    const meta = batch.meta ?? [];
    for (let i = 0; i < meta.length; i++) issue(this.meta.put(suffixed(prefix, meta[i]![0]), number(meta[i]![1])));
    const clock = batch.clock;
    if (clock.length > 0) {
      let issued = this.clockIssued.get(dataset);
      if (issued === undefined) this.clockIssued.set(dataset, (issued = new Map()));
      for (let i = 0; i < clock.length; i++) {
        const [source, version] = clock[i]!;
        let have = issued.get(source);
        if (have === undefined) {
          const stored = this.clock.get(suffixed(prefix, source));
          have = stored === undefined ? -1 : this.numberIn(stored);
        }
        if (version > have) {
          issue(this.clock.put(suffixed(prefix, source), number(version)));
          issued.set(source, version);
        } else {
          issued.set(source, have);
        }
      }
    }
    if (last === null) return Promise.resolve();
    if (earlier === null && last === this.lastWrite) return this.lastSettled!;
    const settled = this.settle(earlier === null ? [last] : [...earlier, last]);
    this.inflight.add(settled);
    const untrack = () => void this.inflight.delete(settled);
    settled.then(untrack, untrack);
    if (earlier === null) {
      this.lastWrite = last;
      this.lastSettled = settled;
    }
    return settled;
  }

  /** Waits for the store's writes, closes LMDB, seals the data file, releases the lock. Later
   *  `load`/`commit` calls reject with StoreError; closing again returns the same promise. A
   *  commit made by a microtask queued before close() still lands (a model commits what it
   *  applied in a turn at its end: `model.set(k, v); store.close()` stores the write). */
  close(): Promise<void> {
    this.closing ??= this.closeNow();
    return this.closing;
  }

  private async closeNow(): Promise<void> {
    await Promise.resolve(); // the microtasks queued before close() run first
    this.shut = true;
    try {
      await Promise.allSettled([...this.inflight]);
      await this.root.close(); // lmdb-js waits for its outstanding writes and flushes
      if (this.failure === null) writeSeal(this.path, { state: 'closed', ...(await digestFile(join(this.path, DATA_FILE))) });
    } finally {
      releaseLock(this.path, this.lockToken);
    }
  }

  /** The key prefix of a dataset (cached; a store holds few datasets). */
  private prefix(dataset: string): Buffer {
    let p = this.prefixes.get(dataset);
    if (p === undefined) {
      if (this.prefixes.size >= 1024) this.prefixes.clear();
      this.prefixes.set(dataset, (p = text(dataset)));
    }
    return p;
  }

  /** Carries a format-1 store forward: its hash keys are format 2's hash-keyed form, so only the
   *  format record changes (in one write transaction, before any other write). */
  private migrate(record: Record<string, unknown>): void {
    const next = { ...record, format: LMDB_STORE_FORMAT, migrated: { from: record.format, at: new Date().toISOString(), signet: packageVersion() } };
    this.root.transactionSync(() => this.openDb('signet', false).put(FORMAT_KEY, Buffer.from(JSON.stringify(next))));
  }

  /** Resolves once every write promise resolved (and flushed in 'flush' mode); a failed
   *  transaction poisons the store. */
  private async settle(pending: Array<Promise<boolean> & { flushed?: Promise<unknown> }>): Promise<void> {
    try {
      await Promise.all(pending);
      if (this.durability === 'flush') await Promise.all(pending.map((p) => p.flushed ?? this.root.flushed));
    } catch (err) {
      this.failure ??= err;
      throw new StoreError(`signet store ${this.path}: a write transaction failed (${(err as Error).message}); nothing of this batch was stored. Close and reopen the store`, { cause: err });
    }
  }

  private openDbs(create: boolean): [Db, Db, Db] {
    return [this.openDb('envelopes', create), this.openDb('clock', create), this.openDb('meta', create)];
  }

  private openDb(name: string, create: boolean): Db {
    let db: Db | undefined;
    let cause: unknown;
    try {
      const dbOptions = { name, create, encoding: 'binary' as const, keyEncoding: 'binary' as const };
      db = this.root.openDB<Uint8Array, Buffer>(dbOptions); // undefined when not found
    } catch (err) {
      cause = err;
    }
    if (db) return db;
    const why = cause ? ` (${(cause as Error).message})` : '';
    if (name === 'signet') throw notSignet(this.path, `an LMDB environment without the signet format record${why}`, cause);
    throw damaged(this.path, `its sub-database ${name} is missing${why}`, cause);
  }

  private readFormat(): unknown {
    const raw = this.openDb('signet', false).get(FORMAT_KEY);
    if (raw === undefined) throw notSignet(this.path, 'an LMDB environment without the signet format record');
    try {
      return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(raw));
    } catch (err) {
      throw damaged(this.path, 'its format record is not JSON', err);
    }
  }

  private textAt(key: Uint8Array, at: number): string {
    const s = readText(key, at);
    if (s === null) throw damaged(this.path, `a key of ${key.length} bytes does not decode`);
    return s;
  }

  private numberIn(value: Uint8Array): number {
    const n = readNumber(value);
    if (n === null) throw damaged(this.path, `a number record is ${value.length} bytes, not 8`);
    return n;
  }

  private assertOpen(): void {
    if (this.shut) throw new StoreError(`signet store ${this.path} is closed`);
    if (this.failure !== null) throw new StoreError(`signet store ${this.path}: an earlier write transaction failed; close and reopen the store`, { cause: this.failure });
  }
}
