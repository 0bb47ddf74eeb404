// Membership over a real owner-policy Model of the system dataset, fed by other identities' models
// (ingest and replication streams), with an injected monotonic clock (ms) and wall clock (µs):
// members come only from their own signed records, addresses only from their `node` record,
// liveness only from fresh heartbeats; phi-accrual conviction at the computed moment; revival
// with a fresh detector window; and the bound on members tracked.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Identity, Model, owner, signUpdate, type NodeId } from '../../src/index.ts';
import { MAX_CLOCK_SKEW_MICROS, MAX_HEARTBEAT_INTERVAL_MS, MAX_MEMBER_ADDRESSES } from '../../src/limits.ts';
import { Membership, MEMBER_RECORD_MAX_BYTES, MEMBERS_DATASET, type MemberInfo } from '../../src/mesh/membership.ts';
import { PhiAccrualDetector, type PhiAccrualOptions } from '../../src/mesh/phi-accrual.ts';
import { hangUp, syncPair, until } from '../helpers/streams.ts';

const HB = 1000;
/** What a Node uses for a 1 s heartbeat interval. */
const PHI: PhiAccrualOptions = { threshold: 8, firstHeartbeatEstimateMs: HB, acceptableHeartbeatPauseMs: HB, minStdDeviationMs: 100 };
/** A heartbeat older than this (µs), by our wall clock, says nothing about now. */
const FRESH_WINDOW_MICROS = MAX_CLOCK_SKEW_MICROS + 2 * HB * 1000;

/** The two clocks a Node injects, advanced together. */
class Clock {
  ms = 5_000;
  micros = 1_700_000_000_000_000;
  advance(ms: number): void {
    this.ms += ms;
    this.micros += Math.round(ms * 1000);
  }
  /** Moves the monotonic clock to `ms` exactly (the wall clock with it). */
  at(ms: number): void {
    this.advance(ms - this.ms);
  }
}

type Event = [kind: 'new' | 'dead' | 'alive', member: MemberInfo];

interface Local {
  clock: Clock;
  model: Model;
  membership: Membership;
  events: Event[];
  /** Takes the events recorded so far, as `kind:shortname` strings. */
  take(): string[];
}

const names = new Map<NodeId, string>();
const nameOf = (id: NodeId): string => names.get(id) ?? id.slice(0, 6);

async function local(options: { maxMembers?: number; heartbeatMembers?: number; clock?: Clock } = {}): Promise<Local> {
  const clock = options.clock ?? new Clock();
  const model = membersModel(Identity.generate(), () => clock.micros);
  await model.ready;
  const membership = new Membership({
    model, now: () => clock.ms, wallMicros: () => clock.micros, heartbeatIntervalMs: HB, phi: PHI, maxMembers: options.maxMembers,
    heartbeatMembers: options.heartbeatMembers,
  });
  const events: Event[] = [];
  for (const kind of ['new', 'dead', 'alive'] as const) membership.on(kind, (m) => events.push([kind, m]));
  return {
    clock, model, membership, events,
    take: () => events.splice(0).map(([kind, m]) => `${kind}:${nameOf(m.id)}`),
  };
}

function membersModel(identity: Identity, now: () => number): Model {
  return new Model({ identity, dataset: MEMBERS_DATASET, policy: owner(), now, maxUpdateBytes: MEMBER_RECORD_MAX_BYTES });
}

/** Another node: its own copy of the system dataset, writing only its own records. */
class Remote {
  readonly identity = Identity.generate();
  readonly id = this.identity.id;
  readonly model: Model;
  private beats = 0;
  /** Its wall clock (µs): the local clock's, shifted by `skewMicros`. */
  constructor(private readonly clock: Clock, name: string, public skewMicros = 0) {
    names.set(this.id, name);
    this.model = membersModel(this.identity, () => this.clock.micros + this.skewMicros);
  }
  node(value: unknown): Uint8Array {
    return this.model.set(`${this.id}/node`, value).bytes;
  }
  /** A heartbeat: a bare counter (as if from a node that declares no interval), or `{ beat, every }`. */
  alive(every?: number): Uint8Array {
    const beat = ++this.beats;
    return this.model.set(`${this.id}/alive`, every === undefined ? beat : { beat, every }).bytes;
  }
  /** The record a node signs when it stops cleanly. */
  leave(): Uint8Array {
    return this.model.set(`${this.id}/alive`, { beat: ++this.beats, every: HB, left: true }).bytes;
  }
}

