// plasmid's README program against signet, over real loopback TCP through the Node.
//
//   plasmid                                          signet
//   var host = new plasmid.Host(id, { ordering })    node = new Node({ identity, networkKey, listen, seeds })
//                                                    host = node.dataset('hosts', Model, { policy: open(), ordering })
//   new LocalState({ history: true })                ... Model options { keepVersions: true }
//   host.set(key, value) / host.get(key)             host.set(key, value) / host.get(key)
//   hostStream = host.createStream()                 (the Node opens one replication stream per peer
//   hostStream.pipe(other.exchange()).pipe(...)       and dataset over one secure channel; over any
//   hostStream.gossip()                               other Duplex: host.createStream({ ordering }))
//   ordering: 'depth' | 'breadth'                    ordering: 'depth' | 'breadth' (default 'depth')
//   (full history of a key)                          host.versions(key), oldest first
//
// What signet adds: every delta is signed by its writer and verified before it is applied, and
// the exchange runs inside an encrypted channel only holders of the network key can open.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Model, open, type HistoryOrdering, type Node } from '../../src/index.ts';
import { Cluster, until } from '../mesh/cluster.ts';

/** A plasmid-style host on a Node: an open Model that keeps every version of each key. */
function host(cluster: Cluster, ordering: HistoryOrdering, seeds: string[] = [], backend?: 'noble'): { node: Node; host: Model } {
  const node = cluster.node({ seeds, ...(backend ? { backend } : {}) });
  return { node, host: node.dataset('hosts', Model, { policy: open(), ordering, keepVersions: true }) };
}

test('plasmid: three hosts set, exchange and converge with the full history of every key, in either ordering', async () => {
  for (const ordering of ['depth', 'breadth'] as const) {
    const cluster = new Cluster();
    try {
      const a = host(cluster, ordering);
      a.host.set('a', 'A');
      await a.node.start();
      const b = host(cluster, ordering, [a.node.address()!]);
      b.host.set('b', 'B');
      await b.node.start();
      const c = host(cluster, ordering, [b.node.address()!]);
      c.host.set('c', 'C');
      await c.node.start();
      const hosts = [a.host, b.host, c.host];
      await until(`${ordering}: every host has a, b, c`, () => hosts.every((h) => h.get('a') === 'A' && h.get('b') === 'B' && h.get('c') === 'C'), hosts.map((h) => [h, ['update']]));
      // Full history: three writes of one key by three hosts, all kept everywhere, oldest first.
      a.host.set('shared', 1);
      await until(`${ordering}: shared=1 everywhere`, () => hosts.every((h) => h.get('shared') === 1), hosts.map((h) => [h, ['update']]));
      b.host.set('shared', 2);
      await until(`${ordering}: shared=2 everywhere`, () => hosts.every((h) => h.get('shared') === 2), hosts.map((h) => [h, ['update']]));
      c.host.set('shared', 3);
      await until(`${ordering}: every version of shared everywhere`, () => hosts.every((h) => h.versions('shared').length === 3), hosts.map((h) => [h, ['update']]));
      for (const h of hosts) {
        assert.equal(h.versions('shared').map((v) => v.value), [1, 2, 3], `${ordering}: oldest first`);
        assert.equal(h.versions('shared').map((v) => v.source), [a.node.id, b.node.id, c.node.id]);
        assert.is(h.get('shared'), 3);
      }
      assert.is(a.host.stateHash, b.host.stateHash);
      assert.is(b.host.stateHash, c.host.stateHash);
    } finally {
      await cluster.stopAll();
    }
  }
});

test('plasmid ordering over the Node: depth sends the source furthest behind first, breadth one update per source in turn', async () => {
  const arrivals: Record<HistoryOrdering, string[]> = { depth: [], breadth: [] };
  for (const ordering of ['depth', 'breadth'] as const) {
    const cluster = new Cluster();
    try {
      // Two writers, 3 and 6 keys; a newcomer catches up from a host that holds both.
      const w1 = host(cluster, ordering);
      const w2 = host(cluster, ordering);
      for (let i = 0; i < 3; i++) w1.host.set(`w1-${i}`, i);
      for (let i = 0; i < 6; i++) w2.host.set(`w2-${i}`, i);
      await w1.node.start();
      await w2.node.start();
      const holder = host(cluster, ordering, [w1.node.address()!, w2.node.address()!]);
      await holder.node.start();
      await until(`${ordering}: the holder has all 9`, () => holder.host.keys().length === 9, [[holder.host, ['update']]]);
      await Promise.all([w1.node.stop(), w2.node.stop()]);
      // The newcomer verifies with noble, which settles in submission order, so the order it
      // applies updates in is the order they came off the wire (node:crypto's pool may finish
      // two sources' verifications interleaved).
      const newcomer = host(cluster, ordering, [holder.node.address()!], 'noble');
      newcomer.host.on('change', ({ key }) => arrivals[ordering].push(key.slice(0, 2)));
      await newcomer.node.start();
      await until(`${ordering}: the newcomer has all 9`, () => newcomer.host.keys().length === 9, [[newcomer.host, ['update']]]);
    } finally {
      await cluster.stopAll();
    }
  }
  assert.equal(arrivals.depth, ['w2', 'w2', 'w2', 'w2', 'w2', 'w2', 'w1', 'w1', 'w1'], 'depth: the source with the most owed first');
  const first = arrivals.breadth.slice(0, 6);
  assert.ok(first.every((s, i) => i === 0 || s !== first[i - 1]), `breadth: the two sources alternate while both have updates owed, got ${first.join(' ')}`);
  assert.is(first.filter((s) => s === 'w1').length, 3);
  assert.equal(arrivals.breadth.slice(6), ['w2', 'w2', 'w2']);
});

test.run();
