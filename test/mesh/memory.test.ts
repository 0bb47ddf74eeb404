// The real Node over an in-memory network (MemoryNetwork): the same code as over TCP, with
// links the test cuts and heals, so partitions are exact.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Identity, MemoryNetwork, Model, Node } from '../../src/index.ts';
import { FAST, converged, networkKey, until } from './cluster.ts';

test('over an in-memory network: a mesh forms, a partition cut by the network holds, and it heals', async () => {
  const net = new MemoryNetwork();
  const hosts = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'];
  const nodes = hosts.map((h, i) => new Node({
    identity: Identity.generate(), networkKey, listen: `${h}:7420`, transport: net.transport(h), ...FAST,
    seeds: i === 0 ? [] : ['10.0.0.1:7420'],
  }));
  try {
    const models = nodes.map((n) => n.dataset('kv', Model));
    await nodes[0]!.start();
    await Promise.all(nodes.slice(1).map((n) => n.start()));
    assert.is(nodes[1]!.address(), '10.0.0.2:7420');
    await until('all know each other', () => nodes.every((n) => n.members().length === 3), nodes.map((n) => [n, ['member:new']]));
    for (const a of hosts.slice(0, 2)) for (const b of hosts.slice(2)) net.cut(a, b);
    models[0]!.set('left', 'L');
    models[3]!.set('right', 'R');
    await converged(models.slice(0, 2), 'left', 'L');
    await converged(models.slice(2), 'right', 'R');
    // The right side got its own write; it cannot have the left's, as no link crosses.
    assert.is(models[2]!.get('left'), undefined);
    assert.is(models[1]!.get('right'), undefined);
    for (const a of hosts.slice(0, 2)) for (const b of hosts.slice(2)) net.heal(a, b);
    await converged(models, 'left', 'L');
    await converged(models, 'right', 'R');
    for (const m of models) assert.is(m.stateHash(), models[0]!.stateHash());
    assert.ok(net.bytes > 0);
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
  }
});

test.run();
