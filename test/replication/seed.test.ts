// npm scuttlebutt's own test suite (node_modules/scuttlebutt/test/*.js), rewritten against
// signet's Model, Events and replication stream over in-memory pipes.
//
// Seed behaviours, file by file (kept / changed, and why):
// - index.js: history(filter) returns only updates newer than the filter's per-source
//   version, all of a source the filter lacks; an older update does not apply. KEPT, but
//   `_update` is `ingest(envelope)` (signed bytes, verified asynchronously) and an older
//   update resolves `{ status: 'old' }` instead of returning false.
// - model.js: set emits 'change' and 'change:<key>'; toJSON. KEPT, with the payload changed:
//   'change' carries one Change { key, value, update } (not (key, value)); 'change:<key>'
//   carries (value, update). CHANGED: set(key, null) no longer removes the key; null is a
//   value and delete(key) writes a signed tombstone (a removal must be signed too).
// - iterate.js: keys() in insertion order, each(). CHANGED: keys() is documented unordered
//   and each() is entries(); the test compares sets.
// - events.js: both emitters hear all six events after piping. KEPT; CHANGED only in that
//   delivery is asynchronous (signatures verify first), so the test awaits 'sync' instead of
//   one nextTick. Added: a late joiner gets the same six replayed.
// - integrate.js, integrate2.js: set on g1 reads back on g2 (and g3 in a triangle) in the same
//   tick. CHANGED to await the other model's 'change:<key>': verification is asynchronous, so
//   a synchronous read on the other side can never pass. Added: in the triangle each model
//   applies the update exactly once (dedupe), the duplicate arrives as 'old_data'.
// - sendclock.js: a `writable: false` stream feeds a `readable: false, sendClock: true` one;
//   writes on the receiving side never flow back. KEPT. CHANGED: the sender skips what the
//   receiver holds only when it waits for the digest (`awaitClock`, the seed's `clock`
//   option), and ignored updates are counted in `stats.ignored` (the seed dropped them
//   silently). Without sendClock a `readable: false` stream sends nothing at all.
// - header.js, meta.js: 'header' carries the peer's id and meta, once per stream. KEPT; the
//   header also carries the dataset and the peer's clock. The seed's `meta` was dropped when
//   falsy; here any CBOR value (0, '' included) is sent.
// - sync.js: 'sync' after both histories are exchanged, and the histories are then equal.
//   KEPT, plus: 'syncSent' and 'syncReceived' precede 'sync' and 'sync' fires once per stream
//   (the seed misspelt 'syncRecieved' and emitted 'sync' twice on a `writable: false` stream).
// - `tail: false` (seed option): the stream ends after sync. KEPT: either side's tail:false
//   ends the session for both; live writes after that are not sent.
// - clone.js: clone() is another instance with the same history; writes on either reach the
//   other; disposing the clone tells the original. CHANGED: clone() is async (resolves once
//   synced), and the seed's 'unclone'/_clones count is the generic 'unstream' count.
// - dispose.js: dispose() ends every stream. KEPT (for a lone read stream and for both ends
//   of a live pair).
// - persist.js: a read stream written out and piped into a write stream rebuilds the same
//   history. KEPT, through a real file (`createReadStream({ tail: false })` -> fs ->
//   `createWriteStream()`), with the clock and state hash compared too.
// - unstream.js: 'unstream' counts down as streams close, and on dispose. KEPT; CHANGED in
//   that a stream must be read (resumed or piped) to finish, as any Node Duplex.
// - cleanup.js: listeners a stream puts on the model are removed when it closes. KEPT.
// - secure.js (seed signatures bolted on per stream): NOT PORTED here; signing is always on
//   and is covered by the attack tests.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Events, Identity, Model, signUpdate, type Change, type Header, type ReplicationStream, type Update } from '../../src/index.ts';
import { FORWARD } from '../../src/core/scuttlebutt.ts';
import { FrameDecoder, decodeMessage, type Message } from '../../src/replication/messages.ts';
import { closed, connect, hangUp, next, syncPair, synced, until } from '../helpers/streams.ts';

const model = (dataset?: string) => new Model({ identity: Identity.generate(), ...(dataset ? { dataset } : {}) });
const events = () => new Events({ identity: Identity.generate() });
const hashes = (updates: readonly Update[]) => updates.map((u) => Buffer.from(u.hash).toString('hex'));
const sortedHashes = (updates: readonly Update[]) => hashes(updates).sort();
const clockOf = (m: Model | Events) => [...m.clock].sort();

