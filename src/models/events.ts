// Events: a reliable, replicated event emitter (npm scuttlebutt `events`, telepathine's bus).
// emit(name, data, { ttl }) is signed and replayed to late joiners, and heard by nobody once it
// expires; history is bounded, shared fairly between sources; listeners take exact names or
// wildcard patterns.
import { MAX_TTL_MS } from '../limits.ts';
import { EventEmitter } from 'node:events';
import type { Update } from '../envelope/update.ts';
import { decodeScanned, readHead, skipScanned, type Value } from '../envelope/cbor.ts';
import type { NodeId } from '../identity/node-id.ts';
import { Scuttlebutt, type ScuttlebuttEvents, type ScuttlebuttOptions } from '../core/scuttlebutt.ts';
import { compareUpdates } from '../core/order.ts';
import { assertInteger } from '../util/bytes.ts';
import { assertValue, hasLoneSurrogate } from '../envelope/value.ts';
import { Heap } from './heap.ts';
import { isPattern, PatternSet } from './patterns.ts';

export { PATTERN_SEPARATOR } from './patterns.ts';

/** Default number of events kept for late joiners. Past it: the fullest source's oldest are compacted away. */
export const DEFAULT_MAX_HISTORY = 10_000;
/** Longest event name, and longest listener pattern (in UTF-16 code units). Past it: `emit` and
 *  `on` with a pattern throw RangeError; a received event is `bad-shape`. */
export const MAX_EVENT_NAME_LENGTH = 256;
/** Longest event ttl (ms): MAX_TTL_MS, as for a Model entry. */
export const MAX_EVENT_TTL_MS = MAX_TTL_MS;
/** Names the emitter itself uses; replicated events may not take them. */
export const RESERVED_EVENT_NAMES: ReadonlySet<string> = new Set([
  'update', 'invalid', 'old_data', 'deferred', 'equivocation', 'dispose', 'unstream', 'compaction', 'error', 'newListener', 'removeListener',
]);

/** Events options: the Scuttlebutt options plus the history bound. */
export interface EventsOptions extends ScuttlebuttOptions {
  /**
   * Events kept for late joiners, from all sources together (expired ones count like the
   * others, see {@link EmitOptions.ttl}). Default 10,000.
   * Past it, the source that holds the most retained events loses its oldest one (a tie goes
   * to the source whose oldest event is oldest in the total order), and `'compaction'` is
   * emitted with what was removed. A source that floods therefore evicts only its own events:
   * a source holding no more than its fair share (maxHistory / number of sources) keeps all of
   * them. The share is per source id, and ids cost nothing to mint: under `open()` or
   * `owner()` a writer with many identities (a Sybil) gets many shares and can still push
   * other sources out (with maxHistory identities, down to nothing). Only a policy that limits
   * who writes (`writers([...])`) bounds that.
   */
  maxHistory?: number;
}

/** Options for a replicated {@link Events.emit}: `emit(name, data, { ttl })`. */
export interface EmitOptions {
  /**
   * How long the event lives, in ms (1..MAX_EVENT_TTL_MS), counted from its version (the signed
   * µs timestamp of the write), so it expires at the same instant on every node. Once expired
   * it is delivered to no listener, here or on any node it reaches later (a late joiner hears
   * nothing of it). It is still held, replicated and reconciled like any event until the
   * history bound compacts it: which events a node keeps must depend only on which events it
   * received, never on when, or two nodes would keep different ones and offer each other the
   * difference forever.
   * Default: never expires. The ttl is signed inside the body (`['emit', name, data, ttl]`);
   * bodies without it (`['emit', name, data]`) are read as before.
   */
  ttl?: number;
}

/** A listener on a pattern (see {@link Events}): the event's data, the verified source's node id
 *  (the signer), the event's name, and the signed update. */
export type PatternListener = (data: Value, fromPeer: NodeId, name: string, update: Update) => void;

const emitLocal = EventEmitter.prototype.emit;

/** A name a replicated event may take. */
const validName = (name: unknown): name is string =>
  typeof name === 'string' && name.length > 0 && name.length <= MAX_EVENT_NAME_LENGTH && !RESERVED_EVENT_NAMES.has(name);
const validTtl = (ttl: unknown): boolean => Number.isSafeInteger(ttl) && (ttl as number) >= 1 && (ttl as number) <= MAX_EVENT_TTL_MS;

function nameOf(body: Value): string | null {
  if (!Array.isArray(body) || (body.length !== 3 && body.length !== 4) || body[0] !== 'emit') return null;
  if (body.length === 4 && !validTtl(body[3])) return null;
  return validName(body[1]) ? body[1] : null;
}

