// The Node against hostile peers over real loopback TCP: forged membership, relays framed for
// what is not their fault, eclipse floods, impostor seeds, dial floods, lying hellos, the public
// network key, and multiplexer abuse. Every node is stopped and every raw channel or socket
// destroyed in a finally; every wait is on an event, with a deadline.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import { setImmediate as tick } from 'node:timers/promises';
import {
  Events, Identity, MEMBERS_DATASET, Model, Node, PUBLIC_NETWORK_KEY, owner, signUpdate, wallClockMicros,
  type BanInfo, type Rejection, type SecureChannel, type Update,
} from '../../src/index.ts';
import { FAULT_BUDGET, INBOUND_SURPLUS, MAX_EVIDENCE_PER_SOURCE, MUX_MAX_DATA_BYTES, MUX_WINDOW_BYTES } from '../../src/limits.ts';
import { encodeCredit, encodeData, encodeHello as encodeMuxHello } from '../../src/mesh/mux-messages.ts';
import { encodeUpdates } from '../../src/replication/messages.ts';
import { toHex } from '../../src/util/bytes.ts';
import { next } from '../helpers/streams.ts';
import { closeOf, freePort, handled, ObservedLimiter, Raws, rawDial, rawMux, replicationHello, scripted } from './attackers.ts';
import { Cluster, connectedTo, converged, modelDescriptor, networkKey, until } from './cluster.ts';

const connected = (node: Node, id: string): boolean => node.peers().some((p) => p.id === id && p.state === 'connected');
const connectedCount = (node: Node): number => node.peers().filter((p) => p.state === 'connected').length;
const sinceOf = (node: Node, id: string): number | undefined => node.peers().find((p) => p.id === id && p.state === 'connected')?.since;

/** Records every 'peer:banned' and 'peer:down' of `node` from now on. */
function watch(node: Node): { bans: BanInfo[]; downs: string[] } {
  const seen = { bans: [] as BanInfo[], downs: [] as string[] };
  node.on('peer:banned', (b) => seen.bans.push(b));
  node.on('peer:down', (p) => seen.downs.push(p.id!));
  return seen;
}