/** Every message a stream writes, decoded (collects until the stream ends or closes). */
function recordMessages(stream: ReplicationStream): Message[] {
  const decoder = new FrameDecoder(1 << 24);
  const out: Message[] = [];
  stream.on('data', (chunk: Buffer) => {
    const frames = decoder.push(chunk);
    if (typeof frames === 'string') throw new Error(frames);
    for (const f of frames) {
      const r = decodeMessage(f);
      if (!r.ok) throw new Error(r.reason);
      out.push(r.message);
    }
  });
  return out;
}

// ---- index.js ------------------------------------------------------------------------------

test('index.js: an update appears in history; an older one from the same source does not apply', async () => {
  const g = model();
  const source = Identity.generate();
  const ts = 1_700_000_000_000_000;
  const first = signUpdate(source, { dataset: 'default', version: ts, body: ['set', 'key', 0.25] });
  assert.is((await g.ingest(first.bytes)).status, 'applied');
  assert.is(g.get('key'), 0.25);
  assert.equal(hashes(g.history()), hashes([first]));

  const older = signUpdate(source, { dataset: 'default', version: ts - 1, body: ['set', 'key', 0.5] });
  const oldSeen = next<[Update]>(g, 'old_data');
  assert.is((await g.ingest(older.bytes)).status, 'old');
  assert.equal(hashes((await oldSeen)[0] ? [older] : []), hashes([older]));
  assert.equal(hashes(g.history()), hashes([first]), 'the older update is not in history');
  assert.is(g.get('key'), 0.25);
  g.dispose();
});

test('index.js: history(clock) returns only what the clock lacks, all of a source it does not name', async () => {
  const g = model();
  const [A, B, C] = [Identity.generate(), Identity.generate(), Identity.generate()];
  const ts = 1_700_000_000_000_000;
  const ua = signUpdate(A, { dataset: 'default', version: ts, body: ['set', 'A', 'aaa'] });
  const ub = signUpdate(B, { dataset: 'default', version: ts, body: ['set', 'B', 'bbb'] });
  const uc = signUpdate(C, { dataset: 'default', version: ts, body: ['set', 'C', 'ccc'] });
  for (const u of [ua, ub, uc]) assert.is((await g.ingest(u.bytes)).status, 'applied');

  const filter = new Map([[A.id, ts], [B.id, ts], [C.id, ts]]);
  assert.equal(g.history(filter), []);
  filter.set(B.id, ts - 1);
  assert.equal(hashes(g.history(filter)), hashes([ub]));
  filter.delete(C.id);
  assert.equal(sortedHashes(g.history(filter)), sortedHashes([ub, uc]));
  assert.equal(sortedHashes(g.history()), sortedHashes([ua, ub, uc]));
  g.dispose();
});

// ---- model.js, iterate.js ---------------------------------------------------------------------

test("model.js: set emits 'change' and 'change:<key>'; null is a value, delete is a tombstone", async () => {
  const a = model();
  assert.equal(a.toJSON(), {});
  const value = Math.random();
  const changes: Change[] = [];
  const keyed: unknown[][] = [];
  a.on('change', (c: Change) => changes.push(c));
  a.on('change:key', (...args: unknown[]) => keyed.push(args));
  const update = a.set('key', value);
  assert.is(changes.length, 1);
  assert.is(changes[0]!.key, 'key');
  assert.is(changes[0]!.value, value);
  assert.is(changes[0]!.update, update);
  assert.equal(keyed, [[value, update]]);
  assert.equal(a.toJSON(), { key: value });

  a.set('key', null); // seed: removed the key; here null is an ordinary value
  assert.is(a.get('key'), null);
  assert.ok(a.has('key'));
  assert.equal(a.toJSON(), { key: null });
  a.delete('key');
  assert.is(a.get('key'), undefined);
  assert.not.ok(a.has('key'));
  assert.equal(a.toJSON(), {});
  assert.is(changes.length, 3);
  assert.is(changes[2]!.value, undefined);
  a.dispose();
});

