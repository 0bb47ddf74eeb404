// Events: a reliable, replicated event emitter (npm scuttlebutt `events`). emit(name, data)
// is signed and replayed to late joiners; history is bounded, shared fairly between sources.
import { EventEmitter } from 'node:events';
import type { Update } from '../envelope/update.ts';
import { decodeScanned, readHead, type Value } from '../envelope/cbor.ts';
import type { NodeId } from '../identity/node-id.ts';
import { Scuttlebutt, type ScuttlebuttEvents, type ScuttlebuttOptions } from '../core/scuttlebutt.ts';
import { compareUpdates } from '../core/order.ts';
import { assertInteger } from '../util/bytes.ts';
import { assertValue, hasLoneSurrogate } from '../envelope/value.ts';

/** Default number of events kept for late joiners. Past it: the fullest source's oldest are compacted away. */
export const DEFAULT_MAX_HISTORY = 10_000;
/** Longest event name. */
export const MAX_EVENT_NAME_LENGTH = 256;
/** Names the emitter itself uses; replicated events may not take them. */
export const RESERVED_EVENT_NAMES: ReadonlySet<string> = new Set([
  'update', 'invalid', 'old_data', 'equivocation', 'dispose', 'unstream', 'compaction', 'error', 'newListener', 'removeListener',
]);

/** Events options: the Scuttlebutt options plus the history bound. */
export interface EventsOptions extends ScuttlebuttOptions {
  /**
   * Events kept for late joiners, from all sources together. Default 10,000.
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

const emitLocal = EventEmitter.prototype.emit;

function nameOf(body: Value): string | null {
  if (!Array.isArray(body) || body.length !== 3 || body[0] !== 'emit') return null;
  const name = body[1];
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_EVENT_NAME_LENGTH || RESERVED_EVENT_NAMES.has(name)) return null;
  return name;
}

/** CBOR of ['emit', ...: a 3-element array head and the text "emit". */
const EMIT_PREFIX = Uint8Array.of(0x83, 0x64, 0x65, 0x6d, 0x69, 0x74);
const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

/** Reads an event body's name from its CBOR bytes (already accepted by the guard) without
 *  decoding the data: [name, where the data starts], or null if the shape is wrong. */
function readName(bytes: Uint8Array): [string, number] | null {
  if (!EMIT_PREFIX.every((b, i) => bytes[i] === b)) return null;
  const h = readHead(bytes, EMIT_PREFIX.length);
  if (h === null || h[0] !== 3) return null;
  const start = EMIT_PREFIX.length + h[2];
  const name = utf8.decode(bytes.subarray(start, start + h[1]));
  return nameOf(['emit', name, null]) === null ? null : [name, start + h[1]];
}

/** A binary heap: `before(a, b)` is true when `a` must come out first. `moved` is told every
 *  item's new index, so a caller can {@link fix} an item whose priority changed. */
class Heap<T> {
  readonly items: T[] = [];
  constructor(private readonly before: (a: T, b: T) => boolean, private readonly moved: (item: T, index: number) => void = () => {}) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    this.items.push(item);
    this.up(this.items.length - 1);
  }

  pop(): T | undefined {
    return this.items.length === 0 ? undefined : this.removeAt(0);
  }

  removeAt(index: number): T {
    const items = this.items;
    const out = items[index]!;
    const last = items.pop()!;
    if (index < items.length) {
      items[index] = last;
      this.fix(index);
    }
    return out;
  }

  /** Restores the heap after the item at `index` changed priority (either way). */
  fix(index: number): void {
    this.down(this.up(index));
  }

  private up(i: number): number {
    const items = this.items;
    const item = items[i]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(item, items[parent]!)) break;
      this.place(items[parent]!, i);
      i = parent;
    }
    this.place(item, i);
    return i;
  }

  private down(i: number): void {
    const items = this.items;
    const item = items[i]!;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= items.length) break;
      if (child + 1 < items.length && this.before(items[child + 1]!, items[child]!)) child++;
      if (!this.before(items[child]!, item)) break;
      this.place(items[child]!, i);
      i = child;
    }
    this.place(item, i);
  }

  private place(item: T, index: number): void {
    this.items[index] = item;
    this.moved(item, index);
  }
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

/**
 * A replicated event emitter. `emit(name, data)` signs and replicates; `on(name, fn)` hears
 * every event from every source, including history replayed when a stream connects.
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
/** The events an Events emitter emits: its own (typed), and every replicated event name with
 *  `(data, update)`. Replicated names are free-form, so they are not checked at compile time. */
export interface EventsEvents extends ScuttlebuttEvents {
  /** Events removed from the retained history (see `maxHistory`). */
  compaction: [removed: Update[]];
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- replicated data is typed by the listener
  [name: string]: any[];
}

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

  constructor(options: EventsOptions) {
    super(options);
    this.maxHistory = options.maxHistory ?? DEFAULT_MAX_HISTORY;
    assertInteger(this.maxHistory, 'maxHistory', 1, 1e9);
  }

  protected keyOf(body: Value): string | null {
    return nameOf(body);
  }

  protected override keyOfUpdate(update: Update): string | null {
    return readName(update.bodyBytes)?.[0] ?? null;
  }

  /**
   * Emits a replicated event. Internal names (`update`, `invalid`, ... {@link RESERVED_EVENT_NAMES})
   * and symbols are emitted locally only, never signed or replicated.
   * @throws RangeError for an empty or over-long name; TypeError for data CBOR cannot carry;
   * WriteError if disposed, still loading, or the policy refuses this node.
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
    this.localUpdate(['emit', name, data]);
    return true;
  }

  /** Retained events `clock` lacks, in the total order (oldest first). */
  history(clock?: ReadonlyMap<NodeId, number>): Update[] {
    const out: Update[] = [];
    for (const log of this.logs.values()) {
      const have = clock?.get(log.source) ?? 0;
      for (const u of log.events.items) if (u.version > have) out.push(u);
    }
    return out.sort(compareUpdates);
  }

  /** Keeps the event; past maxHistory, evicts the fullest source's oldest (see the class). */
  applyUpdate(update: Update): boolean {
    if (readName(update.bodyBytes) === null) return false;
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

  protected override announced(update: Update): void {
    const [name, dataStart] = readName(update.bodyBytes)!;
    emitLocal.call(this, name, decodeScanned(update.bodyBytes.subarray(dataStart)), update);
  }
}
