// gossipmonger's README program against signet, over real loopback TCP through the Node.
//
//   gossipmonger                                         signet
//   new Gossipmonger({ peerInfo: { id, transport },      new Node({ identity, networkKey, listen,
//                      seeds: [seedPeer] })                         seeds: ['host:port'] })
//   (peer data: update(key, value), 'update' events)     node.dataset('peers', Model, { policy: owner() })
//   gossipmonger.gossip()                                await node.start()
//   gossipmonger.update('foo', 'bar')                    state.set(`${node.id}/foo`, 'bar')
//   on('new peer', (peer) => ...)                        node.on('member:new', (member) => ...)
//   on('peer dead', (peer) => ...)                       node.on('member:dead', (member) => ...)
//   on('peer live', (peer) => ...)                       node.on('member:alive', (member) => ...)
//   on('update', (id, key, value) => ...)                state.on('change', ({ key, value, update }) => ...)
//                                                        (update.source: the verified writer)
//
// What signet adds: the id is the hash of the peer's public key, every delta is signed by its
// peer and verified on arrival, the owner policy keeps each peer to its own keys, membership
// (addresses, liveness) comes only from records each peer signs, and the wire is encrypted
// behind the network key. gossipmonger's peers trusted whatever a neighbour relayed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Identity, Model, owner, type Change } from '../../src/index.ts';
import { Cluster, until } from '../mesh/cluster.ts';

/** One gossipmonger-style peer: a Node with a per-peer state dataset and the events it heard. */
function peer(cluster: Cluster, options: { identity?: Identity; seeds?: string[] } = {}) {
  const node = cluster.node(options);
  const state = node.dataset('peers', Model, { policy: owner() });
  const heard = { newPeers: [] as string[], dead: [] as string[], live: [] as string[], updates: [] as Array<[string, string, unknown]> };
  node.on('member:new', (m) => heard.newPeers.push(m.id)); //     'new peer'
  node.on('member:dead', (m) => heard.dead.push(m.id)); //        'peer dead'
  node.on('member:alive', (m) => heard.live.push(m.id)); //       'peer live'
  state.on('change', ({ key, value, update }: Change) => { //    'update' (id, key, value)
    if (update.source !== node.id) heard.updates.push([update.source, key.slice(update.source.length + 1), value]);
  });
  return { node, state, heard };
}

test('gossipmonger: seeds, new peer / peer dead / peer live, update events', async () => {
  const cluster = new Cluster();
  try {
    const seed = peer(cluster);
    await seed.node.start();
    const seeds = [seed.node.address()!];
    const aIdentity = Identity.generate();
    const a = peer(cluster, { identity: aIdentity, seeds });
    const b = peer(cluster, { seeds });
    await a.node.start();
    await b.node.start();

    // B learns A through the seed alone ('new peer'), from A's own signed record.
    await until('B hears of A and of the seed', () => b.heard.newPeers.includes(a.node.id) && b.heard.newPeers.includes(seed.node.id), [[b.node, ['member:new']]]);
    assert.not.ok(b.heard.newPeers.includes(b.node.id), 'never of itself');

    // gossipmonger.update('foo', 'bar') on A: B and the seed hear ('update', A's id, 'foo', 'bar').
    a.state.set(`${a.node.id}/foo`, 'bar');
    const heardFoo = (p: ReturnType<typeof peer>) => p.heard.updates.some(([id, key, value]) => id === a.node.id && key === 'foo' && value === 'bar');
    await until('B and the seed hear A update foo', () => heardFoo(b) && heardFoo(seed), [[b.state, ['change']], [seed.state, ['change']]]);
    // What gossipmonger could not refuse: B writing under A's name is refused where it is written.
    assert.throws(() => b.state.set(`${a.node.id}/foo`, 'forged'), /owner|policy|forbidden/i);

    // A goes away: 'peer dead' on B; A comes back (same identity, new port): 'peer live'.
    await a.node.stop();
    await until('B hears A dead', () => b.heard.dead.includes(a.node.id), [[b.node, ['member:dead']]]);
    const back = peer(cluster, { identity: aIdentity, seeds });
    await back.node.start();
    await until('B hears A live again', () => b.heard.live.includes(aIdentity.id), [[b.node, ['member:alive']]]);
    // A's state came back with it from the mesh, and its new update reaches B.
    await until('A (restarted, in memory) gets its own foo back from the mesh', () => back.state.get(`${aIdentity.id}/foo`) === 'bar', [[back.state, ['update']]]);
    back.state.set(`${aIdentity.id}/foo`, 'baz');
    await until('B hears foo=baz', () => b.heard.updates.some(([id, key, value]) => id === aIdentity.id && key === 'foo' && value === 'baz'), [[b.state, ['change']]]);
    assert.is(b.state.get(`${aIdentity.id}/foo`), 'baz');
  } finally {
    await cluster.stopAll();
  }
});

test.run();
