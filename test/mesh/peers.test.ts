// The peer table: one connection per node, the same verdict at both ends of a simultaneous dial
// (each side sees the directions mirrored), the newer of two same-direction connections, and
// which connections a full node sheds (never ours, never seeds, never the oldest inbound).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { SecureChannel } from '../../src/channel/secure-channel.ts';
import { Identity } from '../../src/identity/identity.ts';
import type { NodeId } from '../../src/identity/node-id.ts';
import type { Mux } from '../../src/mesh/mux.ts';
import { keepsNew, PeerTable, type Connection } from '../../src/mesh/peers.ts';
import { Prng, testSeed } from '../helpers/prng.ts';

const ids = Array.from({ length: 4 }, () => Identity.generate().id).sort();
const [LOW, HIGH, THIRD] = ids as [NodeId, NodeId, NodeId];

/** A connection as the table sees it (the channel and mux are never touched by it). */
function conn(id: NodeId, direction: 'in' | 'out', since: number, extra: Partial<Connection> = {}): Connection {
  return {
    id, direction, since, channel: {} as SecureChannel, mux: {} as Mux, ip: '192.0.2.1', address: `192.0.2.1:${1000 + since}`,
    seed: false, replaced: false, announced: false, ...extra,
  };
}

/** One TCP connection seen from both ends: the dialer sees 'out', the other 'in'. */
function link(dialer: NodeId, listener: NodeId, since: number): { at: (self: NodeId) => Connection } {
  const views = new Map<NodeId, Connection>([
    [dialer, conn(listener, 'out', since)],
    [listener, conn(dialer, 'in', since)],
  ]);
  return { at: (self) => views.get(self)! };
}

// ---- keepsNew ------------------------------------------------------------------------------------

test('simultaneous dial: both ends keep the same connection (the one the smaller id dialed), for both id orders and arrival orders', () => {
  for (const [a, b] of [[LOW, HIGH], [HIGH, LOW]] as const) {
    const fromA = link(a, b, 1); // a dialed b
    const fromB = link(b, a, 2); // b dialed a
    const winner = a < b ? fromA : fromB;
    for (const self of [a, b]) {
      // Arrival order differs between the two ends; each order must reach the same verdict.
      const keptIfAFirst = keepsNew(self, fromA.at(self), fromB.at(self)) ? fromB : fromA;
      const keptIfBFirst = keepsNew(self, fromB.at(self), fromA.at(self)) ? fromA : fromB;
      assert.is(keptIfAFirst, winner, `at ${self === LOW ? 'LOW' : 'HIGH'}, a=${a === LOW ? 'LOW' : 'HIGH'}, a's dial first`);
      assert.is(keptIfBFirst, winner, `at ${self === LOW ? 'LOW' : 'HIGH'}, a=${a === LOW ? 'LOW' : 'HIGH'}, b's dial first`);
    }
  }
});

test('simultaneous dial through PeerTable at both ends: one live connection survives, the same one', () => {
  const fromLow = link(LOW, HIGH, 1);
  const fromHigh = link(HIGH, LOW, 2);
  const atLow = new PeerTable(LOW);
  const atHigh = new PeerTable(HIGH);
  // LOW completes its own dial first; HIGH completes LOW's dial last.
  assert.equal(atLow.add(fromLow.at(LOW)), { result: 'added' });
  assert.equal(atLow.add(fromHigh.at(LOW)), { result: 'rejected' });
  assert.equal(atHigh.add(fromHigh.at(HIGH)), { result: 'added' });
  const r = atHigh.add(fromLow.at(HIGH));
  assert.is(r.result, 'replaces');
  assert.is((r as { old: Connection }).old, fromHigh.at(HIGH));
  assert.ok(fromHigh.at(HIGH).replaced, 'the displaced one is marked, so its close is not a peer:down');
  assert.is(atLow.get(HIGH), fromLow.at(LOW));
  assert.is(atHigh.get(LOW), fromLow.at(HIGH));
});