test('1. forged, replayed and hearsay membership records change nothing', async () => {
  const cluster = new Cluster();
  const raws = new Raws();
  try {
    const a = cluster.node();
    await a.start();
    const victim = cluster.node({ seeds: [a.address()!] });
    const beats: Uint8Array[] = []; // the victim's heartbeats, as A applied them
    a.membersDataset.on(`change:${victim.id}/alive`, (_value: unknown, update: Update) => beats.push(update.bytes));
    await victim.start();
    const member = () => a.members().find((m) => m.id === victim.id);
    await until('A sees the victim alive at its address, 3 heartbeats in', () => member()?.state === 'alive' && member()!.addresses[0] === victim.address() && beats.length >= 3,
      [[a, ['member:new', 'member:alive']], [a.membersDataset, ['update']]]);
    const deaths: string[] = [];
    a.on('member:dead', (m) => deaths.push(m.id));

    // (a) A record under the victim's key, signed by the forger, moving the victim to the forger's address.
    const forger = Identity.generate();
    const forged = new Model({ identity: forger, dataset: MEMBERS_DATASET }).set(`${victim.id}/node`, { addresses: ['127.0.0.1:9'] });
    const refused = handled(next<[Rejection]>(a.membersDataset, 'invalid'));
    const p1 = await rawMux(raws, a.address()!, forger, { name: MEMBERS_DATASET, policy: modelDescriptor('owner') });
    (await p1.session).attach(scripted(forger.id, MEMBERS_DATASET, [encodeUpdates([forged.bytes])]));
    const [rejection] = await refused;
    assert.is(rejection.reason, 'forbidden');
    assert.is(rejection.update?.source, forger.id);
    assert.equal(member()!.addresses, [victim.address()]);
    assert.equal(a.membersDataset.get(`${victim.id}/node`), { addresses: [victim.address()] });

    // (c) Hearsay: "the victim is dead", written under the gossip's own key (the policy lets it
    // write there, so A applies it), is not how A judges liveness.
    const gossip = Identity.generate();
    const claim = new Model({ identity: gossip, dataset: MEMBERS_DATASET }).set(`${gossip.id}/dead`, { id: victim.id, state: 'dead' });
    const applied = handled(next(a.membersDataset, `change:${gossip.id}/dead`));
    const p2 = await rawMux(raws, a.address()!, gossip, { name: MEMBERS_DATASET, policy: modelDescriptor('owner') });
    (await p2.session).attach(scripted(gossip.id, MEMBERS_DATASET, [encodeUpdates([claim.bytes])]));
    await applied;
    assert.is(member()!.state, 'alive');
    assert.equal(deaths, [], 'the claim killed nobody');
    assert.not.ok(a.members().some((m) => m.id === gossip.id), 'a "dead" record makes nobody a member');

    // (b) The victim stops and A convicts it; replays of its heartbeats (an early one and the
    // latest) are old and revive nothing (applied, the latest would: it was signed seconds ago).
    const convicted = handled(until('A convicts the stopped victim', () => deaths.includes(victim.id), [[a, ['member:dead']]]));
    await victim.stop();
    await convicted;
    const revived: string[] = [];
    a.on('member:alive', (m) => revived.push(m.id));
    const olds: Update[] = [];
    a.membersDataset.on('old_data', (u) => olds.push(u));
    const replays = [beats[0]!, beats[beats.length - 1]!];
    const replayer = Identity.generate();
    const p3 = await rawMux(raws, a.address()!, replayer, { name: MEMBERS_DATASET, policy: modelDescriptor('owner') });
    (await p3.session).attach(scripted(replayer.id, MEMBERS_DATASET, [encodeUpdates(replays)]));
    await until('both replays judged old', () => olds.length >= 2, [[a.membersDataset, ['old_data']]]);
    assert.equal(olds.map((u) => toHex(u.bytes)), replays.map(toHex));
    assert.is(member()!.state, 'dead');
    assert.equal(revived, []);
    assert.equal(deaths, [victim.id]);
  } finally {
    raws.destroyAll();
    await cluster.stopAll();
  }
});

// A member dialing the advertised address expects the attacker's id, gets the victim's, and
// hangs up after message 2 (its identity is never sent to the wrong peer). It held the network
// key (message 1 is psk-authenticated), so the victim reports ERR_HANDSHAKE_ABANDONED, which bans
// nothing. On loopback every node is 127.0.0.1, so the honest node H below stands for the dialer.
test('1d. a member advertising another node\'s address in its own record gets nobody banned there', async () => {
  const cluster = new Cluster();
  const raws = new Raws();
  try {
    const limiter = new ObservedLimiter();
    const victim = cluster.node({ handshakeLimiter: limiter });
    victim.dataset('kv', Model);
    await victim.start();
    const bans = watch(victim).bans;
    const a = cluster.node();
    a.dataset('kv', Model);
    await a.start();

    // M signs, under its own key, that it listens at the victim's address, and that it is alive.
    const m = Identity.generate();
    const records = new Model({ identity: m, dataset: MEMBERS_DATASET });
    const node = records.set(`${m.id}/node`, { addresses: [victim.address()!] });
    const beat = records.set(`${m.id}/alive`, 1);
    const pm = await rawMux(raws, a.address()!, m, { name: MEMBERS_DATASET, policy: modelDescriptor('owner') });
    (await pm.session).attach(scripted(m.id, MEMBERS_DATASET, [encodeUpdates([node.bytes, beat.bytes])]));
    await until('A knows M, alive at the victim\'s address', () => a.members().some((x) => x.id === m.id && x.state === 'alive'), [[a, ['member:new', 'member:alive']]]);
    // M hangs up: A dials it where it said it listens, expecting M, and the victim answers.
    const settled = handled(next(limiter.events, 'released')); // the victim's side of that handshake ended (its refusal follows in the same tick)
    pm.channel.destroy();
    await settled;
    assert.equal(bans, [], 'the victim banned nobody');
    const h = cluster.node({ seeds: [victim.address()!] });
    h.dataset('kv', Model);
    await h.start();
    await connectedTo(victim, [h.id]);
  } finally {
    raws.destroyAll();
    await cluster.stopAll();
  }
});

