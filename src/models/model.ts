// Model: a last-writer-wins map replicated by signed updates. Keys are strings held in a
// Map (prototype names are ordinary keys); TTL entries expire on every node alike.
import { createHash } from 'node:crypto';
import { on } from 'node:events';
import type { Update } from '../envelope/update.ts';
import { decodeScanned, encodeCbor, readHead, skipScanned, type Value } from '../envelope/cbor.ts';
import type { NodeId } from '../identity/node-id.ts';
import { Scuttlebutt, type ScuttlebuttEvents, type ScuttlebuttOptions } from '../core/scuttlebutt.ts';
import { compareUpdates, hashKey } from '../core/order.ts';
import { assertInteger } from '../util/bytes.ts';
import { assertValue, hasLoneSurrogate } from '../envelope/value.ts';

/** Longest key, in UTF-16 code units. Past it: local writes throw, received updates are `bad-shape`. */
export const MAX_KEY_LENGTH = 1024;
/** Default time a tombstone is kept before it is collected: 7 days. */
export const DEFAULT_TOMBSTONE_HORIZON_MS = 7 * 24 * 3600 * 1000;

/** Model options: the Scuttlebutt options plus tombstone collection. */
export interface ModelOptions extends ScuttlebuttOptions {
  /** How long (ms) a delete's tombstone (or an expired TTL entry, from its expiry) is kept before {@link Model.purge} collects it. Default 7 days. */
  tombstoneHorizonMs?: number;
}

/** Options for {@link Model.set}. */
export interface SetOptions {
  /** Time to live in milliseconds, counted from the write's version (its signed timestamp). */
  ttl?: number;
}

/** One change to the map, as delivered by `'change'` and {@link Model.changes}. */
export interface Change {
  key: string;
  /** The new value; undefined for a delete. */
  value: Value | undefined;
  update: Update;
}

/** A held key: its winning update, and where the value sits in the update's body bytes. The
 *  value is decoded when read, so a held entry costs its wire bytes plus this small record. */
interface Entry {
  update: Update;
  deleted: boolean;
  /** µs; Infinity if no TTL. */
  expiresAt: number;
  valueStart: number;
  valueEnd: number;
}

/** A model body read from its bytes: ['set', key, value, ttl?] or ['del', key]. */
interface Body {
  op: 'set' | 'del';
  key: string;
  ttl: number | undefined;
  /** The value's extent in the body bytes (empty for a delete). */
  valueStart: number;
  valueEnd: number;
}

/** CBOR text "set" and "del": a body's first item, compared as bytes. */
const OPS: ReadonlyArray<['set' | 'del', Uint8Array]> = [['set', Uint8Array.of(0x63, 0x73, 0x65, 0x74)], ['del', Uint8Array.of(0x63, 0x64, 0x65, 0x6c)]];
const utf8 = new TextDecoder('utf-8', { ignoreBOM: true }); // a leading U+FEFF is part of the key

/** Reads the body's shape from its CBOR bytes (already accepted by the guard) without decoding
 *  the value: a peer's value is never materialised until the application reads it. */
function readBody(bytes: Uint8Array): Body | null {
  const top = readHead(bytes, 0);
  if (top === null || top[0] !== 4 || top[2] !== 1) return null;
  const op = OPS.find(([, tag]) => tag.every((b, i) => bytes[1 + i] === b))?.[0];
  if (op === undefined || (op === 'del' ? top[1] !== 2 : top[1] !== 3 && top[1] !== 4)) return null;
  const k = readHead(bytes, 5);
  if (k === null || k[0] !== 3) return null;
  const keyStart = 5 + k[2];
  const key = utf8.decode(bytes.subarray(keyStart, keyStart + k[1]));
  if (key.length > MAX_KEY_LENGTH) return null;
  const valueStart = keyStart + k[1];
  if (op === 'del') return { op, key, ttl: undefined, valueStart, valueEnd: valueStart };
  const valueEnd = skipScanned(bytes, valueStart);
  if (top[1] === 3) return { op, key, ttl: undefined, valueStart, valueEnd };
  const ttl = readHead(bytes, valueEnd);
  if (ttl === null || ttl[0] !== 0 || ttl[1] < 1) return null;
  return { op, key, ttl: ttl[1], valueStart, valueEnd };
}

/** The events a Model emits, typed: a misspelt name does not compile. */
export interface ModelEvents extends ScuttlebuttEvents {
  /** A key changed (set, delete), reported once durable. */
  change: [change: Change];
  /** `change:<key>`: the key's new value (undefined for a delete) and the update. */
  [key: `change:${string}`]: [value: Value | undefined, update: Update];
}

/** A last-writer-wins map: `set`, `get`, `delete` (a signed tombstone), TTL keys. */
export class Model extends Scuttlebutt<ModelEvents> {
  private readonly entries_ = new Map<string, Entry>();
  private readonly tombstoneHorizonMicros: number;
  /** The newest version this model has purged (see {@link purge}); persisted with the store. */
  private purgeFloor = 0;

