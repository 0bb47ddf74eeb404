import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Model } from '../../src/index.ts';
import { Cluster, connectedTo, converged } from './cluster.ts';

test('3 nodes in a line A-B-C converge, and an update from C reaches A through B', async () => {
  const cluster = new Cluster();
  try {
    const b = cluster.node();
    const mb = b.dataset('kv', Model);
    await b.start();
    // A and C know only B, and maxPeers 1 keeps them from meeting directly.
    const a = cluster.node({ seeds: [b.address()!], maxPeers: 1 });
    const c = cluster.node({ seeds: [b.address()!], maxPeers: 1 });
    const ma = a.dataset('kv', Model);
    const mc = c.dataset('kv', Model);
    const direct: string[] = [];
    a.on('peer:up', (p) => direct.push(p.id!));
    await Promise.all([a.start(), c.start()]);
    await connectedTo(b, [a.id, c.id]);
    mc.set('from-c', 'hello');
    ma.set('from-a', 'world');
    await converged([ma, mb, mc], 'from-c', 'hello');
    await converged([ma, mb, mc], 'from-a', 'world');
    assert.equal(direct, [b.id], 'A connected to B only');
    assert.is(ma.updateOf('from-c')!.source, c.id);
  } finally {
    await cluster.stopAll();
  }
});

test.run();
