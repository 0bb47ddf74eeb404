// Issue 7 item 14: a recorded message 1 must not open again at another member process or after a
// restart. Message 1 carries the initiator's clock under psk0's encryption; a responder refuses a
// timestamp outside the freshness window, and within it its memory refuses a repeat.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { derivePsk, MESSAGE_1_BYTES, PROLOGUE } from '../../src/channel/handshake.ts';
import { HandshakeState, parseProtocolName, SIGNET_PROTOCOL } from '../../src/channel/handshake-state.ts';
import { ReplayGuard } from '../../src/channel/replay-guard.ts';
import { Prng, testSeed } from '../helpers/prng.ts';
import { secureChannel } from '../../src/channel/secure-channel.ts';
import { checkTimestampPayload, encodeTimestampPayload, TIMESTAMP_PAYLOAD_BYTES } from '../../src/channel/timestamp-payload.ts';
import { HANDSHAKE_FRESHNESS_MS, MESSAGE_1_REPLAY_MEMORY } from '../../src/limits.ts';
import { alice, bob, duplexPair, networkKey, recordMessage1, watchedResponder, whenClosed } from './pair.ts';

const W = HANDSHAKE_FRESHNESS_MS;
/** A fixed "now" for the responders (ms since the epoch): 2026-01-01T00:00:00Z. */
const T = Date.UTC(2026, 0, 1);
/** Refusals wait out the deadline: keep it short. */
const DEADLINE_MS = 40;
/** Deadline for handshakes expected to complete. */
const OK_DEADLINE_MS = 10_000;
const clock = (ms: number) => () => ms;

/** Delivers `message1` to a fresh responder whose clock reads `now`; what came of it. */
async function replay(message1: Buffer, now: number, freshnessMs?: number) {
  const r = watchedResponder({
    limits: { handshakeTimeoutMs: DEADLINE_MS, ...(freshnessMs === undefined ? {} : { handshakeFreshnessMs: freshnessMs }) },
    testing: { now: clock(now) },
  });
  try {
    r.ea.write(message1);
    const error = (await r.result.then(() => null, (e: unknown) => e)) as { code?: string } | null;
    await whenClosed(r.eb);
    return { answered: r.eb.bytesWritten > 0, code: error?.code, dhCount: r.state().dhCount };
  } finally {
    r.ea.destroy();
    r.eb.destroy();
  }
}

/** A full handshake with alice's clock at `initiatorNow` and bob's at `responderNow`. */
/** A handshake between two injected clocks. A refusal ends at the responder's deadline, so
 *  tests that expect one pass the short DEADLINE_MS; those that expect success pass a generous
 *  one (a loaded machine can take longer than 40 ms for the DHs). */
async function handshake(initiatorNow: number, responderNow: number, freshnessMs?: number, deadlineMs = DEADLINE_MS) {
  const [ea, eb] = duplexPair();
  try {
    const [a, b] = await Promise.allSettled([
      secureChannel(ea, { identity: alice, networkKey, initiator: true, testing: { now: clock(initiatorNow) } }),
      secureChannel(eb, {
        identity: bob, networkKey, initiator: false, testing: { now: clock(responderNow) },
        limits: { handshakeTimeoutMs: deadlineMs, ...(freshnessMs === undefined ? {} : { handshakeFreshnessMs: freshnessMs }) },
      }),
    ]);
    for (const r of [a, b]) if (r.status === 'fulfilled') r.value.destroy();
    const code = (r: PromiseSettledResult<unknown>) => (r.status === 'rejected' ? (r.reason as { code?: string }).code : 'ok');
    return { initiator: code(a), responder: code(b), responderWrote: eb.bytesWritten };
  } finally {
    ea.destroy();
    eb.destroy();
  }
}

test('message 1 is e (32) + an encrypted 8-byte timestamp (8+16): 56 bytes, the clock not visible on the wire', async () => {
  assert.is(TIMESTAMP_PAYLOAD_BYTES, 8);
  assert.is(MESSAGE_1_BYTES, 32 + 8 + 16);
  const wire = await recordMessage1({ testing: { now: clock(T) } });
  assert.is(wire.length, 2 + MESSAGE_1_BYTES);
  assert.is(wire.readUInt16BE(0), MESSAGE_1_BYTES);
  const stamp = Buffer.from(encodeTimestampPayload(T));
  assert.is(stamp.readBigUInt64BE(0), BigInt(T));
  assert.is(wire.indexOf(stamp), -1, 'the ciphertext does not contain the timestamp');
  // a holder of the psk opens it (no DH: psk0's message 1 is `psk, e`) and reads the clock back
  const hs = new HandshakeState({ protocol: parseProtocolName(SIGNET_PROTOCOL), initiator: false, prologue: PROLOGUE, psks: [derivePsk(networkKey)] });
  const payload = hs.readMessage(wire.subarray(2));
  assert.is(hs.dhCount, 0);
  assert.equal([...payload], [...stamp]);
});