/** CBOR text "emit", after the body's array head (0x83: 3 items, 0x84: 4 with a ttl). */
const EMIT_TAG = Uint8Array.of(0x64, 0x65, 0x6d, 0x69, 0x74);
const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

/** An event body read from its bytes: ['emit', name, data] or ['emit', name, data, ttl]. */
interface EventBody {
  name: string;
  /** The data's extent in the body bytes. */
  dataStart: number;
  dataEnd: number;
  /** ms, or undefined: never expires. */
  ttl: number | undefined;
}

/** Reads an event body from its CBOR bytes (already accepted by the guard) without decoding the
 *  data; null if the shape is wrong (bad name, ttl not an integer in 1..MAX_EVENT_TTL_MS). */
function readEvent(bytes: Uint8Array): EventBody | null {
  const items = bytes[0] === 0x83 ? 3 : bytes[0] === 0x84 ? 4 : 0;
  if (items === 0 || !EMIT_TAG.every((b, i) => bytes[1 + i] === b)) return null;
  const at = 1 + EMIT_TAG.length;
  const h = readHead(bytes, at);
  if (h === null || h[0] !== 3) return null;
  const start = at + h[2];
  const name = utf8.decode(bytes.subarray(start, start + h[1]));
  if (!validName(name)) return null;
  const dataStart = start + h[1];
  if (items === 3) return { name, dataStart, dataEnd: bytes.length, ttl: undefined };
  const dataEnd = skipScanned(bytes, dataStart);
  const t = readHead(bytes, dataEnd);
  if (t === null || t[0] !== 0 || !validTtl(t[1])) return null;
  return { name, dataStart, dataEnd, ttl: t[1] };
}

/** When an event expires (µs), from its signed version and ttl; Infinity without a ttl. */
function expiryOf(update: Update, body: EventBody): number {
  return body.ttl === undefined ? Infinity : update.version + body.ttl * 1000;
}

/** One source's retained events, oldest (in the total order) on top; `index` is its place in
 *  the heap of sources. */
interface SourceLog {
  source: NodeId;
  events: Heap<Update>;
  index: number;
}

const olderFirst = (a: Update, b: Update): boolean => compareUpdates(a, b) < 0;
/** Store meta name prefix of a source's compaction floor. */
const COMPACTED_META = 'compacted:';
/** The source to evict from comes first: most events, then the oldest oldest-event. */
const fullerFirst = (a: SourceLog, b: SourceLog): boolean =>
  a.events.size !== b.events.size ? a.events.size > b.events.size : olderFirst(a.events.peek()!, b.events.peek()!);

/** The events an Events emitter emits: its own (typed), and every replicated event name with
 *  `(data, update)`. Replicated names are free-form, so they are not checked at compile time. */
export interface EventsEvents extends ScuttlebuttEvents {
  /** Events removed from the retained history (see `maxHistory`). */
  compaction: [removed: Update[]];
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- replicated data is typed by the listener
  [name: string]: any[];
}

/**
 * A replicated event emitter. `emit(name, data, { ttl })` signs and replicates; `on(name, fn)`
 * hears every event from every source, including history replayed when a stream connects.
 *
 * Listeners (telepathine's bus, EventEmitter2's wildcards): a name is split into segments at
 * `'.'` ({@link PATTERN_SEPARATOR}). A listener name with a segment that is exactly `*` (one
 * segment) or `**` (any number of segments, none included; `'**'` alone hears every event) is a
 * pattern: `events.on('alerts.*', (data, fromPeer, name, update) => ...)` hears `alerts.disk`
 * but not `alerts.disk.full` (`'alerts.**'` hears both, and `alerts` too), with `fromPeer` the
 * verified source's node id. Any other listener name is exact and hears `(data, update)` as
 * before. `once`, `off`/`removeListener` and `removeAllListeners` take patterns like names.
 * Patterns hear replicated events only (never `update`, `compaction`, ...). An event whose own
 * name contains a wildcard segment (`'a.*'`, emitted literally) reaches pattern listeners only.
 * Matching costs O(pattern segments x name length), with no backtracking; patterns are bounded
 * like names (MAX_EVENT_NAME_LENGTH).
 *
 * History is bounded by `maxHistory` and shared fairly between sources: when it is full, the
 * source with the most retained events loses its oldest one (ties: the source whose oldest
 * event is oldest in the total order of core/order.ts). One source emitting without pause
 * only replaces its own events; every other source keeps its newest events, at least a fair
 * share of the history each. Each eviction costs O(log n) (a heap of sources by count, a heap
 * of events per source), whoever controls the counts.
 *
 * Equivalently, the events kept are the `maxHistory` with the fewest newer events from their
 * own source (ties: the newest in the total order). So two nodes that received the same
 * events keep the same ones whatever the interleaving, as long as each source's events
 * arrived oldest first (as streams send them, and as a restart reloads them).
 *
 * Limit: the share is per source id. Under an open policy (`open()`, `owner()`) anyone can
 * mint identities, and a Sybil writing from many of them takes many shares and can still
 * evict other sources' events; restrict writers (`writers([...])`) where that matters.
 */
