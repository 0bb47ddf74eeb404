// The budgets added to src/limits.ts, each tested at its value and at value + 1 (STYLE rule 8):
// the decode budget (MAX_DECODE_EXPANSION, DECODE_SLACK_BYTES), MAX_META_BYTES,
// MAX_PENDING_BYTES, MIN_ENVELOPE_BYTES, MIN_ITEM_BYTES and MAX_EVIDENCE_PER_SOURCE. (MAX_DEFERRED_BYTES and
// MAX_DEFER_MICROS are tested in test/core/attacks.test.ts.)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MemoryStore, Model, signUpdate, parseUpdate, type IngestResult, type Rejection, type UpdateOrigin } from '../../src/index.ts';
import { checkCbor, encodeCbor, scanCbor, type Value } from '../../src/envelope/cbor.ts';
import { MIN_ENVELOPE_BYTES } from '../../src/envelope/update.ts';
import { MIN_ITEM_BYTES } from '../../src/replication/compact.ts';
import { decodeMessage, encodeHello, encodeSync, encodeUpdates, type Hello } from '../../src/replication/messages.ts';
import { DECODE_SLACK_BYTES, MAX_DECODE_EXPANSION, MAX_EVIDENCE_PER_SOURCE, MAX_META_BYTES } from '../../src/limits.ts';
import { closed, cutOff, next } from '../helpers/streams.ts';
import { flat, identity, many, signRawBody, T, type Flat } from './helpers.ts';

const LIMITS = { maxDepth: 32 };
const sender = identity(9); // the peer that writes raw bytes into a stream
const helloFrom = (meta: Value = null): Hello => ({ dataset: 'default', id: sender.id, digest: new Map(), meta, readable: true, writable: true });

/** A loaded model with a fixed clock. */
async function model(seed: number): Promise<Model> {
  const m = new Model({ identity: identity(seed), now: () => T });
  await m.ready;
  return m;
}

/** An origin that records every fault it is charged with. */
function relay(): UpdateOrigin & { faults: Rejection[] } {
  const faults: Rejection[] = [];
  return { faults, fault: (r) => void faults.push(r) };
}

/** The largest n for which [n empty arrays] fits the budget (searched, not assumed). */
function arraysAtLimit(): number {
  let n = 0;
  while (flat(many(n + 1, 'array')).cost <= flat(many(n + 1, 'array')).budget) n++;
  return n;
}

// ---- decode budget ------------------------------------------------------------------------------

test('decode budget: [n empty arrays] costing exactly expansion x bytes + slack passes; one more array is over budget', () => {
  const n = arraysAtLimit();
  const atLimit = flat(many(n, 'array'));
  const over = flat(many(n + 1, 'array'));
  assert.is(atLimit.cost, atLimit.budget, `the boundary is hit exactly (n=${n}, ${atLimit.bytes.length} bytes)`);
  assert.ok(over.cost > over.budget);
  assert.ok(atLimit.worstPrefix <= 0, 'no earlier item was over');

  const ok = scanCbor(atLimit.bytes, 0, LIMITS);
  assert.ok(ok.ok, `limit: ${ok.ok ? '' : ok.detail}`);
  if (ok.ok) {
    assert.is(ok.cost, atLimit.cost, 'the scanner estimates what DECODED_COST specifies');
    assert.is(ok.end, atLimit.bytes.length);
  }
  assert.is(checkCbor(atLimit.bytes, LIMITS), null);

  const bad = scanCbor(over.bytes, 0, LIMITS);
  assert.is(bad.ok, false);
  if (!bad.ok) {
    assert.is(bad.overBudget, true);
    assert.match(bad.detail, `decodes to more than ${MAX_DECODE_EXPANSION} x its ${over.bytes.length} bytes + ${DECODE_SLACK_BYTES}`);
    assert.match(bad.detail, `estimated ${over.cost} bytes`);
  }
  assert.match(checkCbor(over.bytes, LIMITS) ?? '', /decodes to more than/);
  // a structural refusal is not flagged overBudget
  const truncated = scanCbor(atLimit.bytes.subarray(0, 10), 0, LIMITS);
  assert.ok(!truncated.ok && truncated.overBudget === undefined);
});

