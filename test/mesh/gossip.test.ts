// chooseTarget, the gossip scheduler's pure choice, with its randomness injected: seeds while
// fewer members are alive than seeds (or nothing of ours is connected), nothing once full,
// reserved outbound slots however many peers dialed us, a dead member with probability
// dead / (live + 1), and empty lists.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chooseTarget, type DialTarget, type GossipRound } from '../../src/mesh/gossip.ts';
import { Prng, testSeed } from '../helpers/prng.ts';

const target = (name: string, seed = false): DialTarget => ({ address: `${name}:7420`, host: name, port: 7420, id: undefined, seed });
const seeds = (n: number): DialTarget[] => Array.from({ length: n }, (_, i) => target(`seed${i}`, true));
const live = (n: number): DialTarget[] => Array.from({ length: n }, (_, i) => target(`live${i}`));
const dead = (n: number): DialTarget[] => Array.from({ length: n }, (_, i) => target(`dead${i}`));

/** A `random` that returns `values` in turn and fails the test if asked once more. */
function scripted(...values: number[]): () => number {
  let i = 0;
  return () => {
    if (i >= values.length) throw new Error(`random() called ${i + 1} times; scripted ${values.length}`);
    return values[i++]!;
  };
}

/** A `random` that must not be called. */
const never = (): number => {
  throw new Error('random() called');
};

function round(overrides: Partial<GossipRound>): GossipRound {
  return {
    seeds: [], live: [], dead: [], connected: 0, outbound: 0, seedConnected: false, maxPeers: 8, reservedOutbound: 2, random: never,
    seedCount: overrides.seeds?.length ?? 0, liveMembers: overrides.live?.length ?? 0,
    ...overrides,
  };
}

const kind = (t: DialTarget | null): string => (t === null ? 'none' : t.host.replace(/\d+$/, ''));

// ---- seeds ---------------------------------------------------------------------------------------

test('a seed while fewer members are alive than there are seeds (gossipmonger), or with nothing connected', () => {
  const s = seeds(3);
  // Nothing connected: a seed, even with live members to dial.
  assert.is(chooseTarget(round({ seeds: s, live: live(5), connected: 0, random: scripted(0) })), s[0]);
  // Two members alive, three seeds: a seed.
  assert.is(chooseTarget(round({ seeds: s, live: live(2), connected: 2, outbound: 2, seedConnected: true, random: scripted(0.99) })), s[2]);
  // As many members alive as there are seeds: a live member instead.
  assert.is(kind(chooseTarget(round({ seeds: s, live: live(3), connected: 3, outbound: 2, seedConnected: true, random: scripted(0) }))), 'live');
  // Members alive count, not just the dialable ones: 5 alive (all connected) and 3 seeds: no seed.
  assert.is(kind(chooseTarget(round({ seeds: s, live: live(1), liveMembers: 5, connected: 4, outbound: 2, seedConnected: true, random: scripted(0) }))), 'live');
});

test('the seed is picked uniformly by the injected random number', () => {
  const s = seeds(4);
  for (let i = 0; i < 4; i++) assert.is(chooseTarget(round({ seeds: s, random: scripted(i / 4 + 0.01) })), s[i]);
});

test('with nothing we dialed and no seed connected, a seed comes first; one backing off gives way to members', () => {
  const s = seeds(1);
  // 5 connected, all inbound, many members alive: a seed, not one of the live members.
  assert.is(chooseTarget(round({ seeds: s, live: live(5), dead: dead(5), connected: 5, outbound: 0, random: scripted(0) })), s[0]);
  // Same, but a seed is connected already: a member.
  assert.is(kind(chooseTarget(round({ seeds: s, live: live(5), connected: 5, outbound: 0, seedConnected: true, random: scripted(0.99, 0) }))), 'live');
  // One outbound connection of our own: a member (the seeds are not every rejoin's bottleneck).
  assert.is(kind(chooseTarget(round({ seeds: s, live: live(5), connected: 5, outbound: 1, random: scripted(0.99, 0) }))), 'live');
  // The seed is backing off (not dialable), though configured: a member.
  assert.is(kind(chooseTarget(round({ seeds: [], seedCount: 1, live: live(5), connected: 5, outbound: 0, random: scripted(0.99, 0) }))), 'live');
});

// ---- when to stop dialing ------------------------------------------------------------------------

test('no dial once maxPeers are connected and the reserved outbound slots are ours', () => {
  const full = { seeds: seeds(2), live: live(5), dead: dead(5), random: never };
  assert.is(chooseTarget(round({ ...full, connected: 8, outbound: 2 })), null);
  assert.is(chooseTarget(round({ ...full, connected: 8, outbound: 8, seedConnected: true })), null);
  assert.is(chooseTarget(round({ ...full, connected: 12, outbound: 3 })), null, 'beyond maxPeers');
  assert.is(chooseTarget(round({ ...full, connected: 1, outbound: 1, maxPeers: 1, reservedOutbound: 1 })), null);
});

test('one below maxPeers still dials', () => {
  const t = chooseTarget(round({ seeds: seeds(1), live: live(3), connected: 7, outbound: 2, seedConnected: true, random: scripted(0.99, 0) }));
  assert.is(kind(t), 'live');
});