test('2a. an update over our size limit: the honest relay skips it (our hello says our limit); no ban, the link stays, later updates arrive', async () => {
  const cluster = new Cluster();
  try {
    const big = 256 * 1024;
    const relay = cluster.node();
    const mr = relay.dataset('kv', Model, { maxUpdateBytes: big });
    await relay.start();
    const source = cluster.node({ seeds: [relay.address()!] });
    const ms = source.dataset('kv', Model, { maxUpdateBytes: big });
    const target = cluster.node({ seeds: [relay.address()!] });
    const mt = target.dataset('kv', Model); // the default limit, 64 KiB
    source.ban(target.id, 'test: only through the relay');
    target.ban(source.id, 'test: only through the relay');
    await Promise.all([source.start(), target.start()]);
    await connectedTo(relay, [source.id, target.id]);
    await connectedTo(target, [relay.id]);
    const seen = watch(target);
    const relaySeen = watch(relay);
    const since = sinceOf(target, relay.id);
    const rejected: Rejection[] = [];
    mt.on('invalid', (r) => rejected.push(r));

    const huge = 'h'.repeat(100 * 1024);
    ms.set('huge', huge);
    await until('the relay holds the huge update', () => mr.get('huge') === huge, [[mr, ['update']]]);
    ms.set('small', 1); // after the huge one, same source, same path
    await converged([mr, mt], 'small', 1);
    assert.is(mt.get('huge'), undefined, 'the huge update never reached the target');
    assert.equal(rejected, [], 'nothing was refused: nothing too large was sent');
    assert.equal(seen.bans, []);
    assert.equal(relaySeen.bans, []);
    assert.equal(seen.downs, []);
    assert.is(sinceOf(target, relay.id), since, 'the same connection');
  } finally {
    await cluster.stopAll();
  }
});

test('2b. a relay whose clock runs 2 minutes ahead: its writes are deferred, not faults; no ban, the link stays', async () => {
  const cluster = new Cluster();
  try {
    const relay = cluster.node({ wallClock: () => wallClockMicros() + 120_000_000 });
    const mr = relay.dataset('kv', Model);
    await relay.start();
    const source = cluster.node({ seeds: [relay.address()!] });
    const ms = source.dataset('kv', Model);
    const target = cluster.node({ seeds: [relay.address()!] });
    const mt = target.dataset('kv', Model);
    source.ban(target.id, 'test: only through the relay');
    target.ban(source.id, 'test: only through the relay');
    await Promise.all([source.start(), target.start()]);
    await connectedTo(relay, [source.id, target.id]);
    await connectedTo(target, [relay.id]);
    const seen = watch(target);
    const since = sinceOf(target, relay.id);
    const rejected: Rejection[] = [];
    mt.on('invalid', (r) => rejected.push(r));
    const deferred: Update[] = [];
    mt.on('deferred', (u) => deferred.push(u));

    // More than the fault budget: were `future` a fault, the target would cut and ban the relay.
    const n = FAULT_BUDGET + 6;
    for (let i = 0; i < n; i++) mr.set(`ahead${i}`, i);
    await until(`${n} updates deferred on the target`, () => deferred.length >= n, [[mt, ['deferred']]]);
    assert.ok(deferred.every((u) => u.source === relay.id));
    assert.is(mt.get('ahead0'), undefined, 'held, not applied yet');
    ms.set('after', 1); // an honest update over the same link, after the future ones
    await converged([mt], 'after', 1);
    assert.equal(rejected, []);
    assert.equal(seen.bans, []);
    assert.equal(seen.downs, []);
    assert.is(sinceOf(target, relay.id), since, 'the same connection');
  } finally {
    await cluster.stopAll();
  }
});