test('iterate.js: keys() and entries() hold every live key (order unspecified)', () => {
  const m = model();
  'aoeui'.split('').forEach((k, i) => m.set(k, i + 1));
  assert.equal(m.keys().sort(), 'aeiou'.split(''));
  assert.is(m.entries().reduce((s, [, v]) => s + (v as number), 0), 1 + 2 + 3 + 4 + 5);
  m.delete('e');
  assert.equal(m.keys().sort(), 'aiou'.split(''));
  m.dispose();
});

// ---- events.js ---------------------------------------------------------------------------------

test('events.js: both emitters hear all six events; a late joiner gets them replayed', async () => {
  const A = events();
  const B = events();
  const heard = { A: [] as unknown[], B: [] as unknown[], C: [] as unknown[] };
  A.on('a', (d: unknown) => heard.A.push(d));
  B.on('a', (d: unknown) => heard.B.push(d));
  A.emit('a', 'aardvark');
  A.emit('a', 'antelope');
  A.emit('a', 'anteater');
  B.emit('a', 'armadillo');
  B.emit('a', 'alligator');
  B.emit('a', 'amoeba');
  const all = ['aardvark', 'alligator', 'amoeba', 'anteater', 'antelope', 'armadillo'];
  const [sa, sb] = await syncPair(A, B);
  assert.equal([...heard.A].sort(), all);
  assert.equal([...heard.B].sort(), all);
  assert.equal(hashes(A.history()), hashes(B.history()), 'same events in the same total order');

  const C = events();
  C.on('a', (d: unknown) => heard.C.push(d));
  const [sc, sa2] = await syncPair(C, A);
  assert.equal([...heard.C].sort(), all, 'replayed to a late joiner');
  assert.equal(hashes(C.history()), hashes(A.history()));
  // a live event reaches both peers of A, once each
  const live = Promise.all([until(B, 'a', () => heard.B.includes('axolotl')), until(C, 'a', () => heard.C.includes('axolotl'))]);
  A.emit('a', 'axolotl');
  await live;
  assert.is(heard.B.filter((x) => x === 'axolotl').length, 1);
  assert.is(heard.C.filter((x) => x === 'axolotl').length, 1);
  await hangUp(sa, sb, sc, sa2);
  for (const e of [A, B, C]) e.dispose();
});

// ---- integrate.js, integrate2.js -------------------------------------------------------------

test('integrate.js: a set on either model reads back on the other once it arrives', async () => {
  const g1 = model();
  const g2 = model();
  const [s1, s2] = await syncPair(g1, g2);
  const value = Math.random();
  const arrived = next(g2, 'change:key');
  g1.set('key', value);
  assert.is(g2.get('key'), undefined, 'not before its signature is verified');
  const [got, update] = (await arrived) as [unknown, Update];
  assert.is(got, value);
  assert.equal(hashes([update]), hashes([g1.updateOf('key')!]), 'the same signed update');
  assert.is(g2.get('key'), g1.get('key'));
  const back = next(g1, 'change:other');
  g2.set('other', 'x');
  await back;
  assert.is(g1.get('other'), 'x');
  assert.is(g1.stateHash(), g2.stateHash());
  await hangUp(s1, s2);
  g1.dispose();
  g2.dispose();
});

test('integrate2.js: a triangle converges and each model applies the update once', async () => {
  const g = [model(), model(), model()] as const;
  const pairs = await Promise.all([syncPair(g[0], g[1]), syncPair(g[1], g[2]), syncPair(g[2], g[0])]);
  const applied = [0, 0, 0];
  const old = [0, 0, 0];
  g.forEach((m, i) => {
    m.on('change:key', () => applied[i]!++);
    m.on('old_data', () => old[i]!++);
  });
  const value = Math.random();
  const done = Promise.all([next(g[1], 'change:key'), next(g[2], 'change:key')]);
  g[0].set('key', value);
  await done;
  assert.is(g[1].get('key'), value);
  assert.is(g[2].get('key'), value);
  // g1 and g2 each get it from g0 and again from each other: at most one apply each
  await hangUp(...pairs.flat());
  assert.equal(applied, [1, 1, 1]);
  assert.ok(old[0]! <= 2 && old[1]! <= 1 && old[2]! <= 1, `duplicates are old_data: ${old}`);
  assert.is(g[0].stateHash(), g[1].stateHash());
  assert.is(g[1].stateHash(), g[2].stateHash());
  for (const m of g) m.dispose();
});

