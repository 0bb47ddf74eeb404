// Events listeners with wildcard patterns (telepathine's bus): the matcher itself, delivery of
// (data, fromPeer, name, update) over replication, once/off, reserved names untouched, bounds.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Events, signUpdate, type Update } from '../../src/index.ts';
import { compilePattern, isPattern, matchPattern } from '../../src/models/patterns.ts';
import { MAX_EVENT_NAME_LENGTH } from '../../src/models/events.ts';
import { identity, testClock, syncOnce, fakeOrigin, T0 } from '../core/helpers.ts';
import { makeEvents, type EventsTestOptions } from './fixtures.ts';

const A = identity(0x71);
const B = identity(0x72);

const events = (id = A, options: EventsTestOptions = {}): Promise<Events> => makeEvents(id, options);

const matches = (pattern: string, name: string) => matchPattern(compilePattern(pattern), name);

test('matcher: * is one segment, ** any number (none too), literal segments compare whole', () => {
  assert.ok(matches('alerts.*', 'alerts.disk'));
  assert.not.ok(matches('alerts.*', 'alerts.disk.full'));
  assert.not.ok(matches('alerts.*', 'alerts'));
  assert.ok(matches('alerts.*', 'alerts.'), 'an empty segment is a segment');
  assert.ok(matches('alerts.**', 'alerts'));
  assert.ok(matches('alerts.**', 'alerts.disk.full'));
  assert.not.ok(matches('alerts.**', 'alertsx.disk'));
  assert.ok(matches('**', 'anything.at.all'));
  assert.ok(matches('**', 'x'));
  assert.ok(matches('*.disk.*', 'a.disk.b'));
  assert.not.ok(matches('*.disk.*', 'a.b.disk.c'));
  assert.ok(matches('**.full', 'alerts.disk.full'));
  assert.ok(matches('**.full', 'full'));
  assert.not.ok(matches('**.full', 'alerts.full.x'));
  assert.ok(matches('a.**.b.**.c', 'a.x.b.y.z.c'));
  assert.ok(matches('a.**.**.c', 'a.c'));
  assert.not.ok(matches('a.**.b.**.c', 'a.x.c.b'));
  assert.ok(matches('a.*', 'a.*'), 'a literal star segment is matched by *');
  assert.ok(isPattern('a.*') && isPattern('**') && isPattern('x.**.y'));
  assert.not.ok(isPattern('a*b') || isPattern('a.b*') || isPattern('plain'), 'a star inside a segment is literal');
  assert.equal(compilePattern('a.**.**.**.b'), ['a', '**', 'b']);
});

test('matcher: hostile patterns and names cost linear time, no backtracking blowup', () => {
  // The classic exponential case for backtracking globs: many ** against a near miss.
  const pattern = Array.from({ length: 64 }, (_, i) => (i % 2 === 0 ? '**' : 'a')).join('.') + '.b';
  const name = Array.from({ length: 128 }, () => 'a').join('.'); // 255 chars, never ends in .b
  assert.ok(pattern.length <= MAX_EVENT_NAME_LENGTH && name.length <= MAX_EVENT_NAME_LENGTH);
  // A backtracking matcher would not finish this (C(128, 32) ways to split); this one does at once.
  let hits = 0;
  for (let i = 0; i < 200; i++) hits += matches(pattern, name) ? 1 : 0;
  assert.is(hits, 0);
  assert.ok(matches(pattern, name.slice(0, 251) + '.b'), 'and the near hit matches');
});