test('decode budget: cost == budget passes, cost == budget + 1 fails (maps, arrays and a 1-byte text to land on +1)', () => {
  // [128 x {}, 3 x []]: every map costs 64 per byte, every array 40, against 32 per byte.
  const exact: Flat = flat([...many(128, 'map'), ...many(3, 'array')]);
  // ["a", 130 x {}]: the text string moves the total by an odd amount.
  const plusOne: Flat = flat(['a', ...many(130, 'map')]);
  assert.is(exact.cost - exact.budget, 0);
  assert.is(plusOne.cost - plusOne.budget, 1);
  assert.ok(exact.worstPrefix <= 0 && plusOne.worstPrefix <= 0, 'only the last item decides');

  const a = scanCbor(exact.bytes, 0, LIMITS);
  assert.ok(a.ok, a.ok ? '' : a.detail);
  if (a.ok) assert.is(a.cost, exact.budget);
  const b = scanCbor(plusOne.bytes, 0, LIMITS);
  assert.ok(!b.ok && b.overBudget === true, 'one estimated byte over is refused');
  if (!b.ok) assert.match(b.detail, `estimated ${plusOne.budget + 1} bytes`);
  // dropping the last map brings it back under
  const back = flat(['a', ...many(129, 'map')]);
  assert.ok(back.cost < back.budget);
  assert.ok(scanCbor(back.bytes, 0, LIMITS).ok);
});

test('decode budget: {} and other tiny values pass only thanks to DECODE_SLACK_BYTES', () => {
  const tiny: Array<[string, Uint8Array]> = [
    ['{}', Uint8Array.of(0xa0)],
    ['[]', Uint8Array.of(0x80)],
    ["h''", Uint8Array.of(0x40)],
    ['[{}]', Uint8Array.of(0x81, 0xa0)],
  ];
  for (const [name, bytes] of tiny) {
    const r = scanCbor(bytes, 0, LIMITS);
    assert.ok(r.ok, `${name} is accepted`);
    if (!r.ok) continue;
    assert.ok(r.cost > MAX_DECODE_EXPANSION * bytes.length, `${name}: cost ${r.cost} is over ${MAX_DECODE_EXPANSION} x ${bytes.length} bytes, so the slack is what admits it`);
    assert.ok(r.cost <= MAX_DECODE_EXPANSION * bytes.length + DECODE_SLACK_BYTES);
  }
  // and a local write of {} (inside a model body) signs
  const u = signUpdate(identity(1), { dataset: 'default', version: T, body: ['set', 'k', {}] });
  assert.equal(u.body, ['set', 'k', {}]);
});

test('decode budget: typical data (objects with short strings, small ints, floats, words) is accepted far from the limit', () => {
  const samples: Array<[string, unknown]> = [
    ['objects', Array.from({ length: 400 }, (_, i) => ({ id: i, name: `user${i}`, tags: ['a', 'bc'], active: i % 2 === 0 }))],
    ['small ints', Array.from({ length: 5000 }, (_, i) => i % 1000)],
    ['floats', Array.from({ length: 2000 }, (_, i) => i + 0.1)],
    ['words', Array.from({ length: 1500 }, (_, i) => `word-${i}`)],
    ['nested records', { users: Array.from({ length: 100 }, (_, i) => ({ n: i, geo: { lat: 52.5 + i / 1000, lon: 13.4 } })) }],
  ];
  for (const [name, value] of samples) {
    const bytes = encodeCbor(value);
    const r = scanCbor(bytes, 0, LIMITS);
    assert.ok(r.ok, `${name}: ${r.ok ? '' : r.detail}`);
    if (!r.ok) continue;
    const ratio = r.cost / bytes.length;
    assert.ok(ratio <= 10, `${name}: ${ratio.toFixed(2)}x its ${bytes.length} bytes (documented 2-10x)`);
    assert.ok(r.cost * 3 <= MAX_DECODE_EXPANSION * bytes.length, `${name}: within a third of the budget without the slack`);
    // and it signs and parses as an update body
    const u = signUpdate(identity(1), { dataset: 'default', version: T, body: value });
    assert.ok(parseUpdate(u.bytes).ok, name);
  }
});

