// Review of withholding-proof reconciliation (issue 11): the paths added for updates below a
// source's clock (superseded arrivals kept as evidence, sources forgotten on release, evidence
// pinned in the store) and protocol 2 reconciliation sessions. Each test shows one finding; a
// test that fails today is marked `test.skip(` with what it shows, so the suite stays green.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Events, MemoryStore, Model, signUpdate, writers, type Update } from '../../src/index.ts';
import { ReconcileSession, newNonce } from '../../src/reconcile/index.ts';
import { encodeMessage } from '../../src/reconcile/messages.ts';
import { INFINITY_BOUND } from '../../src/reconcile/items.ts';
import { encodeHello, encodeReconcile, encodeSync } from '../../src/replication/messages.ts';
import { Identity } from '../../src/index.ts';
import { identity, testClock, fakeOrigin, T0 } from '../core/helpers.ts';
import { connect, deadline, synced } from '../helpers/streams.ts';
import { Prng } from '../helpers/prng.ts';
import { twoSets, SALT, run } from '../reconcile/helpers.ts';
import type { ReconcileSummary } from '../../src/replication/reconciler.ts';

const Y = identity(0xa1); // the one writer a writers() dataset allows
const V = identity(0xa2); // honest victim
const P = identity(0xa3); // honest peer
const S = identity(0xa4); // equivocating writer
const W = identity(0xa5); // honest writer

const set = (signer: typeof Y, version: number, key: string, value: unknown): Update =>
  signUpdate(signer, { dataset: 'default', version, body: ['set', key, value] });


/** Runs streams between `x` and `y` until both sides have ended `n` sessions; returns, per
 *  session, the differences found on both sides together (have + need of each). */
async function sessions(x: Parameters<typeof connect>[0], y: Parameters<typeof connect>[1], n: number): Promise<{ found: number[]; sent: number }> {
  const opts = { reconcileQuietMs: 0, reconcileIntervalMs: 20 };
  const [sx, sy] = connect(x, y, opts, opts);
  const found: number[] = [];
  const ended = [0, 0];
  const done = new Promise<void>((resolve) => {
    [sx, sy].forEach((s, i) => s.on('reconciled', (r: ReconcileSummary) => {
      found[r.session - 1] = (found[r.session - 1] ?? 0) + r.have + r.need;
      ended[i] = r.session;
      if (ended[0]! >= n && ended[1]! >= n) resolve();
    }));
  });
  await Promise.all([synced(sx), synced(sy)]);
  await deadline(done, `${n} sessions`, 10_000);
  const sent = sx.stats.sent + sy.stats.sent;
  sx.destroy();
  sy.destroy();
  return { found: found.slice(0, n), sent };
}

// ---------------------------------------------------------------------------------------------
// Finding 1 (high): supersededArrival skips the write policy. cheapChecks returns 'superseded'
// before it asks the policy, and supersededArrival then verifies a pair at one source and
// version and keeps both as evidence (held, stored, in history() and the reconciled set,
// forwarded). So a source the policy forbids (writers([Y]) here) gets as many updates as it likes
// into every honest node's store: each minted identity 16 pairs before quarantine, and
// identities are free. Those honest nodes then relay them, and a peer that does not hold the
// winning key (so does not see them as superseded) refuses them `forbidden` and charges the
// honest relay: 33 pairs cut it (`fault-budget`, which the mesh bans).
// ---------------------------------------------------------------------------------------------
test('policy: a forbidden source cannot get updates into the store as "evidence", nor get an honest relay cut', async () => {
  const clock = testClock();
  const policy = writers([Y.id]);
  const store = new MemoryStore();
  const victim = new Model({ identity: V, now: clock.now, policy, store });
  const peer = new Model({ identity: P, now: clock.now, policy });
  await Promise.all([victim.ready, peer.ready]);
  // The writer Y wrote key k; the victim holds it.
  assert.is((await victim.ingest(set(Y, T0 - 1_000_000, 'k', 'owner').bytes, fakeOrigin())).status, 'applied');
  const before = store.size('default');
  // Three identities the policy forbids, 16 equivocating pairs each, all for key k below Y's write.
  const origin = fakeOrigin();
  for (let s = 0; s < 3; s++) {
    const X = identity(0xc0 + s);
    for (let i = 1; i <= 16; i++) {
      const v = T0 - 10_000_000 + i;
      await victim.ingest(set(X, v, 'k', `a${i}`).bytes, origin);
      await victim.ingest(set(X, v, 'k', `b${i}`).bytes, origin);
    }
  }
  const forbiddenSources = victim.equivocations().filter((e) => e.source !== Y.id).length;
  const heldExtra = store.size('default') - before;
  // An honest peer that does not hold k yet syncs with the victim.
  const [sv, sp] = connect(victim, peer, { tail: false, reconcileQuietMs: 0, reconcileIntervalMs: 0 }, { tail: false, reconcileQuietMs: 0, reconcileIntervalMs: 0 });
  const cut = await deadline(new Promise<string | null>((resolve) => {
    sp.once('cut', (r) => resolve(r.reason));
    sp.once('close', () => resolve(sp.closeReason?.reason ?? null));
  }), 'the peer stream to end');
  sv.destroy();
  sp.destroy();
  victim.dispose();
  peer.dispose();
  // Today: 48 equivocations of forbidden sources, 96 of their updates stored, and the peer cuts
  // the victim off `fault-budget` (96 `forbidden` rejections charged to an honest relay).
  assert.equal({ forbiddenSources, heldExtra, cut }, { forbiddenSources: 0, heldExtra: 0, cut: null });
});

