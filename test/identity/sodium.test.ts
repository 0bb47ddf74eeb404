// The sodium backend: default where it loads and a clean fallback to native where it does not
// (child processes), libsodium signatures byte-identical to node:crypto's, and the worker
// pool's verdicts equal to the synchronous ones, through worker crashes, stalls and closes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Identity, loadIdentity, saveIdentity, verifySignature } from '../../src/index.ts';
import { DOMAIN, defaultSignatureBackend, domainBytes, verifyInDomain, verifySignatureSync } from '../../src/identity/signature.ts';
import { sodiumAvailable, sodiumPool, verifySodiumSync } from '../../src/identity/backend-sodium.ts';
import { signWithNative } from '../../src/identity/identity.ts';
import { signNoble } from '../../src/identity/backend-noble.ts';
import { VerifyPool, CALLER_RUNS_BYTES, MAX_BATCH_BYTES, MAX_IN_FLIGHT_PER_WORKER, STAGING_BYTES, type VerifyPoolOptions } from '../../src/identity/verify-pool.ts';
import { SMALL_ORDER_ENCODINGS } from '../../src/identity/signature-rule.ts';
import { concatBytes, fromHex, toHex, utf8 } from '../../src/util/bytes.ts';
import { readVectors } from '../helpers/vectors.ts';
import { rejects } from '../helpers/assert.ts';
import { Prng, testSeed } from '../helpers/prng.ts';
import { backendsUnderTest, smallOrderEncodings } from './ed25519-cases.ts';

const hasSodium = backendsUnderTest().includes('sodium');
const fixture = (name: string) => fileURLToPath(new URL(`fixtures/${name}`, import.meta.url));
type Input = readonly [signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array];

/** Every published vector, the small-order encodings as A and as R, random signatures with
 *  single-bit mutations, garbage, and messages of 0 bytes to past one batch's byte budget. */
function inputs(): Input[] {
  const out: Input[] = [];
  type Rfc = { pub_key: string; msg: string; signature: string };
  for (const v of (readVectors('ed25519/rfc8032.json') as { vectors: Rfc[] }).vectors) out.push([fromHex(v.signature), fromHex(v.msg), fromHex(v.pub_key)]);
  for (const c of (readVectors('ed25519/speccheck-cases.json') as { cases: Rfc[] }).cases) out.push([fromHex(c.signature), fromHex(c.msg), fromHex(c.pub_key)]);
  const id = Identity.fromSecretKey(new Uint8Array(32).fill(3));
  const msg = utf8('edge cases');
  const good = id.sign(msg);
  for (const enc of smallOrderEncodings()) {
    out.push([good, msg, enc], [concatBytes(fromHex(SMALL_ORDER_ENCODINGS[0]!), new Uint8Array(32)), msg, enc], [concatBytes(enc, good.subarray(32)), msg, id.publicKey]);
  }
  const rng = new Prng(testSeed());
  for (let i = 0; i < 1500; i++) {
    const signer = Identity.fromSecretKey(rng.bytes(32));
    const m = rng.bytes(rng.int(300));
    const s = signer.sign(m);
    out.push([s, m, signer.publicKey]);
    const [s2, m2, k2] = [s.slice(), m.slice(), signer.publicKey.slice()];
    const buf = [s2, m2.length > 0 ? m2 : k2, k2][rng.int(3)]!;
    const bit = rng.int(buf.length * 8);
    buf[bit >> 3]! ^= 1 << (bit & 7);
    out.push([s2, m2, k2]);
    if (i % 100 === 0) out.push([rng.bytes(64), m, rng.bytes(32)]);
  }
  const big = new Uint8Array(MAX_BATCH_BYTES + 1000).fill(5);
  out.push([id.sign(big), big, id.publicKey], [id.sign(new Uint8Array(0)), new Uint8Array(0), id.publicKey]);
  return out;
}

test('default backend: sodium where it loads; asking for it where it does not is a RangeError', () => {
  if (!hasSodium) {
    assert.is(defaultSignatureBackend(), 'native');
    assert.throws(() => verifySignatureSync(new Uint8Array(64), new Uint8Array(0), new Uint8Array(32), { backend: 'sodium' }), RangeError);
    return;
  }
  assert.ok(sodiumAvailable());
  assert.is(defaultSignatureBackend(), 'sodium');
});