async function remote(l: Local, name: string, skewMicros = 0): Promise<Remote> {
  const r = new Remote(l.clock, name, skewMicros);
  await r.model.ready;
  return r;
}

async function ingest(l: Local, bytes: Uint8Array): Promise<string> {
  const result = await l.model.ingest(bytes);
  return result.status === 'rejected' ? `rejected:${result.reason}` : result.status;
}

/** A detector fed the same arrival times, to say when the membership must convict. */
function reference(times: number[]): PhiAccrualDetector {
  const d = new PhiAccrualDetector(PHI);
  for (const t of times) d.heartbeat(t);
  return d;
}

// ---- who is a member -----------------------------------------------------------------------------

test('a member is listed from its own node record (dead, never heard: phi Infinity) and is new when first heard alive', async () => {
  const l = await local();
  const x = await remote(l, 'x');
  assert.is(await ingest(l, x.node({ addresses: ['10.0.0.1:7420'] })), 'applied');
  assert.equal(l.take(), [], 'not announced before it is heard');
  const first = l.membership.get(x.id)!;
  assert.equal(first, { id: x.id, addresses: ['10.0.0.1:7420'], address: '10.0.0.1:7420', state: 'dead', phi: Infinity, lastSeen: null, heartbeatIntervalMs: HB });
  l.clock.advance(10);
  assert.is(await ingest(l, x.alive()), 'applied');
  assert.equal(l.take(), ['new:x']);
  const now = l.membership.get(x.id)!;
  assert.is(now.state, 'alive');
  assert.is(now.lastSeen, l.clock.ms);
  assert.ok(now.phi < 0.01, `phi right after a heartbeat: ${now.phi}`);
  assert.equal(now.addresses, ['10.0.0.1:7420']);
  assert.is(l.membership.size, 1);
  assert.equal(l.membership.list().map((m) => m.id), [x.id]);
});

test('a member whose first record is a fresh heartbeat is new and alive at once (no separate alive event)', async () => {
  const l = await local();
  const x = await remote(l, 'x');
  await ingest(l, x.alive());
  assert.equal(l.take(), ['new:x']);
  assert.is(l.events.length, 0);
  assert.equal(l.membership.get(x.id)!.addresses, []);
  assert.is(l.membership.get(x.id)!.state, 'alive');
});

test('records under a member\'s id other than node and alive make no member', async () => {
  const l = await local();
  const x = await remote(l, 'x');
  for (const key of ['other', 'node/x', 'alive/', 'Node', 'node ', 'x/node']) {
    assert.is(await ingest(l, x.model.set(`${x.id}/${key}`, { addresses: ['10.0.0.1:1'] }).bytes), 'applied', key);
  }
  assert.is(l.membership.size, 0);
  assert.equal(l.take(), []);
});

