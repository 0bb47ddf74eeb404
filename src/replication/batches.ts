// History order: the sources the peer is furthest behind on go first (scuttle-depth), each
// source's updates oldest first, cut into batches no larger than the MTU. A stream cut at any
// point leaves the peer with a prefix of every source, never a gap.
import type { Update } from '../envelope/update.ts';
import type { NodeId } from '../identity/node-id.ts';

/** Groups owed updates by source, deepest first, each source in ascending version. */
export function scuttleDepthOrder(owed: readonly Update[]): Update[] {
  const bySource = new Map<NodeId, Update[]>();
  for (const u of owed) {
    let list = bySource.get(u.source);
    if (!list) bySource.set(u.source, (list = []));
    list.push(u);
  }
  const groups = [...bySource.values()];
  for (const g of groups) g.sort((a, b) => a.version - b.version);
  groups.sort((a, b) => b.length - a.length || (a[0]!.source < b[0]!.source ? -1 : 1));
  return groups.flat();
}

/** Yields batches of at most `mtu` envelope bytes (a single larger update goes alone). */
export function* historyBatches(owed: readonly Update[], mtu: number): Generator<Update[]> {
  let batch: Update[] = [];
  let bytes = 0;
  for (const u of scuttleDepthOrder(owed)) {
    if (batch.length > 0 && bytes + u.bytes.length > mtu) {
      yield batch;
      batch = [];
      bytes = 0;
    }
    batch.push(u);
    bytes += u.bytes.length;
  }
  if (batch.length > 0) yield batch;
}
