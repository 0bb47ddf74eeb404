// The updates a dataset holds (what its store holds: the model's live updates plus evidence),
// indexed by source and version. It answers the questions the receive pipeline asks of an update
// below its source's clock (do we hold it? do we hold another at its version?), it is the set
// reconciliation compares with a peer's, and it says which sources still hold anything (the
// others are forgotten, so memory and digests follow what is held, not what was ever seen).
import { holdCompact, holdFresh, releaseHeld, sameHash, type Update } from '../envelope/update.ts';
import type { NodeId } from '../identity/node-id.ts';
import { compareUpdates } from './order.ts';

/** Out-of-order arrivals a source buffers before they are merged into its sorted arrays: at
 *  least this many, else an eighth of what it holds (so a merge costs O(1) amortised). */
const MIN_LATE = 256;
/** Removed slots a source tolerates before it closes the gaps: at least this many, else half. */
const MIN_GAPS = 64;

/**
 * The held updates of one source, by version. Memory matters (a model holds one per key): the
 * versions sit in a Float64Array beside an array of the updates, sorted, 16 bytes an update
 * (a Map would cost a ~30-byte entry plus a 16-byte heap number for a version past the Smi
 * range). A source's updates arrive oldest first (history, live writes, a store's replay), so
 * they append; an update that arrives below what is held (repair, reconciliation) waits in a
 * small map until enough have come to merge them in one pass. A removed update leaves a gap
 * (its version stays, the slot is undefined) until gaps are many.
 */
export class SourceHeld {
  private versions = new Float64Array(4);
  private readonly updates: Array<Update | undefined> = [];
  private gaps = 0;
  /** Arrivals below the last held version, not merged yet: version -> update(s). */
  private late: Map<number, Update | Update[]> | undefined;
  private lateCount = 0;
  /** Updates held. */
  size = 0;

  /** Adds an update. @returns false if it is held already. */
  add(update: Update): boolean {
    const v = update.version;
    const n = this.updates.length;
    if (n > 0 && v < this.versions[n - 1]!) {
      if (this.at(v).some((u) => sameHash(u, update))) return false;
      this.late ??= new Map();
      const at = this.late.get(v);
      this.late.set(v, at === undefined ? update : Array.isArray(at) ? [...at, update] : [at, update]);
      this.lateCount++;
      this.size++;
      if (this.lateCount > Math.max(MIN_LATE, this.size >> 3)) this.merge();
      return true;
    }
    for (let i = n - 1; i >= 0 && this.versions[i] === v; i--) {
      const u = this.updates[i];
      if (u !== undefined && sameHash(u, update)) return false;
    }
    this.push(v, update);
    this.size++;
    return true;
  }

  private push(v: number, update: Update | undefined): void {
    const n = this.updates.length;
    if (n === this.versions.length) {
      const grown = new Float64Array(n + (n >> 1) + 16);
      grown.set(this.versions);
      this.versions = grown;
    }
    this.versions[n] = v;
    this.updates.push(update);
  }

  /** Removes an update (by hash). @returns false if it was not held. */
  remove(update: Update): boolean {
    const v = update.version;
    const late = this.late?.get(v);
    if (late !== undefined) {
      const list = Array.isArray(late) ? late : [late];
      const i = list.findIndex((u) => sameHash(u, update));
      if (i >= 0) {
        const rest = list.filter((_, j) => j !== i);
        if (rest.length === 0) this.late!.delete(v);
        else this.late!.set(v, rest.length === 1 ? rest[0]! : rest);
        this.lateCount--;
        this.size--;
        return true;
      }
    }
    for (let i = this.lowerBound(v); i < this.updates.length && this.versions[i] === v; i++) {
      const u = this.updates[i];
      if (u !== undefined && sameHash(u, update)) {
        this.updates[i] = undefined;
        this.gaps++;
        this.size--;
        if (this.gaps > Math.max(MIN_GAPS, this.updates.length >> 1)) this.merge();
        return true;
      }
    }
    return false;
  }

  /** Held updates at `version` (more than one only after equivocation). */
  at(version: number): Update[] {
    const out: Update[] = [];
    for (let i = this.lowerBound(version); i < this.updates.length && this.versions[i] === version; i++) {
      const u = this.updates[i];
      if (u !== undefined) out.push(u);
    }
    const late = this.late?.get(version);
    if (late !== undefined) out.push(...(Array.isArray(late) ? late : [late]));
    return out;
  }