test('a record signed by X under Y\'s key is refused by the policy and changes nothing', async () => {
  const l = await local();
  const x = await remote(l, 'x');
  const y = await remote(l, 'y');
  const forge = (key: string, value: unknown, version: number): Uint8Array =>
    signUpdate(x.identity, { dataset: MEMBERS_DATASET, version, body: ['set', `${y.id}/${key}`, value] }).bytes;
  // Before Y exists: X cannot create it.
  assert.is(await ingest(l, forge('node', { addresses: ['6.6.6.6:666'] }, l.clock.micros)), 'rejected:forbidden');
  assert.is(await ingest(l, forge('alive', 1, l.clock.micros + 1)), 'rejected:forbidden');
  assert.is(l.membership.size, 0);
  assert.equal(l.take(), []);
  // Y exists (dead after silence); X can neither move it nor bring it back.
  await ingest(l, y.node({ addresses: ['10.0.0.2:7420'] }));
  await ingest(l, y.alive());
  l.take();
  l.clock.advance(600_000);
  l.membership.check();
  assert.equal(l.take(), ['dead:y']);
  const before = l.membership.get(y.id);
  assert.is(await ingest(l, forge('node', { addresses: ['6.6.6.6:666'] }, l.clock.micros)), 'rejected:forbidden');
  assert.is(await ingest(l, forge('alive', 99, l.clock.micros + 1)), 'rejected:forbidden');
  assert.equal(l.membership.get(y.id), before);
  assert.equal(l.take(), []);
  assert.not.ok(l.membership.get(x.id), 'X itself did not become a member by forging');
  // Nor can X write Y's records through its own model: the policy refuses the local write too.
  assert.throws(() => x.model.set(`${y.id}/node`, { addresses: ['6.6.6.6:666'] }), (e: Error) => e.name === 'WriteError');
});

test('records relayed by a third node count as their signer\'s, never the relay\'s (replication streams)', async () => {
  const l = await local();
  const x = await remote(l, 'x');
  const z = await remote(l, 'z');
  x.node({ addresses: ['10.0.0.1:7420'] });
  x.alive();
  // Z holds X's records (X to Z), then passes them on to us (Z to L); Z wrote nothing itself.
  const [xz, zx] = await syncPair(x.model, z.model);
  const [zl, lz] = await syncPair(z.model, l.model);
  await until(l.membership, 'new', () => l.membership.size > 0);
  assert.equal(l.membership.list().map((m) => [m.id, m.addresses, m.state]), [[x.id, ['10.0.0.1:7420'], 'alive']]);
  assert.equal(l.take(), ['new:x']);
  assert.not.ok(l.membership.get(z.id));
  // Live updates flow on: X moves, and we see it from X's own record.
  x.node({ addresses: ['10.0.0.9:7421'] });
  await until(l.model, 'change', () => l.membership.get(x.id)!.addresses[0] === '10.0.0.9:7421');
  await hangUp(xz, zx, zl, lz);
});

// ---- addresses -----------------------------------------------------------------------------------

test('addresses come only from the node record; garbage in it is ignored', async () => {
  const l = await local();
  const x = await remote(l, 'x');
  await ingest(l, x.node({
    addresses: [
      '10.0.0.1:7420', 42, 'nope', null, { host: '1.2.3.4' }, ['1.2.3.4:5'], '[::1]:7421', 'h:0', 'h:65536',
    ],
    extra: 'ignored',
  }));
  // Only the first MAX_MEMBER_ADDRESSES entries are read; of them, the two addresses.
  assert.equal(l.membership.get(x.id)!.addresses, ['10.0.0.1:7420', '[::1]:7421']);
  await ingest(l, x.node({ addresses: ['\u001b[2J:80', 'a b:1', '::1:80', '0.0.0.0:7420', '[::]:7420', 'example.com:7420', `${'x'.repeat(300)}:1`] }));
  assert.equal(l.membership.get(x.id)!.addresses, ['example.com:7420'], 'hostile hosts and wildcards dropped');
  // A heartbeat never changes the addresses.
  await ingest(l, x.alive());
  assert.equal(l.membership.get(x.id)!.addresses, ['example.com:7420']);
});

test('a node record that is not { addresses: [...] } gives no addresses', async () => {
  const l = await local();
  const x = await remote(l, 'x');
  await ingest(l, x.node({ addresses: ['10.0.0.1:7420'] }));
  for (const value of ['10.0.0.1:7420', 42, null, true, [], ['10.0.0.1:7420'], {}, { addresses: '10.0.0.1:7420' }, { addresses: { 0: '10.0.0.1:7420' } }, { addresses: null }, Uint8Array.of(1, 2)]) {
    await ingest(l, x.node({ addresses: ['10.0.0.1:7420'] }));
    assert.equal(l.membership.get(x.id)!.addresses, ['10.0.0.1:7420']);
    await ingest(l, x.node(value));
    assert.equal(l.membership.get(x.id)!.addresses, [], JSON.stringify(value));
  }
  // A deleted record: no addresses.
  await ingest(l, x.node({ addresses: ['10.0.0.1:7420'] }));
  await ingest(l, x.model.delete(`${x.id}/node`).bytes);
  assert.equal(l.membership.get(x.id)!.addresses, []);
});