export class Events extends Scuttlebutt<EventsEvents> {
  private readonly logs = new Map<NodeId, SourceLog>();
  private readonly fullest = new Heap<SourceLog>(fullerFirst, (log, index) => {
    log.index = index;
  });
  private retained = 0;
  private readonly maxHistory: number;
  /** Per source, the newest version compacted away: an event at or below it that we do not hold
   *  may be one we let go, so it is refused as old, never delivered twice (persisted in the store
   *  as `compacted:<source>`). Trade-off: an event a relay withheld from us until its source's
   *  floor passed it is not recovered; history is bounded anyway. */
  private readonly compactedThrough = new Map<NodeId, number>();
  private floorsChanged: Array<[string, number]> = [];
  /** Patterns listened to (see the class). */
  private readonly patterns = new PatternSet((pattern) => EventEmitter.prototype.listenerCount.call(this, pattern));

  constructor(options: EventsOptions) {
    super(options);
    this.maxHistory = options.maxHistory ?? DEFAULT_MAX_HISTORY;
    assertInteger(this.maxHistory, 'maxHistory', 1, 1e9);
  }

  /** `e` and maxHistory (see Scuttlebutt): copies with different bounds keep different events. */
  override get replicationProfile(): string {
    return `e${this.maxHistory.toString(36)}`;
  }

  // ---- listeners: exact names and patterns ---------------------------------------------------

  /** Checks a listener name as it is added (by `on`, `once` or any other way): a pattern is
   *  recorded and bounded like a name; its listener gets `(data, fromPeer, name, update)`.
   *  @throws RangeError for a pattern longer than MAX_EVENT_NAME_LENGTH. */
  protected override listenTo(eventName: unknown): void {
    if (typeof eventName !== 'string' || !isPattern(eventName)) return;
    if (eventName.length > MAX_EVENT_NAME_LENGTH) {
      throw new RangeError(`"pattern" expected at most ${MAX_EVENT_NAME_LENGTH} characters, got length=${eventName.length}`);
    }
    this.patterns.track(eventName);
  }

  protected keyOf(body: Value): string | null {
    return nameOf(body);
  }

  protected override keyOfUpdate(update: Update): string | null {
    return readEvent(update.bodyBytes)?.name ?? null;
  }

  /**
   * Emits a replicated event: `emit(name, data, options?)` with {@link EmitOptions} (`ttl`).
   * Internal names (`update`, `invalid`, ... {@link RESERVED_EVENT_NAMES}) and symbols are
   * emitted locally only, with all their arguments, never signed or replicated.
   * @throws RangeError for an empty or over-long name or a ttl out of range; TypeError for data
   * CBOR cannot carry or options that are not an object; WriteError if disposed, still loading,
   * or the policy refuses this node.
   */
  override emit<K>(eventName: keyof EventsEvents | K, ...args: unknown[]): boolean {
    const name = eventName as unknown;
    if (typeof name === 'symbol') return emitLocal.call(this, name, ...args);
    if (typeof name !== 'string') throw new TypeError(`"name" expected a string, got ${typeof name}`);
    if (RESERVED_EVENT_NAMES.has(name)) return emitLocal.call(this, name, ...args);
    if (name.length === 0 || name.length > MAX_EVENT_NAME_LENGTH) {
      throw new RangeError(`"name" expected 1..${MAX_EVENT_NAME_LENGTH} characters`);
    }
    if (hasLoneSurrogate(name)) throw new TypeError('"name" has a lone surrogate (not valid Unicode)');
    const data = args[0] === undefined ? null : args[0];
    assertValue(data, 'data');
    const options = args[1];
    if (options !== undefined && (options === null || typeof options !== 'object')) {
      throw new TypeError(`"options" expected an object like { ttl }, got ${options === null ? 'null' : typeof options}`);
    }
    const ttl = (options as EmitOptions | undefined)?.ttl;
    if (ttl === undefined) {
      this.localUpdate(['emit', name, data]);
    } else {
      assertInteger(ttl, 'ttl', 1, MAX_EVENT_TTL_MS);
      this.localUpdate(['emit', name, data, ttl]);
    }
    return true;
  }