// ---- sendclock.js: one-way streams ---------------------------------------------------------------

test('sendclock.js: a writable:false feed reaches a readable:false replica; the replica writes nothing back', async () => {
  const [a, b, c] = [model(), model(), model()];
  const s1 = a.createStream({ name: 's1', writable: false });
  const s2 = b.createStream({ name: 's2', readable: false, sendClock: true });
  const fromReplica = recordMessages(s2);
  s1.pipe(s2).pipe(s1);
  await Promise.all([synced(s1), synced(s2)]);

  let arrived = next(b, 'change:foo');
  a.set('foo', 'bar');
  await arrived;
  assert.is(b.get('foo'), 'bar');

  b.set('foo', 'baz');
  assert.is(b.get('foo'), 'baz', 'b changed locally');
  arrived = next(b, 'change:foo');
  a.set('foo', 'bar2');
  await arrived;
  assert.is(b.get('foo'), 'bar2', "a's newer write wins on b");
  assert.is(a.get('foo'), 'bar2');
  assert.not.ok([...a.clock.keys()].includes(b.id), "b's write never reached a");
  assert.is(s2.stats.sent, 0);
  // Its digest, then (protocol 2) reconciliation messages: fingerprints and hashes, never an update.
  assert.is(fromReplica[0]?.type, 'hello');
  assert.ok(fromReplica.every((m) => m.type === 'hello' || m.type === 'reconcile'), `the replica sent ${fromReplica.map((m) => m.type)}`);
  assert.is(s1.stats.ignored, 0);

  // b feeds c the same way; c ends up with b's state
  const s3 = b.createStream({ name: 's3', writable: false, awaitClock: true });
  const s4 = c.createStream({ name: 's4', readable: false, sendClock: true });
  s3.pipe(s4).pipe(s3);
  await Promise.all([synced(s3), synced(s4)]);
  assert.is(c.get('foo'), 'bar2');
  assert.is(c.stateHash(), b.stateHash());
  await hangUp(s1, s2, s3, s4);
  for (const m of [a, b, c]) m.dispose();
});

test('sendclock.js: with sendClock and awaitClock the feed sends only what the replica lacks', async () => {
  const [a, b] = [model(), model()];
  for (let i = 0; i < 10; i++) a.set(`k${i}`, i);
  let [s1, s2] = connect(a, b, { tail: false }, { tail: false });
  await Promise.all([closed(s1), closed(s2)]);
  assert.is(b.stateHash(), a.stateHash());
  for (let i = 10; i < 13; i++) a.set(`k${i}`, i);

  [s1, s2] = connect(a, b, { writable: false, awaitClock: true, tail: false }, { readable: false, sendClock: true });
  await Promise.all([synced(s1), synced(s2), closed(s1), closed(s2)]);
  assert.is(s1.stats.sent, 3, 'only the three new updates');
  assert.is(s2.stats.old, 0);
  assert.is(b.stateHash(), a.stateHash());

  // without the replica's digest the feed sends everything; the replica counts the rest as old
  a.set('k13', 13);
  [s1, s2] = connect(a, b, { writable: false, tail: false }, { readable: false });
  await Promise.all([synced(s1), synced(s2), closed(s1), closed(s2)]);
  assert.is(s1.stats.sent, 14);
  assert.is(s2.stats.applied, 1);
  assert.is(s2.stats.old, 13);
  assert.is(b.stateHash(), a.stateHash());
  a.dispose();
  b.dispose();
});

test('one-way: a writable:false stream ignores every update it is sent and counts it in stats.ignored', async () => {
  const [a, b] = [model(), model()];
  for (let i = 0; i < 5; i++) b.set(`b${i}`, i);
  a.set('a', 1);
  const [sa, sb] = connect(a, b, { writable: false }, {});
  const syncEvents: string[] = [];
  sa.on('sync', () => syncEvents.push('sync'));
  await Promise.all([next(sa, 'syncReceived'), synced(sb)]);
  assert.is(sb.stats.sent, 5, 'b offered its history');
  assert.is(sa.stats.ignored, 5);
  assert.is(sa.stats.received, 0);
  assert.equal(a.keys(), ['a'], 'a took none of it');
  assert.is(b.get('a'), 1, 'a still feeds b');
  // live writes on b are ignored too; disposing b ends the session once sa has read all of it
  const more = until(sb, 'data', () => sb.stats.sent === 6);
  b.set('b5', 5);
  await more;
  b.dispose();
  await Promise.all([closed(sa), closed(sb)]);
  assert.is(sa.stats.ignored, 6);
  assert.equal(a.keys(), ['a']);
  assert.equal(syncEvents, ['sync'], "'sync' fires once");
  a.dispose();
});