test(`at most MAX_MEMBER_ADDRESSES (${MAX_MEMBER_ADDRESSES}) addresses: at the limit all kept, past it the first ones`, async () => {
  const l = await local();
  const x = await remote(l, 'x');
  const all = Array.from({ length: 20 }, (_, i) => `10.0.0.${i + 1}:7420`);
  await ingest(l, x.node({ addresses: all.slice(0, MAX_MEMBER_ADDRESSES) }));
  assert.equal(l.membership.get(x.id)!.addresses, all.slice(0, MAX_MEMBER_ADDRESSES));
  await ingest(l, x.node({ addresses: all.slice(0, MAX_MEMBER_ADDRESSES + 1) }));
  assert.equal(l.membership.get(x.id)!.addresses, all.slice(0, MAX_MEMBER_ADDRESSES));
  await ingest(l, x.node({ addresses: all }));
  assert.equal(l.membership.get(x.id)!.addresses, all.slice(0, MAX_MEMBER_ADDRESSES));
  // Garbage does not push valid addresses past the limit: entries past it are never read.
  await ingest(l, x.node({ addresses: [...Array(MAX_MEMBER_ADDRESSES).fill('junk'), '10.0.0.1:7420'] }));
  assert.equal(l.membership.get(x.id)!.addresses, []);
  // The list handed out is a copy.
  l.membership.get(x.id)!.addresses.push('6.6.6.6:1');
  assert.equal(l.membership.get(x.id)!.addresses, []);
});

// ---- heartbeats ----------------------------------------------------------------------------------

test('a heartbeat signed at the edge of the freshness window counts; one microsecond older does not', async () => {
  const l = await local();
  const edge = await remote(l, 'edge', -FRESH_WINDOW_MICROS);
  const old = await remote(l, 'old', -FRESH_WINDOW_MICROS - 1);
  await ingest(l, edge.alive());
  await ingest(l, old.alive());
  assert.equal(l.take(), ['new:edge'], 'only the fresh one is heard');
  assert.is(l.membership.get(edge.id)!.state, 'alive');
  const info = l.membership.get(old.id)!;
  assert.is(info.state, 'dead', 'an old heartbeat does not make a member alive');
  assert.is(info.lastSeen, null);
  assert.is(info.phi, Infinity);
  // And a later old one neither.
  l.clock.advance(1000);
  await ingest(l, old.alive());
  assert.equal(l.take(), []);
  assert.is(l.membership.get(old.id)!.state, 'dead');
});

test('phi rises with silence; check() emits dead once, exactly when phi reaches the threshold', async () => {
  const l = await local();
  const x = await remote(l, 'x');
  const times: number[] = [];
  for (let i = 0; i < 30; i++) {
    if (i > 0) l.clock.advance(HB);
    times.push(l.clock.ms);
    await ingest(l, x.alive());
    l.membership.check();
  }
  assert.equal(l.take(), ['new:x']);
  const last = l.clock.ms;
  const convictAt = reference(times).unavailableAt()!;
  assert.ok(convictAt > last + HB && convictAt < last + 10 * HB, `conviction ${convictAt - last} ms after the last beat`);
  let previous = -1;
  for (let late = 0; late <= convictAt - last; late += 250) {
    l.clock.at(last + late);
    const phi = l.membership.get(x.id)!.phi;
    assert.ok(phi >= previous, `phi fell at ${late} ms`);
    if (late >= 2 * HB) assert.ok(phi > previous, `phi did not rise at ${late} ms`);
    previous = phi;
  }
  l.clock.at(convictAt - 0.001);
  assert.ok(l.membership.get(x.id)!.phi < PHI.threshold!);
  l.membership.check();
  assert.equal(l.take(), [], 'not yet');
  assert.is(l.membership.get(x.id)!.state, 'alive');
  l.clock.at(convictAt);
  l.membership.check();
  const events = l.events.splice(0);
  assert.equal(events.map(([k, m]) => `${k}:${nameOf(m.id)}`), ['dead:x']);
  assert.ok(events[0]![1].phi >= PHI.threshold!, `phi at conviction: ${events[0]![1].phi}`);
  assert.is(events[0]![1].state, 'dead');
  for (const later of [1, 1000, 1_000_000]) {
    l.clock.at(convictAt + later);
    l.membership.check();
  }
  assert.equal(l.take(), [], 'dead is emitted once');
  assert.is(l.membership.get(x.id)!.lastSeen, last);
});