test('2c. a quarantined source relayed by honest nodes: the target refuses it blamelessly; no relay is banned, links stay', async () => {
  const cluster = new Cluster();
  const raws = new Raws();
  try {
    const target = cluster.node();
    const mt = target.dataset('kv', Model);
    await target.start();
    const r1 = cluster.node({ seeds: [target.address()!] });
    r1.dataset('kv', Model);
    await r1.start();
    await connectedTo(target, [r1.id]);
    const seen = watch(target);
    const others: Rejection[] = [];
    const quarantined: Rejection[] = [];
    mt.on('invalid', (r) => (r.reason === 'quarantined' ? quarantined : others).push(r));

    // Q equivocates MAX_EVIDENCE_PER_SOURCE times (two updates per version, to different keys so
    // the model keeps both) into R1, which relays them live to the target.
    const q = Identity.generate();
    const base = wallClockMicros() - 30_000_000;
    const pairs: Uint8Array[] = [];
    for (let i = 0; i < MAX_EVIDENCE_PER_SOURCE; i++) {
      pairs.push(signUpdate(q, { dataset: 'kv', version: base + i, body: ['set', `a${i}`, 'one'] }).bytes);
      pairs.push(signUpdate(q, { dataset: 'kv', version: base + i, body: ['set', `b${i}`, 'two'] }).bytes);
    }
    const pq = await rawMux(raws, r1.address()!, q, { name: 'kv' });
    (await pq.session).attach(scripted(q.id, 'kv', [encodeUpdates(pairs)]));
    await until('the target quarantines Q', () => mt.isQuarantined(q.id), [[mt, ['equivocation']]]);
    assert.is(mt.equivocations().length, MAX_EVIDENCE_PER_SOURCE);

    // R2 got Q's later (non-equivocating) updates before it met anyone, so it holds them as
    // honest data and sends them to the target as history: more than the fault budget of them.
    const r2 = cluster.node({ seeds: [target.address()!] });
    const m2 = r2.dataset('kv', Model);
    await m2.ready;
    const later = Array.from({ length: FAULT_BUDGET + 6 }, (_, i) => signUpdate(q, { dataset: 'kv', version: base + 100 + i, body: ['set', `c${i}`, i] }).bytes);
    for (const bytes of later) assert.is((await m2.ingest(bytes)).status, 'applied');
    await r2.start();
    await connectedTo(target, [r2.id]);
    const since = { r1: sinceOf(target, r1.id), r2: sinceOf(target, r2.id) };
    await until(`the target refuses Q's ${later.length} later updates`, () => quarantined.length >= later.length, [[mt, ['invalid']]]);
    assert.ok(quarantined.every((r) => r.update?.source === q.id));
    m2.set('after', 1); // an honest update over the same link, after Q's
    await converged([mt], 'after', 1);
    assert.equal(others, []);
    assert.equal(seen.bans, [], 'neither relay is banned');
    assert.equal(seen.downs, []);
    assert.equal({ r1: sinceOf(target, r1.id), r2: sinceOf(target, r2.id) }, since, 'the same connections');
    assert.is(mt.get('c0'), undefined);
  } finally {
    raws.destroyAll();
    await cluster.stopAll();
  }
});