test('eclipse resistance: inbound peers filling maxPeers do not stop our reserved outbound dials', () => {
  const s = seeds(2);
  // 8 inbound, none ours: a seed (none connected).
  assert.is(kind(chooseTarget(round({ seeds: s, live: live(3), connected: 8, outbound: 0, random: scripted(0) }))), 'seed');
  // 12 (beyond maxPeers with the inbound surplus), one of them ours and it is a seed: a member.
  assert.is(kind(chooseTarget(round({ seeds: s, live: live(3), connected: 12, outbound: 1, seedConnected: true, random: scripted(0.5, 0) }))), 'live');
  // No seed to dial: a member fills the slot.
  assert.is(kind(chooseTarget(round({ live: live(3), connected: 8, outbound: 1, random: scripted(0) }))), 'live');
  // The second reserved slot filled: stop.
  assert.is(chooseTarget(round({ seeds: s, live: live(3), connected: 9, outbound: 2, random: never })), null);
  // Reserved slots are bounded by what the caller says (a node with maxPeers 1 reserves 1).
  assert.is(chooseTarget(round({ seeds: s, connected: 1, outbound: 0, maxPeers: 1, reservedOutbound: 1, random: scripted(0) })), s[0]);
});

// ---- dead members --------------------------------------------------------------------------------

test('a dead member when random() < dead / (live + 1), else a live one (boundary exact)', () => {
  const l = live(3);
  const d = dead(2);
  const base = { live: l, dead: d, connected: 4, outbound: 4 };
  // 2 / (3 + 1) = 0.5: just under picks dead, exactly 0.5 picks live.
  assert.is(chooseTarget(round({ ...base, random: scripted(0.4999, 0.75) })), d[1]);
  assert.is(chooseTarget(round({ ...base, random: scripted(0.5, 0.75) })), l[2]);
  assert.is(chooseTarget(round({ ...base, random: scripted(0, 0) })), d[0]);
  assert.is(chooseTarget(round({ ...base, random: scripted(0.9999, 0) })), l[0]);
});

test('more dead than live + 1: always a dead member', () => {
  const d = dead(5);
  for (const r of [0, 0.5, 0.9999]) assert.is(kind(chooseTarget(round({ live: live(2), dead: d, connected: 4, outbound: 4, random: scripted(r, 0) }))), 'dead');
});

test('dead members are chosen with frequency dead / (live + 1) over many rounds (seeded)', () => {
  const seed = testSeed();
  const prng = new Prng(seed);
  const random = () => prng.next();
  for (const [nLive, nDead] of [[1, 1], [3, 1], [9, 2], [4, 4], [7, 3]] as const) {
    const l = live(nLive);
    const d = dead(nDead);
    const expected = Math.min(1, nDead / (nLive + 1));
    const draws = 20_000;
    let deadCount = 0;
    const perTarget = new Map<DialTarget, number>();
    for (let i = 0; i < draws; i++) {
      const t = chooseTarget(round({ live: l, dead: d, connected: 4, outbound: 4, random }))!;
      if (d.includes(t)) deadCount++;
      perTarget.set(t, (perTarget.get(t) ?? 0) + 1);
    }
    // Binomial standard deviation is at most 0.0036 here; 5 of them is a 1-in-a-million miss.
    const sd = Math.sqrt((expected * (1 - expected)) / draws);
    assert.ok(Math.abs(deadCount / draws - expected) <= 5 * sd + 1e-9, `seed ${seed}: ${nLive} live, ${nDead} dead: dead ${deadCount / draws}, expected ${expected}`);
    // And within each list, every target is reached.
    for (const t of [...l, ...d]) assert.ok((perTarget.get(t) ?? 0) > 0, `seed ${seed}: ${t.host} never chosen`);
  }
});

// ---- empty lists ---------------------------------------------------------------------------------

test('fallbacks: no live member means a dead one (no coin tossed); no member means a seed; nothing means null', () => {
  const d = dead(3);
  assert.is(chooseTarget(round({ dead: d, connected: 4, outbound: 4, random: scripted(0.7) })), d[2], 'one draw: the pick, no coin');
  const l = live(2);
  assert.is(chooseTarget(round({ live: l, connected: 4, outbound: 4, random: scripted(0.6) })), l[1], 'no dead: one draw, the pick');
  const s = seeds(2);
  // Not in need of a seed (connected >= seeds, outbound satisfied), but nobody else to dial.
  assert.is(chooseTarget(round({ seeds: s, connected: 4, outbound: 4, seedConnected: true, random: scripted(0.6) })), s[1]);
  assert.is(chooseTarget(round({ connected: 0, random: never })), null);
  assert.is(chooseTarget(round({ connected: 4, outbound: 4, seedConnected: true, random: never })), null);
  // In need of a seed but none is dialable: members instead.
  assert.is(chooseTarget(round({ live: l, connected: 0, random: scripted(0) })), l[0]);
});

test('the round is not modified', () => {
  const r = round({ seeds: seeds(2), live: live(2), dead: dead(2), connected: 3, outbound: 1, random: scripted(0.1, 0.1) });
  const before = JSON.stringify(r);
  chooseTarget(r);
  assert.is(JSON.stringify(r), before);
});

test.run();
