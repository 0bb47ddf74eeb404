// Model: a last-writer-wins map (or one merged by a custom resolve rule) replicated by signed
// updates. Keys are strings held in a Map (prototype names are ordinary keys); TTL entries
// expire on every node alike; optionally every version of a key is kept (plasmid's history).
import { MAX_TTL_MS } from '../limits.ts';
import { createHash } from 'node:crypto';
import { on } from 'node:events';
import { bodyHead, hashId, type Update } from '../envelope/update.ts';
import { decodeScanned, encodeCbor, type Value } from '../envelope/cbor.ts';
import { isNodeId, NODE_ID_LENGTH, type NodeId } from '../identity/node-id.ts';
import { Scuttlebutt, type ScuttlebuttEvents, type ScuttlebuttOptions } from '../core/scuttlebutt.ts';
import { compareUpdates } from '../core/order.ts';
import { assertInteger } from '../util/bytes.ts';
import { assertValue, hasLoneSurrogate } from '../envelope/value.ts';
import { MAX_KEY_LENGTH, bodyOf, expiryOf, plainValueStart, readBody, type Body } from './body.ts';
import { pickWinner, versionRecord, type ResolveFn, type VersionRecord } from './resolve.ts';

export { MAX_KEY_LENGTH };
/** Default time a tombstone is kept before it is collected: 7 days. */
export const DEFAULT_TOMBSTONE_HORIZON_MS = 7 * 24 * 3600 * 1000;
/** Most versions of one key a Model with `keepVersions` keeps (the ceiling of `maxVersions`, and
 *  its default). Past it, the oldest version that is not the key's winner is dropped. */
export const MAX_KEPT_VERSIONS = 64;

/** Model options: the Scuttlebutt options plus tombstone collection, version history and merge rule. */
export interface ModelOptions extends ScuttlebuttOptions {
  /** How long (ms) a delete's tombstone (or an expired TTL entry, from its expiry) is kept before {@link Model.purge} collects it. Default 7 days. */
  tombstoneHorizonMs?: number;
  /**
   * Keep every version of each key (plasmid's full history), not only the winner: read them with
   * {@link Model.versions}. Bounded per key by `maxVersions`. Kept versions are stored, reloaded,
   * and offered by `history(clock)`, so a replica that keeps versions too receives the older
   * ones (those above its clock for their source); a replica that does not keep them drops them
   * as superseded. They are not part of the reconciled set (only each key's winner is), so
   * models with and without this option reconcile the same set. Default false.
   */
  keepVersions?: boolean;
  /** With `keepVersions`: versions kept per key, the winner included, 1..MAX_KEPT_VERSIONS. Default MAX_KEPT_VERSIONS. */
  maxVersions?: number;
  /**
   * A custom merge rule (simple-scuttle's `resolve`): `resolve(current, incoming)` returns the
   * version of a key that wins, by a strict total order of your choosing; see {@link ResolveFn}
   * for what the arguments are and the obligations convergence rests on. Every decision is
   * asked both ways round and a disagreement throws ResolveError: from `set`/`delete`, from
   * loading a store, and as `'error'` for an update from a peer (which is then not applied).
   * It decides between tombstones and TTL entries too (an expired entry still holds its key).
   * So with a rule, tombstones and expired entries are never collected ({@link Model.purge}
   * keeps them, and they stay in the reconciled set): the horizon is a version rule, and under
   * a rule that is not by version a write newer than a purged winner could still lose to it
   * on a node that had not purged, so nodes would disagree about it. Memory stays one entry
   * per key that was ever written.
   * Default: last-writer-wins by (version, source, hash).
   */
  resolve?: ResolveFn;
}

/** Options for {@link Model.set}. */
export interface SetOptions {
  /** Time to live in milliseconds (1..MAX_TTL_MS, about 49.7 days), counted from the write's
   *  version (its signed timestamp). */
  ttl?: number;
}