  constructor(options: ModelOptions) {
    super(options);
    const horizon = options.tombstoneHorizonMs ?? DEFAULT_TOMBSTONE_HORIZON_MS;
    assertInteger(horizon, 'tombstoneHorizonMs', 0, Number.MAX_SAFE_INTEGER / 1000);
    this.tombstoneHorizonMicros = horizon * 1000;
  }

  protected keyOf(body: Value): string | null {
    // For bodies already decoded; the pipeline uses keyOfUpdate, which reads the bytes.
    try {
      return readBody(encodeCbor(body))?.key ?? null;
    } catch {
      return null;
    }
  }

  protected override keyOfUpdate(update: Update): string | null {
    return readBody(update.bodyBytes)?.key ?? null;
  }

  /**
   * Sets `key` to `value` (any CBOR-able plain data), signed and replicated.
   * @throws TypeError for a non-string key or a value CBOR cannot carry; RangeError past a
   * limit; WriteError if the dataset's policy forbids this node to write `key`.
   */
  set(key: string, value: unknown, options?: SetOptions): Update {
    checkKey(key);
    if (value === undefined) throw new TypeError('"value" must not be undefined; use delete(key)');
    assertValue(value, 'value');
    if (options?.ttl !== undefined) {
      assertInteger(options.ttl, 'ttl', 1, Number.MAX_SAFE_INTEGER / 1000);
      return this.localUpdate(['set', key, value, options.ttl]);
    }
    return this.localUpdate(['set', key, value]);
  }

  /** Deletes `key` with a signed tombstone (replicated like a write). */
  delete(key: string): Update {
    checkKey(key);
    return this.localUpdate(['del', key]);
  }

  /** The live value of `key`, or undefined if absent, deleted or expired. */
  get(key: string): Value | undefined {
    const e = this.live(key);
    return e && valueOf(e);
  }

  has(key: string): boolean {
    return this.live(key) !== undefined;
  }

  /** Live keys, in no particular order. */
  keys(): string[] {
    return this.entries().map(([k]) => k);
  }

  /** Live [key, value] pairs. */
  entries(): Array<[string, Value]> {
    const now = this.now();
    const out: Array<[string, Value]> = [];
    for (const [k, e] of this.entries_) if (!e.deleted && e.expiresAt > now) out.push([k, valueOf(e)!]);
    return out;
  }

  /** Live entries as a plain object (prototype names become own properties, never a prototype). */
  toJSON(): Record<string, Value> {
    return Object.fromEntries(this.entries());
  }

  /** The update that currently holds `key` (including tombstones and expired entries not yet purged). */
  updateOf(key: string): Update | undefined {
    return this.entries_.get(key)?.update;
  }

  private live(key: string): Entry | undefined {
    const e = this.entries_.get(key);
    return e && !e.deleted && e.expiresAt > this.now() ? e : undefined;
  }

  /** Async iterator of changes, from now on. Ends when `signal` aborts or the model is disposed. */
  async *changes(options?: { signal?: AbortSignal }): AsyncGenerator<Change> {
    const stop = new AbortController();
    const onDispose = () => stop.abort();
    this.once('dispose', onDispose);
    const signal = options?.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
    try {
      for await (const [change] of on(this, 'change', { signal })) yield change as Change;
    } catch (err) {
      if ((err as Error).name !== 'AbortError') throw err;
    } finally {
      this.off('dispose', onDispose);
    }
  }

  /** Newest update per key (tombstones included) that `clock` lacks, plus both updates of
   *  every equivocation seen (so the evidence is passed on), oldest first. */
  history(clock?: ReadonlyMap<NodeId, number>): Update[] {
    const out = new Map<string, Update>();
    for (const e of this.entries_.values()) {
      if (e.update.version > (clock?.get(e.update.source) ?? 0)) out.set(hashKey(e.update), e.update);
    }
    // The update that lost an equivocation holds no key, but a peer must see both to know.
    for (const ev of this.equivocations()) {
      for (const u of ev.updates) if (u.version > (clock?.get(u.source) ?? 0)) out.set(hashKey(u), u);
    }
    return [...out.values()].sort(compareUpdates);
  }

  applyUpdate(update: Update): boolean {
    const body = readBody(update.bodyBytes);
    if (body === null) return false;
    const key = body.key;
    const current = this.entries_.get(key);
    if (current && compareUpdates(update, current.update) <= 0) {
      this.dropUpdate(update); // lost last-writer-wins: nothing to keep
      return false;
    }
    if (current) this.dropUpdate(current.update);
    this.entries_.set(key, {
      update,
      deleted: body.op === 'del',
      expiresAt: body.ttl === undefined ? Infinity : update.version + body.ttl * 1000,
      valueStart: body.valueStart,
      valueEnd: body.valueEnd,
    });
    return true;
  }

