// Signatures and envelopes: sign and verify per second on the sodium (libsodium), native
// (OpenSSL) and noble backends side by side in one run, and each way of verifying off the loop.
import { availableParallelism } from 'node:os';
import { Identity, signUpdate, openUpdate, parseUpdate } from '../src/index.ts';
import { defaultSignatureBackend, verifySignature, verifySignatureSync } from '../src/identity/signature.ts';
import { signNoble } from '../src/identity/backend-noble.ts';
import { sodiumAvailable, sodiumPool, verifySodiumInline } from '../src/identity/backend-sodium.ts';
import { verifyNative } from '../src/identity/backend-native.ts';
import { exportSecretKey, signWithNative } from '../src/identity/identity.ts';
import { QUICK, opsPerSecond, printTable } from './lib/table.ts';

const id = Identity.generate();
const seed = exportSecretKey(id);
const msg = new Uint8Array(256).fill(7);
const sig = id.sign(msg);
const update = signUpdate(id, { dataset: 'bench', version: 1, body: ['set', 'key', 'x'.repeat(200)] });
const hasSodium = sodiumAvailable();

/** Verifications in flight at once for the async figures (enough to fill the libuv pool). */
const IN_FLIGHT = 64;
/** A replication message's worth: the core keeps up to 1024 per stream in flight. */
const DEEP = 1024;

type Verify = (s: Uint8Array, m: Uint8Array, k: Uint8Array) => Promise<boolean>;
const batchOf = (verify: Verify, n: number) => async (): Promise<void> => {
  const all: Promise<boolean>[] = [];
  for (let i = 0; i < n; i++) all.push(verify(sig, msg, id.publicKey));
  await Promise.all(all);
};
async function openBatch(): Promise<void> {
  const all: Promise<unknown>[] = [];
  for (let i = 0; i < IN_FLIGHT; i++) all.push(openUpdate(update.bytes));
  await Promise.all(all);
}

const ms = QUICK ? 30 : 1500;
const rate = (fn: () => unknown, batch = 1) => opsPerSecond(fn, ms, batch);
const NA = 'n/a';

/** One row: the same operation on each backend (sodium first, n/a where it did not load). */
async function row(op: string, sodium: (() => unknown) | null, native: () => unknown, noble: () => unknown, batch = 1) {
  const s = sodium !== null && hasSodium ? await rate(sodium, batch) : NA;
  const n = await rate(native, batch);
  const b = await rate(noble, batch);
  return { operation: op, 'sodium ops/s': s, 'native ops/s': n, 'noble ops/s': b, 'sodium/native': typeof s === 'number' ? s / n : NA };
}

const verifyWith = (backend: 'sodium' | 'native' | 'noble'): Verify => (s, m, k) => verifySignature(s, m, k, { backend });
printTable('Ed25519 backends (async: sodium on the worker pool, native on the libuv pool, noble on the event loop)', [
  await row('sign (256 B)', () => id.sign(msg), () => signWithNative(id, msg), () => signNoble(seed, msg)),
  await row('verify sync (256 B)',
    () => verifySignatureSync(sig, msg, id.publicKey, { backend: 'sodium' }),
    () => verifySignatureSync(sig, msg, id.publicKey, { backend: 'native' }),
    () => verifySignatureSync(sig, msg, id.publicKey, { backend: 'noble' })),
  await row(`verify async, ${IN_FLIGHT} in flight`, batchOf(verifyWith('sodium'), IN_FLIGHT), batchOf(verifyWith('native'), IN_FLIGHT), batchOf(verifyWith('noble'), IN_FLIGHT), IN_FLIGHT),
]);

// The candidates for verifySignature's asynchronous path (check 5 only; checks 1-4 are the same
// for all): libsodium on the event loop, libsodium on the worker pool, node:crypto on libuv.
// A receiving node's event loop has other work per update (parse, decrypt, apply, store); the
// third column spins BUSY_US on the event loop per request, as that work would.
const BUSY_US = 20;
const busyBatchOf = (verify: Verify, n: number) => async (): Promise<void> => {
  const all: Promise<boolean>[] = [];
  for (let i = 0; i < n; i++) {
    const until = performance.now() + BUSY_US / 1000;
    while (performance.now() < until);
    all.push(verify(sig, msg, id.publicKey));
  }
  await Promise.all(all);
};
const strategies: Array<[string, Verify | null]> = [
  ['sodium sync on the main thread', hasSodium ? verifySodiumInline : null],
  [`sodium worker pool (${Math.max(1, availableParallelism() - 1)} workers + the event loop when they are full)`, hasSodium ? (s, m, k) => sodiumPool()!.verify(s, m, k) : null],
  ['native on the libuv pool', verifyNative],
];
const asyncRows: Array<Record<string, string | number>> = [];
for (const [name, verify] of strategies) {
  asyncRows.push({
    strategy: name,
    [`${IN_FLIGHT} in flight, ops/s`]: verify === null ? NA : await rate(batchOf(verify, IN_FLIGHT), IN_FLIGHT),
    [`${DEEP} in flight, ops/s`]: verify === null ? NA : await rate(batchOf(verify, DEEP), DEEP),
    [`${DEEP} in flight + ${BUSY_US} µs other work each, ops/s`]: verify === null ? NA : await rate(busyBatchOf(verify, DEEP), DEEP),
  });
}
printTable('Asynchronous verify (256 B messages)', asyncRows);

const parse = await rate(() => parseUpdate(update.bytes));
const open = await rate(openBatch, IN_FLIGHT);
const sign = await rate(() => signUpdate(id, { dataset: 'bench', version: 1, body: ['set', 'key', 'x'.repeat(200)] }));
printTable(`Envelopes (${update.bytes.length} B update, default backend ${defaultSignatureBackend()})`, [
  { operation: 'signUpdate', 'ops/s': sign },
  { operation: 'parseUpdate (shape only)', 'ops/s': parse },
  { operation: `openUpdate (parse + verify, ${IN_FLIGHT} in flight)`, 'ops/s': open },
]);