test('3. eclipse: more inbound attackers than the node takes, before and after the seed is reached; the node reaches and keeps its seed', async () => {
  const cluster = new Cluster();
  const raws = new Raws();
  try {
    const maxPeers = 4;
    const seedPort = await freePort(); // the seed is not up yet
    const n = cluster.node({ maxPeers, seeds: [`127.0.0.1:${seedPort}`] });
    await n.start();
    const attackers: SecureChannel[] = [];
    const flood = async (count: number): Promise<void> => {
      for (let i = 0; i < count; i++) attackers.push((await rawMux(raws, n.address()!, Identity.generate(), { name: 'not-hosted' })).channel);
    };
    const events = (): Array<[EventEmitter, string[]]> => [[n, ['peer:up', 'peer:down']], ...attackers.map((c): [SecureChannel, string[]] => [c, ['close']])];
    const open = (list: SecureChannel[]): number => list.filter((c) => !c.closed).length;

    // Before: attackers fill every inbound slot (maxPeers + INBOUND_SURPLUS) and more; those
    // beyond it replace earlier ones (they are unknown newcomers), so the count holds at the cap.
    // With no outbound connection, the node still dials its seed (reserved outbound slots).
    const cap = maxPeers + INBOUND_SURPLUS;
    await flood(cap + 2);
    await until('the node full of attackers, at the cap', () => connectedCount(n) === cap && open(attackers) === cap, events()).catch((e) => { throw new Error(`${e.message}: connected ${connectedCount(n)}, open ${open(attackers)}`); });
    const seed = cluster.node({ listen: `127.0.0.1:${seedPort}` });
    await seed.start();
    await connectedTo(n, [seed.id]);
    assert.is(n.peers().find((p) => p.id === seed.id)!.direction, 'out');
    await until('trimmed to the cap again, seed kept', () => connectedCount(n) === cap && open(attackers) === cap - 1, events());
    assert.ok(connected(n, seed.id));

    // After: a second flood; the seed's connection is never the one trimmed.
    const seedDowns: string[] = [];
    n.on('peer:down', (p) => p.id === seed.id && seedDowns.push(p.id));
    const since = sinceOf(n, seed.id);
    const first = attackers.length;
    await flood(cap + 2);
    await until('the second flood held at the cap', () => connectedCount(n) === cap && open(attackers) === cap - 1, events());
    assert.is(sinceOf(n, seed.id), since, 'the same seed connection');
    assert.equal(seedDowns, []);
    assert.ok(open(attackers.slice(first)) <= cap - 1);
    assert.is(attackers.length - open(attackers), attackers.length - (cap - 1), 'every other attacker was closed');
  } finally {
    raws.destroyAll();
    await cluster.stopAll();
  }
});

test('4. a seed pinned as host:port#nodeId that proves another id is refused; a correct pin connects', async () => {
  const cluster = new Cluster();
  try {
    const b = cluster.node();
    b.dataset('kv', Model);
    await b.start();
    const limiter = new ObservedLimiter();
    const impostor = cluster.node({ handshakeLimiter: limiter });
    impostor.dataset('kv', Model);
    await impostor.start();
    const impostorUps: string[] = [];
    impostor.on('peer:up', (p) => impostorUps.push(p.id!));

    // A expects B's id at the impostor's address: it hangs up once the impostor proves its own
    // (so the impostor bans A's address for the abandoned handshake: see test 1d).
    const a = cluster.node({ seeds: [`${impostor.address()}#${b.id}`] });
    a.dataset('kv', Model);
    const ups: string[] = [];
    a.on('peer:up', (p) => ups.push(p.id!));
    const settled = handled(next(limiter.events, 'released')); // the impostor's side of A's handshake ended
    await a.start();
    await settled;
    assert.equal(ups, []);
    assert.equal(a.members(), [], 'A learned no member');
    assert.equal(impostorUps, [], 'the impostor never got a connection');

    // C pins B correctly.
    const c = cluster.node({ seeds: [`${b.address()}#${b.id}`] });
    c.dataset('kv', Model);
    await c.start();
    await connectedTo(c, [b.id]);
    await until('C learns B from B', () => c.members().some((m) => m.id === b.id), [[c, ['member:new']]]);
    // A tried again meanwhile (or at least once): still nothing.
    assert.equal(ups, []);
    assert.equal(a.members(), []);
  } finally {
    await cluster.stopAll();
  }
});

