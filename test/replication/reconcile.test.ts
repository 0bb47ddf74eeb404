// Withholding-proof anti-entropy (issue 11): whatever relays withheld, reordered or split, nodes
// that then hold one session with an honest peer end with the same state; an equivocating source
// is found at any version and resolved alike everywhere. Seeded: a failure prints its seed
// (SIGNET_SEED=<seed> replays it).
import { Transform } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Model, signUpdate, type Update } from '../../src/index.ts';
import { Prng, testSeed } from '../helpers/prng.ts';
import { deadline } from '../helpers/streams.ts';
import { identity, testClock, fakeOrigin, syncOnce, connect, T0 } from '../core/helpers.ts';

const NODES = 6;

/** Hands `to` what `from` holds, as a relay that withholds a random subset and sends the rest in
 *  a random order (sometimes newest first): what such a relay would do to the live tail. */
async function withholdingRelay(rng: Prng, from: Model, to: Model, keep: number): Promise<void> {
  const all = from.reconcileSet();
  const sent = all.filter(() => rng.next() < keep);
  if (rng.next() < 0.5) sent.reverse();
  else for (let i = sent.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [sent[i], sent[j]] = [sent[j]!, sent[i]!];
  }
  await Promise.all(sent.map((u) => to.ingest(u.bytes, fakeOrigin())));
}

/** One honest session of each node with a hub, twice round (everything reaches the hub, then
 *  everyone): each pair holds one ordinary replication session, reconciliation included. */
async function honestRound(hub: Model, others: Model[]): Promise<void> {
  for (const m of others) await syncOnce(hub, m);
  for (const m of others) await syncOnce(hub, m);
}

test('property: 6 nodes, thousands of writes, deletes and TTL writes through withholding relays; one honest session each and every state is equal', async () => {
  const seed = testSeed();
  const rng = new Prng(seed);
  const clock = testClock();
  const models = Array.from({ length: NODES }, (_, i) => new Model({ identity: identity(0x90 + i), now: clock.now }));
  await Promise.all(models.map((m) => m.ready));
  const keys = Array.from({ length: 200 }, (_, i) => `k${i}`);
  try {
    let writes = 0;
    for (let round = 0; round < 10; round++) {
      for (let w = 0; w < 250; w++) {
        const m = rng.pick(models);
        const key = rng.pick(keys);
        const r = rng.next();
        if (r < 0.15) m.delete(key);
        else if (r < 0.3) m.set(key, rng.int(1e6), { ttl: 1 + rng.int(60_000) });
        else m.set(key, rng.int(1e6));
        writes++;
        clock.advanceMs(1 + rng.int(5));
      }
      // Every link relays this round through a relay that withholds a fresh random subset; some
      // relays are honest (keep everything).
      for (const from of models) {
        for (const to of models) {
          if (from === to || rng.next() < 0.3) continue;
          await withholdingRelay(rng, from, to, rng.next() < 0.2 ? 1 : 0.3 + 0.6 * rng.next());
        }
      }
    }
    assert.ok(writes >= 2000);
    const before = new Set(models.map((m) => m.stateHash()));
    assert.ok(before.size > 1, `seed ${seed}: the relays left the nodes apart (else the test proves nothing)`);
    await honestRound(models[0]!, models.slice(1));
    const hashes = models.map((m) => m.stateHash());
    assert.is(new Set(hashes).size, 1, `seed ${seed}: states differ after the honest round: ${hashes.map((h) => h.slice(0, 8)).join(' ')}`);
    const sets = models.map((m) => m.reconcileSet().map((u) => u.hashHex).join());
    assert.is(new Set(sets).size, 1, `seed ${seed}: the reconciled sets differ`);
  } finally {
    for (const m of models) m.dispose();
  }
});

test('an equivocating source (two updates at random versions, some below its latest) against 5 honest nodes: the same state and the same evidence everywhere', async () => {
  const seed = testSeed();
  const rng = new Prng(seed);
  const clock = testClock();
  const honest = Array.from({ length: 5 }, (_, i) => new Model({ identity: identity(0xa0 + i), now: clock.now }));
  await Promise.all(honest.map((m) => m.ready));
  const E = identity(0xaf);
  try {
    // E writes 40 versions; at 10 of them (below its latest too) it signs two different updates.
    const updates: Update[] = [];
    const twice = new Set<number>();
    while (twice.size < 10) twice.add(rng.int(40));
    // Its ordinary writes overwrite a few keys; the two sides of an equivocation write keys of
    // their own (one key for both, or one each), which nothing overwrites: some node holds them.
    for (let i = 0; i < 40; i++) {
      const version = T0 - 100_000 + i * 10;
      if (!twice.has(i)) {
        updates.push(signUpdate(E, { dataset: 'default', version, body: ['set', `e${rng.int(8)}`, i] }));
        continue;
      }
      const same = rng.next() < 0.5;
      updates.push(signUpdate(E, { dataset: 'default', version, body: ['set', `p${i}`, i + 1] }));
      updates.push(signUpdate(E, { dataset: 'default', version, body: ['set', same ? `p${i}` : `q${i}`, -(i + 1)] }));
    }
    // Each honest node gets a random part of them, in a random order, and writes a little itself.
    const delivered = new Set<string>();
    for (const m of honest) {
      const part = updates.filter(() => rng.next() < 0.5);
      for (const u of part) delivered.add(u.hashHex);
      for (let i = part.length - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        [part[i], part[j]] = [part[j]!, part[i]!];
      }
      for (const u of part) await m.ingest(u.bytes, fakeOrigin());
      m.set(`own-${m.id.slice(0, 4)}`, rng.int(100));
    }
    await honestRound(honest[0]!, honest.slice(1));
    const hashes = honest.map((m) => m.stateHash());
    assert.is(new Set(hashes).size, 1, `seed ${seed}: states differ`);
    const evidence = honest.map((m) =>
      m.equivocations().map((e) => `${e.version}:${e.updates.map((u) => u.hashHex).sort().join('+')}`).sort().join(' '));
    assert.is(new Set(evidence).size, 1, `seed ${seed}: evidence differs`);
    // Every pair both of whose sides reached some node is found (a side no node got exists nowhere).
    const versions = new Map<number, number>();
    for (const u of updates) if (delivered.has(u.hashHex)) versions.set(u.version, (versions.get(u.version) ?? 0) + 1);
    const meetable = [...versions.values()].filter((n) => n === 2).length;
    assert.ok(meetable >= 5, `seed ${seed}: only ${meetable} pairs delivered (the test proves little)`);
    assert.is(honest[0]!.equivocations().length, meetable, `seed ${seed}: every equivocation found`);
  } finally {
    for (const m of honest) m.dispose();
  }
});