test('a fresh heartbeat after death emits alive, and the detector starts a new window (a long silence does not delay the next conviction)', async () => {
  const l = await local();
  const x = await remote(l, 'x');
  for (let i = 0; i < 30; i++) {
    l.clock.advance(HB);
    await ingest(l, x.alive());
  }
  l.clock.advance(300_000); // five minutes of silence
  l.membership.check();
  assert.equal(l.take(), ['new:x', 'dead:x']);
  const revived = l.clock.ms;
  await ingest(l, x.alive());
  assert.equal(l.take(), ['alive:x']);
  const info = l.membership.get(x.id)!;
  assert.is(info.state, 'alive');
  assert.is(info.lastSeen, revived);
  assert.ok(info.phi < 0.01);
  // The next conviction comes when a detector that has heard one heartbeat convicts.
  const convictAt = reference([revived]).unavailableAt()!;
  assert.ok(convictAt - revived < 10 * HB, `${convictAt - revived} ms`);
  l.clock.at(convictAt - 0.001);
  l.membership.check();
  assert.equal(l.take(), []);
  l.clock.at(convictAt);
  l.membership.check();
  assert.equal(l.take(), ['dead:x']);
});

test('a member is judged on the interval it declares: conviction, freshness and the cap follow it; a change starts a new window', async () => {
  const every = 5 * HB;
  const scaled = { ...PHI, firstHeartbeatEstimateMs: every, acceptableHeartbeatPauseMs: every, minStdDeviationMs: 5 * PHI.minStdDeviationMs! };
  const l = await local();
  const x = await remote(l, 'x');
  const times: number[] = [];
  for (let i = 0; i < 30; i++) {
    if (i > 0) l.clock.advance(every);
    times.push(l.clock.ms);
    await ingest(l, x.alive(every));
  }
  assert.is(l.membership.get(x.id)!.heartbeatIntervalMs, every);
  const last = l.clock.ms;
  // A detector on the base interval would have convicted long before the next beat is due.
  assert.ok(reference(times).unavailableAt()! < last + every, 'the base-interval detector convicts within one declared interval');
  const convictAt = (() => {
    const d = new PhiAccrualDetector(scaled);
    for (const t of times) d.heartbeat(t);
    return d.unavailableAt()!;
  })();
  assert.ok(convictAt > last + every, `conviction ${convictAt - last} ms after the last beat`);
  l.clock.at(convictAt - 0.001);
  l.membership.check();
  assert.equal(l.take(), ['new:x'], 'alive through silences its interval explains');
  l.clock.at(convictAt);
  l.membership.check();
  assert.equal(l.take(), ['dead:x']);

  // Freshness: two of its own intervals (plus the skew), not two of ours.
  const window = MAX_CLOCK_SKEW_MICROS + 2 * every * 1000;
  const edge = await remote(l, 'edge', -window);
  const stale = await remote(l, 'stale', -window - 1);
  await ingest(l, edge.alive(every));
  await ingest(l, stale.alive(every));
  assert.equal(l.take(), ['new:edge']);

  // A declared interval beyond the cap counts as the cap; garbage counts as ours.
  const slow = await remote(l, 'slow');
  await ingest(l, slow.alive(100 * MAX_HEARTBEAT_INTERVAL_MS));
  assert.is(l.membership.get(slow.id)!.heartbeatIntervalMs, MAX_HEARTBEAT_INTERVAL_MS);
  const odd = await remote(l, 'odd');
  await ingest(l, odd.model.set(`${odd.id}/alive`, { beat: 1, every: -5 }).bytes);
  assert.is(l.membership.get(odd.id)!.heartbeatIntervalMs, HB);

  // A member that slows down mid-life is judged afresh: its old 1 s intervals would convict it
  // at the first 5 s silence.
  const y = await remote(l, 'y');
  for (let i = 0; i < 30; i++) {
    l.clock.advance(HB);
    await ingest(l, y.alive(HB));
  }
  await ingest(l, y.alive(every));
  l.clock.advance(every - 1);
  l.membership.check();
  assert.is(l.membership.get(y.id)!.state, 'alive');
  assert.is(l.membership.get(y.id)!.heartbeatIntervalMs, every);
  l.take();
});

