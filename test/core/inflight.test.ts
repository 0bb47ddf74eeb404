// InflightTable, the verifications in flight by exact envelope (signature and payload hash as
// bytes, open addressing, deletion by backward shift): random sets and deletes agree with a Map
// of the same keys, also when every key starts in the same few slots; a forged copy (same payload,
// another signature) is another key; parsed updates are found in the fresh and compact forms.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Update } from '../../src/index.ts';
import { InflightTable } from '../../src/core/inflight.ts';
import { MAX_SIGNATURES_PER_HASH } from '../../src/limits.ts';
import { compactUpdate, parseUpdate, signUpdate, signedId } from '../../src/envelope/update.ts';
import { Prng } from '../helpers/prng.ts';
import { identity } from './helpers.ts';

/** A stand-in update: what the table reads (signature, hash). */
const fake = (signature: Uint8Array, hash: Uint8Array): Update => ({ signature, hash }) as unknown as Update;

/** Multipliers of 1 (the table makes them odd): a key's slot is the sum of three of its words. */
const ONES = () => new Uint8Array(8);

function check(table: InflightTable<number>, reference: Map<string, [Update, number]>, absent: Update[], label: string): void {
  assert.is(table.size, reference.size, `${label}: size`);
  for (const [update, value] of reference.values()) assert.is(table.get(update), value, `${label}: get`);
  for (const update of absent) if (!reference.has(signedId(update))) assert.is(table.get(update), undefined, `${label}: absent`);
}

for (const [name, random, crowd] of [
  ['random multipliers, random keys', undefined, false],
  ['every key in one of four slots', ONES, true],
] as const) {
  for (const seed of [1, 2, 3]) {
    test(`random sets and deletes agree with a Map (${name}, seed ${seed})`, () => {
      const prng = new Prng(seed);
      const table = new InflightTable<number>(random);
      const reference = new Map<string, [Update, number]>();
      const made: Update[] = [];
      const make = (): Update => {
        const signature = prng.bytes(64);
        const hash = prng.bytes(32);
        if (crowd) {
          // Words 0 (signature) and 16, 17 (hash) zero but one byte: with multipliers of 1
          // the key's home is one of a few slots, so runs are long and wrap around.
          signature.fill(0, 0, 4);
          hash.fill(0, 0, 8);
          hash[7] = [0x00, 0x40, 0x80, 0xff][prng.int(4)]!; // the top bits: the home slot (0xff: the last, so its run wraps)
        }
        const u = fake(signature, hash);
        made.push(u);
        return u;
      };
      for (let step = 0; step < 3000; step++) {
        const r = prng.int(10);
        if (r < 6 || reference.size === 0) {
          // Mostly new keys, sometimes one seen before (set again: its value changes).
          const u = made.length > 0 && prng.int(5) === 0 ? made[prng.int(made.length)]! : make();
          const value = step;
          table.set(u, value);
          reference.set(signedId(u), [u, value]);
        } else {
          const keys = [...reference.keys()];
          const id = keys[prng.int(keys.length)]!;
          const [u] = reference.get(id)!;
          assert.ok(table.delete(u), `step ${step}: delete`);
          assert.not.ok(table.delete(u), `step ${step}: deleted twice`);
          reference.delete(id);
        }
        if (step % 97 === 0) check(table, reference, made.slice(-50), `step ${step}`);
      }
      check(table, reference, made, 'end');
      // Emptied: every key gone, and the table still works.
      for (const [u] of [...reference.values()]) assert.ok(table.delete(u));
      assert.is(table.size, 0);
      for (const u of made.slice(0, 100)) assert.is(table.get(u), undefined);
      const u = make();
      table.set(u, 7);
      assert.is(table.get(u), 7);
    });
  }
}

test('a forged copy (same payload, another signature) is another key', () => {
  const prng = new Prng(9);
  const table = new InflightTable<string>();
  const hash = prng.bytes(32);
  const genuine = fake(prng.bytes(64), hash);
  const signature = Uint8Array.from(genuine.signature);
  signature[63]! ^= 1;
  const forged = fake(signature, hash);
  table.set(genuine, 'genuine');
  assert.is(table.get(forged), undefined);
  table.set(forged, 'forged');
  assert.is(table.get(genuine), 'genuine');
  assert.is(table.get(forged), 'forged');
  assert.ok(table.delete(forged));
  assert.is(table.get(genuine), 'genuine');
});

test(`at most ${MAX_SIGNATURES_PER_HASH} signatures of one payload are held: a peer's forgeries cannot make one long probe run`, () => {
  const prng = new Prng(11);
  const table = new InflightTable<number>();
  const hash = prng.bytes(32);
  // Forgeries differing anywhere in the signature: all of one payload, so all of one home slot.
  const copies = Array.from({ length: 50 }, () => fake(prng.bytes(64), hash));
  const held = copies.map((u, i) => table.set(u, i));
  assert.equal(held.slice(0, MAX_SIGNATURES_PER_HASH), new Array(MAX_SIGNATURES_PER_HASH).fill(true));
  assert.ok(held.slice(MAX_SIGNATURES_PER_HASH).every((ok) => !ok), 'the rest refused');
  assert.is(table.size, MAX_SIGNATURES_PER_HASH);
  for (let i = 0; i < copies.length; i++) assert.is(table.get(copies[i]!), i < MAX_SIGNATURES_PER_HASH ? i : undefined);
  // A held one may still be set again; once one is deleted, another takes its place.
  assert.ok(table.set(copies[0]!, 100));
  assert.ok(table.delete(copies[1]!));
  assert.ok(table.set(copies[10]!, 10));
  assert.is(table.get(copies[10]!), 10);
  // Other payloads are not affected by the cap.
  for (let i = 0; i < 20; i++) assert.ok(table.set(fake(prng.bytes(64), prng.bytes(32)), i));
});

test('a parsed update is found by its fresh and its compact form, and as signed', () => {
  const alice = identity(1);
  const good = signUpdate(alice, { dataset: 'chat', version: 1, body: { op: 'set', key: 'k', value: 1 } });
  const a = parseUpdate(good.bytes);
  const b = parseUpdate(good.bytes);
  assert.ok(a.ok && b.ok);
  if (!a.ok || !b.ok) return;
  const table = new InflightTable<number>();
  table.set(a.update, 1);
  assert.is(table.get(b.update), 1);
  compactUpdate(b.update);
  assert.is(table.get(b.update), 1);
  assert.is(table.get(good), 1);
  assert.ok(table.delete(b.update));
  assert.is(table.get(a.update), undefined);
});

test('"random" must give 8 bytes', () => {
  assert.throws(() => new InflightTable(() => new Uint8Array(7)), (e: unknown) => e instanceof RangeError);
});

test.run();