test('a relay that sends the live tail newest first costs nothing for good: the next reconciliation repairs it', async () => {
  const clock = testClock();
  const s = new Model({ identity: identity(0xb1), now: clock.now });
  const victim = new Model({ identity: identity(0xb2), now: clock.now });
  await Promise.all([s.ready, victim.ready]);
  try {
    const written: Update[] = [];
    for (let i = 0; i < 5; i++) {
      written.push(s.set(`r${i}`, i));
      clock.advanceMs(1);
    }
    // Newest first, and the relay drops the oldest two on the way.
    for (const u of written.slice(2).reverse()) await victim.ingest(u.bytes, fakeOrigin());
    assert.not.ok(victim.has('r0'));
    await syncOnce(s, victim);
    for (let i = 0; i < 5; i++) assert.is(victim.get(`r${i}`), i);
    assert.is(victim.stateHash(), s.stateHash());
  } finally {
    s.dispose();
    victim.dispose();
  }
});

test('a long-lived stream reconciles again once its live tail is quiet: what a relay dropped from the tail arrives without reconnecting', async () => {
  const clock = testClock();
  // The side with the lower node id starts sessions; it is the one whose tail the relay cuts.
  const [a, b] = [identity(0xb3), identity(0xb4)].sort((x, y) => (x.id < y.id ? -1 : 1)).map((id) => new Model({ identity: id, now: clock.now }));
  const source = new Model({ identity: identity(0xb5), now: clock.now });
  await Promise.all([a!.ready, b!.ready, source.ready]);
  // a holds one update of the source before they connect: its history names the source's key,
  // so the frame the relay drops later refers to it by index and only that update is lost.
  const named = source.set('w', 'sent in history');
  clock.advanceMs(1);
  assert.is((await a!.ingest(named.bytes, fakeOrigin())).status, 'applied');
  const older = source.set('x', 'withheld');
  clock.advanceMs(1);
  const newer = source.set('y', 'relayed');
  let dropped = 0;
  const pair = connect(a!, b!, { a: { reconcileQuietMs: 20 }, b: { reconcileQuietMs: 20 }, middle: dropFirst(older.bytes, () => dropped++) });
  try {
    await pair.synced;
    const sessions: number[] = [];
    pair.sa.on('reconciled', (r) => sessions.push(r.have));
    const repaired = new Promise<void>((resolve) => b!.on('update', () => (b!.get('x') === 'withheld' ? resolve() : undefined)));
    await b!.ingest(newer.bytes, fakeOrigin()); // b's clock covers `older` from now on
    await a!.ingest(older.bytes, fakeOrigin()); // forwarded on a's tail, and dropped by the relay
    await deadline(repaired, 'the withheld update repaired by reconciliation', 10_000);
    assert.is(dropped, 1, 'the relay dropped it from the tail');
    assert.ok(sessions.length >= 1 && sessions.some((have) => have >= 1), `a session found it: ${sessions}`);
    assert.is(b!.stateHash(), a!.stateHash());
  } finally {
    pair.destroy();
    for (const m of [a!, b!, source]) m.dispose();
  }
});

/** A relay on the wire (replication frames) that drops the first message carrying `envelope`. */
function dropFirst(envelope: Uint8Array, onDrop: () => void): Transform {
  let buf = Buffer.alloc(0);
  let done = false;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const n = buf.readUInt32BE(0);
        const message = buf.subarray(0, 4 + n);
        buf = buf.subarray(4 + n);
        // The signature: the part of an envelope every wire form carries as it is.
        if (!done && message.indexOf(Buffer.from(envelope.subarray(envelope.length - 64))) >= 0) {
          done = true;
          onDrop();
          continue;
        }
        this.push(message);
      }
      cb();
    },
  });
}

test.run();