  /** True if this very update (same hash) is held. Asked of every arrival: allocates nothing. */
  has(update: Update): boolean {
    const version = update.version;
    for (let i = this.lowerBound(version); i < this.updates.length && this.versions[i] === version; i++) {
      const u = this.updates[i];
      if (u !== undefined && sameHash(u, update)) return true;
    }
    const late = this.late?.get(version);
    if (late === undefined) return false;
    return Array.isArray(late) ? late.some((u) => sameHash(u, update)) : sameHash(late, update);
  }

  /** True if an update other than `update` (by hash) is held at `version`. */
  holdsOtherAt(version: number, update: Update): boolean {
    for (let i = this.lowerBound(version); i < this.updates.length && this.versions[i] === version; i++) {
      const u = this.updates[i];
      if (u !== undefined && !sameHash(u, update)) return true;
    }
    const late = this.late?.get(version);
    if (late === undefined) return false;
    return Array.isArray(late) ? late.some((u) => !sameHash(u, update)) : !sameHash(late, update);
  }

  /** Appends every held update to `out`, in no particular order (no iterator object per update:
   *  a reconciliation session collects every held update as it opens). */
  collectInto(out: Update[]): void {
    const updates = this.updates;
    for (let i = 0; i < updates.length; i++) {
      const u = updates[i];
      if (u !== undefined) out.push(u);
    }
    if (this.late === undefined) return;
    for (const at of this.late.values()) {
      if (Array.isArray(at)) for (const u of at) out.push(u);
      else out.push(at);
    }
  }

  /** Every held update, in no particular order. */
  *[Symbol.iterator](): IterableIterator<Update> {
    for (const u of this.updates) if (u !== undefined) yield u;
    for (const at of this.late?.values() ?? []) {
      if (Array.isArray(at)) yield* at;
      else yield at;
    }
  }

  /** Index of the first slot at or above `version`. */
  private lowerBound(version: number): number {
    let lo = 0;
    let hi = this.updates.length;
    const versions = this.versions;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (versions[mid]! < version) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Closes the gaps and merges the late arrivals in: one sorted pass. */
  private merge(): void {
    const all: Update[] = [...this];
    all.sort((a, b) => a.version - b.version);
    this.versions = new Float64Array(all.length + (all.length >> 3) + 16);
    this.updates.length = 0;
    for (const u of all) this.push(u.version, u);
    this.gaps = 0;
    this.late = undefined;
    this.lateCount = 0;
  }
}

export class HeldSet {
  private readonly bySource = new Map<NodeId, SourceHeld>();
  private count = 0;
  /** The held updates sorted by the total order, built on demand and kept until the set changes. */
  private sorted: Update[] | null = null;

  /** Updates held. */
  get size(): number {
    return this.count;
  }

  /** Sources with at least one update held. */
  get sources(): IterableIterator<NodeId> {
    return this.bySource.keys();
  }

  /** Adds an update (no-op if held). A held update is compacted in due course (see holdCompact),
   *  or, with `fresh`, left fresh for the caller to back or compact (see holdFresh); it is let go
   *  by {@link remove}. @returns false if it was held already. */
  add(update: Update, fresh = false): boolean {
    let held = this.bySource.get(update.source);
    if (!held) this.bySource.set(update.source, (held = new SourceHeld()));
    if (!held.add(update)) return false;
    if (fresh) holdFresh(update);
    else holdCompact(update);
    this.count++;
    this.sorted = null;
    return true;
  }

  /** Removes an update. @returns true if the source holds nothing any more. */
  remove(update: Update): boolean {
    const held = this.bySource.get(update.source);
    if (!held || !held.remove(update)) return false;
    releaseHeld(update);
    this.count--;
    this.sorted = null;
    if (held.size > 0) return false;
    this.bySource.delete(update.source);
    return true;
  }

  /** True if this very update (same hash) is held. */
  has(update: Update): boolean {
    return this.bySource.get(update.source)?.has(update) ?? false;
  }

  /** Held updates of `source` at `version` (more than one only after equivocation). */
  at(source: NodeId, version: number): readonly Update[] {
    return this.bySource.get(source)?.at(version) ?? [];
  }

  /** True if an update other than `update` (by hash) is held at `source` and `version`. */
  holdsOtherAt(source: NodeId, version: number, update: Update): boolean {
    return this.bySource.get(source)?.holdsOtherAt(version, update) ?? false;
  }

  /** True if `source` has an update held. */
  holdsSource(source: NodeId): boolean {
    return this.bySource.has(source);
  }

  /** Every held update in the total order (version, source, hash). The array is shared until the
   *  set next changes: do not modify it. O(n log n) after a change, O(1) otherwise. */
  inOrder(): readonly Update[] {
    if (this.sorted) return this.sorted;
    const out: Update[] = [];
    for (const held of this.bySource.values()) held.collectInto(out);
    this.sorted = out.sort(compareUpdates);
    return out;
  }
}