// ---------------------------------------------------------------------------------------------
// Finding 2 (medium): quarantine is not a function of the held set, so two honest nodes diverge
// for good and reconciliation resends the same difference every session. An equivocating source
// (open policy, default options: quarantined at MAX_EVIDENCE_PER_SOURCE = 16) reaches 16 on B
// first, then writes once more to A only. A applies it before it learns of the equivocation;
// B refuses it `quarantined` (blameless) forever. A keeps it (state and reconciled set).
// ---------------------------------------------------------------------------------------------
// STILL OPEN: quarantine is per node (SECURITY.md); since 7f1d936+ the quarantined source's other
// updates leave the reconciled set, so sessions no longer repeat, but the states still differ.
test.skip('quarantine: two honest nodes end with the same state, and a second session finds nothing to send', async () => {
  const clock = testClock();
  const a = new Model({ identity: V, now: clock.now });
  const b = new Model({ identity: P, now: clock.now });
  await Promise.all([a.ready, b.ready]);
  const ob = fakeOrigin();
  for (let i = 1; i <= 16; i++) {
    const v = T0 - 10_000_000 + i;
    await b.ingest(set(S, v, `e${i}`, 'x').bytes, ob);
    await b.ingest(set(S, v, `e${i}`, 'y').bytes, ob);
  }
  assert.ok(b.isQuarantined(S.id), 'b quarantined S (16 equivocations)');
  assert.is((await a.ingest(set(S, T0 - 1_000_000, 'z', 'later').bytes, fakeOrigin())).status, 'applied');
  const { found } = await sessions(a, b, 3);
  const hashes = [a.stateHash(), b.stateHash()];
  const z = [a.get('z'), b.get('z')];
  a.dispose();
  b.dispose();
  assert.ok(a.isQuarantined(S.id), 'a quarantined S too');
  // Today: found = [1, 1, 1] (z offered and refused every session) and z only on a.
  assert.is(found[2], 0, `differences found per session: ${found.join(', ')} (the same every session)`);
  assert.is(hashes[0], hashes[1], `states differ for good: a has z=${String(z[0])}, b has z=${String(z[1])}`);
});

// ---------------------------------------------------------------------------------------------
// Finding 3 (medium): evidence pinned in the store resurrects a purged key on restart. load()
// replays every stored update through applyUpdate, including evidence that lost last-writer-wins
// to a tombstone; once the tombstone was purged (it is not pinned, so it left the store), the
// evidence becomes the key's value again on this node only: the application sees a deleted key
// come back, and this node's state differs from every node that did not restart.
// ---------------------------------------------------------------------------------------------
test('restart: a key deleted (tombstone purged) does not come back from pinned evidence', async () => {
  const clock = testClock();
  const store = new MemoryStore();
  const m = new Model({ identity: V, now: clock.now, store, tombstoneHorizonMs: 1000 });
  await m.ready;
  await m.ingest(set(S, T0 - 5_000_000, 'k', 'x').bytes, fakeOrigin());
  await m.ingest(set(S, T0 - 5_000_000, 'k', 'y').bytes, fakeOrigin());
  assert.is(m.equivocations().length, 1);
  const del = signUpdate(W, { dataset: 'default', version: T0 - 4_000_000, body: ['del', 'k'] });
  assert.is((await m.ingest(del.bytes, fakeOrigin())).status, 'applied');
  clock.advanceMs(10_000);
  assert.ok(m.purge() >= 1, 'the tombstone is purged');
  assert.is(m.get('k'), undefined);
  const before = m.stateHash();
  await new Promise((r) => setImmediate(r)); // store commits are synchronous in MemoryStore; let promises settle
  m.dispose();
  const again = new Model({ identity: V, now: clock.now, store, tombstoneHorizonMs: 1000 });
  await again.ready;
  const after = { value: again.get('k'), hash: again.stateHash() };
  again.dispose();
  assert.is(after.value, undefined, `k came back after a restart: ${JSON.stringify(after.value)}`);
  assert.is(after.hash, before);
});

