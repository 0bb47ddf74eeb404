// Custom merge rules for Model (simple-scuttle's resolve hook): the record of one version of a
// key that a rule sees, the default rule, the run-time check that a rule picks the same winner
// both ways round, and checkResolve() for a user's tests.
import type { Update } from '../envelope/update.ts';
import type { Value } from '../envelope/cbor.ts';
import type { NodeId } from '../identity/node-id.ts';
import { compareUpdates } from '../core/order.ts';
import { ResolveError, messageOf } from '../errors.ts';
import { bodyOf, expiryOf, valueOfBody } from './body.ts';

/** One version of one key: a signed write (`set`) or tombstone (`del`) as a Model holds it.
 *  What a resolve rule compares, and what {@link Model.versions} returns. */
export interface VersionRecord {
  readonly key: string;
  /** The value written; undefined for a delete. Decoded on first read (a rule that does not
   *  look at values costs no decoding). */
  readonly value: Value | undefined;
  /** True for a tombstone (`delete(key)`). */
  readonly deleted: boolean;
  /** The signed version: the writer's µs timestamp, strictly increasing per source. */
  readonly version: number;
  /** The writer's node id (verified: the signer). */
  readonly source: NodeId;
  /** Hex SHA-256 of the signed payload: distinct for distinct writes, equal on every node. */
  readonly hash: string;
  /** The write's ttl in ms, or undefined. */
  readonly ttl: number | undefined;
  /** When the value expires (µs): version + ttl, or Infinity. */
  readonly expiresAt: number;
  /** The signed update itself. */
  readonly update: Update;
}

/**
 * A merge rule: given two versions of one key, `current` (what this node holds for the key now)
 * and `incoming` (a version arriving, from a peer or a local write), returns the one that holds
 * the key: `current` or `incoming` itself (the same object), nothing else. Tombstones (`deleted`)
 * and TTL entries are versions like the others (an expired entry still holds its key); a Model
 * with a rule never collects them (see ModelOptions.resolve).
 *
 * The user's obligation, on which convergence rests: the rule is a pure function of the two
 * records (no clock, no randomness, no state) that picks a maximum under a strict total order
 * of your choosing: the same winner whichever argument comes first, transitive (if a beats b
 * and b beats c, a beats c), and never a tie (break them with {@link lastWriterWins}). Then
 * every node keeps the same winner whatever the arrival order. It may see records from any
 * writer the policy allows, and be called on an arriving update before its signature is
 * verified, but only to find that it loses (nothing is applied or reported before verification).
 * A Model checks every decision both ways round and throws {@link ResolveError} when the two
 * disagree; {@link checkResolve} tests a rule more thoroughly (repeats, all triples).
 */
export type ResolveFn = (current: VersionRecord, incoming: VersionRecord) => VersionRecord;

/** The built-in rule: last-writer-wins by (version, source, hash), the core's total order. */
export const lastWriterWins: ResolveFn = (current, incoming) => (compareUpdates(incoming.update, current.update) > 0 ? incoming : current);

/**
 * The record of a Model update (a `set` or `del` body).
 * @throws TypeError if the update is not a Model write.
 */
export function versionRecord(update: Update): VersionRecord {
  const body = bodyOf(update);
  if (body === null) throw new TypeError('"update" expected a Model write (a set or del body)');
  let value: Value | undefined;
  let decoded = false;
  return Object.freeze({
    key: body.key,
    get value() {
      if (!decoded) {
        value = valueOfBody(update, body);
        decoded = true;
      }
      return value;
    },
    deleted: body.op === 'del',
    version: update.version,
    source: update.source,
    hash: update.hashHex,
    ttl: body.ttl,
    expiresAt: expiryOf(update, body),
    update,
  });
}

/** One call of the rule, checked: it must return one of its two arguments. */
function call(resolve: ResolveFn, current: VersionRecord, incoming: VersionRecord): VersionRecord {
  let out: unknown;
  try {
    out = resolve(current, incoming);
  } catch (err) {
    throw new ResolveError(`resolve threw on key ${JSON.stringify(current.key.slice(0, 60))}: ${messageOf(err)}`, { cause: err });
  }
  if (out !== current && out !== incoming) {
    throw new ResolveError(`resolve must return one of its two arguments (current or incoming), got ${out === null ? 'null' : typeof out}`);
  }
  return out as VersionRecord;
}

/**
 * The winner between two versions of a key, by `resolve`, asked both ways round.
 * @throws ResolveError if the two answers name different winners (the rule is not symmetric or
 * not deterministic), or a call threw or returned something else than an argument.
 */
export function pickWinner(resolve: ResolveFn, current: VersionRecord, incoming: VersionRecord): VersionRecord {
  const first = call(resolve, current, incoming);
  const second = call(resolve, incoming, current);
  if (first !== second) {
    throw new ResolveError(`resolve is not deterministic and symmetric: for key ${JSON.stringify(current.key.slice(0, 60))}, ` +
      `resolve(a, b) and resolve(b, a) chose different versions (${first.hash.slice(0, 12)} and ${second.hash.slice(0, 12)}); ` +
      'a merge rule must pick the same winner whatever the order, or replicas diverge');
  }
  return first;
}

/** Most records {@link checkResolve} takes: it tries every triple (n^3 calls). */
export const MAX_CHECKED_RECORDS = 64;

/**
 * Checks a merge rule against its contract on sample versions (for the user's tests): every pair
 * twice in each order (deterministic, symmetric, returns an argument) and every triple
 * (transitive). Use records of one key from {@link Model.versions}, or {@link versionRecord}.
 * @throws ResolveError naming the first broken rule; RangeError past MAX_CHECKED_RECORDS.
 */
export function checkResolve(resolve: ResolveFn, records: readonly VersionRecord[]): void {
  if (typeof resolve !== 'function') throw new TypeError('"resolve" expected a function');
  if (!Array.isArray(records)) throw new TypeError('"records" expected an array of VersionRecord');
  if (records.length > MAX_CHECKED_RECORDS) throw new RangeError(`"records" expected at most ${MAX_CHECKED_RECORDS}, got length=${records.length}`);
  const n = records.length;
  // beats[i][j]: records[i] wins against records[j]
  const beats: boolean[][] = records.map(() => new Array<boolean>(n).fill(false));
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const a = records[i]!;
      const b = records[j]!;
      const w = pickWinner(resolve, a, b);
      if (pickWinner(resolve, a, b) !== w) {
        throw new ResolveError(`resolve is not deterministic: the same two versions (${a.hash.slice(0, 12)}, ${b.hash.slice(0, 12)}) gave different winners on two calls`);
      }
      beats[i]![j] = w === a;
      beats[j]![i] = w === b;
    }
  }
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      if (!beats[i]![j]) continue;
      for (let k = 0; k < n; k++) {
        if (beats[j]![k] && !beats[i]![k] && i !== k) {
          const h = (x: number) => records[x]!.hash.slice(0, 12);
          throw new ResolveError(`resolve is not transitive: ${h(i)} beats ${h(j)} and ${h(j)} beats ${h(k)}, but ${h(k)} beats ${h(i)}; the winner would depend on arrival order`);
        }
      }
    }
  }
}
