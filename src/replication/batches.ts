// History order: which owed updates go first when more is owed than fits in a batch. 'depth'
// (scuttle-depth) sends the sources the peer is furthest behind on first, each as one run;
// 'breadth' takes one update from each source in turn. Either way each source's updates go
// oldest first, cut into batches no larger than the MTU, so a stream cut at any point leaves
// the peer a prefix of every source, never a gap.
import type { Update } from '../envelope/update.ts';
import type { NodeId } from '../identity/node-id.ts';

/**
 * Which sources go first when more history is owed than fits in a batch (plasmid's ordering):
 * - `'depth'`: the sources the peer is furthest behind on (most updates owed) first, all of one
 *   source before the next (scuttle-depth, from the scuttlebutt paper); the peer catches up
 *   fully on the deepest sources first;
 * - `'breadth'`: round-robin, one update of each source in turn (deepest source first in each
 *   round), so every source makes progress with every batch.
 */
export type HistoryOrdering = 'depth' | 'breadth';

/** The orderings {@link historyBatches} knows. */
export const HISTORY_ORDERINGS: readonly HistoryOrdering[] = ['depth', 'breadth'];

/** Owed updates grouped by source, each group in ascending version, deepest group first (ties
 *  by source id, so that two nodes owing the same updates send them in the same order). */
function groupsDeepestFirst(owed: readonly Update[]): Update[][] {
  const bySource = new Map<NodeId, Update[]>();
  for (const u of owed) {
    let list = bySource.get(u.source);
    if (!list) bySource.set(u.source, (list = []));
    list.push(u);
  }
  const groups = [...bySource.values()];
  for (const g of groups) g.sort((a, b) => a.version - b.version);
  groups.sort((a, b) => b.length - a.length || (a[0]!.source < b[0]!.source ? -1 : 1));
  return groups;
}

/** Groups owed updates by source, deepest first, each source in ascending version. */
export function scuttleDepthOrder(owed: readonly Update[]): Update[] {
  return groupsDeepestFirst(owed).flat();
}

/** Round-robin over sources (deepest first in each round), each source in ascending version. */
export function breadthOrder(owed: readonly Update[]): Update[] {
  // Groups are deepest first, so the ones still going in round i are a prefix: O(owed) in all.
  const groups = groupsDeepestFirst(owed);
  const out: Update[] = [];
  let live = groups.length;
  for (let i = 0; live > 0; i++) {
    for (let j = 0; j < live; j++) out.push(groups[j]![i]!);
    while (live > 0 && groups[live - 1]!.length <= i + 1) live--;
  }
  return out;
}

/** Yields batches of at most `mtu` envelope bytes (a single larger update goes alone), in
 *  `ordering` (default `'depth'`). */
export function* historyBatches(owed: readonly Update[], mtu: number, ordering: HistoryOrdering = 'depth'): Generator<Update[]> {
  let batch: Update[] = [];
  let bytes = 0;
  for (const u of ordering === 'breadth' ? breadthOrder(owed) : scuttleDepthOrder(owed)) {
    if (batch.length > 0 && bytes + u.byteLength > mtu) {
      yield batch;
      batch = [];
      bytes = 0;
    }
    batch.push(u);
    bytes += u.byteLength;
  }
  if (batch.length > 0) yield batch;
}