test('same direction twice (the dialer redialed): both ends keep the newer', () => {
  for (const [a, b] of [[LOW, HIGH], [HIGH, LOW]] as const) {
    const first = link(a, b, 1);
    const second = link(a, b, 2);
    for (const self of [a, b]) assert.ok(keepsNew(self, first.at(self), second.at(self)), 'the newer replaces the older');
    const table = new PeerTable(b);
    table.add(first.at(b));
    const r = table.add(second.at(b));
    assert.is(r.result, 'replaces');
    assert.is(table.get(a), second.at(b));
    assert.is(table.size, 1);
  }
});

// ---- add / remove --------------------------------------------------------------------------------

test('add: added, then a rejected one changes nothing (not marked replaced)', () => {
  const table = new PeerTable(LOW);
  const mine = conn(HIGH, 'out', 1);
  assert.equal(table.add(mine), { result: 'added' });
  const theirs = conn(HIGH, 'in', 2);
  assert.equal(table.add(theirs), { result: 'rejected' });
  assert.is(table.get(HIGH), mine);
  assert.not.ok(mine.replaced);
  assert.not.ok(theirs.replaced);
  assert.is(table.size, 1);
  assert.is(table.outbound, 1);
});

test('remove only removes the current connection of its node', () => {
  const table = new PeerTable(HIGH);
  const old = conn(LOW, 'in', 1);
  const fresh = conn(LOW, 'in', 2);
  table.add(old);
  table.add(fresh);
  assert.not.ok(table.remove(old), 'the displaced connection closing later must not remove its successor');
  assert.is(table.get(LOW), fresh);
  assert.ok(table.remove(fresh));
  assert.not.ok(table.remove(fresh));
  assert.is(table.size, 0);
  assert.is(table.get(LOW), undefined);
});

test('size, outbound, countIp and all() follow adds and removes', () => {
  const table = new PeerTable(THIRD);
  const a = conn(LOW, 'out', 1, { ip: '10.0.0.1' });
  const b = conn(HIGH, 'in', 2, { ip: '10.0.0.1' });
  const c = conn(ids[3]!, 'in', 3, { ip: '10.0.0.2' });
  for (const x of [a, b, c]) table.add(x);
  assert.is(table.size, 3);
  assert.is(table.outbound, 1);
  assert.is(table.countIp('10.0.0.1'), 2);
  assert.is(table.countIp('10.0.0.3'), 0);
  assert.equal(new Set(table.all()), new Set([a, b, c]));
  table.remove(a);
  assert.is(table.outbound, 0);
  assert.is(table.countIp('10.0.0.1'), 1);
});

// ---- surplus -------------------------------------------------------------------------------------

/** A table of `self` holding the given connections, each to a fresh id. */
function tableOf(specs: Array<{ direction: 'in' | 'out'; since: number; seed?: boolean }>): { table: PeerTable; all: Connection[] } {
  const table = new PeerTable(LOW);
  const all = specs.map((s, i) => conn(`peer${i}`, s.direction, s.since, { seed: s.seed ?? false }));
  for (const c of all) assert.is(table.add(c).result, 'added');
  return { table, all };
}

test('surplus: nothing while at or under maxPeers', () => {
  const { table } = tableOf(Array.from({ length: 8 }, (_, i) => ({ direction: 'in' as const, since: i })));
  assert.equal(table.surplus(8, 4, () => 0), []);
  assert.equal(table.surplus(9, 4, () => 0), []);
});