test('5. a flood of silent dials from one address (127.0.0.1 and ::ffff:127.0.0.1 alike) is closed unread past the per-address limit; honest nodes connect afterwards', async () => {
  const cluster = new Cluster();
  const raws = new Raws();
  try {
    const limiter = new ObservedLimiter(); // 4 pending per address by default
    const n = cluster.node({ listen: '[::]:0', handshakeLimiter: limiter, channelLimits: { handshakeTimeoutMs: 30_000 } });
    n.dataset('kv', Model);
    await n.start();
    const port = Number(n.address()!.slice(n.address()!.lastIndexOf(':') + 1));
    // An honest member from 127.0.0.1 first: the address is proven, so the flood's failed
    // handshakes do not get it banned (as a NAT shared with honest members).
    const h0 = cluster.node({ seeds: [`127.0.0.1:${port}`] });
    await h0.start();
    await connectedTo(n, [h0.id]);
    const seen = watch(n);

    const dialRaw = (host: string): Promise<Socket> => new Promise((resolve) => {
      const s = raws.add(connect({ host, port }));
      s.on('error', () => {});
      s.once('connect', () => resolve(s));
      s.once('close', () => resolve(s));
    });
    const pending: Socket[] = [];
    for (const host of ['127.0.0.1', '::ffff:127.0.0.1', '127.0.0.1', '::ffff:127.0.0.1']) {
      const acquired = handled(next<[string]>(limiter.events, 'acquired'));
      pending.push(await dialRaw(host));
      assert.is((await acquired)[0], '127.0.0.1', `${host} counts as 127.0.0.1`);
    }
    for (const host of ['127.0.0.1', '::ffff:127.0.0.1', '::ffff:127.0.0.1', '127.0.0.1']) {
      const refused = handled(next<[string]>(limiter.events, 'refused'));
      const s = await dialRaw(host);
      assert.is((await refused)[0], '127.0.0.1');
      await closeOf(s);
      assert.is(s.bytesRead, 0, 'closed unread, nothing sent');
    }
    assert.is(limiter.pendingFor('127.0.0.1'), 4);
    assert.is(limiter.pendingFor('::ffff:127.0.0.1'), 0);
    assert.ok(pending.every((s) => !s.closed), 'the first 4 are still held');

    // The flood hangs up; honest nodes (both spellings) connect.
    const drained = handled(until('every flood handshake released', () => limiter.pending === 0, [[limiter.events, ['released']]]));
    for (const s of pending) s.destroy();
    await drained;
    const h1 = cluster.node({ seeds: [`127.0.0.1:${port}`] });
    const h2 = cluster.node({ seeds: [`[::ffff:127.0.0.1]:${port}`] });
    await Promise.all([h1.start(), h2.start()]);
    await connectedTo(n, [h0.id, h1.id, h2.id]);
    assert.equal(seen.bans, []);
  } finally {
    raws.destroyAll();
    await cluster.stopAll();
  }
});

test('6. a hello naming another node than the channel proved ends the connection and bans the peer (multiplexer and replication hellos)', async () => {
  const cluster = new Cluster();
  const raws = new Raws();
  try {
    const n = cluster.node();
    n.dataset('kv', Model);
    await n.start();
    const other = Identity.generate();

    // (a) The multiplexer hello, by hand over a raw channel.
    const liar = Identity.generate();
    const channel = await rawDial(raws, n.address()!, liar);
    const closed = closeOf(channel);
    const banned = handled(next<[BanInfo]>(n, 'peer:banned'));
    channel.write(encodeMuxHello(MUX_WINDOW_BYTES, other.id));
    const [ban] = await banned;
    assert.is(ban.id, liar.id);
    assert.match(ban.reason, /^multiplexer: .*another node/);
    await closed;

    // (b) The replication hello inside a session.
    const cheat = Identity.generate();
    const peer = await rawMux(raws, n.address()!, cheat, { name: 'kv' });
    const banned2 = handled(next<[BanInfo]>(n, 'peer:banned'));
    (await peer.session).attach(scripted(other.id, 'kv', []));
    const [ban2] = await banned2;
    assert.is(ban2.id, cheat.id);
    assert.match(ban2.reason, /wrong-peer/);
    await peer.closed;
    for (const id of [liar.id, cheat.id]) assert.ok(n.peers().some((p) => p.id === id && p.state === 'banned'));
    assert.not.ok(n.peers().some((p) => p.id === other.id));
  } finally {
    raws.destroyAll();
    await cluster.stopAll();
  }
});