test('one-way: a readable:false stream without sendClock writes no bytes at all', async () => {
  const [a, b] = [model(), model()];
  a.set('x', 1);
  b.set('y', 2);
  const [sa, sb] = connect(a, b, { writable: false }, { readable: false });
  const written = recordMessages(sb);
  await Promise.all([synced(sa), synced(sb)]);
  assert.is(b.get('x'), 1);
  assert.is(a.get('y'), undefined);
  await hangUp(sa, sb);
  assert.equal(written, []);
  a.dispose();
  b.dispose();
});

// ---- header.js, meta.js ----------------------------------------------------------------------------

test("header.js / meta.js: 'header' carries the peer's id, dataset, clock and meta, once per stream", async () => {
  const [a, b, c] = [model(), model(), model()];
  a.set('x', 1);
  const as = a.createStream({ meta: 'A' });
  const bs = b.createStream({ meta: 'B' });
  const b2s = b.createStream({ meta: { role: 'hub', n: 0 } });
  const cs = c.createStream({ meta: 0 });
  const headers = new Map<ReplicationStream, Header[]>();
  for (const s of [as, bs, b2s, cs]) {
    headers.set(s, []);
    s.on('header', (h: Header) => headers.get(s)!.push(h));
  }
  as.pipe(bs).pipe(as);
  b2s.pipe(cs).pipe(b2s);
  await Promise.all([as, bs, b2s, cs].map(synced));
  const one = (s: ReplicationStream) => {
    const list = headers.get(s)!;
    assert.is(list.length, 1);
    return list[0]!;
  };
  assert.is(one(as).id, b.id);
  assert.is(one(as).meta, 'B');
  assert.is(one(bs).id, a.id);
  assert.is(one(bs).meta, 'A');
  assert.is(one(bs).dataset, 'default');
  assert.equal([...one(bs).clock], [...a.clock], "the peer's clock at hello");
  assert.is(one(b2s).id, c.id);
  assert.is(one(b2s).meta, 0, 'a falsy meta is still sent');
  assert.is(one(cs).id, b.id);
  assert.equal(one(cs).meta, { role: 'hub', n: 0 });
  assert.is(as.remote, one(as));
  await hangUp(as, bs, b2s, cs);
  for (const m of [a, b, c]) m.dispose();
});

// ---- sync.js, tail:false -----------------------------------------------------------------------------

test("sync.js: 'syncSent' and 'syncReceived' precede a single 'sync', after which histories match", async () => {
  const a = events();
  const b = events();
  for (const n of [1, 2, 3]) a.emit('event', n);
  for (const n of [4, 5, 6]) b.emit('event', n);
  const as = a.createStream({ name: 'a' });
  const bs = b.createStream({ name: 'b' });
  const log: string[] = [];
  for (const [name, s] of [['a', as], ['b', bs]] as const) {
    for (const e of ['syncSent', 'syncReceived', 'sync'] as const) s.on(e, () => log.push(`${name}:${e}`));
  }
  const all = sortedHashes([...a.history(), ...b.history()]);
  let aAtSync: string[] | null = null;
  as.once('sync', () => (aAtSync = sortedHashes(a.history())));
  as.pipe(bs).pipe(as);
  assert.is(aAtSync, null, 'not synced before any byte moved');
  await Promise.all([synced(as), synced(bs)]);
  assert.equal(aAtSync, all, 'a holds all six when its stream says sync');
  assert.equal(hashes(a.history()), hashes(b.history()));
  assert.ok(as.syncSent && as.syncReceived && bs.syncSent && bs.syncReceived);
  for (const name of ['a', 'b']) {
    const at = (e: string) => log.indexOf(`${name}:${e}`);
    assert.ok(at('syncSent') >= 0 && at('syncSent') < at('sync'), log.join(' '));
    assert.ok(at('syncReceived') >= 0 && at('syncReceived') < at('sync'), log.join(' '));
  }
  // live traffic after sync does not fire 'sync' again
  const live = next(b, 'event');
  a.emit('event', 7);
  await live;
  await hangUp(as, bs);
  assert.equal(log.filter((e) => e.endsWith(':sync')).sort(), ['a:sync', 'b:sync']);
  a.dispose();
  b.dispose();
});