test('Identity.sign through libsodium: byte-identical to node:crypto and noble, from a seed and from a key file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'signet-sodium-'));
  try {
    const rng = new Prng(testSeed());
    for (let i = 0; i < 50; i++) {
      const seed = rng.bytes(32);
      const id = Identity.fromSecretKey(seed);
      const msg = rng.bytes(rng.int(500));
      const sig = id.sign(msg);
      assert.is(toHex(sig), toHex(signWithNative(id, msg)));
      assert.is(toHex(sig), toHex(signNoble(seed, msg)));
      assert.ok(await verifySignature(sig, msg, id.publicKey));
    }
    const id = Identity.generate();
    await saveIdentity(id, join(dir, 'id.pem'));
    const loaded = await loadIdentity(join(dir, 'id.pem'));
    const msg = utf8('from a key file');
    assert.is(toHex(loaded.publicKey), toHex(id.publicKey));
    assert.is(toHex(loaded.sign(msg)), toHex(signWithNative(id, msg)));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('worker pool: the same verdict as sync on every vector, edge case and mutation, all in flight at once', async () => {
  if (!hasSodium) return;
  const all = inputs();
  assert.ok(all.length > 2 * MAX_IN_FLIGHT_PER_WORKER, 'enough to queue behind full workers');
  const expected = all.map(([s, m, k]) => verifySignatureSync(s, m, k, { backend: 'sodium' }));
  assert.equal(all.map(([s, m, k]) => verifySignatureSync(s, m, k, { backend: 'native' })), expected, 'sodium agrees with native');
  assert.ok(expected.filter(Boolean).length >= 1500 && expected.filter((x) => !x).length >= 1500);
  // through the public entry point (checks 1-4, then the pool) ...
  assert.equal(await Promise.all(all.map(([s, m, k]) => verifySignature(s, m, k, { backend: 'sodium' }))), expected);
  assert.equal(await Promise.all(all.map(([s, m, k]) => verifySignature(s, m, k))), expected, 'default backend');
  // ... and check 5 alone on the pool, on inputs the prechecks would have stopped
  const raw = all.map(([s, m, k]) => verifySodiumSync(s, m, k));
  assert.equal(await Promise.all(all.map(([s, m, k]) => sodiumPool()!.verify(s, m, k))), raw);
  const stats = sodiumPool()!.stats();
  assert.is(stats.rerunInline, 0);
  assert.is(stats.inFlight + stats.queued, 0);
});

test('verifyParts: the verdict on prefix || message, through staging chunks reused round after round', async () => {
  if (!hasSodium) return;
  await withPool({ modulePath: undefined }, async (pool) => {
    const id = Identity.fromSecretKey(new Uint8Array(32).fill(11));
    const rng = new Prng(testSeed());
    for (let round = 0; round < 4; round++) {
      const requests: Array<[Uint8Array, Uint8Array, Uint8Array]> = [];
      // more bytes than several chunks hold; now and then one past a quarter chunk (a chunk of its own)
      for (let i = 0; i < 1200; i++) {
        const whole = rng.bytes(i % 97 === 0 ? STAGING_BYTES / 4 + rng.int(5000) : rng.int(400));
        const s = id.sign(whole);
        if (rng.int(2) === 1) s[rng.int(64)]! ^= 1 << rng.int(8);
        const cut = rng.int(whole.length + 1);
        requests.push([s, whole.subarray(0, cut), whole.subarray(cut)]);
      }
      const expected = requests.map(([s, p, m]) => verifySodiumSync(s, concatBytes(p, m), id.publicKey));
      assert.ok(expected.includes(true) && expected.includes(false));
      const verdicts = Promise.all(requests.map(([s, p, m]) => pool.verifyParts(s, p, m, id.publicKey)));
      // the caller's arrays are copied when the request is made: changing them afterwards changes nothing
      for (const [s, p, m] of requests) s.fill(0), p.fill(0), m.fill(0);
      if (round === 2) {
        await dispatched();
        await pool.terminateWorkerForTests(0); // its batches answered inline from the staging chunks
      }
      assert.equal(await verdicts, expected, `round ${round}`);
      assert.is(pool.stats().inFlight + pool.stats().queued, 0);
    }
    assert.ok(pool.stats().rerunInline >= 1, 'round 2 re-ran requests inline');
    // a signature or key of another length never reaches the packed layout; the verdict is the sync one
    const m = utf8('lengths');
    const s = id.sign(m);
    const odd: Input[] = [[concatBytes(s, new Uint8Array(1)), m, id.publicKey], [s.subarray(0, 63), m, id.publicKey], [s, m, concatBytes(id.publicKey, new Uint8Array(1))]];
    assert.equal(await Promise.all(odd.map(([x, y, z]) => pool.verifyParts(x, new Uint8Array(0), y, z))), odd.map(([x, y, z]) => verifySodiumSync(x, y, z)));
    assert.equal(await Promise.all([pool.verify(s, m, id.publicKey), pool.verifyParts(s, m.subarray(0, 3), m.subarray(3), id.publicKey)]), [true, true], 'the pool still answers');
  });
});

test('verifyInDomain: the verdict of verifySignature on domainBytes, on every backend', async () => {
  const id = Identity.fromSecretKey(new Uint8Array(32).fill(12));
  const rng = new Prng(testSeed());
  for (const backend of backendsUnderTest()) {
    for (let i = 0; i < 40; i++) {
      const message = rng.bytes(rng.int(300));
      const s = id.sign(domainBytes(DOMAIN.update, message));
      if (i % 2 === 1) s[rng.int(64)]! ^= 1 << rng.int(8);
      const k = i % 7 === 3 ? fromHex(SMALL_ORDER_ENCODINGS[0]!) : id.publicKey; // check 1-4 in front
      const want = await verifySignature(s, domainBytes(DOMAIN.update, message), k, { backend });
      assert.is(await verifyInDomain(s, DOMAIN.update, message, k, { backend }), want, `${backend} #${i}`);
      if (i % 7 === 3) assert.is(want, false);
    }
    await rejects(verifyInDomain('sig' as unknown as Uint8Array, DOMAIN.update, new Uint8Array(0), id.publicKey, { backend }), TypeError, /"signature" expected Uint8Array/);
  }
});

/** Requests for a test pool: valid and broken signatures, request 300 (in the first batches)
 *  over a message starting with `word`, to which the faulty module reacts. */
function around(word?: string): { requests: Input[]; expected: boolean[] } {
  const id = Identity.fromSecretKey(new Uint8Array(32).fill(7));
  const requests: Input[] = [];
  for (let i = 0; i < 600; i++) {
    const m = utf8(i === 300 && word !== undefined ? `${word} ${i}` : `message ${i}`);
    const s = id.sign(m);
    if (i % 2 === 1) s[5]! ^= 4;
    requests.push([s, m, id.publicKey]);
  }
  return { requests, expected: requests.map(([s, m, k]) => verifySodiumSync(s, m, k)) };
}
const send = (pool: VerifyPool, requests: Input[]) => Promise.all(requests.map(([s, m, k]) => pool.verify(s, m, k)));
const dispatched = () => new Promise<void>((resolve) => queueMicrotask(resolve)); // after the pool's pump
/** A clock for caller-runs that moves 1 ms each time it is read: a share of `n` ms is `n` requests. */
const counting = (): (() => number) => {
  let t = 0;
  return () => t++;
};
/** Caller-runs shares of SHARE requests (ms on the counting clock) in the tests below. */
const SHARE = 24;
/** Runs `fn` with a pool of its own (the faulty module by default; no caller-runs by default, so
 *  that the request a fault test aims at a worker reaches one), closed afterwards. */
async function withPool(options: Partial<VerifyPoolOptions>, fn: (pool: VerifyPool) => Promise<void>): Promise<void> {
  const pool = new VerifyPool({ fallback: verifySodiumSync, modulePath: fixture('faulty-sodium.cjs'), size: 2, callerRunsMs: 0, ...options });
  try {
    await fn(pool);
  } finally {
    await pool.close();
  }
}

test('a worker that exits mid-batch: every request answered with the sync verdict, the pool goes on', async () => {
  if (!hasSodium) return;
  await withPool({}, async (pool) => {
    const { requests, expected } = around('crash');
    assert.equal(await send(pool, requests), expected);
    assert.ok(pool.stats().workerExits >= 1);
    assert.ok(pool.stats().rerunInline >= 1);
    const again = around();
    assert.equal(await send(pool, again.requests), again.expected);
    assert.ok(pool.stats().workers >= 1);
  });
});

test('a worker past its heap limit (WORKER_RESOURCE_LIMITS) dies like a crash: every request answered, the pool goes on', async () => {
  if (!hasSodium) return;
  await withPool({}, async (pool) => {
    const { requests, expected } = around('hoard');
    assert.equal(await send(pool, requests), expected);
    assert.ok(pool.stats().workerExits >= 1, 'the worker ran out of its heap');
    assert.ok(pool.stats().rerunInline >= 1);
    const again = around();
    assert.equal(await send(pool, again.requests), again.expected);
  });
});

test('terminating workers with requests pending (test hook): every promise resolves correctly', async () => {
  if (!hasSodium) return;
  await withPool({}, async (pool) => {
    const { requests, expected } = around('hang'); // a batch never answered
    const verdicts = send(pool, requests);
    await dispatched();
    assert.ok(pool.stats().inFlight > 0);
    await Promise.all([pool.terminateWorkerForTests(0), pool.terminateWorkerForTests(1)]);
    assert.equal(await verdicts, expected);
    assert.ok(pool.stats().rerunInline >= 1);
  });
});

test('a worker that stops answering is abandoned after stallMs and its requests run inline', async () => {
  if (!hasSodium) return;
  await withPool({ size: 1, stallMs: 50 }, async (pool) => {
    const { requests, expected } = around('hang');
    assert.equal(await send(pool, requests), expected);
    assert.ok(pool.stats().rerunInline >= 1);
  });
});

test('an uncaught error in a worker: no unhandled error, nothing lost', async () => {
  if (!hasSodium) return;
  await withPool({}, async (pool) => {
    const { requests, expected } = around('throw');
    const exited = pool.stats().workerExits;
    assert.equal(await send(pool, requests), expected);
    const again = around();
    assert.equal(await send(pool, again.requests), again.expected);
    assert.ok(pool.stats().workerExits > exited || pool.stats().workers > 0);
  });
});

test('every worker full: the event loop verifies the oldest waiting requests, a share of time per turn, same verdicts', async () => {
  if (!hasSodium) return;
  await withPool({ size: 1, maxInFlight: 8, callerRunsMs: SHARE, now: counting() }, async (pool) => {
    const { requests, expected } = around();
    const verdicts = send(pool, requests);
    await dispatched();
    // one pump: a batch of 8 to the only worker, then this turn's share answered here, no more
    assert.equal(pool.stats().inFlight, 8);
    assert.is(pool.stats().callerRan, SHARE);
    assert.is(pool.stats().queued, requests.length - 8 - SHARE);
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.is(pool.stats().callerRan, SHARE, 'that share was this turn\'s: its check phase gets no second one');
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.is(pool.stats().callerRan, 2 * SHARE, 'the next turn gets its own');
    assert.equal(await verdicts, expected);
    assert.ok(pool.stats().callerRan > SHARE && pool.stats().callerRan < requests.length, 'the worker and the event loop shared the rest');
    assert.is(pool.stats().rerunInline, 0, 'nothing was re-run: no worker failed');
    assert.is(pool.stats().inFlight + pool.stats().queued, 0);
  });
});

test('caller-runs holds the event loop for a share at a time: answers that issue the next request still let setImmediate run', async () => {
  if (!hasSodium) return;
  // A closed loop, as a stream that takes in more as verdicts free room: each answer issues a new
  // request, which finds the worker full. Per pump (the first version) this chained through
  // microtasks and verified thousands in one go, the worker's replies and every timer waiting.
  await withPool({ size: 1, maxInFlight: 8, callerRunsMs: SHARE, now: counting(), modulePath: undefined }, async (pool) => {
    const id = Identity.fromSecretKey(new Uint8Array(32).fill(13));
    const m = utf8('closed loop');
    const s = id.sign(m);
    const total = 1500;
    let issued = 0;
    let wrong = 0;
    const ask = (): Promise<void> | undefined => {
      if (issued >= total) return undefined;
      issued++;
      return pool.verify(s, m, id.publicKey).then((ok) => {
        if (!ok) wrong++;
        return ask();
      });
    };
    let worst = 0;
    let last = 0;
    let ticking = true;
    const tick = () => {
      const ran = pool.stats().callerRan;
      worst = Math.max(worst, ran - last);
      last = ran;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    await Promise.all(Array.from({ length: 64 }, ask));
    ticking = false;
    assert.is(wrong, 0);
    assert.ok(pool.stats().callerRan > 2 * SHARE, `the event loop verified its share (${pool.stats().callerRan})`);
    // A share in the I/O phase and one renewed in the check phase, at most, between two ticks.
    assert.ok(worst <= 2 * SHARE, `at most two shares between two turns of the loop, saw ${worst}`);
  });
});

test('caller-runs byte budget: a request over CALLER_RUNS_BYTES always goes to a worker', async () => {
  if (!hasSodium) return;
  await withPool({ size: 1, maxInFlight: 1, callerRunsMs: SHARE, now: counting(), modulePath: undefined }, async (pool) => {
    const id = Identity.fromSecretKey(new Uint8Array(32).fill(14));
    const big = new Uint8Array(CALLER_RUNS_BYTES).fill(5); // with its 100-byte head, past the budget
    const s = id.sign(big);
    const bad = Uint8Array.from(s);
    bad[7]! ^= 1;
    const verdicts = await Promise.all(Array.from({ length: 6 }, (_, i) => pool.verify(i % 2 === 0 ? s : bad, big, id.publicKey)));
    assert.equal(verdicts, [true, false, true, false, true, false]);
    assert.is(pool.stats().callerRan, 0, 'none verified on the event loop');
  });
});

test('caller-runs steps over a request only a worker takes: the rest is answered while it waits, and nothing spins', async () => {
  if (!hasSodium) return;
  // The only worker hangs on its first request ("hang", faulty fixture); a request over the byte
  // budget waits behind it for a worker; small requests after it are answered on the event loop
  // at once, not after the worker is abandoned (stallMs), and no setImmediate loop runs meanwhile.
  const schedule = globalThis.setImmediate;
  let immediates = 0;
  globalThis.setImmediate = ((fn: (...args: unknown[]) => void, ...args: unknown[]) => {
    immediates++;
    return schedule(fn, ...args);
  }) as typeof setImmediate;
  try {
    await withPool({ size: 1, maxInFlight: 1, callerRunsMs: SHARE, now: counting(), stallMs: 60_000 }, async (pool) => {
      const id = Identity.fromSecretKey(new Uint8Array(32).fill(15));
      const hang = utf8('hang on');
      void pool.verify(id.sign(hang), hang, id.publicKey); // answered when the pool closes
      await dispatched();
      assert.is(pool.stats().inFlight, 1, 'the worker holds the hanging request');
      const big = new Uint8Array(CALLER_RUNS_BYTES + 1).fill(6);
      let bigDone = false;
      const bigVerdict = pool.verify(id.sign(big), big, id.publicKey).then((ok) => ((bigDone = true), ok));
      let turns = 0;
      let counting = true;
      const turn = () => {
        turns++;
        if (counting) schedule(turn);
      };
      schedule(turn);
      const small = Array.from({ length: 10 }, (_, i) => utf8(`small ${i}`));
      const verdicts = await Promise.all(small.map((m, i) => pool.verify(i === 3 ? new Uint8Array(64) : id.sign(m), m, id.publicKey)));
      counting = false;
      assert.equal(verdicts, small.map((_, i) => i !== 3));
      assert.ok(turns <= 3, `answered within the turn they were made, not after the large one (${turns} turns)`);
      assert.is(bigDone, false, 'the large request still waits for a worker');
      assert.is(pool.stats().callerRan, 10);
      const before = immediates;
      for (let i = 0; i < 50; i++) await new Promise<void>((resolve) => schedule(resolve)); // 50 turns of the loop
      assert.ok(immediates - before <= 2, `no renewal loop while only the large request waits (${immediates - before})`);
      assert.is(bigDone, false);
      await pool.close(); // answers what the hung worker and the queue still owe, inline
      assert.is(await bigVerdict, true);
    });
  } finally {
    globalThis.setImmediate = schedule;
  }
});

test('callerRunsMs must be a finite number >= 0', () => {
  for (const bad of [NaN, -1, Infinity]) {
    assert.throws(() => new VerifyPool({ fallback: verifySodiumSync, callerRunsMs: bad }), (e: Error) => e instanceof RangeError && /callerRunsMs/.test(e.message));
  }
});

test('callerRunsMs 0: every request waits for a worker, none is verified on the event loop', async () => {
  if (!hasSodium) return;
  await withPool({ size: 1, maxInFlight: 8, callerRunsMs: 0 }, async (pool) => {
    const { requests, expected } = around();
    const verdicts = send(pool, requests);
    await dispatched();
    assert.is(pool.stats().queued, requests.length - 8);
    assert.equal(await verdicts, expected);
    assert.is(pool.stats().callerRan, 0);
    assert.is(pool.stats().rerunInline, 0);
  });
});

test('a module that does not load in the worker: answered inline, then the pool stops starting workers', async () => {
  if (!hasSodium) return;
  await withPool({ modulePath: join(tmpdir(), 'no-such-dir', 'sodium-native.js') }, async (pool) => {
    for (let round = 0; round < 100 && !pool.stats().disabled; round++) {
      const { requests, expected } = around();
      assert.equal(await send(pool, requests.slice(0, 20)), expected.slice(0, 20));
    }
    assert.ok(pool.stats().disabled, 'the pool gave up on workers');
    const { requests, expected } = around();
    assert.equal(await send(pool, requests), expected);
  });
});

test('close(): what was pending and what comes later is answered inline; no worker keeps the process', async () => {
  if (!hasSodium) return;
  const pool = new VerifyPool({ fallback: verifySodiumSync, size: 2 });
  const { requests, expected } = around();
  const pending = send(pool, requests);
  await dispatched();
  await pool.close();
  assert.equal(await pending, expected);
  assert.equal(await send(pool, requests), expected);
  assert.is(pool.stats().workers, 0);
  // the shared pool is idle and unref()ed: nothing of it keeps the event loop alive
  const alive = process.getActiveResourcesInfo();
  assert.not.ok(alive.includes('MessagePort') || alive.includes('Worker'), alive.join(', '));
});

const run = promisify(execFile);
async function child(env: Record<string, string>, preload: string[] = []) {
  const { stdout } = await run(process.execPath, [...preload, '--import', 'tsx', fixture('backend-child.ts')], {
    env: { ...process.env, ...env }, timeout: 60_000, // a child kept alive by a worker would time out here
  });
  return JSON.parse(stdout.trim().split('\n').pop()!) as {
    defaultBackend: string; sodiumAvailable: boolean; loadError: string | null; verdicts: boolean[]; signature: string; sodiumError: string | null;
  };
}
const expectedChildVerdicts = (readVectors('ed25519/rfc8032.json') as { vectors: unknown[] }).vectors.flatMap(() => [true, false]);
const childSignature = () => toHex(signWithNative(Identity.fromSecretKey(new Uint8Array(32).fill(9)), utf8('child')));

test('SIGNET_NO_SODIUM=1 in a child: default native, same verdicts and signatures, sodium a RangeError', async () => {
  const out = await child({ SIGNET_NO_SODIUM: '1' });
  assert.is(out.defaultBackend, 'native');
  assert.is(out.sodiumAvailable, false);
  assert.match(out.loadError!, /SIGNET_NO_SODIUM/);
  assert.equal(out.verdicts, expectedChildVerdicts);
  assert.is(out.signature, childSignature());
  assert.match(out.sodiumError!, /^RangeError: "backend" 'sodium' is not available/);
});

test('a sodium-native that throws on load: the import and the start still work, native takes over', async () => {
  const out = await child({ SIGNET_NO_SODIUM: '' }, ['--require', fixture('break-sodium.cjs')]);
  assert.is(out.defaultBackend, 'native');
  assert.match(out.loadError!, /simulated broken binary/);
  assert.equal(out.verdicts, expectedChildVerdicts);
  assert.is(out.signature, childSignature());
  assert.match(out.sodiumError!, /^RangeError/);
});

test('with sodium in a child: default sodium on the pool, and the process exits on its own', async () => {
  if (!hasSodium) return;
  const out = await child({ SIGNET_NO_SODIUM: '' });
  assert.is(out.defaultBackend, 'sodium');
  assert.equal(out.verdicts, expectedChildVerdicts);
  assert.is(out.signature, childSignature());
  assert.is(out.sodiumError, null);
});

test.run();
