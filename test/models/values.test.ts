// What a value may be: plain data that reads back the same on every node. Anything else throws
// a TypeError at set()/emit() naming the path and the type, before anything is signed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Model, Events, signUpdate } from '../../src/index.ts';
import { identity, testClock, syncOnce } from '../core/helpers.ts';

const A = identity(0x61);
const B = identity(0x62);

class Point {
  constructor(readonly x: number) {}
}

const refused: Array<[string, unknown, RegExp]> = [
  ['a Date', new Date(0), /"value" is a Date/],
  ['a Map', new Map([[1, 2]]), /"value" is a Map/],
  ['a Set', new Set([1]), /"value" is a Set/],
  ['a small bigint (would come back a number)', 10n, /"value" is a bigint/],
  ['a bigint beyond 2^53', 2n ** 70n, /"value" is a bigint/],
  ['a function', () => 1, /"value" is a function/],
  ['a symbol', Symbol('s'), /"value" is a symbol/],
  ['a class instance', new Point(1), /"value" is a Point/],
  ['NaN', NaN, /not a finite number/],
  ['Infinity', Infinity, /not a finite number/],
  ['a Float32Array', new Float32Array(2), /"value" is a Float32Array/],
  ['undefined inside an object', { a: 1, b: undefined }, /"value\.b" is undefined/],
  ['a Date deep inside', { a: [1, { when: new Date(0) }] }, /"value\.a\[1\]\.when" is a Date/],
  ['a hole in a sparse array', [1, , 3], /"value\[1\]" is a hole/], // eslint-disable-line no-sparse-arrays
];

test('set(): unsupported values throw TypeError naming path and type; nothing is signed or applied', async () => {
  const m = new Model({ identity: A, now: testClock().now });
  await m.ready;
  try {
    for (const [name, value, message] of refused) {
      assert.throws(() => m.set('k', value), (e: Error) => e instanceof TypeError && message.test(e.message), name);
    }
    assert.is(m.clock.size, 0, 'nothing signed');
    assert.is(m.has('k'), false);
  } finally {
    m.dispose();
  }
});

test('emit() and signUpdate check the same way ("data", "body")', async () => {
  const e = new Events({ identity: A, now: testClock().now });
  await e.ready;
  try {
    assert.throws(() => e.emit('x', new Date(0)), (err: Error) => err instanceof TypeError && /"data" is a Date/.test(err.message));
    assert.throws(() => signUpdate(A, { dataset: 'd', version: 1, body: ['set', 'k', 1n] }), (err: Error) => err instanceof TypeError && /"body\[2\]" is a bigint/.test(err.message));
  } finally {
    e.dispose();
  }
});

test('supported values read back unchanged on another node (a Buffer reads back as a Uint8Array)', async () => {
  const clock = testClock();
  const a = new Model({ identity: A, now: clock.now });
  const b = new Model({ identity: B, now: clock.now });
  await Promise.all([a.ready, b.ready]);
  try {
    const values: Record<string, unknown> = {
      null: null, t: true, f: false, int: 2 ** 53 - 1, neg: -(2 ** 53 - 1), float: 0.1, str: 'héllo \u{1F600}', empty: '',
      bytes: Uint8Array.of(1, 2, 3), list: [1, 'two', [3]], obj: { a: { b: [] }, '': 0 }, bare: Object.assign(Object.create(null), { x: 1 }),
      proto: JSON.parse('{"__proto__x": 1}'),
    };
    for (const [k, v] of Object.entries(values)) a.set(k, v);
    a.set('buffer', Buffer.from([9, 8]));
    await syncOnce(a, b);
    for (const [k, v] of Object.entries(values)) assert.equal(b.get(k), k === 'bare' ? { x: 1 } : v, k);
    assert.equal(b.get('buffer'), Uint8Array.of(9, 8));
  } finally {
    a.dispose();
    b.dispose();
  }
});

test.run();