/** One change to the map, as delivered by `'change'` and {@link Model.changes}. */
export interface Change {
  key: string;
  /** The new value; undefined for a delete. */
  value: Value | undefined;
  update: Update;
}

/** A held key that is a tombstone, expires, or keeps versions: its winning update, and where
 *  the value sits in the update's body bytes (decoded when read). */
class Entry {
  constructor(
    readonly update: Update,
    readonly deleted: boolean,
    /** µs; Infinity if no TTL. */
    readonly expiresAt: number,
    readonly valueStart: number,
    readonly valueEnd: number,
    /** With keepVersions: every kept version, the winner included, in the total order (oldest first). */
    readonly versions: Update[] | undefined,
  ) {}
}

/**
 * What the model holds for a key. A plain write (a `set` without ttl, no kept versions: the
 * common case) is held as its update alone, live and never expiring, its value located in
 * its body when read: a model of a million keys saves a million Entry objects.
 */
type Held = Update | Entry;

const entryOf = (update: Update, body: Body, versions: Update[] | undefined): Held =>
  versions === undefined && body.op === 'set' && body.ttl === undefined
    ? update
    : new Entry(update, body.op === 'del', expiryOf(update, body), body.valueStart, body.valueEnd, versions);

/** The key's winning update. */
const winnerOf = (e: Held): Update => (e instanceof Entry ? e.update : e);
/** Every version held for the key (the winner only without keepVersions). */
const versionsOf = (e: Held): Update[] => (e instanceof Entry ? (e.versions ?? [e.update]) : [e]);
/** Not deleted and not expired by `now`. */
const isLive = (e: Held, now: number): boolean => !(e instanceof Entry) || (!e.deleted && e.expiresAt > now);

/** True for the per-key event names, `change:<key>` and `peer-change:<key>`. */
const isKeyedEvent = (name: unknown): boolean => typeof name === 'string' && (name.startsWith('change:') || name.startsWith('peer-change:'));

/** `<peer id>/<key>` split into [peer id, key], or null for a key outside any owner namespace. */
function ownerOf(key: string): [NodeId, string] | null {
  if (key.length <= NODE_ID_LENGTH + 1 || key[NODE_ID_LENGTH] !== '/') return null;
  const id = key.slice(0, NODE_ID_LENGTH);
  return isNodeId(id) ? [id, key.slice(NODE_ID_LENGTH + 1)] : null;
}

/** The events a Model emits, typed: a misspelt name does not compile. */
export interface ModelEvents extends ScuttlebuttEvents {
  /** A key changed (set, delete), reported once durable. */
  change: [change: Change];
  /** `change:<key>`: the key's new value (undefined for a delete) and the update. */
  [key: `change:${string}`]: [value: Value | undefined, update: Update];
  /** `peer-change:<key>`: an owner-scoped key `<peerId>/<key>` changed, whichever peer's
   *  namespace it is in (telepathine's per-peer state): the new value (undefined for a delete),
   *  the namespace's peer id, and the change. See {@link Model.getFrom}. */
  [key: `peer-change:${string}`]: [value: Value | undefined, peerId: NodeId, change: Change];
}

/**
 * A last-writer-wins map: `set`, `get`, `delete` (a signed tombstone), TTL keys; optionally a
 * custom merge rule (`resolve`) and every version of each key (`keepVersions`, `versions(key)`).
 *
 * Per-peer state (telepathine): under the `owner()` policy each peer writes its own namespace
 * `<peer id>/<key>`. {@link getFrom} reads one peer's key, {@link keysOf} lists a peer's keys,
 * and `model.on('peer-change:<key>', (value, peerId, change) => ...)` watches one key across
 * every peer's namespace (whoever wrote it: under `open()` any writer may write any namespace;
 * `change.update.source` is the signer). The name cannot collide with `'change:<full key>'`.
 */
