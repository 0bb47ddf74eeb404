// The items reconciled and their one total order, (version, source, hash), the order of
// compareUpdates in core/order.ts; bounds (cut points in that order) and the sorted snapshot.

import { isNodeId, NODE_ID_LENGTH } from '../identity/node-id.ts';
import { assertBytes, compareBytes } from '../util/bytes.ts';

/** What reconciliation needs of an update (an `Update` is one). Its identity is `hash`. */
export interface ReconcileItem {
  /** Per-source version: a safe integer >= 0. */
  readonly version: number;
  /** The source's node id (52 base32 characters, so ASCII). */
  readonly source: string;
  /** SHA-256 of the signed update: 32 bytes, unique per update. */
  readonly hash: Uint8Array;
  /** Optional: writes `hash` into `out` at `at` without making an array. A session reads every
   *  item's hash once or twice when it opens; a held `Update` makes a new array on each read of
   *  `hash`, and provides this instead. An item that has it is trusted to write 32 bytes. */
  copyHash?(out: Uint8Array, at: number): void;
}

/** Writes `item.hash` into `out` at `at`, through {@link ReconcileItem.copyHash} where it has it. */
export function copyItemHash(item: ReconcileItem, out: Uint8Array, at: number): void {
  if (item.copyHash !== undefined) item.copyHash(out, at);
  else out.set(item.hash, at);
}

/** Bytes of an item's key after its version: the source's 52 ASCII characters, then the hash.
 *  Byte order of this key is the order of (source, hash), because every source has the same
 *  length and JavaScript compares ASCII strings by code unit. */
export const KEY_BYTES = NODE_ID_LENGTH + 32;

/** Same order as compareUpdates (core/order.ts): version, then source, then hash. */
export function compareItems(a: ReconcileItem, b: ReconcileItem): number {
  if (a.version !== b.version) return a.version - b.version;
  if (a.source !== b.source) return a.source < b.source ? -1 : 1;
  return compareBytes(a.hash, b.hash);
}

/** Byte `i` of an item's key (source characters, then hash bytes). */
export function keyByte(item: ReconcileItem, i: number): number {
  return i < NODE_ID_LENGTH ? item.source.charCodeAt(i) : item.hash[i - NODE_ID_LENGTH]!;
}

/** Byte `i` of the key of an item whose source is `source` and hash `hash` (read once: an
 *  item's `hash` may be made on each read). */
const keyByteOf = (source: string, hash: Uint8Array, i: number): number =>
  i < NODE_ID_LENGTH ? source.charCodeAt(i) : hash[i - NODE_ID_LENGTH]!;

/**
 * A cut point in the order: every item is either below it or at/above it. `prefix` is a prefix
 * of an item key, read as padded with zero bytes to KEY_BYTES (as Negentropy does), so an item
 * is at/above the bound when its version is higher, or equal with a key whose first
 * `prefix.length` bytes are >= `prefix`. `version` Infinity is the bound above every item.
 */
export interface Bound {
  readonly version: number;
  readonly prefix: Uint8Array;
}

const EMPTY = new Uint8Array(0);
/** The lowest bound: no item is below it. */
export const MIN_BOUND: Bound = Object.freeze({ version: 0, prefix: EMPTY });
/** The bound above every item. */
export const INFINITY_BOUND: Bound = Object.freeze({ version: Infinity, prefix: EMPTY });

/** Negative if `item` is below `bound`, otherwise >= 0. */
export function compareToBound(item: ReconcileItem, bound: Bound): number {
  if (item.version !== bound.version) return item.version < bound.version ? -1 : 1;
  const prefix = bound.prefix;
  const hash = prefix.length > NODE_ID_LENGTH ? item.hash : EMPTY;
  for (let i = 0; i < prefix.length; i++) {
    const d = keyByteOf(item.source, hash, i) - prefix[i]!;
    if (d !== 0) return d;
  }
  return 0;
}

/** Order of two bounds (zero-padded prefixes compare as equal to their unpadded form). */
export function compareBounds(a: Bound, b: Bound): number {
  if (a.version !== b.version) return a.version < b.version ? -1 : 1;
  const n = Math.max(a.prefix.length, b.prefix.length);
  for (let i = 0; i < n; i++) {
    const d = (a.prefix[i] ?? 0) - (b.prefix[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** The shortest bound above `below` and at or below `above` (below < above): the version of
 *  `above` alone when the versions differ, else the key prefix one byte past the first
 *  difference. Its last byte is never zero. */
export function separatingBound(below: ReconcileItem, above: ReconcileItem): Bound {
  if (below.version !== above.version) return { version: above.version, prefix: EMPTY };
  const [a, b] = [below.hash, above.hash];
  let i = 0;
  while (i < KEY_BYTES - 1 && keyByteOf(below.source, a, i) === keyByteOf(above.source, b, i)) i++;
  const prefix = new Uint8Array(i + 1);
  for (let j = 0; j <= i; j++) prefix[j] = keyByteOf(above.source, b, j);
  return { version: above.version, prefix };
}

/**
 * The items of one session, sorted, fixed at its start (a snapshot: updates applied later are
 * reconciled by the next session).
 */
export class ItemSnapshot<T extends ReconcileItem> {
  readonly items: readonly T[];
  private readonly versions: Float64Array;

  /**
   * Copies `items` (sorting the copy unless already in order) and checks every item.
   * @throws TypeError / RangeError for a malformed item or the same item twice.
   */
  constructor(items: readonly T[]) {
    if (!Array.isArray(items)) throw new TypeError('"items" expected an array');
    const copy = items.slice();
    const sources = new Set<string>(); // checked once each: items share few sources
    let sorted = true;
    for (let i = 0; i < copy.length; i++) {
      checkItem(copy[i], i, sources);
      if (sorted && i > 0 && compareItems(copy[i - 1]!, copy[i]!) > 0) sorted = false;
    }
    if (!sorted) copy.sort(compareItems);
    this.versions = new Float64Array(copy.length);
    for (let i = 0; i < copy.length; i++) {
      if (i > 0 && compareItems(copy[i - 1]!, copy[i]!) === 0) throw new RangeError(`"items" holds the same item twice (index ${i})`);
      this.versions[i] = copy[i]!.version;
    }
    this.items = copy;
  }

  get size(): number {
    return this.items.length;
  }

  /** Index of the first item at/above `bound`, searching [from, size). */
  lowerBound(bound: Bound, from = 0): number {
    if (bound.version === Infinity) return this.items.length;
    let lo = from;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const v = this.versions[mid]!;
      const below = v !== bound.version ? v < bound.version : compareToBound(this.items[mid]!, bound) < 0;
      if (below) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

function checkItem(item: unknown, i: number, sources: Set<string>): asserts item is ReconcileItem {
  if (typeof item !== 'object' || item === null) throw new TypeError(`"items[${i}]" expected an object`);
  const { version, source } = item as ReconcileItem;
  if (!Number.isSafeInteger(version) || version < 0) throw new RangeError(`"items[${i}].version" expected a safe integer >= 0, got ${String(version)}`);
  if (!sources.has(source)) {
    if (!isNodeId(source)) throw new RangeError(`"items[${i}].source" expected a node id`);
    sources.add(source);
  }
  // An item that copies its hash out (an Update) holds one by construction: reading `hash`
  // would make an array per item.
  if (typeof (item as ReconcileItem).copyHash !== 'function') assertBytes((item as ReconcileItem).hash, `items[${i}].hash`, 32);
}