test('a recorded message 1 replayed to a responder that never saw it: refused past the window, answered inside it, then refused as a repeat', async () => {
  // recorded at T and never delivered: to this process it is what any recording is to another member, or after a restart
  const recorded = await recordMessage1({ testing: { now: clock(T) } });
  const late = await replay(recorded, T + W + 1);
  assert.equal(late, { answered: false, code: 'ERR_HANDSHAKE', dhCount: 0 }, 'stale: silent, no DH');
  const early = await replay(recorded, T - W - 1);
  assert.equal(early, { answered: false, code: 'ERR_HANDSHAKE', dhCount: 0 }, 'from the future: silent, no DH');
  // a stale refusal is not remembered: inside the window the same bytes still open once (the residual exposure)...
  const inside = await replay(recorded, T + W);
  assert.ok(inside.answered, 'inside the window a first sight is answered');
  assert.is(inside.code, 'ERR_TIMEOUT'); // the replayer cannot send message 3
  // ...and the per-process memory refuses every repeat while the timestamp is in the window
  for (const now of [T + W, T, T - W]) {
    assert.equal(await replay(recorded, now), { answered: false, code: 'ERR_HANDSHAKE', dhCount: 0 }, `repeat at T${now - T >= 0 ? '+' : ''}${now - T}`);
  }
});

test('a message 1 captured from a completed handshake gets nothing when replayed inside the window (same process)', async () => {
  const [ea, eb] = duplexPair();
  try {
    const [a, b] = await Promise.all([
      secureChannel(ea, { identity: alice, networkKey, initiator: true, testing: { now: clock(T) } }),
      secureChannel(eb, { identity: bob, networkKey, initiator: false, testing: { now: clock(T) } }),
    ]);
    a.destroy();
    b.destroy();
  } finally {
    ea.destroy();
    eb.destroy();
  }
  const captured = Buffer.from(ea.wire[0]!);
  assert.equal(await replay(captured, T + 1000), { answered: false, code: 'ERR_HANDSHAKE', dhCount: 0 });
});

test('freshness window edges: |skew| = window is accepted, window + 1 (ms) is refused silently, both ways', async () => {
  for (const skew of [0, -W, W]) {
    const r = await handshake(T + skew, T, undefined, OK_DEADLINE_MS);
    assert.equal(r, { initiator: 'ok', responder: 'ok', responderWrote: 2 + 192 }, `skew ${skew}`);
  }
  for (const skew of [-W - 1, W + 1]) {
    const r = await handshake(T + skew, T);
    // the responder says nothing; the initiator learns only that the stream closed (at the responder's deadline)
    assert.equal(r, { initiator: 'ERR_HANDSHAKE', responder: 'ERR_HANDSHAKE', responderWrote: 0 }, `skew ${skew}`);
  }
  // the window is an option too: 0 accepts only an equal clock
  assert.is((await handshake(T, T, 0, OK_DEADLINE_MS)).responder, 'ok');
  assert.is((await handshake(T + 1, T, 0)).responder, 'ERR_HANDSHAKE');
  assert.is((await handshake(T - 5000, T, 5000, OK_DEADLINE_MS)).responder, 'ok');
  assert.is((await handshake(T - 5001, T, 5000)).responder, 'ERR_HANDSHAKE');
});

test('a fresh message 1 with the real clock completes', async () => {
  const [ea, eb] = duplexPair();
  try {
    const [a, b] = await Promise.all([
      secureChannel(ea, { identity: alice, networkKey, initiator: true }),
      secureChannel(eb, { identity: bob, networkKey, initiator: false }),
    ]);
    assert.is(b.remote.id, alice.id);
    a.destroy();
    b.destroy();
  } finally {
    ea.destroy();
    eb.destroy();
  }
});

test('checkTimestampPayload: edges at window and window + 1, any u64 compared exactly, wrong lengths refused', () => {
  const at = (ms: bigint) => {
    const p = new Uint8Array(8);
    new DataView(p.buffer).setBigUint64(0, ms);
    return p;
  };
  assert.equal(checkTimestampPayload(encodeTimestampPayload(T - W), T, W), { ok: true, timestamp: T - W });
  assert.equal(checkTimestampPayload(encodeTimestampPayload(T + W), T, W), { ok: true, timestamp: T + W });
  assert.equal(checkTimestampPayload(encodeTimestampPayload(T - W - 1), T, W), { ok: false, reason: 'stale' });
  assert.equal(checkTimestampPayload(encodeTimestampPayload(T + W + 1), T, W), { ok: false, reason: 'future' });
  assert.equal(checkTimestampPayload(at(0n), T, W), { ok: false, reason: 'stale' });
  assert.equal(checkTimestampPayload(at(2n ** 64n - 1n), T, W), { ok: false, reason: 'future' });
  for (const n of [0, 7, 9, 24]) assert.equal(checkTimestampPayload(new Uint8Array(n), T, W), { ok: false, reason: 'bad-length' });
  assert.throws(() => encodeTimestampPayload(-1), RangeError);
  assert.throws(() => encodeTimestampPayload(1.5), RangeError);
  assert.throws(() => encodeTimestampPayload(2 ** 53), RangeError);
});