test('7. on the public (all-zero) network key a dataset needs an explicit policy; with a private key the default is open', async () => {
  const nodes: Node[] = [];
  try {
    const implicit = new Node({ identity: Identity.generate() }); // no key: the public one
    const explicit = new Node({ identity: Identity.generate(), networkKey: PUBLIC_NETWORK_KEY });
    const zeros = new Node({ identity: Identity.generate(), networkKey: new Uint8Array(32) });
    nodes.push(implicit, explicit, zeros);
    for (const node of [implicit, explicit, zeros]) {
      assert.throws(() => node.dataset('x', Model), (e: Error) => e instanceof TypeError && /policy/.test(e.message));
      assert.throws(() => node.dataset('y', Events), (e: Error) => e instanceof TypeError && /policy/.test(e.message));
    }
    assert.is(implicit.dataset('x', Model, { policy: owner() }).policy.policyName, 'owner');

    const member = new Node({ identity: Identity.generate(), networkKey });
    nodes.push(member);
    const m = member.dataset('x', Model);
    assert.is(m.policy.policyName, 'open');
    await m.ready;
    const anyone = new Model({ identity: Identity.generate(), dataset: 'x' }).set('any/key', 1);
    assert.is((await m.ingest(anyone.bytes)).status, 'applied', 'any member may write any key');
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
  }
});

test('8. multiplexer abuse (junk messages, DATA beyond the credit window) bans the peer with a reason naming the multiplexer', async () => {
  const cluster = new Cluster();
  const raws = new Raws();
  try {
    const n = cluster.node();
    const kv = n.dataset('kv', Model);
    await n.start();

    // Junk: each from a fresh identity over a raw channel.
    const junk: Array<[string, Buffer[]]> = [
      ['unknown type', [Buffer.from([0x99, 0, 0])]],
      ['too short', [Buffer.from([5])]],
      ['DATA without a session', [encodeData(7, Buffer.from('x'))]],
      ['before the hello', [encodeCredit(0, 1)]],
    ];
    for (const [what, messages] of junk) {
      const id = Identity.generate();
      const channel = await rawDial(raws, n.address()!, id);
      const closed = closeOf(channel);
      const banned = handled(next<[BanInfo]>(n, 'peer:banned'));
      if (what !== 'before the hello') channel.write(encodeMuxHello(MUX_WINDOW_BYTES, id.id));
      for (const m of messages) channel.write(m);
      const [ban] = await banned;
      assert.is(ban.id, id.id, what);
      assert.match(ban.reason, /^multiplexer: /, what);
      await closed;
    }

    // Beyond the credit window: a peer that reads nothing (so the node's writes back up and it
    // cannot grant credit) and keeps sending DATA. ~10 MB of history is more than loopback
    // buffers hold, so the node's channel is surely backpressured.
    const value = 'v'.repeat(60_000);
    for (let i = 0; i < 170; i++) kv.set(`big${i}`, value);
    const flooder = Identity.generate();
    const peer = await rawMux(raws, n.address()!, flooder, { name: 'kv' }, 0xffffffff); // the node may send us everything
    await peer.session;
    peer.mux.destroy(); // from here on the test writes every message itself (our channel number for 'kv' is 0)
    peer.channel.pause(); // and reads nothing
    let ban: BanInfo | undefined;
    const banned = handled(next<[BanInfo]>(n, 'peer:banned').then(([b]) => (ban = b)));
    peer.channel.write(encodeData(0, replicationHello('kv', flooder.id))); // the node starts sending its history
    const partial = Buffer.alloc(4);
    partial.writeUInt32BE(15 * 1024 * 1024); // a replication message that never completes: the node's stream takes every byte
    peer.channel.write(encodeData(0, partial));
    const filler = encodeData(0, Buffer.alloc(MUX_MAX_DATA_BYTES));
    for (let sent = 0; ban === undefined && !peer.channel.destroyed && sent < 14 * 1024 * 1024; sent += MUX_MAX_DATA_BYTES) {
      if (!peer.channel.write(filler)) await Promise.race([new Promise<void>((r) => peer.channel.once('drain', () => r())), peer.closed]);
      await tick();
    }
    await banned;
    assert.is(ban!.id, flooder.id);
    assert.match(ban!.reason, /^multiplexer: DATA beyond the credit window/);
    assert.not.ok(connected(n, flooder.id));
    peer.channel.resume(); // reading again, it sees the node hung up
    await peer.closed;
  } finally {
    raws.destroyAll();
    await cluster.stopAll();
  }
});

test.run();
