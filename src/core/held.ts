// The updates a dataset holds (what its store holds: the model's live updates plus evidence),
// indexed by source and version. It answers the questions the receive pipeline asks of an update
// below its source's clock (do we hold it? do we hold another at its version?), it is the set
// reconciliation compares with a peer's, and it says which sources still hold anything (the
// others are forgotten, so memory and digests follow what is held, not what was ever seen).
import type { Update } from '../envelope/update.ts';
import type { NodeId } from '../identity/node-id.ts';
import { compareUpdates } from './order.ts';

/** Held updates of one source: version -> the update (or, after equivocation, several). */
type SourceHeld = Map<number, Update | Update[]>;

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

  /** Adds an update (no-op if held). */
  add(update: Update): void {
    let versions = this.bySource.get(update.source);
    if (!versions) this.bySource.set(update.source, (versions = new Map()));
    const at = versions.get(update.version);
    if (at === undefined) versions.set(update.version, update);
    else if (Array.isArray(at)) {
      if (at.some((u) => u.hashHex === update.hashHex)) return;
      at.push(update);
    } else {
      if (at.hashHex === update.hashHex) return;
      versions.set(update.version, [at, update]);
    }
    this.count++;
    this.sorted = null;
  }

  /** Removes an update. @returns true if the source holds nothing any more. */
  remove(update: Update): boolean {
    const versions = this.bySource.get(update.source);
    const at = versions?.get(update.version);
    if (!versions || at === undefined) return false;
    if (Array.isArray(at)) {
      const i = at.findIndex((u) => u.hashHex === update.hashHex);
      if (i < 0) return false;
      at.splice(i, 1);
      if (at.length === 1) versions.set(update.version, at[0]!);
    } else {
      if (at.hashHex !== update.hashHex) return false;
      versions.delete(update.version);
    }
    this.count--;
    this.sorted = null;
    if (versions.size > 0) return false;
    this.bySource.delete(update.source);
    return true;
  }

  /** True if this very update (same hash) is held. */
  has(update: Update): boolean {
    return this.at(update.source, update.version).some((u) => u.hashHex === update.hashHex);
  }

  /** Held updates of `source` at `version` (more than one only after equivocation). */
  at(source: NodeId, version: number): readonly Update[] {
    const at = this.bySource.get(source)?.get(version);
    return at === undefined ? [] : Array.isArray(at) ? at : [at];
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
    for (const versions of this.bySource.values()) {
      for (const at of versions.values()) {
        if (Array.isArray(at)) out.push(...at);
        else out.push(at);
      }
    }
    this.sorted = out.sort(compareUpdates);
    return out;
  }
}
