// Shared by the reconciliation tests and bench/reconcile.ts: seeded item sets with a chosen
// difference, and a driver that runs two sessions against each other in memory.
import { base32 } from '../../src/identity/node-id.ts';
import { ReconcileSession, type ReconcileItem, type ReconcileLimits } from '../../src/reconcile/index.ts';
import { Prng } from '../helpers/prng.ts';

/** A fixed salt for tests (a real session derives it with sessionSalt). */
export const SALT = new Uint8Array(32).fill(0x5a);
/** Versions near a realistic wall clock in microseconds. */
export const T0 = 1_750_000_000_000_000;

/** `count` node ids from the generator. */
export function sources(prng: Prng, count: number): string[] {
  return Array.from({ length: count }, () => base32(prng.bytes(32)));
}

/** A random item: one of `from` as source, a version within a day after T0, a random hash. */
export function randomItem(prng: Prng, from: readonly string[]): ReconcileItem {
  return { version: T0 + prng.int(86_400_000_000), source: prng.pick(from), hash: prng.bytes(32) };
}

/** Two sets sharing `common` items, plus `onlyA` items only A holds and `onlyB` only B. */
export function twoSets(prng: Prng, common: number, onlyA: number, onlyB: number, sourceCount = 64) {
  const from = sources(prng, sourceCount);
  const make = (n: number) => Array.from({ length: n }, () => randomItem(prng, from));
  const shared = make(common);
  const a = make(onlyA);
  const b = make(onlyB);
  return { a: [...shared, ...a], b: [...shared, ...b], onlyA: a, onlyB: b };
}

/** What running two sessions to the end produced. */
export interface Outcome<T extends ReconcileItem> {
  aHave: T[];
  aNeed: Uint8Array[];
  bHave: T[];
  bNeed: Uint8Array[];
  /** Messages exchanged (the initiator's first included) and their total bytes. */
  messages: number;
  bytes: number;
  /** Every message in order, the initiator's first. */
  transcript: Uint8Array[];
  wasted: number;
}

/** Runs initiator `a` against responder `b` until both are done. */
export function run<T extends ReconcileItem>(a: ReconcileSession<T>, b: ReconcileSession<T>, maxMessages = 10_000): Outcome<T> {
  const out: Outcome<T> = { aHave: [], aNeed: [], bHave: [], bNeed: [], messages: 0, bytes: 0, transcript: [], wasted: 0 };
  let message: Uint8Array | null = a.initiate();
  let receiver = b;
  while (message) {
    out.transcript.push(message);
    out.messages++;
    out.bytes += message.length;
    if (out.messages > maxMessages) throw new Error('reconciliation did not end');
    const step = receiver.receive(message);
    (receiver === a ? out.aHave : out.bHave).push(...step.have);
    (receiver === a ? out.aNeed : out.bNeed).push(...step.need);
    out.wasted += step.wasted;
    message = step.reply;
    receiver = receiver === a ? b : a;
  }
  if (!a.done || !b.done) throw new Error(`ended with a.done=${a.done} b.done=${b.done}`);
  return out;
}

/** Sessions over `a` (initiator) and `b` with one salt and limits, run to the end. */
export function reconcile<T extends ReconcileItem>(a: readonly T[], b: readonly T[], limits?: Partial<ReconcileLimits>): Outcome<T> {
  const sa = new ReconcileSession({ items: a, salt: SALT, initiator: true, limits });
  const sb = new ReconcileSession({ items: b, salt: SALT, initiator: false, limits });
  return run(sa, sb);
}

/** Hex of each hash, sorted: for comparing sets of items or hashes. */
export function hexSet(list: readonly (ReconcileItem | Uint8Array)[]): string[] {
  return list.map((x) => Buffer.from(x instanceof Uint8Array ? x : x.hash).toString('hex')).sort();
}