test('decode budget through parseUpdate and Model.ingest: a body at the limit parses, limit + 1 is rejected too-large (and charged)', async () => {
  const signer = identity(1);
  const n = arraysAtLimit();
  const fields = { dataset: 'default', version: T - 1000 };
  const atLimit = signRawBody(signer, fields, flat(many(n, 'array')).bytes);
  const over = signRawBody(signer, fields, flat(many(n + 1, 'array')).bytes);

  const ok = parseUpdate(atLimit);
  assert.ok(ok.ok, ok.ok ? '' : `${ok.reason}: ${ok.detail}`);
  // the hand-built envelope is exactly what signUpdate produces for that body
  const signed = signUpdate(signer, { ...fields, body: Array.from({ length: n }, () => []) });
  assert.equal([...signed.bytes], [...atLimit]);

  const bad = parseUpdate(over);
  assert.is(bad.ok, false);
  if (!bad.ok) {
    assert.is(bad.reason, 'too-large');
    assert.match(bad.detail, /^body: decodes to more than/);
  }

  const m = await model(2);
  const origin = relay();
  const r: IngestResult = await m.ingest(over, origin);
  assert.equal(r, { status: 'rejected', reason: 'too-large' });
  assert.is(origin.faults.length, 1, 'an over-budget body is the sender\'s fault');
  assert.is(origin.faults[0]!.reason, 'too-large');
  m.dispose();
});

test('decode budget through signUpdate: a body at the limit signs, limit + 1 throws RangeError', () => {
  const signer = identity(1);
  const n = arraysAtLimit();
  const fields = { dataset: 'default', version: T };
  const u = signUpdate(signer, { ...fields, body: Array.from({ length: n }, () => []) });
  assert.is((u.body as unknown[]).length, n);
  assert.throws(() => signUpdate(signer, { ...fields, body: Array.from({ length: n + 1 }, () => []) }),
    (err: unknown) => err instanceof RangeError && /decodes to more than/.test(err.message));
});

// ---- MAX_META_BYTES -----------------------------------------------------------------------------

/** Meta values whose CBOR encoding is exactly `size` bytes (3-byte string heads). */
function metas(size: number): Array<[string, Value]> {
  return [
    ['byte string', new Uint8Array(size - 3).fill(0x5a)],
    ['text', 'm'.repeat(size - 3)],
  ];
}

test('MAX_META_BYTES through decodeMessage: a hello whose meta encodes to 16384 bytes decodes; 16385 is malformed', () => {
  assert.is(MAX_META_BYTES, 16384);
  for (const [kind, meta] of metas(MAX_META_BYTES)) {
    assert.is(encodeCbor(meta).length, MAX_META_BYTES, kind);
    const r = decodeMessage(encodeHello(helloFrom(meta)).subarray(4));
    assert.ok(r.ok, `${kind} at the limit: ${r.ok ? '' : r.reason}`);
    if (r.ok && r.message.type === 'hello') {
      const got = r.message.hello.meta;
      assert.is(typeof meta === 'string' ? got : (got as Uint8Array).length, typeof meta === 'string' ? meta : MAX_META_BYTES - 3);
    } else assert.unreachable('not a hello');
  }
  for (const [kind, meta] of metas(MAX_META_BYTES + 1)) {
    assert.is(encodeCbor(meta).length, MAX_META_BYTES + 1, kind);
    const r = decodeMessage(encodeHello(helloFrom(meta)).subarray(4));
    assert.is(r.ok, false, `${kind} at limit + 1`);
    if (!r.ok) assert.is(r.reason, `malformed: hello meta larger than ${MAX_META_BYTES} bytes`);
  }
});