test('tail: false on both sides ends the session after sync; later writes are not sent', async () => {
  const [a, b] = [model(), model()];
  a.set('before', 1);
  const [sa, sb] = connect(a, b, { tail: false }, { tail: false });
  await Promise.all([synced(sa), synced(sb), closed(sa), closed(sb)]);
  assert.is(b.get('before'), 1);
  assert.is(a.streams, 0);
  assert.is(b.streams, 0);
  a.set('after', 2);
  assert.is(b.get('after'), undefined);
  assert.is(b.stateHash() === a.stateHash(), false);
  a.dispose();
  b.dispose();
});

test('tail: false on one side ends the session for both', async () => {
  const [a, b] = [model(), model()];
  b.set('y', 2);
  const [sa, sb] = connect(a, b, { tail: false }, {});
  await Promise.all([closed(sa), closed(sb)]);
  assert.ok(sa.syncSent && sa.syncReceived);
  assert.is(a.get('y'), 2);
  assert.is(sa.closeReason, null);
  a.dispose();
  b.dispose();
});

// ---- clone.js ----------------------------------------------------------------------------------------

test('clone.js: clone() is another instance of the same class with the same history', async () => {
  const a = model('notes');
  a.set('foo', 'bar');
  const b = await a.clone();
  assert.is(b.constructor, Model);
  assert.ok(b !== a);
  assert.is(b.dataset, 'notes');
  assert.is(b.id, a.id, 'same identity');
  assert.equal(hashes(b.history()), hashes(a.history()));
  assert.is(b.get('foo'), 'bar');
  a.dispose();
  b.dispose();
});

test('clone.js: writes on a clone reach the original and back; disposing it ends the link', async () => {
  const a = model();
  a.set('foo', 'bar');
  const b = await a.clone();
  assert.is(a.streams, 1);
  const there = next(a, 'change:quux');
  b.set('quux', 'zaff');
  await there;
  assert.equal(hashes(b.history()), hashes(a.history()));
  const back = next(b, 'change:foo');
  a.set('foo', 'baz');
  await back;
  assert.is(b.get('foo'), 'baz');
  const unstream = next<[number]>(a, 'unstream');
  b.dispose();
  assert.equal(await unstream, [0]);
  assert.is(a.streams, 0);
  a.dispose();
});

// Was a BUG (fixed in core: one version counter per identity and dataset per process): the clone signs with the same identity,
// and each instance picks its next version from its own clock, so two writes in the same
// microsecond (certain with an injected clock) carry the same source and version: the node
// equivocates against itself, both instances emit 'equivocation', and with `quarantine: true`
// it would quarantine its own id. The seed shared the id too, but it had no equivocation rule.
test('clone(): concurrent writes on a model and its clone are not an equivocation', async () => {
  const now = () => 1_700_000_000_000_000;
  const a = new Model({ identity: Identity.generate(), now });
  a.set('x', 0);
  const b = await a.clone();
  const evidence: unknown[] = [];
  a.on('equivocation', (e: unknown) => evidence.push(e));
  b.on('equivocation', (e: unknown) => evidence.push(e));
  a.set('x', 1);
  b.set('y', 2);
  await Promise.all([until(a, 'update', () => a.get('y') === 2), until(b, 'update', () => b.get('x') === 1)]);
  assert.equal(evidence, [], 'a model and its clone never equivocate');
  a.dispose();
  b.dispose();
});

test('clone(): an Events emitter clones with its history replayed', async () => {
  const a = events();
  a.emit('m', 1);
  a.emit('m', 2);
  const b = await a.clone();
  assert.is(b.constructor, Events);
  assert.equal(hashes(b.history()), hashes(a.history()));
  a.dispose();
  b.dispose();
  await until(a, 'unstream', () => a.streams === 0);
});

// ---- dispose.js, unstream.js, cleanup.js ---------------------------------------------------------------