export class Model extends Scuttlebutt<ModelEvents> {
  private readonly entries_ = new Map<string, Held>();
  private readonly tombstoneHorizonMicros: number;
  /** The newest version this model has purged (see {@link purge}); persisted with the store. */
  private purgeFloor = 0;
  private readonly resolve: ResolveFn | undefined;
  /** Versions kept per key (1 without keepVersions: the winner only). */
  private readonly maxVersions: number;
  /** Held keys in each peer's namespace `<peer id>/`, by peer id (for {@link keysOf}). */
  private readonly byOwner = new Map<NodeId, Set<string>>();
  /** Set for good once anything listens to a per-key event (`change:<key>`, `peer-change:<key>`):
   *  only then does a change look its key's listeners up (two names built per change, each
   *  interned by the lookup: measured 1.7-1.9% of the CPU of both sides of a live feed). */
  private keyedListeners = false;

  constructor(options: ModelOptions) {
    super(options);
    const horizon = options.tombstoneHorizonMs ?? DEFAULT_TOMBSTONE_HORIZON_MS;
    assertInteger(horizon, 'tombstoneHorizonMs', 0, Number.MAX_SAFE_INTEGER / 1000);
    this.tombstoneHorizonMicros = horizon * 1000;
    if (options.resolve !== undefined && typeof options.resolve !== 'function') throw new TypeError('"resolve" expected a function (current, incoming) => winner');
    this.resolve = options.resolve;
    if (options.keepVersions !== undefined && typeof options.keepVersions !== 'boolean') throw new TypeError('"keepVersions" expected a boolean');
    if (options.maxVersions !== undefined && options.keepVersions !== true) throw new TypeError('"maxVersions" needs keepVersions: true');
    this.maxVersions = options.keepVersions ? (options.maxVersions ?? MAX_KEPT_VERSIONS) : 1;
    assertInteger(this.maxVersions, 'maxVersions', 1, MAX_KEPT_VERSIONS);
  }