test('our own interval grows with the live members past heartbeatMembers, is declared in the record, and shrinks with hysteresis', async () => {
  const l = await local({ heartbeatMembers: 2 });
  const declared = (): unknown => (l.model.get(`${l.model.id}/alive`) as { every: number }).every;
  l.membership.start([]);
  assert.is(declared(), HB, 'alone: the base interval');
  const remotes: Remote[] = [];
  const beat = async (rs: Remote[]): Promise<void> => {
    for (const r of rs) await ingest(l, r.alive(HB));
  };
  for (let i = 0; i < 6; i++) remotes.push(await remote(l, `m${i}`));
  await beat(remotes.slice(0, 3)); // 4 alive with us: ceil(4 / 2) = 2
  l.membership.heartbeat();
  assert.is(declared(), 2 * HB);
  assert.is(l.membership.heartbeatIntervalMs, 2 * HB);
  await beat(remotes.slice(3)); // 7 alive: ceil(7 / 2) = 4
  l.membership.heartbeat();
  assert.is(declared(), 4 * HB);
  // Everyone falls silent and is convicted; three come back: 4 alive, and the step down to 2
  // waits until the mesh is a quarter below it (ceil(4 x 1.25 / 2) = 3).
  l.clock.advance(1_000 * HB);
  l.membership.check();
  await beat(remotes.slice(0, 3));
  l.membership.heartbeat();
  assert.is(declared(), 3 * HB);
  l.clock.advance(1_000 * HB);
  l.membership.check();
  await beat(remotes.slice(0, 2)); // 3 alive: ceil(3 / 2) = ceil(3.75 / 2) = 2
  l.membership.heartbeat();
  assert.is(declared(), 2 * HB);
});

test('a member that leaves (its own signed record) is dead at once; a heartbeat after a restart revives it', async () => {
  const l = await local();
  const x = await remote(l, 'x');
  const other = await remote(l, 'other');
  for (let i = 0; i < 5; i++) {
    l.clock.advance(HB);
    await ingest(l, x.alive(HB));
  }
  await ingest(l, other.alive(HB));
  assert.equal(l.take(), ['new:x', 'new:other']);
  l.clock.advance(10);
  assert.is(await ingest(l, x.leave()), 'applied');
  assert.equal(l.take(), ['dead:x'], 'dead without waiting for silence');
  assert.is(l.membership.get(x.id)!.state, 'dead');
  assert.is(l.membership.get(other.id)!.state, 'alive');
  l.membership.check();
  assert.equal(l.take(), [], 'not convicted again');
  l.clock.advance(HB);
  await ingest(l, x.alive(HB));
  assert.equal(l.take(), ['alive:x']);
});

test('a heartbeat that died on the way (relayed minutes late) does not revive a dead member', async () => {
  const l = await local();
  const x = await remote(l, 'x');
  await ingest(l, x.alive());
  l.clock.advance(HB);
  const late = x.alive(); // signed now, delivered much later
  l.clock.advance(200_000);
  l.membership.check();
  assert.equal(l.take(), ['new:x', 'dead:x']);
  assert.is(await ingest(l, late), 'applied');
  assert.equal(l.take(), []);
  assert.is(l.membership.get(x.id)!.state, 'dead');
  // The member then beats for real: alive.
  await ingest(l, x.alive());
  assert.equal(l.take(), ['alive:x']);
});