test('dispose.js: dispose() ends a lone tailing read stream after what it queued', async () => {
  const emitter = events();
  emitter.emit('message', 'before');
  const s = emitter.createReadStream({ tail: true });
  const written = recordMessages(s);
  await next(s, 'syncSent');
  emitter.emit('message', 'after'); // live, after the history it started with
  const ended = once(s, 'end');
  emitter.dispose();
  await ended;
  assert.equal(written.map((m) => m.type), ['hello', 'updates', 'sync', 'updates']);
  const counts = written.map((m) => (m.type === 'updates' ? m.updates.length : 0));
  assert.equal(counts, [0, 1, 0, 1]);
  s.end(); // its writable side was never used
  await closed(s);
  assert.is(emitter.streams, 0);
});

test('dispose.js / unstream.js: dispose() ends both ends of every live session; unstream counts down', async () => {
  const m = model();
  const peers = [model(), model()];
  const pairs = await Promise.all(peers.map((p) => syncPair(m, p)));
  const counts: number[] = [];
  m.on('unstream', (n: number) => counts.push(n));
  m.dispose();
  await Promise.all(pairs.flat().map((s) => closed(s)));
  assert.equal(counts, [1, 0]);
  for (const s of pairs.flat()) assert.is(s.closeReason, null, 'a clean end, not a cut');
  for (const p of peers) {
    assert.is(p.streams, 0);
    p.dispose();
  }
  assert.throws(() => m.set('x', 1), (e: Error & { code?: string }) => e.code === 'ERR_WRITE');
});

test("unstream.js: ending a stream emits 'unstream' with the number left", async () => {
  const m = model();
  const s = m.createStream();
  const z = m.createStream();
  assert.is(m.streams, 2);
  const counts: number[] = [];
  m.on('unstream', (n: number) => counts.push(n));
  s.resume();
  z.resume();
  s.end();
  await closed(s);
  z.end();
  await closed(z);
  assert.equal(counts, [1, 0]);
  m.dispose();
});

test('cleanup.js: listeners a stream adds to its model are gone once it closes', async () => {
  const e = events();
  const base = { forward: e.listenerCount(FORWARD), dispose: e.listenerCount('dispose') };
  for (let i = 0; i < 20; i++) {
    const s = e.createStream();
    assert.is(e.listenerCount(FORWARD), base.forward + 1);
    s.resume();
    s.end();
    await closed(s);
    assert.is(e.listenerCount(FORWARD), base.forward);
    assert.is(e.listenerCount('dispose'), base.dispose);
  }
  assert.is(e.streams, 0);
  e.dispose();
});

// ---- persist.js ----------------------------------------------------------------------------------------

test('persist.js: a history stream written to a file replays into a fresh model', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'signet-persist-'));
  try {
    const path = join(dir, 'history.bin');
    const a = model('persist');
    for (let i = 0; i < 50; i++) a.set(`k${i}`, { i, at: `hello_${i}` });
    a.delete('k7');
    a.set('k8', 'later', { ttl: 3_600_000 });

    const out = a.createReadStream({ tail: false });
    await pipeline(out, createWriteStream(path));
    out.end();
    await closed(out);
    assert.ok((await stat(path)).size > 50 * 64);

    const b = model('persist');
    const seen: Change[] = [];
    b.on('change', (c: Change) => seen.push(c));
    const inbound = b.createWriteStream();
    inbound.resume();
    const [done] = [synced(inbound)];
    await pipeline(createReadStream(path), inbound);
    await done;
    await closed(inbound);
    assert.is(seen.length, 50, 'every stored update applied (k7 as its tombstone)');
    assert.equal(hashes(b.history()), hashes(a.history()));
    assert.equal(clockOf(b), clockOf(a));
    assert.is(b.stateHash(), a.stateHash());
    assert.equal(b.toJSON(), a.toJSON());
    assert.is(inbound.stats.rejected, 0);
    a.dispose();
    b.dispose();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('persist.js: the same file replayed into a model of another dataset is refused', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'signet-persist-'));
  try {
    const path = join(dir, 'history.bin');
    const a = model('persist');
    a.set('k', 1);
    const out = a.createReadStream({ tail: false });
    await pipeline(out, createWriteStream(path));
    out.destroy();
    const b = model('other');
    const inbound = b.createWriteStream();
    const cut = next(inbound, 'cut');
    createReadStream(path).pipe(inbound);
    await cut;
    assert.is(inbound.closeReason?.reason, 'wrong-dataset');
    assert.equal(b.toJSON(), {});
    a.dispose();
    b.dispose();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