test('surplus never picks outbound, seeds or the maxPeers/2 oldest inbound, and picks exactly size - maxPeers when it can', () => {
  const seed = testSeed();
  const prng = new Prng(seed);
  for (let trial = 0; trial < 300; trial++) {
    const maxPeers = 1 + prng.int(12);
    const n = maxPeers + 1 + prng.int(20);
    const specs = Array.from({ length: n }, () => ({
      direction: prng.next() < 0.3 ? ('out' as const) : ('in' as const), since: prng.int(1000), seed: prng.next() < 0.1,
    }));
    const { table, all } = tableOf(specs);
    const victims = table.surplus(maxPeers, Math.floor(maxPeers / 2), () => prng.next());
    const inbound = all.filter((c) => c.direction === 'in' && !c.seed).sort((x, y) => x.since - y.since);
    const protectedOld = new Set(inbound.slice(0, Math.floor(maxPeers / 2)));
    const where = `seed ${seed}, trial ${trial}, maxPeers ${maxPeers}`;
    assert.is(new Set(victims).size, victims.length, `${where}: no victim twice`);
    for (const v of victims) {
      assert.is(v.direction, 'in', `${where}: an outbound connection picked`);
      assert.not.ok(v.seed, `${where}: a seed picked`);
      assert.not.ok(protectedOld.has(v), `${where}: one of the oldest inbound picked`);
      // Protection goes by age: every victim is at least as young as every protected connection.
      for (const p of protectedOld) assert.ok(v.since >= p.since, `${where}: a victim older than a protected one`);
    }
    const eligible = inbound.length - protectedOld.size;
    assert.is(victims.length, Math.min(n - maxPeers, eligible), `${where}: ${n} connections, ${eligible} eligible`);
    assert.is(table.size, n, `${where}: surplus only chooses; the caller closes`);
  }
});

test('surplus: the oldest inbound are protected by age, not by arrival order in the table', () => {
  // Added youngest first: a table in insertion order would protect the wrong ones.
  const { table, all } = tableOf([
    { direction: 'in', since: 50 }, { direction: 'in', since: 40 }, { direction: 'in', since: 30 },
    { direction: 'in', since: 20 }, { direction: 'in', since: 10 },
  ]);
  const victims = table.surplus(4, 2, () => 0); // protects the 2 oldest (10, 20); 1 victim
  assert.is(victims.length, 1);
  assert.ok(victims[0]!.since >= 30);
  assert.not.ok(victims.includes(all[4]!) || victims.includes(all[3]!));
});

test('surplus with only protected connections over the limit picks none', () => {
  const { table } = tableOf([
    { direction: 'out', since: 5 }, { direction: 'out', since: 6 }, { direction: 'out', since: 7 },
    { direction: 'in', since: 1, seed: true }, { direction: 'in', since: 2 },
  ]);
  assert.equal(table.surplus(2, 1, () => 0), [], '3 outbound, a seed, and the one oldest inbound (maxPeers/2 = 1)');
});

test('a flood of new inbound connections mostly evicts itself; the oldest inbound and outbound all stay', () => {
  const seed = testSeed();
  const prng = new Prng(seed);
  const maxPeers = 8;
  // 2 outbound and 6 inbound peers that have been with us for a while.
  const table = new PeerTable(LOW);
  const honest: Connection[] = [];
  for (let i = 0; i < 8; i++) {
    const c = conn(`honest${i}`, i < 2 ? 'out' : 'in', i);
    honest.push(c);
    table.add(c);
  }
  // 200 rounds; each, an attacker opens 4 more inbound connections (what the node admits past
  // maxPeers) and the round trims to maxPeers.
  let floodEvicted = 0;
  let honestEvicted = 0;
  let t = 1000;
  for (let round = 0; round < 200; round++) {
    for (let k = 0; k < 4; k++) table.add(conn(`flood${round}-${k}`, 'in', t++));
    for (const victim of table.surplus(maxPeers, Math.floor(maxPeers / 2), () => prng.next())) {
      if (victim.id.startsWith('flood')) floodEvicted++;
      else honestEvicted++;
      table.remove(victim);
    }
    assert.is(table.size, maxPeers, `seed ${seed}: trimmed to maxPeers`);
  }
  // The 2 outbound and the 4 oldest inbound are never evicted.
  for (const c of honest.slice(0, 6)) assert.is(table.get(c.id), c, `seed ${seed}: ${c.id} evicted`);
  // At most the 2 unprotected honest inbound are ever evicted; every other eviction is the flood's own.
  assert.ok(honestEvicted <= 2, `seed ${seed}: ${honestEvicted} honest evicted`);
  assert.is(floodEvicted + honestEvicted, 800);
  assert.ok(floodEvicted / 800 > 0.99, `seed ${seed}: ${floodEvicted} of 800 evictions were the flood's`);
});

test.run();
