// Issue 7 item 13: an outsider must not recognise a signet listener by how it refuses. Whatever
// message 1 it cannot open, the responder writes nothing, does no DH, reads and drops what comes,
// and closes only at its deadline (or on the peer's close / the caller's abort), with one code.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lengthPrefix } from '../../src/channel/framing.ts';
import { MESSAGE_1_BYTES } from '../../src/channel/handshake.ts';
import { SignetError } from '../../src/errors.ts';
import { Prng } from '../helpers/prng.ts';
import { recordMessage1, turns, watchedResponder, whenClosed } from './pair.ts';

/** Long enough that the loop surely turns before it passes, short enough to keep the test quick. */
const DEADLINE_MS = 400;
/** Timers may fire this much before a clock read just before they were set. */
const TIMER_SLACK_MS = 5;
const prng = new Prng(13);

const garbage = (n: number): Buffer => Buffer.from(prng.bytes(n));
const prefixThenGarbage = (declared: number): Buffer => Buffer.concat([lengthPrefix(declared), garbage(Math.min(declared, 4096))]);

/** What a prober can see of one attempt, and what the caller got. */
interface Observed {
  name: string;
  bytesWritten: number;
  openAfterTurns: boolean;
  closedAfterMs: number;
  code: string | undefined;
}

/** Sends `bytes` to a fresh responder and watches it until it closes. */
async function probe(name: string, bytes: Buffer, flood = true): Promise<Observed> {
  const r = watchedResponder({ limits: { handshakeTimeoutMs: DEADLINE_MS } });
  try {
    if (bytes.length > 0) await new Promise((resolve) => r.ea.write(bytes, resolve)); // delivered
    await turns(10);
    const openAfterTurns = !r.eb.destroyed;
    // whatever it sends now is read and dropped: nothing is buffered, in the stream or in the reader
    const more = Buffer.alloc(256 * 1024, 0x5a);
    for (let i = 0; flood && i < 4 && !r.eb.destroyed; i++) await new Promise((resolve) => r.ea.write(more, resolve));
    if (flood && !r.eb.destroyed) {
      assert.is(r.eb.readableLength, 0, `${name}: the flood was read`);
      assert.is(r.reader().buffered, 0, `${name}: and dropped, not buffered`);
      assert.is(r.reader().held, 0, `${name}: no chunk held`);
    }
    const error = await r.result.then(() => null, (e: unknown) => e);
    await whenClosed(r.eb);
    const closedAfterMs = performance.now() - r.started;
    assert.instance(error, SignetError, name);
    assert.is(r.state().dhCount, 0, `${name}: no DH`);
    assert.is(r.state().localEphemeral, undefined, `${name}: no ephemeral`);
    return { name, bytesWritten: r.eb.bytesWritten, openAfterTurns, closedAfterMs, code: (error as SignetError).code };
  } finally {
    r.ea.destroy();
    r.eb.destroy();
  }
}

test('every message 1 the responder cannot open looks the same: no byte, no DH, open until the deadline, one code', async () => {
  const otherKey = await recordMessage1({ networkKey: new Uint8Array(32).fill(9) });
  const cases: Array<[string, Buffer]> = [
    ['prefix 0', prefixThenGarbage(0)],
    ['prefix 1', prefixThenGarbage(1)],
    ['prefix 47', prefixThenGarbage(47)],
    ['prefix 48 (the old message 1 length) then garbage', prefixThenGarbage(48)],
    ['prefix 49', prefixThenGarbage(49)],
    [`prefix ${MESSAGE_1_BYTES - 1}`, prefixThenGarbage(MESSAGE_1_BYTES - 1)],
    [`prefix ${MESSAGE_1_BYTES} then garbage (does not authenticate)`, prefixThenGarbage(MESSAGE_1_BYTES)],
    [`prefix ${MESSAGE_1_BYTES + 1}`, prefixThenGarbage(MESSAGE_1_BYTES + 1)],
    ['prefix 1024', prefixThenGarbage(1024)],
    ['prefix 1025 (over the handshake frame cap)', prefixThenGarbage(1025)],
    ['prefix 65535', prefixThenGarbage(65535)],
    ['a genuine message 1 under another network key', otherKey],
  ];
  const observed = await Promise.all(cases.map(([name, bytes]) => probe(name, bytes)));
  for (const o of observed) {
    assert.is(o.bytesWritten, 0, `${o.name}: wrote nothing`);
    assert.ok(o.openAfterTurns, `${o.name}: still open after the input was delivered and the loop turned`);
    assert.ok(o.closedAfterMs >= DEADLINE_MS - TIMER_SLACK_MS, `${o.name}: closed after ${o.closedAfterMs.toFixed(1)} ms, before the ${DEADLINE_MS} ms deadline`);
    assert.is(o.code, 'ERR_HANDSHAKE', o.name);
  }
  // a peer that sends nothing at all is treated alike from outside (its caller sees ERR_TIMEOUT)
  const silent = await probe('nothing', Buffer.alloc(0), false);
  assert.equal([silent.bytesWritten, silent.openAfterTurns, silent.closedAfterMs >= DEADLINE_MS - TIMER_SLACK_MS], [0, true, true]);
  assert.is(silent.code, 'ERR_TIMEOUT');
});

test('after a refused message 1 the peer closing ends it at once, with the same ERR_HANDSHAKE and nothing written', async () => {
  for (const bytes of [prefixThenGarbage(0), prefixThenGarbage(MESSAGE_1_BYTES), prefixThenGarbage(65535)]) {
    const r = watchedResponder({ limits: { handshakeTimeoutMs: 60_000 } });
    try {
      r.ea.write(bytes);
      await turns(5);
      assert.not.ok(r.eb.destroyed);
      r.ea.end();
      const error = (await r.result.then(() => null, (e: unknown) => e)) as SignetError;
      assert.is(error.code, 'ERR_HANDSHAKE');
      await whenClosed(r.eb);
      assert.is(r.eb.bytesWritten, 0);
      assert.is(r.state().dhCount, 0);
    } finally {
      r.ea.destroy();
      r.eb.destroy();
    }
  }
});

test('after a refused message 1 the caller AbortSignal still ends the wait (ERR_ABORTED), nothing written', async () => {
  const controller = new AbortController();
  const r = watchedResponder({ signal: controller.signal, limits: { handshakeTimeoutMs: 60_000 } });
  try {
    r.ea.write(prefixThenGarbage(7));
    await turns(5);
    assert.not.ok(r.eb.destroyed);
    controller.abort(new Error('listener shutting down'));
    const error = (await r.result.then(() => null, (e: unknown) => e)) as SignetError;
    assert.is(error.code, 'ERR_ABORTED');
    await whenClosed(r.eb);
    assert.is(r.eb.bytesWritten, 0);
    assert.is(r.state().dhCount, 0);
  } finally {
    r.ea.destroy();
    r.eb.destroy();
  }
});

test.run();
