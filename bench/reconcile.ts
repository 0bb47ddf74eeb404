// Range-based set reconciliation: two sessions in one process over n = 10,000 and 100,000
// items differing in d items (half on each side): bytes of the reconcile messages themselves
// (the missing envelopes travel apart), round trips and time, beside the baseline of sending
// the full digest of hashes (n x 32 bytes, one round trip). Then what salting costs: the
// per-session item digests with node:crypto and the alternatives that were measured.
import { createHash, createHmac, hash as nodeHash } from 'node:crypto';
import { blake2s } from '@noble/hashes/blake2.js';
import { ReconcileSession, type ReconcileItem } from '../src/reconcile/index.ts';
import { Fingerprints } from '../src/reconcile/fingerprint.ts';
import { Prng } from '../test/helpers/prng.ts';
import { run, SALT, twoSets } from '../test/reconcile/helpers.ts';
import { QUICK, printTable } from './lib/table.ts';

const SIZES = QUICK ? [2_000] : [10_000, 100_000];
const DIFFERENCES = QUICK ? [0, 10] : [0, 1, 10, 100, 1_000];
const ROUNDS = QUICK ? 1 : 5;

/** Median and range of samples, as "median (min-max)". */
function spread(samples: number[]): { median: number; text: string } {
  const s = samples.slice().sort((x, y) => x - y);
  const median = s[Math.floor(s.length / 2)]!;
  const f = (v: number) => (v >= 100 ? v.toFixed(0) : v.toFixed(1));
  return { median, text: s.length > 1 ? `${f(median)} (${f(s[0]!)}-${f(s.at(-1)!)})` : f(median) };
}

/** The baseline: A sends all n hashes; B finds what each side lacks. */
function digestBaseline(a: readonly ReconcileItem[], b: readonly ReconcileItem[]): number {
  const start = performance.now();
  const digest = new Uint8Array(32 * a.length);
  a.forEach((item, i) => digest.set(item.hash, 32 * i));
  const key = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, 32).toString('latin1');
  const theirs = new Set<string>();
  for (let i = 0; i < a.length; i++) theirs.add(key(digest.subarray(32 * i, 32 * i + 32)));
  let missing = 0;
  for (const item of b) if (!theirs.delete(key(item.hash))) missing++;
  if (missing + theirs.size < 0) throw new Error('unreachable');
  return performance.now() - start;
}

const rows: Array<Record<string, string | number>> = [];
const goals: string[] = [];
for (const n of SIZES) {
  for (const d of DIFFERENCES) {
    const sets = twoSets(new Prng(n + d), n - Math.ceil(d / 2), Math.ceil(d / 2), Math.floor(d / 2));
    const setup: number[] = [];
    const exchange: number[] = [];
    const baseline: number[] = [];
    let bytes = 0;
    let messages = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const t0 = performance.now();
      const a = new ReconcileSession({ items: sets.a, salt: SALT, initiator: true });
      const b = new ReconcileSession({ items: sets.b, salt: SALT, initiator: false });
      const t1 = performance.now();
      const outcome = run(a, b);
      exchange.push(performance.now() - t1);
      setup.push(t1 - t0);
      if (outcome.aHave.length + outcome.bHave.length !== d) throw new Error(`found ${outcome.aHave.length + outcome.bHave.length} of ${d} differences`);
      bytes = outcome.bytes;
      messages = outcome.messages;
      baseline.push(digestBaseline(sets.a, sets.b));
    }
    const roundTrips = Math.ceil(messages / 2);
    rows.push({
      n: n.toLocaleString('en-US'),
      d: d.toLocaleString('en-US'),
      'reconcile bytes': bytes.toLocaleString('en-US'),
      'round trips': String(roundTrips),
      'setup ms (both sides)': spread(setup).text,
      'exchange ms': spread(exchange).text,
      'full digest bytes': (32 * n).toLocaleString('en-US'),
      'digest ms': spread(baseline).text,
      'bytes vs digest': `${((100 * bytes) / (32 * n)).toFixed(2)}%`,
    });
    if (d === 0) goals.push(`goal: n=${n}, d=0: ${bytes} bytes, ${roundTrips} round trip (goal < 200 bytes, 1): ${bytes < 200 && roundTrips === 1 ? 'met' : 'MISSED'}`);
    if (d === 10 && n === 100_000) goals.push(`goal: n=${n}, d=10: ${bytes} bytes (goal < 10 KiB = 10,240): ${bytes < 10_240 ? 'met' : 'MISSED'}`);
  }
}
printTable(`Reconciliation vs full digest, two sessions in one process (median (min-max) of ${ROUNDS} rounds; setup = sort + salted digests)`, rows);
for (const g of goals) console.log(g);

// -- What the salt costs: one keyed digest per item per session. The engine uses the first row.
const N = QUICK ? 10_000 : 100_000;
const hashes = twoSets(new Prng(1), N, 0, 0).a;
const input = new Uint8Array(64);
input.set(SALT);
const candidates: Array<[string, () => void]> = [
  ['Fingerprints (node:crypto hash(), SHA-256(salt || hash), + prefix sums)', () => new Fingerprints(hashes, SALT)],
  ['node:crypto hash() one-shot, digests only', () => {
    for (const item of hashes) { input.set(item.hash, 32); nodeHash('sha256', input, 'buffer'); }
  }],
  ['node:crypto createHash() per item', () => {
    for (const item of hashes) createHash('sha256').update(SALT).update(item.hash).digest();
  }],
  ['node:crypto HMAC-SHA-256 per item', () => {
    for (const item of hashes) createHmac('sha256', SALT).update(item.hash).digest();
  }],
  ['@noble/hashes BLAKE2s keyed per item', () => {
    for (const item of hashes) blake2s(item.hash, { key: SALT });
  }],
];
const speed: Array<Record<string, string | number>> = [];
for (const [what, fn] of candidates) {
  fn();
  const samples: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const start = performance.now();
    fn();
    samples.push(performance.now() - start);
  }
  speed.push({ [`salted digests of ${N.toLocaleString('en-US')} items`]: what, 'ms': spread(samples).text, 'µs/item': (1000 * spread(samples).median) / N });
}
printTable(`Per-session cost of salting (median (min-max) of ${ROUNDS})`, speed);