  /** `m`, the tombstone horizon, kept versions and the merge rule's name (see Scuttlebutt):
   *  copies that differ in any would hold different sets of updates. */
  override get replicationProfile(): string {
    const horizon = `t${(this.tombstoneHorizonMicros / 1000).toString(36)}`;
    const versions = this.maxVersions > 1 ? `v${this.maxVersions}` : '';
    const rule = this.resolve ? `r${createHash('sha256').update(this.resolve.name || 'anonymous').digest('hex').slice(0, 8)}` : '';
    return `m${horizon}${versions}${rule}`;
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
    return bodyOf(update)?.key ?? null;
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
      assertInteger(options.ttl, 'ttl', 1, MAX_TTL_MS);
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

  /** Live keys, in no particular order (no value is decoded or read). */
  keys(): string[] {
    const now = this.now();
    const out: string[] = [];
    for (const [k, e] of this.entries_) if (isLive(e, now)) out.push(k);
    return out;
  }

  /** Live [key, value] pairs. */
  entries(): Array<[string, Value]> {
    const now = this.now();
    const out: Array<[string, Value]> = [];
    for (const [k, e] of this.entries_) if (isLive(e, now)) out.push([k, valueOf(e)!]);
    return out;
  }

  /** Live entries as a plain object (prototype names become own properties, never a prototype). */
  toJSON(): Record<string, Value> {
    return Object.fromEntries(this.entries());
  }

  /** The update that currently holds `key` (including tombstones and expired entries not yet purged). */
  updateOf(key: string): Update | undefined {
    const e = this.entries_.get(key);
    return e && winnerOf(e);
  }

  /**
   * What peer `peerId` published under `key`: the live value of `<peerId>/<key>` (the owner
   * namespace), or undefined.
   * @throws TypeError / RangeError unless `peerId` is a node id and `key` a valid key.
   */
  getFrom(peerId: NodeId, key: string): Value | undefined {
    return this.get(scoped(peerId, key));
  }

  /** The live keys peer `peerId` published (under `<peerId>/`), without the prefix, in no
   *  particular order. @throws TypeError / RangeError unless `peerId` is a node id. */
  keysOf(peerId: NodeId): string[] {
    checkPeerId(peerId);
    const out: string[] = [];
    for (const key of this.byOwner.get(peerId) ?? []) if (this.live(key)) out.push(key.slice(NODE_ID_LENGTH + 1));
    return out;
  }

  /**
   * The versions of `key` this model holds, oldest first in the total order (version, source,
   * hash): every kept one with `keepVersions` (at most maxVersions, tombstones and expired
   * writes included), else only the winner. Empty if the key is not held.
   */
  versions(key: string): VersionRecord[] {
    const e = this.entries_.get(key);
    return e ? versionsOf(e).map(versionRecord) : [];
  }

  private live(key: string): Held | undefined {
    const e = this.entries_.get(key);
    return e && isLive(e, this.now()) ? e : undefined;
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

  /** The winning update per key (tombstones included), or every kept version with
   *  keepVersions, that `clock` lacks, plus both updates of every equivocation seen (so the
   *  evidence is passed on), oldest first. */
  history(clock?: ReadonlyMap<NodeId, number>): Update[] {
    const out: Update[] = [];
    const seen = new Set<string>(); // hashes, for the versions that may also be evidence
    const keep = (u: Update) => {
      if (u.version > (clock?.get(u.source) ?? 0) && !seen.has(hashId(u))) {
        seen.add(hashId(u));
        out.push(u);
      }
    };
    const evidence = this.equivocations();
    for (const e of this.entries_.values()) {
      if (e instanceof Entry || evidence.length > 0) {
        for (const u of versionsOf(e)) keep(u);
      } else if (e.version > (clock?.get(e.source) ?? 0)) {
        out.push(e); // a plain write is its key's only update: no duplicates
      }
    }
    // The update that lost an equivocation holds no key, but a peer must see both to know.
    for (const ev of evidence) for (const u of ev.updates) keep(u);
    return out.sort(compareUpdates);
  }

  /** Applies a verified write: it takes its key if it wins (last-writer-wins, or `resolve`);
   *  with keepVersions it is kept among the key's versions either way, within the bound.
   *  @throws ResolveError (before changing anything) if `resolve` breaks its contract. */
  applyUpdate(update: Update): boolean {
    const body = bodyOf(update);
    if (body === null) return false;
    const key = body.key;
    const current = this.entries_.get(key);
    if (!current) {
      this.entries_.set(key, entryOf(update, body, this.maxVersions > 1 ? [update] : undefined));
      const owner = ownerOf(key);
      if (owner) {
        let keys = this.byOwner.get(owner[0]);
        if (!keys) this.byOwner.set(owner[0], (keys = new Set()));
        keys.add(key);
      }
      return true;
    }
    const wins = this.beats(update, current);
    const kept = current instanceof Entry ? current.versions : undefined;
    if (kept) {
      kept.splice(insertionPoint(kept, update), 0, update);
      const winner = wins ? update : winnerOf(current);
      while (kept.length > this.maxVersions) this.dropUpdate(kept.splice(kept[0] === winner ? 1 : 0, 1)[0]!);
    } else {
      this.dropUpdate(wins ? winnerOf(current) : update); // the loser: nothing to keep
    }
    if (!wins) return false;
    this.entries_.set(key, entryOf(update, body, kept));
    return true;
  }

  /** True if `update` takes its key from `current`: by `resolve`, else by the total order.
   *  @throws ResolveError if `resolve` breaks its contract. */
  private beats(update: Update, current: Held): boolean {
    if (!this.resolve) return compareUpdates(update, winnerOf(current)) > 0;
    const incoming = versionRecord(update);
    return pickWinner(this.resolve, versionRecord(winnerOf(current)), incoming) === incoming;
  }

  protected override announced(update: Update, changed: boolean): void {
    if (!changed) return;
    // The value is decoded only for someone who listens (a replica applying a large sync
    // with no change listeners decodes nothing).
    const all = this.listenerCount('change') > 0;
    if (!all && !this.keyedListeners) return;
    const body = bodyOf(update)!;
    const perKey = this.keyedListeners ? (`change:${body.key}` as const) : undefined;
    const owner = this.keyedListeners ? ownerOf(body.key) : null;
    if (!all && (perKey === undefined || this.listenerCount(perKey) === 0) && (owner === null || this.listenerCount(`peer-change:${owner[1]}`) === 0)) return;
    const value = body.op === 'set' ? decodeScanned(update.bodyBytes.subarray(body.valueStart, body.valueEnd)) : undefined;
    const change: Change = { key: body.key, value, update };
    this.emit('change', change);
    // Asked again: a 'change' listener may have just listened to this key.
    if (!this.keyedListeners) return;
    this.emit(perKey ?? `change:${body.key}`, change.value, update);
    const peer = owner ?? ownerOf(body.key);
    if (peer) this.emit(`peer-change:${peer[1]}`, change.value, peer[0], change);
  }

  // ---- listeners: per-key events are looked up only once something listens to one ----------

  protected override listenTo(eventName: unknown): void {
    if (!this.keyedListeners && isKeyedEvent(eventName)) this.keyedListeners = true;
  }

  /**
   * Forgets tombstones and expired TTL entries once they are older than the tombstone horizon
   * (a tombstone from its version, an expired entry from its expiry). Reads do not depend on
   * it (expired entries already read as absent); it frees memory and storage.
   * Policy: an expired entry is kept as long as a tombstone, because it still beats older
   * writes to its key; forgotten at once, an older write that arrived later would come back
   * on this node only, and replicas would diverge.
   * With a custom `resolve` rule it collects nothing (see ModelOptions.resolve).
   * @returns the number of updates removed (with keepVersions, every version of each key).
   */
  purge(): number {
    // With a custom rule nothing is collected (see ModelOptions.resolve).
    if (this.resolve) return 0;
    const now = this.now();
    const horizon = this.tombstoneHorizonMicros;
    const gone: Update[] = [];
    const floor = this.purgeFloor;
    for (const [k, e] of this.entries_) {
      if (!(e instanceof Entry)) continue; // a plain write neither expires nor is a tombstone
      if (e.expiresAt + horizon <= now || (e.deleted && e.update.version + horizon <= now)) {
        this.entries_.delete(k);
        const owner = ownerOf(k);
        if (owner) this.forgetOwned(owner[0], k);
        // Every kept version goes with the key (with a custom rule, some may be newer than the winner).
        for (const u of e.versions ?? [e.update]) {
          gone.push(u);
          this.purgeFloor = Math.max(this.purgeFloor, u.version);
        }
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
    const key = bodyOf(update)?.key;
    return key !== undefined && !this.entries_.has(key);
  }

  private forgetOwned(owner: NodeId, key: string): void {
    const keys = this.byOwner.get(owner);
    keys?.delete(key);
    if (keys?.size === 0) this.byOwner.delete(owner);
  }

  /**
   * A write that loses to what its key holds (last-writer-wins, or `resolve`) is old wherever it
   * comes from, unless keepVersions would keep it (the key holds fewer than maxVersions, or it is
   * newer than the oldest version that could go). `resolve` may run here before verification,
   * only to find that the update loses; if the rule breaks its contract the update goes on to
   * verification, and applyUpdate reports the error.
   */
  protected override superseded(update: Update, key: string): boolean {
    const current = this.entries_.get(key);
    if (current === undefined) return false;
    try {
      if (this.beats(update, current)) return false;
    } catch {
      return false;
    }
    const kept = current instanceof Entry ? current.versions : undefined;
    if (!kept) return true;
    if (kept.length < this.maxVersions) return false;
    const oldest = kept[0] === winnerOf(current) ? kept[1] : kept[0];
    return oldest === undefined || compareUpdates(update, oldest) < 0;
  }

  /** A lost update is only ever a backed one: a plain write, its key's whole entry (see
   *  readsBodyOf). Its key is found by identity, since its body is what was lost. */
  protected override forgetUpdates(updates: ReadonlySet<Update>): void {
    for (const [k, e] of this.entries_) {
      if (e instanceof Entry || !updates.has(e)) continue;
      this.entries_.delete(k);
      const owner = ownerOf(k);
      if (owner) this.forgetOwned(owner[0], k);
    }
  }

  /** Only a plain write (['set', key, value]) under last-writer-wins with one version per key is
   *  never read by this model's bookkeeping (forgettable, purge, superseded): every other update
   *  keeps its envelope in memory (see Scuttlebutt.readsBodyOf). A `resolve` rule reads the
   *  winner's value for every arrival at its key, before that arrival's signature is checked. */
  protected override readsBodyOf(update: Update): boolean {
    return this.maxVersions > 1 || this.resolve !== undefined || bodyHead(update) !== 0x83;
  }

  /** Tombstones and expired entries past the horizon leave the reconciled set when they become
   *  due for {@link purge}, not when this node happens to purge, so nodes that purged and nodes
   *  that have not agree on it (see Scuttlebutt.reconcileSet). With keepVersions, a kept version
   *  that is not its key's winner is not reconciled either: models with and without the option
   *  reconcile the same set (the winners), and never offer each other older versions forever. */
  protected override forgettable(update: Update, now: number): boolean {
    // A plain write (['set', key, value], a 3-element array) is never due to be forgotten while
    // it is its key's only version: known from its first byte, without reading the body (this
    // runs over every held update when a reconciliation session opens).
    if (this.maxVersions === 1 && bodyHead(update) === 0x83) return false;
    const body = bodyOf(update);
    if (body === null) return false;
    if (this.maxVersions > 1) {
      const e = this.entries_.get(body.key);
      if (!e || winnerOf(e) !== update) return true;
    }
    if (this.resolve) return false; // never purged (see ModelOptions.resolve)
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
      if (e instanceof Entry && e.expiresAt <= now) continue;
      h.update(`${k.length}:${k}`).update(winnerOf(e).hash);
    }
    return h.digest('hex');
  }
}

/** The entry's value, decoded from its update's bytes; undefined for a tombstone. */
function valueOf(e: Held): Value | undefined {
  if (e instanceof Entry) return e.deleted ? undefined : decodeScanned(e.update.bodyBytes.subarray(e.valueStart, e.valueEnd));
  const bytes = e.bodyBytes; // a plain write: ['set', key, value], read when it was applied
  return decodeScanned(bytes.subarray(plainValueStart(bytes)));
}

/** Where `update` goes in `kept` (sorted by the total order). */
function insertionPoint(kept: readonly Update[], update: Update): number {
  let lo = 0;
  let hi = kept.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (compareUpdates(kept[mid]!, update) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function checkPeerId(peerId: unknown): asserts peerId is NodeId {
  if (typeof peerId !== 'string') throw new TypeError(`"peerId" expected a node id string, got ${typeof peerId}`);
  if (!isNodeId(peerId)) throw new RangeError(`"peerId" expected a node id (52 base32 characters), got length=${(peerId as string).length}`);
}

/** The owner-namespace key `<peerId>/<key>`, checked. */
function scoped(peerId: NodeId, key: string): string {
  checkPeerId(peerId);
  if (typeof key !== 'string') throw new TypeError(`"key" expected string, got ${typeof key}`);
  const full = `${peerId}/${key}`;
  checkKey(full);
  return full;
}

function checkKey(key: unknown): asserts key is string {
  if (typeof key !== 'string') throw new TypeError(`"key" expected string, got ${typeof key}`);
  if (key.length > MAX_KEY_LENGTH) throw new RangeError(`"key" expected at most ${MAX_KEY_LENGTH} characters, got length=${key.length}`);
  if (hasLoneSurrogate(key)) throw new TypeError('"key" has a lone surrogate (not valid Unicode: it would be stored under another key)');
}