test('a member silent without a check() between is not reported dead or alive, and its window is not widened by the pause', async () => {
  const l = await local();
  const x = await remote(l, 'x');
  const times: number[] = [];
  for (let i = 0; i < 10; i++) {
    l.clock.advance(HB);
    times.push(l.clock.ms);
    await ingest(l, x.alive());
  }
  l.clock.advance(60_000);
  times.push(l.clock.ms);
  await ingest(l, x.alive());
  assert.equal(l.take(), ['new:x']);
  l.clock.at(reference(times).unavailableAt()!);
  l.membership.check();
  assert.equal(l.take(), ['dead:x'], 'convicted as the detector with the same arrivals would');
});

// ---- start, own records, limits ------------------------------------------------------------------

test('start() reads records already held, then signs our node record and a heartbeat; we are never our own member', async () => {
  const clock = new Clock();
  const model = membersModel(Identity.generate(), () => clock.micros);
  await model.ready;
  const x = new Remote(clock, 'x');
  await x.model.ready;
  await model.ingest(x.node({ addresses: ['10.0.0.1:7420'] }));
  await model.ingest(x.alive());
  const membership = new Membership({ model, now: () => clock.ms, wallMicros: () => clock.micros, heartbeatIntervalMs: HB, phi: PHI });
  const seen: string[] = [];
  for (const kind of ['new', 'dead', 'alive'] as const) membership.on(kind, (m) => seen.push(`${kind}:${nameOf(m.id)}:${m.state}`));
  membership.start(['192.0.2.1:7420']);
  assert.equal(seen, ['new:x:alive'], 'announced once, when its fresh heartbeat is read');
  assert.equal(membership.list().map((m) => [m.id, m.addresses]), [[x.id, ['10.0.0.1:7420']]]);
  assert.equal(model.get(`${model.id}/node`), { addresses: ['192.0.2.1:7420'] });
  const firstBeat = model.updateOf(`${model.id}/alive`)!.version;
  clock.advance(HB);
  membership.heartbeat();
  assert.ok(model.updateOf(`${model.id}/alive`)!.version > firstBeat);
  assert.not.ok(membership.get(model.id));
  assert.is(membership.size, 1);
  // Started again with the same addresses (a restart): the node record is not signed again.
  const nodeVersion = model.updateOf(`${model.id}/node`)!.version;
  new Membership({ model, now: () => clock.ms, wallMicros: () => clock.micros, heartbeatIntervalMs: HB, phi: PHI }).start(['192.0.2.1:7420']);
  assert.is(model.updateOf(`${model.id}/node`)!.version, nodeVersion);
});

test('maxMembers: a full table forgets a dead member for a newcomer, never a live one', async () => {
  const l = await local({ maxMembers: 2 });
  const [a, b, c, d] = [await remote(l, 'a'), await remote(l, 'b'), await remote(l, 'c'), await remote(l, 'd')];
  await ingest(l, a.alive());
  await ingest(l, b.alive());
  assert.equal(l.take(), ['new:a', 'new:b']);
  // Both alive: the newcomer is not tracked.
  await ingest(l, c.alive());
  assert.not.ok(l.membership.get(c.id));
  assert.is(l.membership.size, 2);
  // A falls silent and is convicted while B keeps beating: C now takes A's place.
  for (let t = 0; t < 20; t++) {
    l.clock.advance(HB);
    await ingest(l, b.alive());
    l.membership.check();
  }
  assert.equal(l.take(), ['dead:a']);
  await ingest(l, c.alive());
  assert.equal(l.take(), ['new:c']);
  assert.not.ok(l.membership.get(a.id), 'the dead member was forgotten');
  assert.ok(l.membership.get(b.id), 'the live one kept its place');
  // A record that is not a heartbeat (an address record) never displaces a live member.
  await ingest(l, d.node({ addresses: ['10.0.0.4:7420'] }));
  assert.not.ok(l.membership.get(d.id));
  assert.is(l.membership.size, 2);
});

test.run();
