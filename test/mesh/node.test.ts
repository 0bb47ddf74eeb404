// The Node over real loopback TCP: topologies converge, liveness is reported, outsiders and
// cheats are refused, replicas follow their master. Every node is stopped in a finally.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dial, Events, Identity, LmdbStore, Model, type Node, type PeerInfo, writers } from '../../src/index.ts';
import { encodeUpdates } from '../../src/replication/messages.ts';
import { Cluster, connectedTo, converged, networkKey, rawPeer, until } from './cluster.ts';
import { freePort, replicationHello, scripted } from './attackers.ts';
import { deadline, next, rejection } from '../helpers/streams.ts';

const connected = (node: Node, id: string): boolean => node.peers().some((p) => p.id === id && p.state === 'connected');


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
    // stats(): B's bytes and handshakes moved, and its kv streams reconciled after their history.
    await until('B counts a kv reconciliation', () => b.stats().datasets['kv']!.reconciliation.sessions >= 1, [[b.membersDataset, ['update']]]);
    const stats = b.stats();
    assert.ok(stats.bytes.in > 0 && stats.bytes.out > 0, JSON.stringify(stats.bytes));
    assert.is(stats.handshakes.completed.in, 2, 'A and C dialed B');
    assert.is(stats.datasets['kv']!.pendingVerifications, 0);
  } finally {
    await cluster.stopAll();
  }
});

test('10 nodes joined through one seed discover each other and converge on two datasets at once', async () => {
  const cluster = new Cluster();
  try {
    const seed = cluster.node();
    const models: Model[] = [seed.dataset('kv', Model)];
    const events: Events[] = [seed.dataset('log', Events)];
    await seed.start();
    const others = Array.from({ length: 9 }, () => cluster.node({ seeds: [seed.address()!] }));
    for (const n of others) {
      models.push(n.dataset('kv', Model));
      events.push(n.dataset('log', Events));
    }
    await Promise.all(others.map((n) => n.start()));
    const all = cluster.nodes;
    await until('every node knows the 9 others', () => all.every((n) => n.members().length === 9), all.map((n) => [n, ['member:new']]));
    models.forEach((m, i) => m.set(`k${i}`, i));
    events.forEach((e, i) => e.emit('said', i));
    await until('every kv holds 10 keys', () => models.every((m) => m.keys().length === 10), models.map((m) => [m, ['update']]));
    await until('every log holds 10 events', () => events.every((e) => e.history().length === 10), events.map((e) => [e, ['update']]));
    for (const m of models) assert.equal(m.stateHash(), models[0]!.stateHash());
    // The mesh spread beyond the seed: someone other than the seed has peers besides it.
    assert.ok(others.some((n) => n.peers().some((p) => p.state === 'connected' && p.id !== seed.id)));
  } finally {
    await cluster.stopAll();
  }
});

test('a node joining through three peers receives a dataset once, not from each of them at once', async () => {
  const cluster = new Cluster();
  try {
    const a = cluster.node();
    const ka = a.dataset('kv', Model);
    await a.start();
    for (let i = 0; i < 300; i++) ka.set(`k${i}`, i);
    const b = cluster.node({ seeds: [a.address()!] });
    const c = cluster.node({ seeds: [a.address()!] });
    const [kb, kc] = [b.dataset('kv', Model), c.dataset('kv', Model)];
    await Promise.all([b.start(), c.start()]);
    await until('B and C hold the 300 keys', () => kb.keys().length === 300 && kc.keys().length === 300, [[kb, ['update']], [kc, ['update']]]);
    const d = cluster.node({ seeds: [a.address()!, b.address()!, c.address()!] });
    const kd = d.dataset('kv', Model);
    let copies = 0;
    kd.on('old_data', () => copies++);
    await d.start();
    const holders: string[] = [a.id, b.id, c.id];
    const sessions = (): number => d.peers().filter((p) => p.id !== undefined && holders.includes(p.id) && p.datasets.includes('kv')).length;
    await until('D holds the keys and has kv sessions with all three', () => kd.keys().length === 300 && sessions() === 3, [[kd, ['update']], [d, ['peer:up']], [d.membersDataset, ['update']]]); // heartbeats: re-checked as sessions open
    // Each later session starts from D's full digest: nothing to send. Without waiting for the
    // first, all three would send the 300 updates at once (~600 copies).
    assert.ok(copies < 100, `${copies} copies of updates D already had`);
  } finally {
    await cluster.stopAll();
  }
});

