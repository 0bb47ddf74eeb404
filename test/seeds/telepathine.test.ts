// telepathine's README program against signet, over real loopback TCP through the Node.
//
//   telepathine                                     signet
//   new Telepathine(port, seeds, { network })       new Node({ identity, networkKey, listen, seeds })
//     .start()                                        + dataset('state', Model, { policy: owner() })
//                                                     + dataset('bus', Events, { policy: open() }); await start()
//   b.set('somekey', 'v')                           state.set(`${b.id}/somekey`, 'v')
//   b.set('k', 'v', expiresAt)                      state.set(`${b.id}/k`, 'v', { ttl })
//   a.get('somekey')  (own key)                     state.getFrom(a.id, 'somekey')
//   a.getRemote(peer, 'somekey')                    state.getFrom(peer, 'somekey')
//   a.getRemoteKeys(peer)                           state.keysOf(peer)
//   a.know('somekey', (peer, v) => ...)             state.on('peer-change:somekey', (v, peer) => ...)
//   b.say('alerts.disk', data, duration)            bus.emit('alerts.disk', data, { ttl: duration })
//   a.hear('alerts.*', (data, fromPeer) => ...)     bus.on('alerts.*', (data, fromPeer) => ...)
//   a.hearOnce('alerts.*', ...)                     bus.once('alerts.*', ...)
//   options.addressMap                              new Node({ advertise: ['host:port'] }) (test/mesh/advertise.test.ts)
//
// What signet adds: `fromPeer` is the verified signer (telepathine trusted the sender's claim),
// a peer writes only its own namespace (owner policy), expiry is computed from the signed
// version on every node alike, and the network key authenticates every connection.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Events, Model, open, owner, type NodeId, type Value } from '../../src/index.ts';
import { Cluster, until } from '../mesh/cluster.ts';

const EPOCH_US = Date.UTC(2026, 0, 1) * 1000;

test('telepathine: set/get, getRemote/getRemoteKeys, know, say/hear with a wildcard, hearOnce, expiry', async () => {
  const cluster = new Cluster();
  // One wall clock for the whole mesh (µs), moved by the test: expiry without waiting.
  let clock = EPOCH_US;
  const wallClock = (): number => clock;
  const telepathine = (seeds: string[] = []) => {
    const node = cluster.node({ seeds, wallClock });
    return { node, state: node.dataset('state', Model, { policy: owner() }), bus: node.dataset('bus', Events, { policy: open() }) };
  };
  try {
    const a = telepathine();
    await a.node.start();
    const b = telepathine([a.node.address()!]);
    await b.node.start();

    // know('somekey'): one key watched across every peer's namespace.
    const known: Array<[NodeId, Value | undefined]> = [];
    a.state.on('peer-change:somekey', (value, peer) => known.push([peer, value]));
    // hear('alerts.*') and hearOnce('alerts.*').
    const heard: Array<[string, Value, NodeId]> = [];
    a.bus.on('alerts.*', (data, fromPeer, name) => heard.push([name, data, fromPeer]));
    let once = 0;
    a.bus.once('alerts.*', () => void once++);

    a.state.set(`${a.node.id}/somekey`, 'mine');
    b.state.set(`${b.node.id}/somekey`, 'somevalue');
    b.state.set(`${b.node.id}/other`, 1);
    await until('A has B\'s keys', () => a.state.keysOf(b.node.id).length === 2, [[a.state, ['update']]]);
    assert.is(a.state.getFrom(a.node.id, 'somekey'), 'mine'); //               a.get('somekey')
    assert.is(a.state.getFrom(b.node.id, 'somekey'), 'somevalue'); //          a.getRemote(b, 'somekey')
    assert.equal(a.state.keysOf(b.node.id).sort(), ['other', 'somekey']); //   a.getRemoteKeys(b)
    assert.ok(known.some(([peer, v]) => peer === b.node.id && v === 'somevalue'), 'know() heard B set somekey');
    assert.ok(known.some(([peer, v]) => peer === a.node.id && v === 'mine'), 'and its own write');

    b.bus.emit('alerts.disk', { free: 0 }, { ttl: 5_000 }); //                 say('alerts.disk', data, 5000)
    b.bus.emit('alerts.disk.deep', 'no match for one segment');
    b.bus.emit('alerts.cpu', { load: 9 });
    await until('A hears two alerts', () => heard.length === 2, [[a.bus, ['update']]]);
    assert.equal(heard, [['alerts.disk', { free: 0 }, b.node.id], ['alerts.cpu', { load: 9 }, b.node.id]]);
    assert.is(once, 1, 'hearOnce hears the first only');

    // Expiry: a key set with a ttl, and the say() with a duration, are gone on every node alike
    // once the shared clock passes version + ttl; a late joiner is not told either.
    b.state.set(`${b.node.id}/temp`, 'soon gone', { ttl: 2_000 });
    await until('A has temp', () => a.state.getFrom(b.node.id, 'temp') === 'soon gone', [[a.state, ['update']]]);
    clock += 6_000_000;
    assert.is(a.state.getFrom(b.node.id, 'temp'), undefined);
    assert.is(b.state.getFrom(b.node.id, 'temp'), undefined);
    const late = telepathine([a.node.address()!]);
    const lateHeard: string[] = [];
    late.bus.on('**', (_data, _from, name) => lateHeard.push(name));
    await late.node.start();
    b.bus.emit('alerts.marker', 'after the expiry');
    await until('the late joiner hears the marker', () => lateHeard.includes('alerts.marker'), [[late.bus, ['update']]]);
    assert.not.ok(lateHeard.includes('alerts.disk'), 'the expired alert is not replayed to a late joiner');
    assert.ok(lateHeard.includes('alerts.cpu'), 'the alert without a duration is');
    await until('the late joiner has B\'s keys', () => late.state.keysOf(b.node.id).includes('somekey'), [[late.state, ['update']]]);
    assert.is(late.state.getFrom(b.node.id, 'temp'), undefined, 'nor the expired key');
  } finally {
    await cluster.stopAll();
  }
});

test.run();