test('MAX_META_BYTES through a Model stream: a 16384-byte meta reaches the header event; 16385 cuts the peer off malformed', async () => {
  const m = await model(2);
  for (const [kind, meta] of metas(MAX_META_BYTES)) {
    const s = m.createStream({ name: `meta-${kind}` });
    s.resume();
    const header = next<[{ meta: Value }]>(s, 'header');
    s.write(encodeHello(helloFrom(meta)));
    const [h] = await header;
    assert.equal(encodeCbor(h.meta).length, MAX_META_BYTES, kind);
    assert.is(s.closeReason, null);
    s.destroy();
    await closed(s);
  }
  for (const [kind, meta] of metas(MAX_META_BYTES + 1)) {
    const s = m.createStream({ name: `meta+1-${kind}` });
    s.resume();
    let headers = 0;
    s.on('header', () => headers++);
    s.write(encodeHello(helloFrom(meta)));
    const reason = await cutOff(s);
    assert.is(reason.code, 'ERR_PROTOCOL');
    assert.is(reason.reason, 'malformed', kind);
    assert.match(reason.message, `larger than ${MAX_META_BYTES} bytes`);
    assert.is(headers, 0);
    await closed(s);
  }
  m.dispose();
});

test('MAX_META_BYTES and the decode budget in createStream({ meta }): 16384 bytes is accepted, 16385 throws RangeError; so does an over-budget meta', async () => {
  const m = await model(2);
  for (const [kind, meta] of metas(MAX_META_BYTES)) {
    const s = m.createStream({ meta });
    assert.ok(s instanceof Object, kind);
    s.destroy();
    await closed(s);
  }
  for (const [kind, meta] of metas(MAX_META_BYTES + 1)) {
    assert.throws(() => m.createStream({ meta }), (err: unknown) => err instanceof RangeError && /16385 bytes encoded; the limit is 16384/.test(err.message), kind);
  }
  // well under 16 KiB but over the decode budget: refused locally and by a peer alike
  const n = arraysAtLimit();
  const fits = Array.from({ length: n }, () => []) as Value[];
  const tooCostly = Array.from({ length: n + 1 }, () => []) as Value[];
  assert.equal([...encodeCbor(tooCostly)], [...flat(many(n + 1, 'array')).bytes]);
  const s = m.createStream({ meta: fits });
  s.destroy();
  await closed(s);
  assert.ok(decodeMessage(encodeHello(helloFrom(fits)).subarray(4)).ok);
  assert.throws(() => m.createStream({ meta: tooCostly }), (err: unknown) => err instanceof RangeError && /decodes to more than/.test(err.message));
  const r = decodeMessage(encodeHello(helloFrom(tooCostly)).subarray(4));
  assert.ok(!r.ok && r.reason.startsWith('malformed: hello meta: decodes to more than'), r.ok ? 'accepted' : r.reason);
  assert.is(m.streams, 0);
  m.dispose();
});

// ---- MAX_PENDING_BYTES --------------------------------------------------------------------------

const FLOOD = 6;
/** Equal-sized envelopes from one source, oldest first (signed on first use). */
const floodEnvelopes = (() => {
  let made: Uint8Array[] | null = null;
  return () => (made ??= Array.from({ length: FLOOD }, (_, i) => signUpdate(identity(3), { dataset: 'default', version: T - 1000 + i, body: ['set', 'k', i] }).bytes));
})();

/**
 * Sends hello + FLOOD envelopes + SYNC in one chunk to a stream whose model holds every
 * verdict until released (a verifier as slow as we like). Reports how many verifications were
 * in flight right after the write, whether reading then stopped, and the most ever in flight.
 */
