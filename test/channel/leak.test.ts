import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { connect, duplexPair, outcome, type End } from './pair.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const EVENTS = ['data', 'end', 'close', 'error', 'drain', 'readable', 'finish', 'pause', 'resume'];
const closed = (s: End): Promise<unknown> => new Promise((r) => (s.closed ? r(0) : s.once('close', r)));

async function oneSession(i: number): Promise<void> {
  const [ea, eb] = duplexPair();
  const { a, b } = await connect({}, {}, [ea, eb]);
  const [oa, ob] = [outcome(a), outcome(b)];
  a.write(`message ${i}`);
  a.end();
  const [ra, rb] = await Promise.all([oa, ob]);
  if (ra.error || rb.error || rb.messages.length !== 1) throw new Error(`session ${i} did not close cleanly`);
  await Promise.all([closed(ea), closed(eb)]);
  for (const s of [ea, eb]) {
    for (const e of EVENTS) if (s.listenerCount(e) !== 0) throw new Error(`session ${i}: ${s.listenerCount(e)} '${e}' listeners left`);
  }
}

test('1,000 sequential handshakes and clean closes leave no listeners and no heap growth', async () => {
  for (let i = 0; i < 200; i++) await oneSession(i); // warm up caches and JIT
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let i = 200; i < 1000; i++) await oneSession(i);
  gc();
  const after = process.memoryUsage().heapUsed;
  const growth = after - before;
  assert.ok(growth < 4 * 1024 * 1024, `heap grew ${(growth / 1024).toFixed(0)} KiB over 800 sessions`);
});

test('failed handshakes leave no listeners either (wrong key, timeout)', async () => {
  const { secureChannel } = await import('../../src/channel/secure-channel.ts');
  const { alice, bob, networkKey } = await import('./pair.ts');
  for (let i = 0; i < 50; i++) {
    const [ea, eb] = duplexPair();
    const results = await Promise.allSettled([
      secureChannel(ea, { identity: alice, networkKey, initiator: true }),
      // the responder refuses message 1 silently and closes at its deadline (short here)
      secureChannel(eb, { identity: bob, networkKey: new Uint8Array(32), initiator: false, limits: { handshakeTimeoutMs: 5 } }),
    ]);
    assert.ok(results.every((r) => r.status === 'rejected'));
    await Promise.all([closed(ea), closed(eb)]);
    for (const s of [ea, eb]) for (const e of EVENTS) assert.is(s.listenerCount(e), 0, e);
  }
});

test.run();