  /** Retained events `clock` lacks (expired ones too: nobody hears them), in the total order
   *  (oldest first). */
  history(clock?: ReadonlyMap<NodeId, number>): Update[] {
    const out: Update[] = [];
    for (const log of this.logs.values()) {
      const have = clock?.get(log.source) ?? 0;
      for (const u of log.events.items) if (u.version > have) out.push(u);
    }
    return out.sort(compareUpdates);
  }

  /** Keeps the event (expired or not); past maxHistory, evicts the fullest source's oldest (see
   *  the class). */
  applyUpdate(update: Update): boolean {
    if (readEvent(update.bodyBytes) === null) return false;
    let log = this.logs.get(update.source);
    if (log) {
      log.events.push(update);
      this.fullest.fix(log.index);
    } else {
      log = { source: update.source, events: new Heap<Update>(olderFirst), index: -1 };
      log.events.push(update);
      this.logs.set(update.source, log);
      this.fullest.push(log);
    }
    this.retained++;
    if (this.retained <= this.maxHistory) return true;
    const removed: Update[] = [];
    while (this.retained > this.maxHistory) removed.push(this.evictOne());
    for (const u of removed) this.dropUpdate(u); // same store batch as the put
    emitLocal.call(this, 'compaction', removed);
    return !removed.includes(update); // an old event of the fullest source may go at once
  }

  /** Removes the oldest event of the source holding the most. O(log n). */
  private evictOne(): Update {
    const log = this.fullest.peek()!;
    const oldest = log.events.pop()!;
    this.retained--;
    if (oldest.version > (this.compactedThrough.get(log.source) ?? 0)) {
      this.compactedThrough.set(log.source, oldest.version);
      this.floorsChanged.push([`${COMPACTED_META}${log.source}`, oldest.version]);
    }
    if (log.events.size === 0) {
      this.fullest.removeAt(log.index);
      this.logs.delete(log.source);
    } else {
      this.fullest.fix(log.index);
    }
    return oldest;
  }

  /** Old if it is at or below its source's compaction floor, or if the history is full and it
   *  would be the event evicted at once (its source's oldest, and that source the fullest). */
  protected override superseded(update: Update, _name: string): boolean {
    if (update.version <= (this.compactedThrough.get(update.source) ?? 0)) return true;
    if (this.retained < this.maxHistory) return false;
    const log = this.logs.get(update.source);
    if (log && !olderFirst(update, log.events.peek()!)) return false;
    const top = this.fullest.peek()!;
    if (top === log) return true;
    const size = (log?.events.size ?? 0) + 1;
    return size !== top.events.size ? size > top.events.size : olderFirst(update, top.events.peek()!);
  }

  protected override takeMeta(): Array<[string, number]> | undefined {
    if (this.floorsChanged.length === 0) return undefined;
    const out = this.floorsChanged;
    this.floorsChanged = [];
    return out;
  }

  protected override loadedMeta(meta: ReadonlyMap<string, number>): void {
    for (const [name, version] of meta) {
      if (!name.startsWith(COMPACTED_META)) continue;
      const source = name.slice(COMPACTED_META.length) as NodeId;
      this.compactedThrough.set(source, Math.max(version, this.compactedThrough.get(source) ?? 0));
    }
  }

  /** Delivers an applied event, unless it has expired (on every node alike): to exact-name listeners as
   *  `(data, update)` (unless the name is itself a pattern), then to each matching pattern's
   *  listeners as `(data, fromPeer, name, update)`. The data is decoded only if someone listens. */
  protected override announced(update: Update): void {
    const body = readEvent(update.bodyBytes);
    if (body === null || expiryOf(update, body) <= this.now()) return;
    const name = body.name;
    const exact = !isPattern(name) && EventEmitter.prototype.listenerCount.call(this, name) > 0;
    const patterns = this.patterns.matching(name);
    if (!exact && patterns.length === 0) return;
    const data = decodeScanned(update.bodyBytes.subarray(body.dataStart, body.dataEnd));
    if (exact) emitLocal.call(this, name, data, update);
    for (const pattern of patterns) emitLocal.call(this, pattern, data, update.source, name, update);
  }
}