async function flood(maxPendingBytes: number): Promise<{ afterWrite: number; whileHeld: number; received: number; maxInFlight: number }> {
  const m = await model(4);
  const s = m.createStream({ name: 'flooded', maxPendingBytes });
  s.resume();
  const real = m.ingest.bind(m);
  const held: Array<() => void> = [];
  let open = false;
  let maxInFlight = 0;
  // The stream counts an envelope in flight, then calls ingest: sample there.
  m.ingest = (bytes: Uint8Array, origin?: UpdateOrigin | null): Promise<IngestResult> => {
    maxInFlight = Math.max(maxInFlight, s.inFlight);
    if (open) return real(bytes, origin);
    return new Promise((resolve) => held.push(() => resolve(real(bytes, origin))));
  };
  const synced = next(s, 'syncReceived');
  s.write(Buffer.concat([encodeHello(helloFrom()), encodeUpdates(floodEnvelopes()), encodeSync()]));
  const afterWrite = s.inFlight;
  await new Promise((r) => setImmediate(r)); // every pending callback runs; no verdict is given
  const whileHeld = s.inFlight;
  const received = s.stats.received;
  assert.is(held.length, whileHeld, 'every envelope in flight is waiting on its verdict');
  open = true;
  for (const release of held.splice(0)) release();
  await synced; // SYNC is handled once everything before it has applied
  assert.is(s.stats.applied, FLOOD, 'all applied in the end');
  assert.is(s.inFlight, 0);
  assert.is(s.closeReason, null);
  m.dispose();
  await closed(s);
  return { afterWrite, whileHeld, received, maxInFlight };
}

test('MAX_PENDING_BYTES: with maxPendingBytes = 3 envelopes exactly, 3 are in flight and never 4; one byte less holds 2', async () => {
  const E = floodEnvelopes()[0]!.length;
  assert.ok(floodEnvelopes().every((e) => e.length === E), 'equal-sized envelopes');
  const k = 3;
  const atLimit = await flood(k * E);
  assert.is(atLimit.afterWrite, k, 'k envelopes (pendingBytes == maxPendingBytes) are taken at once');
  assert.is(atLimit.whileHeld, k, 'and reading stops there while verdicts are pending');
  assert.is(atLimit.received, k);
  assert.is(atLimit.maxInFlight, k, 'never k + 1');

  const below = await flood(k * E - 1);
  assert.is(below.afterWrite, k - 1, 'the k-th envelope would be one byte over');
  assert.is(below.whileHeld, k - 1);
  assert.is(below.maxInFlight, k - 1);

  const above = await flood((k + 1) * E - 1);
  assert.is(above.maxInFlight, k, 'one byte short of k + 1 envelopes still holds k');
});

test('MAX_PENDING_BYTES: an envelope larger than maxPendingBytes is still taken, alone', async () => {
  const E = floodEnvelopes()[0]!.length;
  const alone = await flood(E - 1);
  assert.is(alone.afterWrite, 1);
  assert.is(alone.whileHeld, 1);
  assert.is(alone.maxInFlight, 1, 'never two');
});

// ---- MIN_ENVELOPE_BYTES -------------------------------------------------------------------------