test('a stopped node is reported peer:down and member:dead, and member:alive when it returns', async () => {
  const cluster = new Cluster();
  try {
    const a = cluster.node();
    a.dataset('kv', Model);
    await a.start();
    const identity = Identity.generate();
    const b = cluster.node({ identity, seeds: [a.address()!] });
    b.dataset('kv', Model);
    await b.start();
    await until('A sees B alive', () => a.members().some((m) => m.id === b.id && m.state === 'alive'), [[a, ['member:new', 'member:alive']]]);
    const down = next<[PeerInfo]>(a, 'peer:down');
    const dead = next<[{ id: string }]>(a, 'member:dead');
    await b.stop();
    assert.is((await down)[0].id, b.id);
    assert.is((await dead)[0].id, b.id);
    assert.is(a.members().find((m) => m.id === b.id)!.state, 'dead');
    // B comes back (same identity, new port): its fresh heartbeats revive it.
    const alive = next<[{ id: string }]>(a, 'member:alive');
    const back = cluster.node({ identity, seeds: [a.address()!] });
    back.dataset('kv', Model);
    await back.start();
    assert.is((await alive)[0].id, b.id);
    await connectedTo(a, [b.id]);
  } finally {
    await cluster.stopAll();
  }
});

test('a node that stops cleanly is seen dead at once by its signed leaving record (stored on disk first), not after its silence', async () => {
  const cluster = new Cluster();
  const dir = mkdtempSync(join(tmpdir(), 'signet-leave-'));
  const store = new LmdbStore(dir);
  try {
    const a = cluster.node();
    a.dataset('kv', Model);
    await a.start();
    // A 60 s heartbeat: judged by silence, B would be convicted minutes after it stopped (the
    // 20 s deadline leaves room for a loaded machine, far below that).
    const b = cluster.node({ seeds: [a.address()!], store, heartbeatIntervalMs: 60_000 });
    b.dataset('kv', Model);
    await b.start();
    await until('A sees B alive', () => a.members().some((m) => m.id === b.id && m.state === 'alive'), [[a, ['member:new', 'member:alive']]]);
    assert.is(a.members().find((m) => m.id === b.id)!.heartbeatIntervalMs, 60_000);
    const dead = deadline(next<[{ id: string }]>(a, 'member:dead'), 'A to see B dead by its leaving record', 20_000);
    await b.stop();
    assert.is((await dead)[0].id, b.id);
  } finally {
    await cluster.stopAll();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a node with the wrong network key is refused by every member, learns nothing, and the mesh goes on', async () => {
  const cluster = new Cluster();
  try {
    const a = cluster.node();
    const ma = a.dataset('kv', Model);
    await a.start();
    const b = cluster.node({ seeds: [a.address()!] });
    const mb = b.dataset('kv', Model);
    await b.start();
    await connectedTo(a, [b.id]);
    ma.set('secret', 'members only');
    const outsider = cluster.node({ networkKey: randomBytes(32), seeds: [a.address()!, b.address()!], channelLimits: { handshakeTimeoutMs: 300 } });
    const mo = outsider.dataset('kv', Model);
    await outsider.start();
    // Its handshakes fail silently (no member answers a message 1 it cannot open).
    mb.set('after', 1);
    await converged([ma, mb], 'after', 1);
    await converged([ma, mb], 'secret', 'members only');
    assert.is(outsider.peers().length, 0, 'the outsider has no peer');
    assert.is(outsider.members().length, 0, 'the outsider learned no member');
    assert.is(mo.keys().length, 0, 'the outsider learned no update');
    assert.not.ok(a.peers().some((p) => p.id === outsider.id));
  } finally {
    await cluster.stopAll();
  }
});

test('a replica follows its master and passes its updates on to another replica; local writes are refused', async () => {
  const cluster = new Cluster();
  try {
    const master = cluster.node();
    const mm = master.dataset('feed', Model, { policy: writers([master.id]) });
    await master.start();
    const r1 = cluster.node({ seeds: [master.address()!] });
    const m1 = r1.dataset('feed', Model, { replicaOf: master.id });
    await r1.start();
    mm.set('price', 100);
    await converged([mm, m1], 'price', 100);
    assert.throws(() => m1.set('price', 1), (e: Error & { code?: string }) => e.code === 'ERR_WRITE' && /replica/.test(e.message));
    // A second replica that can reach only the first: it gets the master's updates through it.
    const r2 = cluster.node({ seeds: [r1.address()!] });
    const m2 = r2.dataset('feed', Model, { replicaOf: master.id });
    r2.ban(master.id, 'test: keep R2 away from the master');
    master.ban(r2.id, 'test: keep R2 away from the master');
    await r2.start();
    await converged([m2], 'price', 100);
    assert.not.ok(r2.peers().some((p) => p.id === master.id && p.state === 'connected'), 'R2 never met the master');
    assert.ok(r2.peers().some((p) => p.id === r1.id && p.state === 'connected'));
  } finally {
    await cluster.stopAll();
  }
});


test('a compromised replica that pushes updates upstream (its own, or replays of the master\'s) changes nothing on the master', async () => {
  const cluster = new Cluster();
  try {
    const master = cluster.node();
    const mm = master.dataset('feed', Model, { policy: writers([master.id]) });
    await master.start();
    mm.set('price', 100);
    const old = mm.updateOf('price')!;
    mm.set('price', 101);
    const evil = Identity.generate();
    const own = new Model({ identity: evil, dataset: 'feed' }).set('price', 1);
    const before = mm.stateHash();

    // Declared as a replica of the master: the master's stream accepts nothing from it. A second
    // hello after the updates gets it cut, which proves the master read everything before it.
    const declared = await rawPeer(master.address()!, evil, { name: 'feed', policy: 'x', replicaOf: master.id });
    const banned = next<[{ reason: string }]>(master, 'peer:banned');
    (await declared.session).attach(scripted(evil.id, 'feed', [encodeUpdates([own.bytes, old.bytes]), replicationHello('feed', evil.id)]));
    assert.match((await banned)[0].reason, /second-hello/);
    assert.is(mm.stateHash(), before);
    assert.is(mm.clock.get(evil.id), undefined);
    master.unban(evil.id);

    // Not declared (it lies about its role): the master's write policy refuses its own update
    // (a fault) and the replay is old.
    const liar = await rawPeer(master.address()!, evil, { name: 'feed', policy: mm.policy.writerIds ? (await import('../../src/mesh/datasets.ts')).datasetDescriptor(mm.policy, mm.replicationProfile) : '' });
    const forbidden = next<[{ reason: string }]>(mm, 'invalid');
    const replayed = next(mm, 'old_data');
    (await liar.session).attach(scripted(evil.id, 'feed', [encodeUpdates([own.bytes, old.bytes])]));
    assert.is((await forbidden)[0].reason, 'forbidden');
    await replayed;
    assert.is(mm.stateHash(), before);
    assert.is(mm.get('price'), 101);
  } finally {
    await cluster.stopAll();
  }
});

test('a partition (links cut in-process) heals and every node converges', async () => {
  const cluster = new Cluster();
  try {
    const a = cluster.node();
    await a.start();
    const rest = [cluster.node({ seeds: [a.address()!] }), cluster.node({ seeds: [a.address()!] }), cluster.node({ seeds: [a.address()!] })];
    const all = [a, ...rest];
    const models = all.map((n) => n.dataset('kv', Model));
    await Promise.all(rest.map((n) => n.start()));
    await until('all know each other', () => all.every((n) => n.members().length === 3), all.map((n) => [n, ['member:new']]));
    const left = all.slice(0, 2);
    const right = all.slice(2);
    for (const x of left) for (const y of right) {
      x.ban(y.id, 'partition');
      y.ban(x.id, 'partition');
    }
    await until('no link crosses the partition', () => left.every((x) => right.every((y) => !connected(x, y.id) && !connected(y, x.id))), all.map((n) => [n, ['peer:down']]));
    models[0]!.set('left', 'L');
    models[3]!.set('right', 'R');
    await converged(models.slice(0, 2), 'left', 'L');
    await converged(models.slice(2), 'right', 'R');
    assert.is(models[3]!.get('left'), undefined, 'the partition holds');
    for (const x of left) for (const y of right) {
      x.unban(y.id);
      y.unban(x.id);
    }
    await converged(models, 'left', 'L');
    await converged(models, 'right', 'R');
    for (const m of models) assert.is(m.stateHash(), models[0]!.stateHash());
  } finally {
    await cluster.stopAll();
  }
});

test('a peer sending a bad signature is disconnected and banned', async () => {
  const cluster = new Cluster();
  try {
    const a = cluster.node();
    const ma = a.dataset('kv', Model);
    await a.start();
    const evil = Identity.generate();
    const forged = Buffer.from(new Model({ identity: evil, dataset: 'kv' }).set('forged', 'x').bytes);
    forged[forged.length - 1]! ^= 0x01; // the last byte of its signature
    const peer = await rawPeer(a.address()!, evil, { name: 'kv' });
    const banned = next<[{ id: string; reason: string }]>(a, 'peer:banned');
    const closed = new Promise<void>((r) => peer.channel.once('close', () => r()));
    (await peer.session).attach(scripted(evil.id, 'kv', [encodeUpdates([forged])]));
    const [ban] = await banned;
    assert.is(ban.id, evil.id);
    assert.match(ban.reason, /bad-signature/);
    await closed;
    assert.is(ma.get('forged'), undefined);
    assert.ok(a.peers().some((p) => p.id === evil.id && p.state === 'banned'));
    // Banned: a new connection from it is dropped.
    const again = await rawPeer(a.address()!, evil, { name: 'kv' });
    await new Promise<void>((r) => again.channel.once('close', () => r()));
  } finally {
    await cluster.stopAll();
  }
});

test('two nodes dialing each other at the same moment keep one connection', async () => {
  const cluster = new Cluster();
  try {
    const [pa, pb] = [await freePort(), await freePort()];
    const a = cluster.node({ listen: `127.0.0.1:${pa}`, seeds: [`127.0.0.1:${pb}`] });
    const b = cluster.node({ listen: `127.0.0.1:${pb}`, seeds: [`127.0.0.1:${pa}`] });
    const ups = { a: 0, b: 0 };
    const downs = { a: 0, b: 0 };
    a.on('peer:up', () => ups.a++);
    b.on('peer:up', () => ups.b++);
    a.on('peer:down', () => downs.a++);
    b.on('peer:down', () => downs.b++);
    await Promise.all([a.start(), b.start()]);
    await Promise.all([connectedTo(a, [b.id]), connectedTo(b, [a.id])]);
    // Let both dials settle: a dozen heartbeats of each other arrive over the kept connection.
    let beats = 0;
    a.membersDataset.on('update', () => beats++);
    await until('12 heartbeats', () => beats >= 12, [[a.membersDataset, ['update']]]);
    const pa_ = a.peers().filter((p) => p.id === b.id);
    const pb_ = b.peers().filter((p) => p.id === a.id);
    assert.is(pa_.length, 1);
    assert.is(pb_.length, 1);
    assert.is.not(pa_[0]!.direction, pb_[0]!.direction, 'both ends hold the same connection');
    assert.equal(ups, { a: 1, b: 1 }, JSON.stringify({ ups, downs }));
    assert.equal(downs, { a: 0, b: 0 });
  } finally {
    await cluster.stopAll();
  }
});

test('a node given its own address as a seed does not connect to itself', async () => {
  const cluster = new Cluster();
  try {
    const b = cluster.node();
    await b.start();
    const port = await freePort();
    const a = cluster.node({ listen: `127.0.0.1:${port}`, seeds: [`127.0.0.1:${port}`, b.address()!] });
    const ups: string[] = [];
    a.on('peer:up', (p) => ups.push(p.id!));
    await a.start();
    await connectedTo(a, [b.id]);
    let beats = 0;
    a.membersDataset.on('update', () => beats++);
    await until('10 heartbeats from B', () => beats >= 10, [[a.membersDataset, ['update']]]);
    assert.equal(ups, [b.id]);
    assert.not.ok(a.peers().some((p) => p.id === a.id));
  } finally {
    await cluster.stopAll();
  }
});

test('a peer that completes the handshake but never sends its multiplexer hello is closed at the handshake deadline', async () => {
  const cluster = new Cluster();
  try {
    const a = cluster.node({ channelLimits: { handshakeTimeoutMs: 300 } });
    await a.start();
    const ups: string[] = [];
    a.on('peer:up', (p) => ups.push(p.id!));
    const { host, port } = { host: '127.0.0.1', port: Number(a.address()!.split(':')[1]) };
    const silent = await dial({ identity: Identity.generate(), networkKey, host, port });
    silent.resume(); // read (and drop) the node's hello and OPENs
    const closedAt = Date.now();
    await new Promise<void>((r) => silent.once('close', () => r()));
    assert.ok(Date.now() - closedAt >= 250, 'not before the deadline');
    assert.equal(ups, [], 'never up: it never spoke the protocol');
    assert.is(silent.errored, null, 'the node ended it with its authenticated close');
    assert.not.ok(a.peers().some((p) => p.state === 'banned'), 'slow, not banned');
  } finally {
    await cluster.stopAll();
  }
});

test('stop() while start() is in progress: start rejects ERR_ABORTED, the port is released, stop is idempotent', async () => {
  const cluster = new Cluster();
  const port = await freePort();
  const a = cluster.node({ listen: `127.0.0.1:${port}` });
  const starting = a.start();
  const stopped = a.stop();
  assert.is((await rejection(starting)).code, 'ERR_ABORTED');
  await stopped;
  assert.is(a.stop(), stopped, 'the same promise');
  assert.is(a.address(), undefined);
  // The port is free again: another node binds it.
  const b = cluster.node({ listen: `127.0.0.1:${port}` });
  try {
    await b.start();
    assert.is(b.address(), `127.0.0.1:${port}`);
    assert.match((await rejection(b.start())).message, /start\(\) called on a node that is started/);
  } finally {
    await cluster.stopAll();
  }
});

test('stop() closes every socket, server, stream and timer it opened', async () => {
  const count = (): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const r of process.getActiveResourcesInfo()) out[r] = (out[r] ?? 0) + 1;
    return out;
  };
  const before = count();
  const cluster = new Cluster();
  const a = cluster.node();
  const ma = a.dataset('kv', Model);
  await a.start();
  const b = cluster.node({ seeds: [a.address()!] });
  const mb = b.dataset('kv', Model);
  await b.start();
  await connectedTo(a, [b.id]);
  ma.set('x', 1);
  await converged([ma, mb], 'x', 1);
  assert.ok(ma.streams > 0 && mb.streams > 0);
  assert.ok((count()['TCPSocketWrap'] ?? 0) > (before['TCPSocketWrap'] ?? 0));
  await cluster.stopAll();
  assert.is(ma.streams, 0, 'no replication stream left on A');
  assert.is(mb.streams, 0, 'no replication stream left on B');
  assert.ok(a.membersDataset.isDisposed && b.membersDataset.isDisposed);
  const after = count();
  for (const kind of ['TCPSocketWrap', 'TCPServerWrap', 'Timeout']) {
    assert.ok((after[kind] ?? 0) <= (before[kind] ?? 0), `${kind}: ${before[kind] ?? 0} before, ${after[kind] ?? 0} after`);
  }
  assert.is(ma.get('x'), 1, 'the datasets stay readable');
});

test('a node that never started stops at once; one whose port is taken rejects start with ERR_LISTEN', async () => {
  const cluster = new Cluster();
  try {
    await cluster.node().stop();
    const a = cluster.node();
    await a.start();
    const b = cluster.node({ listen: a.address()! });
    assert.is((await rejection(b.start())).code, 'ERR_LISTEN');
  } finally {
    await cluster.stopAll();
  }
});

test.run();