test('on(pattern): hears matching replicated events with (data, fromPeer, name, update); exact listeners unchanged', async () => {
  const clock = testClock();
  const a = await events(A, { now: clock.now });
  const b = await events(B, { now: clock.now });
  const star: Array<[unknown, string, string]> = [];
  const all: string[] = [];
  const exact: Array<[unknown, Update]> = [];
  b.on('alerts.*', (data: unknown, fromPeer: string, name: string, update: Update) => {
    star.push([data, fromPeer, name]);
    assert.is(update.source, fromPeer);
  });
  b.on('**', (_d: unknown, _from: string, name: string) => all.push(name));
  b.on('alerts.disk', (data: unknown, update: Update) => exact.push([data, update]));
  a.emit('alerts.disk', { pct: 91 });
  clock.advanceMs(1);
  a.emit('alerts.disk.full', 1);
  clock.advanceMs(1);
  a.emit('chat', 'hi');
  await syncOnce(a, b);
  assert.equal(star, [[{ pct: 91 }, A.id, 'alerts.disk']]);
  assert.equal(all, ['alerts.disk', 'alerts.disk.full', 'chat']);
  assert.is(exact.length, 1);
  assert.equal(exact[0]![0], { pct: 91 });
  assert.is(exact[0]![1].source, A.id, 'exact listeners still get (data, update)');
});

test('fromPeer is the verified signer, also for local emits; reserved events never reach patterns', async () => {
  const a = await events(A);
  const heard: string[] = [];
  a.on('**', (_d: unknown, from: string, name: string) => heard.push(`${name}@${from}`));
  const updates: Update[] = [];
  a.on('update', (u: Update) => updates.push(u));
  a.emit('x', 1);
  // an event from B, ingested (verified) as if from a stream
  const u = signUpdate(B, { dataset: 'default', version: T0, body: ['emit', 'y.z', 2] });
  assert.is((await a.ingest(u.bytes, fakeOrigin())).status, 'applied');
  assert.equal(heard, [`x@${A.id}`, `y.z@${B.id}`]);
  assert.is(updates.length, 2, "'update' still fires for each");
  a.emit('compaction', []); // a reserved name: local only, patterns do not hear it
  assert.is(heard.length, 2);
});

test('once(pattern) fires once; off/removeListener/removeAllListeners remove pattern listeners', async () => {
  const clock = testClock();
  const a = await events(A, { now: clock.now });
  let onceCalls = 0;
  let onCalls = 0;
  const onceFn = () => onceCalls++;
  const onFn = () => onCalls++;
  a.once('job.*', onceFn);
  a.on('job.*', onFn);
  a.emit('job.1', null);
  clock.advanceMs(1);
  a.emit('job.2', null);
  assert.is(onceCalls, 1);
  assert.is(onCalls, 2);
  // once then off before it fires
  let never = 0;
  const neverFn = () => never++;
  a.once('job.**', neverFn);
  a.off('job.**', neverFn);
  a.removeListener('job.*', onFn);
  clock.advanceMs(1);
  a.emit('job.3', null);
  assert.is(onCalls, 2);
  assert.is(never, 0);
  let late = 0;
  a.on('**', () => late++);
  a.removeAllListeners('**');
  clock.advanceMs(1);
  a.emit('job.4', null);
  assert.is(late, 0);
  // removeAllListeners() with no name, then a new pattern still works
  a.on('job.*', onFn);
  a.removeAllListeners();
  a.on('job.*', onFn);
  clock.advanceMs(1);
  a.emit('job.5', null);
  assert.is(onCalls, 3);
});

test('an event whose name is literally a pattern reaches pattern listeners only, once each', async () => {
  const a = await events(A);
  const got: unknown[][] = [];
  a.on('a.*', (...args: unknown[]) => got.push(args));
  a.emit('a.*', 5);
  assert.is(got.length, 1);
  assert.is(got[0]![1], A.id, 'called as a pattern listener (data, fromPeer, ...)');
});

test('pattern length is bounded like names: at the limit ok, limit+1 RangeError', async () => {
  const a = await events(A);
  const atLimit = '*.' + 'x'.repeat(MAX_EVENT_NAME_LENGTH - 2);
  a.on(atLimit, () => {});
  assert.throws(() => a.on(atLimit + 'x', () => {}), RangeError);
  assert.throws(() => a.once(atLimit + 'x', () => {}), RangeError);
  // a long exact name is not a pattern: listening is allowed (it can never be emitted, as before)
  a.on('y'.repeat(MAX_EVENT_NAME_LENGTH + 1), () => {});
});

test.run();