test('MIN_ENVELOPE_BYTES is the true minimum: the smallest update signUpdate can make is exactly 109 bytes, and no byte can go', () => {
  assert.is(MIN_ENVELOPE_BYTES, 109);
  const signer = identity(1);
  const smallest = signUpdate(signer, { dataset: 'd', version: 1, body: null });
  assert.is(smallest.bytes.length, MIN_ENVELOPE_BYTES);
  assert.ok(parseUpdate(smallest.bytes).ok);
  // every field is at its smallest: any other minimal choice is the same size, one step up is larger
  for (const body of [0, 23, true, false, -1, '']) {
    assert.is(signUpdate(signer, { dataset: 'x', version: 23, body }).bytes.length, MIN_ENVELOPE_BYTES, JSON.stringify(body));
  }
  assert.is(signUpdate(signer, { dataset: 'd', version: 24, body: null }).bytes.length, MIN_ENVELOPE_BYTES + 1);
  assert.is(signUpdate(signer, { dataset: 'dd', version: 1, body: null }).bytes.length, MIN_ENVELOPE_BYTES + 1);
  assert.is(signUpdate(signer, { dataset: 'd', version: 1, body: 24 }).bytes.length, MIN_ENVELOPE_BYTES + 1);
  // removing any one byte leaves something no receiver accepts
  for (let i = 0; i < smallest.bytes.length; i++) {
    const shorter = new Uint8Array([...smallest.bytes.subarray(0, i), ...smallest.bytes.subarray(i + 1)]);
    assert.is(parseUpdate(shorter).ok, false, `without byte ${i}`);
  }
});

test('MIN_ITEM_BYTES in an updates message (protocol 3): a 66-byte item cuts the peer off malformed; 67 garbage bytes are one counted bad-shape fault', async () => {
  assert.is(MIN_ITEM_BYTES, 67);
  const m = await model(2);
  // limit - 1: the message itself is malformed
  const short = m.createStream({ name: 'short' });
  short.resume();
  short.write(Buffer.concat([encodeHello(helloFrom()), encodeUpdates([new Uint8Array(MIN_ITEM_BYTES - 1)])]));
  const reason = await cutOff(short);
  assert.is(reason.reason, 'malformed');
  assert.match(reason.message, `envelope of ${MIN_ITEM_BYTES - 1} bytes`);
  assert.is(short.stats.received, 0, 'nothing was ingested');
  await closed(short);

  // the limit: read, parsed, refused as an update, charged, and the stream goes on
  const s = m.createStream({ name: 'garbage' });
  s.resume();
  const invalid = next<[Rejection]>(s, 'invalid');
  const synced = next(s, 'syncReceived');
  s.write(Buffer.concat([encodeHello(helloFrom()), encodeUpdates([new Uint8Array(MIN_ITEM_BYTES).fill(0xab)]), encodeSync()]));
  const [rejection] = await invalid;
  assert.is(rejection.reason, 'bad-shape');
  await synced;
  assert.is(s.faults, 1);
  assert.is(s.stats.received, 1);
  assert.is(s.stats.rejected, 1);
  assert.is(s.closeReason, null, 'not cut off');
  assert.is(s.destroyed, false);
  m.dispose();
  await closed(s);
});

// ---- MAX_EVIDENCE_PER_SOURCE --------------------------------------------------------------------