test('ReplayGuard: a key is refused until its expiry (inclusive), forgotten after; memory bounded, expired keys dropped first', () => {
  const key = (i: number) => Uint8Array.from({ length: 32 }, (_, j) => (j === 0 ? i & 0xff : j === 1 ? i >> 8 : 0));
  const guard = new ReplayGuard(3);
  assert.ok(guard.firstSight(key(1), 0, 100));
  assert.not.ok(guard.firstSight(key(1), 100, 200), 'at its expiry: still a replay');
  assert.ok(guard.firstSight(key(1), 101, 300), 'past its expiry: a first sight again (its timestamp is stale by then)');
  assert.not.ok(guard.firstSight(key(1), 102, 300));
  assert.ok(guard.firstSight(key(2), 102, 110));
  assert.ok(guard.firstSight(key(3), 102, 400));
  assert.is(guard.size, 3);
  // full: key 2 expired (110 < 120) is dropped before anything live
  assert.ok(guard.firstSight(key(4), 120, 400));
  assert.is(guard.size, 3);
  assert.not.ok(guard.firstSight(key(1), 120, 400), 'key 1 (live) kept');
  assert.not.ok(guard.firstSight(key(3), 120, 400), 'key 3 (live) kept');
  // full of live keys: the oldest is forgotten (bounded memory, documented)
  assert.ok(guard.firstSight(key(5), 130, 400));
  assert.is(guard.size, 3);
  assert.ok(guard.firstSight(key(1), 131, 400), 'the oldest live key was forgotten');
  // the default memory is the documented one
  assert.is(MESSAGE_1_REPLAY_MEMORY, 16_384);
});

/** The guard as it was before its expiry heap (a scan of the whole memory when full): the reference. */
class ScanGuard {
  readonly seen = new Map<string, number>();
  constructor(private readonly capacity: number) {}
  firstSight(ephemeral: Uint8Array, now: number, expiresAt: number): boolean {
    const key = Buffer.from(ephemeral).toString('latin1');
    const known = this.seen.get(key);
    if (known !== undefined && known >= now) return false;
    this.seen.delete(key);
    if (this.seen.size >= this.capacity) {
      for (const [k, expiry] of this.seen) if (expiry < now) this.seen.delete(k);
      if (this.seen.size >= this.capacity) this.seen.delete(this.seen.keys().next().value!);
    }
    this.seen.set(key, expiresAt);
    return true;
  }
}

test('ReplayGuard: the same verdicts as a full scan, over 30,000 random sightings with peer-chosen expiries, replays and a full memory', () => {
  const rng = new Prng(testSeed());
  for (const capacity of [1, 7, 64]) {
    const guard = new ReplayGuard(capacity);
    const reference = new ScanGuard(capacity);
    const pool = Array.from({ length: capacity * 3 + 5 }, (_, i) => Uint8Array.from({ length: 32 }, (_, j) => (j < 4 ? (i >> (8 * j)) & 0xff : 7)));
    let now = 0;
    for (let i = 0; i < 10_000; i++) {
      now += rng.int(4);
      const key = pool[rng.int(pool.length)]!;
      const expiresAt = now + rng.int(200) - 20; // out of order, a few already past
      const want = reference.firstSight(key, now, expiresAt);
      assert.is(guard.firstSight(key, now, expiresAt), want, `capacity ${capacity}, sighting ${i}`);
      assert.ok(guard.size <= capacity);
      // After a first sight the guard holds the keys the reference still refuses, plus at most the
      // one just recorded if it was already past its expiry (the reference keeps expired keys until
      // it is full; a replay changes neither).
      if (want && i % 7 === 0) {
        const live = [...reference.seen].filter(([, e]) => e >= now).length;
        assert.ok(guard.size >= live && guard.size <= live + 1, `size ${guard.size}, live ${live}`);
      }
    }
  }
});

test('handshakeFreshnessMs is checked where it enters: a named TypeError / RangeError', async () => {
  for (const [value, type] of [[-1, RangeError], [1.5, RangeError], [24 * 60 * 60 * 1000 + 1, RangeError], ['120000', TypeError]] as const) {
    const [ea, eb] = duplexPair();
    try {
      const error = await secureChannel(ea, { identity: alice, networkKey, initiator: true, limits: { handshakeFreshnessMs: value as number } }).then(
        () => null,
        (e: unknown) => e as Error,
      );
      assert.instance(error, type);
      assert.match(error!.message, /"handshakeFreshnessMs"/);
    } finally {
      ea.destroy();
      eb.destroy();
    }
  }
});

test.run();
