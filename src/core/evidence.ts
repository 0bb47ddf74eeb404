// Equivocation evidence of one dataset: the pairs seen, the updates pinned because of them (never
// dropped from the store), the sources quarantined, and the recent superseded arrivals that let
// the two sides of an equivocation meet even when both lost last-writer-wins here.
import { compactUpdate, hashId, sameHash, type Update } from '../envelope/update.ts';
import type { NodeId } from '../identity/node-id.ts';
import { MAX_EVIDENCE_PER_SOURCE, RECENT_SUPERSEDED } from '../limits.ts';
import type { Equivocation } from './types.ts';

export class Evidence {
  readonly list: Equivocation[] = [];
  private readonly perSource = new Map<NodeId, number>();
  private readonly pinned = new Set<string>();
  private readonly quarantined = new Set<NodeId>();
  /** Superseded arrivals and let-go updates, by `source:version`, oldest first. */
  private readonly recent = new Map<string, Update>();

  /** @param quarantineAll the `quarantine` option: a source is refused after its first equivocation. */
  constructor(private readonly quarantineAll: boolean) {}

  /**
   * Records two updates with one source and version, up to MAX_EVIDENCE_PER_SOURCE per source
   * (reaching it quarantines the source, so minting equivocations costs bounded memory and time).
   * @returns the evidence, or null past the cap (nothing recorded, nothing pinned).
   */
  record(a: Update, b: Update): Equivocation | null {
    const count = (this.perSource.get(b.source) ?? 0) + 1;
    if (count > MAX_EVIDENCE_PER_SOURCE) return null;
    this.perSource.set(b.source, count);
    const ev: Equivocation = { source: b.source, version: b.version, updates: [a, b] };
    this.list.push(ev);
    this.pinned.add(hashId(a));
    this.pinned.add(hashId(b));
    if (this.quarantineAll || count === MAX_EVIDENCE_PER_SOURCE) this.quarantined.add(b.source);
    return ev;
  }

  /** True if the update is one side of recorded evidence (kept whatever the model does). */
  isPinned(update: Update): boolean {
    return this.pinned.size > 0 && this.pinned.has(hashId(update));
  }

  isQuarantined(source: NodeId): boolean {
    return this.quarantined.has(source);
  }

  /** Forgets every trace of an update this dataset's store lost (see Scuttlebutt.lost): its
   *  evidence records, its pin and its place among the recent superseded arrivals. A peer that
   *  still holds both sides of an equivocation shows it again. */
  forget(update: Update): void {
    const id = hashId(update);
    if (this.pinned.delete(id)) {
      for (let i = this.list.length - 1; i >= 0; i--) {
        const ev = this.list[i]!;
        if (ev.updates[0] !== update && ev.updates[1] !== update) continue;
        this.list.splice(i, 1);
        const other = ev.updates[0] === update ? ev.updates[1] : ev.updates[0];
        if (!this.list.some((e) => e.updates.includes(other))) this.pinned.delete(hashId(other));
        const count = (this.perSource.get(ev.source) ?? 1) - 1;
        if (count > 0) this.perSource.set(ev.source, count);
        else this.perSource.delete(ev.source);
      }
    }
    const at = `${update.source}:${update.version}`;
    if (this.recent.get(at) === update) this.recent.delete(at);
  }

  /** Remembers a superseded update (bounded by RECENT_SUPERSEDED, oldest forgotten first). */
  remember(update: Update): void {
    const at = `${update.source}:${update.version}`;
    // Kept until RECENT_SUPERSEDED others come: a record of its own, not a view that would keep
    // a shared chunk alive (a superseded arrival is still fresh; a compact or backed one stays so).
    compactUpdate(update);
    this.recent.delete(at);
    this.recent.set(at, update);
    if (this.recent.size > RECENT_SUPERSEDED) this.recent.delete(this.recent.keys().next().value!);
  }

  /** Takes the remembered superseded update at `update`'s source and version if it is another
   *  one (the other side of an equivocation); otherwise remembers `update` and returns undefined. */
  takeRival(update: Update): Update | undefined {
    const at = `${update.source}:${update.version}`;
    const rival = this.recent.get(at);
    if (!rival || sameHash(rival, update)) {
      this.remember(update);
      return undefined;
    }
    this.recent.delete(at);
    return rival;
  }
}