test('MAX_EVIDENCE_PER_SOURCE: the 16th equivocation quarantines the source; the next update is refused quarantined, relays not charged', async () => {
  assert.is(MAX_EVIDENCE_PER_SOURCE, 16);
  const source = identity(5);
  const version = T - 1000;
  // one update at `version`, then MAX_EVIDENCE_PER_SOURCE + 1 different ones at the same version
  const updates = Array.from({ length: MAX_EVIDENCE_PER_SOURCE + 2 }, (_, i) =>
    signUpdate(source, { dataset: 'default', version, body: ['set', `k${i}`, i] }).bytes);
  const m = await model(6);
  const origin = relay();
  let announced = 0;
  m.on('equivocation', () => announced++);

  const first = await m.ingest(updates[0]!, origin);
  assert.ok(first.status === 'applied' && first.update.version === version);
  assert.is(m.equivocations().length, 0);
  for (let i = 1; i < MAX_EVIDENCE_PER_SOURCE; i++) {
    const r = await m.ingest(updates[i]!, origin);
    assert.is(r.status, 'applied', `equivocation ${i}`);
  }
  // limit - 1
  assert.is(m.equivocations().length, MAX_EVIDENCE_PER_SOURCE - 1);
  assert.is(m.isQuarantined(source.id), false, 'not quarantined before the cap');
  // the limit: recorded, and the source is quarantined
  const atCap = await m.ingest(updates[MAX_EVIDENCE_PER_SOURCE]!, origin);
  assert.is(atCap.status, 'applied');
  assert.is(m.equivocations().length, MAX_EVIDENCE_PER_SOURCE);
  assert.is(announced, MAX_EVIDENCE_PER_SOURCE);
  assert.is(m.isQuarantined(source.id), true);
  assert.ok(m.equivocations().every((ev) => ev.source === source.id && ev.version === version));
  assert.is(m.latestUpdates(source.id).length, MAX_EVIDENCE_PER_SOURCE + 1);
  // limit + 1: refused, not recorded, not the relay's fault
  const invalid: Rejection[] = [];
  m.on('invalid', (r: Rejection) => invalid.push(r));
  const past = await m.ingest(updates[MAX_EVIDENCE_PER_SOURCE + 1]!, origin);
  assert.equal(past, { status: 'rejected', reason: 'quarantined' });
  assert.is(invalid.length, 1);
  assert.is(invalid[0]!.reason, 'quarantined');
  assert.is(m.equivocations().length, MAX_EVIDENCE_PER_SOURCE, 'no evidence past the cap');
  assert.is(announced, MAX_EVIDENCE_PER_SOURCE);
  assert.is(m.latestUpdates(source.id).length, MAX_EVIDENCE_PER_SOURCE + 1);
  assert.is(origin.faults.length, 0, 'the relay is not charged for quarantined');
  // nor is anything it sends afterwards held against it
  const other = signUpdate(identity(7), { dataset: 'default', version, body: ['set', 'other', 1] });
  assert.is((await m.ingest(other.bytes, origin)).status, 'applied');

  // the same through a real stream: refused, counted as rejected, no fault, no cut
  const s = m.createStream({ name: 'relay' });
  s.resume();
  const synced = next(s, 'syncReceived');
  const fresh = signUpdate(source, { dataset: 'default', version: version + 1, body: ['set', 'late', 1] });
  s.write(Buffer.concat([encodeHello(helloFrom()), encodeUpdates([fresh.bytes]), encodeSync()]));
  await synced;
  assert.is(s.stats.rejected, 1);
  assert.is(s.faults, 0);
  assert.is(s.closeReason, null);
  assert.is(m.clock.get(source.id), version, 'the quarantined source does not advance');
  m.dispose();
  await closed(s);
});

test('MAX_EVIDENCE_PER_SOURCE on restart: a store holding 15, 16 or 17 equivocations loads at most 16 as evidence, quarantining at 16', async () => {
  const source = identity(5);
  const version = T - 1000;
  const all = Array.from({ length: MAX_EVIDENCE_PER_SOURCE + 2 }, (_, i) =>
    signUpdate(source, { dataset: 'default', version, body: ['set', `k${i}`, i] }));
  const cases: Array<[number, number, boolean]> = [
    [MAX_EVIDENCE_PER_SOURCE - 1, MAX_EVIDENCE_PER_SOURCE - 1, false],
    [MAX_EVIDENCE_PER_SOURCE, MAX_EVIDENCE_PER_SOURCE, true],
    [MAX_EVIDENCE_PER_SOURCE + 1, MAX_EVIDENCE_PER_SOURCE, true], // e.g. written before the cap existed
  ];
  for (const [equivocations, kept, quarantined] of cases) {
    const store = new MemoryStore();
    store.commitSync('default', { put: all.slice(0, equivocations + 1).map((u) => [u.hashHex, u.bytes]), drop: [], clock: [[source.id, version]] });
    const m = new Model({ identity: identity(6), now: () => T, store });
    await m.ready;
    assert.is(m.equivocations().length, kept, `${equivocations} stored`);
    assert.is(m.isQuarantined(source.id), quarantined, `${equivocations} stored`);
    m.dispose();
  }
});

test.run();