  protected override announced(update: Update, changed: boolean): void {
    if (!changed) return;
    const body = readBody(update.bodyBytes)!;
    const perKey = `change:${body.key}` as const;
    // The value is decoded only for someone who listens (a replica applying a large sync
    // with no change listeners decodes nothing).
    if (this.listenerCount('change') === 0 && this.listenerCount(perKey) === 0) return;
    const value = body.op === 'set' ? decodeScanned(update.bodyBytes.subarray(body.valueStart, body.valueEnd)) : undefined;
    const change: Change = { key: body.key, value, update };
    this.emit('change', change);
    this.emit(perKey, change.value, update);
  }

  /**
   * Forgets tombstones and expired TTL entries once they are older than the tombstone horizon
   * (a tombstone from its version, an expired entry from its expiry). Reads do not depend on
   * it (expired entries already read as absent); it frees memory and storage.
   * Policy: an expired entry is kept as long as a tombstone, because it still beats older
   * writes to its key; forgotten at once, an older write that arrived later would come back
   * on this node only, and replicas would diverge.
   * @returns the number of entries removed.
   */
  purge(): number {
    const now = this.now();
    const horizon = this.tombstoneHorizonMicros;
    const gone: Update[] = [];
    const floor = this.purgeFloor;
    for (const [k, e] of this.entries_) {
      if (e.expiresAt + horizon <= now || (e.deleted && e.update.version + horizon <= now)) {
        this.entries_.delete(k);
        gone.push(e.update);
        this.purgeFloor = Math.max(this.purgeFloor, e.update.version);
      }
    }
    this.dropStored(gone, this.purgeFloor > floor ? [['purgeFloor', this.purgeFloor]] : undefined);
    return gone.length;
  }

  /** The newest version this model has purged: a write at or below it for a key not held is
   *  refused as stale (see {@link isStale}). 0 until the first purge. */
  get purgedThrough(): number {
    return this.purgeFloor;
  }

  /**
   * The tombstone-horizon rule (as Cassandra's gc grace): once this model has purged a
   * tombstone or expired entry of version P, a received write of version <= P for a key it
   * does not hold is refused as old: a node that still held the tombstone would drop it by
   * last-writer-wins, and one that purged it would otherwise revive the key, splitting
   * replicas for good. The clock does not move, nothing is charged. Trade-off: a write older
   * than P that never reached this node before its purge is refused here for good; nodes that
   * were offline longer than the horizon must resync from a node that was not.
   */
  protected override isStale(update: Update): boolean {
    if (update.version > this.purgeFloor) return false;
    const key = readBody(update.bodyBytes)?.key;
    return key !== undefined && !this.entries_.has(key);
  }

  /** A write that loses last-writer-wins to what its key holds is old wherever it comes from. */
  protected override superseded(update: Update, key: string): boolean {
    const current = this.entries_.get(key);
    return current !== undefined && compareUpdates(update, current.update) < 0;
  }

  /** Tombstones and expired entries past the horizon leave the reconciled set when they become
   *  due for {@link purge}, not when this node happens to purge, so nodes that purged and nodes
   *  that have not agree on it (see Scuttlebutt.reconcileSet). */
  protected override forgettable(update: Update, now: number): boolean {
    const body = readBody(update.bodyBytes);
    if (body === null) return false;
    const horizon = this.tombstoneHorizonMicros;
    if (body.op === 'del') return update.version + horizon <= now;
    return body.ttl !== undefined && update.version + body.ttl * 1000 + horizon <= now;
  }

  protected override loadedMeta(meta: ReadonlyMap<string, number>): void {
    this.purgeFloor = meta.get('purgeFloor') ?? 0;
  }

  /** SHA-256 over every held entry (key, update hash) not expired now, in key order: equal
   *  on two models exactly when they hold the same state. */
  stateHash(): string {
    const now = this.now();
    const h = createHash('sha256');
    const keys = [...this.entries_.keys()].sort();
    for (const k of keys) {
      const e = this.entries_.get(k)!;
      if (e.expiresAt <= now) continue;
      h.update(`${k.length}:${k}`).update(e.update.hash);
    }
    return h.digest('hex');
  }
}

/** The entry's value, decoded from its update's bytes; undefined for a tombstone. */
function valueOf(e: Entry): Value | undefined {
  return e.deleted ? undefined : decodeScanned(e.update.bodyBytes.subarray(e.valueStart, e.valueEnd));
}

function checkKey(key: unknown): asserts key is string {
  if (typeof key !== 'string') throw new TypeError(`"key" expected string, got ${typeof key}`);
  if (key.length > MAX_KEY_LENGTH) throw new RangeError(`"key" expected at most ${MAX_KEY_LENGTH} characters, got length=${key.length}`);
  if (hasLoneSurrogate(key)) throw new TypeError('"key" has a lone surrogate (not valid Unicode: it would be stored under another key)');
}
