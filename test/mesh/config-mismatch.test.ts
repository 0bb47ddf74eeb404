// Two copies of one dataset configured differently (kept versions, a merge rule, history
// bounds) would offer each other the same updates forever: a Node refuses such a copy with
// `config-mismatch`, while another dataset on the same connection replicates.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Events, Model } from '../../src/index.ts';
import { Cluster, converged, until } from './cluster.ts';

test('a Model that keeps versions and a plain one under the same name are refused config-mismatch; the other dataset replicates', async () => {
  const cluster = new Cluster();
  try {
    const a = cluster.node();
    a.dataset('kv', Model, { keepVersions: true });
    const sharedA = a.dataset('shared', Model);
    a.dataset('log', Events, { maxHistory: 100 });
    const refusals: Array<{ dataset: string; reason: string }> = [];
    a.on('dataset:refused', (r) => refusals.push(r));
    await a.start();
    const b = cluster.node({ seeds: [a.address()!] });
    const kvB = b.dataset('kv', Model);
    const sharedB = b.dataset('shared', Model);
    b.dataset('log', Events, { maxHistory: 200 });
    b.on('dataset:refused', (r) => refusals.push(r));
    await b.start();
    sharedA.set('k', 'v');
    await converged([sharedA, sharedB], 'k', 'v');
    await until('both sides refused kv and log', () => ['kv', 'log'].every((d) => refusals.filter((r) => r.dataset === d).length === 2), [[a, ['dataset:refused']], [b, ['dataset:refused']]]);
    assert.ok(refusals.every((r) => r.reason === 'config-mismatch'), JSON.stringify(refusals));
    assert.equal(kvB.keys(), [], 'nothing crossed on the refused dataset');
    assert.is(b.peers().find((p) => p.id === a.id)?.datasets.includes('kv'), false);
  } finally {
    await cluster.stopAll();
  }
});

test.run();