// ---------------------------------------------------------------------------------------------
// Finding 4 (low/medium): the reconciled set of Events is every retained event, and which are
// retained depends on the node's own maxHistory (a per-instance option). Two honest nodes with
// different maxHistory reconcile the same difference every session, forever: the larger one
// resends everything the smaller one compacted, which refuses it as superseded (compaction
// floor) each time. (Model has the same with different tombstoneHorizonMs.)
// ---------------------------------------------------------------------------------------------
// STILL OPEN: the reconciled set depends on each node's maxHistory / tombstoneHorizonMs; each
// repair now goes once per stream (90 envelopes, was 170), but every session still finds them.
// A Node now refuses copies with different maxHistory or tombstoneHorizonMs (config-mismatch,
// test/mesh/config-mismatch.test.ts); streams wired by hand still show this.
test.skip('Events: nodes with different maxHistory stop resending the same events every session', async () => {
  const clock = testClock();
  const big = new Events({ identity: V, now: clock.now, maxHistory: 100 });
  const small = new Events({ identity: P, now: clock.now, maxHistory: 10 });
  await Promise.all([big.ready, small.ready]);
  for (let i = 0; i < 50; i++) {
    await big.ingest(signUpdate(S, { dataset: 'default', version: T0 - 1_000_000 + i, body: ['emit', 'tick', i] }).bytes, fakeOrigin());
  }
  const { found, sent } = await sessions(big, small, 3);
  big.dispose();
  small.dispose();
  assert.is(found[2], 0, `differences found per session: ${found.join(', ')}; ${sent} envelopes sent for 50 events`);
});

// ---------------------------------------------------------------------------------------------
// Finding 5 (high): the repair queue has no bound and no dedupe (stream.ts queueRepair pushes
// every `have` of every session; `reported` is per session). A peer that initiates sessions
// (any id below ours) sends one 6-byte message per session: an empty id list over the whole key
// space. We answer with every item we hold in `have` (not `wasted`: we do hold more), queue all
// of them again, and it never reads: the queue grows by the whole dataset per session. At one
// session a second (RECONCILE_MIN_GAP_MS, no fault) memory grows without bound; a peer that
// reads gets the whole dataset re-sent every second from a 6-byte message. Here 40 sessions
// back to back (39 faults, under the budget of 64).
// ---------------------------------------------------------------------------------------------
test('repairs: a peer that never reads cannot grow the repair queue past what we hold', async () => {
  const m = new Model({ identity: V });
  await m.ready;
  for (let i = 0; i < 300; i++) m.set(`k${i}`, i);
  let peer: Identity;
  do peer = Identity.generate(); while (!(peer.id < m.id)); // the peer initiates
  const s = m.createStream({ reconcileQuietMs: 0, reconcileIntervalMs: 0 });
  const everything = encodeReconcile(encodeMessage([{ mode: 'idList', upper: INFINITY_BOUND, ids: [] }]));
  let sessions = 0;
  s.on('reconciled', () => sessions++);
  s.write(Buffer.concat([
    encodeHello({ dataset: 'default', id: peer.id, digest: new Map(), meta: null, readable: true, writable: true, reconcile: true, nonce: newNonce() }),
    encodeSync(),
    ...Array.from({ length: 40 }, () => everything),
  ]));
  await deadline(new Promise<void>((resolve) => {
    const check = () => { if (sessions >= 40 || s.destroyed) resolve(); };
    s.on('reconciled', check);
    s.on('close', check);
    check();
  }), '40 sessions');
  const queued = (s as unknown as { repair: Update[] }).repair.length;
  const cut = s.closeReason?.reason ?? null;
  s.destroy();
  m.dispose();
  // Today: 40 sessions answered, 12,000 repairs queued for 300 updates held, not cut.
  assert.ok(queued <= m.heldCount, `${sessions} sessions, ${queued} repairs queued for ${m.heldCount} updates held (cut: ${cut})`);
});

// ---------------------------------------------------------------------------------------------
// Finding 6 (low): an honest difference large enough (here 225,000 items each way, which a relay
// that withheld that much leaves behind) exceeds MAX_ROUNDS, and the session throws
// `reconcile-rounds`; the stream cuts the peer, and the mesh (node.ts BANNED_CUTS check: every
// `reconcile-*`) bans it, so two honest nodes ban each other (1 min, doubling to 24 h) and never
// repair: each new connection hits the same limit, and the repairs found before it are lost with
// the stream. The session could instead end early (close with what it found, like maxNeed does)
// and let the next session continue.
// ---------------------------------------------------------------------------------------------
// FIXED: a session now ends itself (an empty message) before either side's round limit.
test('rounds: two honest sessions with a large difference end without a protocol error', () => {
  const prng = new Prng(7);
  const sets = twoSets(prng, 1000, 225_000, 225_000);
  const a = new ReconcileSession({ items: sets.a, salt: SALT, initiator: true });
  const b = new ReconcileSession({ items: sets.b, salt: SALT, initiator: false });
  let reason: string | null = null;
  try {
    run(a, b);
  } catch (err) {
    reason = (err as { reason?: string }).reason ?? String(err);
  }
  // Today: reason = 'reconcile-rounds'.
  assert.is(reason, null);
});

test.run();
