// The reconciliation wire format (format 1): a message is a list of adjacent ranges covering
// the key space from the lowest bound up, each with an upper bound and a mode. Hand-written,
// every length checked against its limit before anything is read or kept for it.
//
//   Message     := format (byte 0x01)  rangeCount (varint)  Range{rangeCount}
//   Range       := Bound  mode (varint)  Payload
//   Bound       := versionCode (varint)  prefixLength (varint, 0..84)  prefix (bytes)
//   Payload     := skip: nothing | fingerprint: 16 bytes
//                | idList: count (varint, 0..threshold)  32-byte hashes
//                | want:   count (varint, 1..threshold)  32-byte hashes
//
// A range runs from the previous range's upper bound (the first from the lowest bound) to its
// own, exclusive. versionCode 0 is the bound above everything (with an empty prefix); otherwise
// the bound's version is the previous bound's version (0 for the first) + versionCode - 1, so a
// bound costs a small delta, not a full 53-bit version. The prefix is the shortest prefix of an
// item key (source characters, then hash) that separates the items on either side, read as
// padded with zeros (Negentropy's scheme), so it is empty unless two neighbours share a
// version. Bounds strictly increase and a prefix never ends in a zero byte (one encoding per
// bound). Whatever the last range leaves uncovered is skipped: a message never ends in a skip
// and never holds two skips in a row, so the empty message (2 bytes) means "nothing to do".
//
// Modes: skip (nothing to do here); fingerprint (the sender's fingerprint of the range: answer
// skip if equal, else split or list); idList (every hash the sender holds in the range: the
// receiver now knows the whole difference there, sends what the sender lacks and answers want);
// want (hashes of the receiver's last id list that the sender lacks: the receiver sends them).

import { FINGERPRINT_BYTES } from './fingerprint.ts';
import { compareBounds, KEY_BYTES, MIN_BOUND, type Bound } from './items.ts';
import type { ReconcileLimits } from './limits.ts';
import { Reader, refuse, varintLength, Writer } from './wire.ts';

/** First byte of every reconciliation message. */
export const RECONCILE_FORMAT = 1;
/** Bytes of an item hash in id lists and wants. */
export const ID_BYTES = 32;

/** Wire code of each mode. */
export const MODE = { skip: 0, fingerprint: 1, idList: 2, want: 3 } as const;

/** One range of a message, upper bound exclusive. Hashes and fingerprints received are views
 *  into the message bytes. */
export type Range =
  | { mode: 'skip'; upper: Bound }
  | { mode: 'fingerprint'; upper: Bound; fingerprint: Uint8Array }
  | { mode: 'idList'; upper: Bound; ids: Uint8Array[] }
  | { mode: 'want'; upper: Bound; ids: Uint8Array[] };

/** True when a message holding `ranges` asks for an answer (a fingerprint or an id list). */
export function needsReply(ranges: readonly Range[]): boolean {
  return ranges.some((r) => r.mode === 'fingerprint' || r.mode === 'idList');
}

/** The version code of `bound` after a bound of version `previous`. */
const versionCode = (bound: Bound, previous: number): number => (bound.version === Infinity ? 0 : bound.version - previous + 1);

/** Encoded bytes of `range` after a bound of version `previous`. */
export function rangeBytes(range: Range, previous: number): number {
  const p = range.upper.prefix.length;
  let n = varintLength(versionCode(range.upper, previous)) + varintLength(p) + p + 1;
  if (range.mode === 'fingerprint') n += FINGERPRINT_BYTES;
  else if (range.mode !== 'skip') n += varintLength(range.ids.length) + ID_BYTES * range.ids.length;
  return n;
}

/** Encodes ranges as given (no merging; callers keep bounds increasing). */
export function encodeMessage(ranges: readonly Range[]): Uint8Array {
  const w = new Writer();
  w.byte(RECONCILE_FORMAT);
  w.varint(ranges.length);
  let previous = 0;
  for (const range of ranges) {
    w.varint(versionCode(range.upper, previous));
    previous = range.upper.version;
    w.varint(range.upper.prefix.length);
    w.bytes(range.upper.prefix);
    w.varint(MODE[range.mode]);
    if (range.mode === 'fingerprint') w.bytes(range.fingerprint);
    else if (range.mode !== 'skip') {
      w.varint(range.ids.length);
      for (const id of range.ids) w.bytes(id);
    }
  }
  return w.finish();
}

/**
 * Parses and checks a peer's message against `limits`.
 * @throws ProtocolError (code ERR_PROTOCOL) whose `reason` is a ReconcileReason.
 */
export function decodeMessage(bytes: Uint8Array, limits: ReconcileLimits): Range[] {
  if (bytes.length > limits.maxMessageBytes) {
    throw refuse('reconcile-too-large', `message of ${bytes.length} bytes, limit ${limits.maxMessageBytes}`);
  }
  const r = new Reader(bytes);
  const format = r.byte();
  if (format !== RECONCILE_FORMAT) throw refuse('reconcile-bad-format', `format ${format}`);
  const count = r.varint(limits.maxRangesPerMessage, 'reconcile-too-many-ranges', 'range count');
  const ranges: Range[] = [];
  let previous = MIN_BOUND;
  let ids = 0;
  for (let i = 0; i < count; i++) {
    const upper = readBound(r, previous);
    const mode = r.varint(MODE.want, 'reconcile-bad-mode', 'mode');
    if (mode === MODE.skip) {
      if (ranges.at(-1)?.mode === 'skip') throw refuse('reconcile-non-canonical', 'two skips in a row');
      ranges.push({ mode: 'skip', upper });
    } else if (mode === MODE.fingerprint) {
      ranges.push({ mode: 'fingerprint', upper, fingerprint: r.take(FINGERPRINT_BYTES) });
    } else {
      const n = r.varint(limits.idListThreshold, 'reconcile-too-many-ids', 'list length');
      if (n === 0 && mode === MODE.want) throw refuse('reconcile-non-canonical', 'empty want');
      ids += n;
      if (ids > limits.maxIdsPerMessage) throw refuse('reconcile-too-many-ids', `over ${limits.maxIdsPerMessage} hashes in one message`);
      const list = readIds(r, n);
      ranges.push(mode === MODE.idList ? { mode: 'idList', upper, ids: list } : { mode: 'want', upper, ids: list });
    }
    previous = upper;
  }
  if (ranges.at(-1)?.mode === 'skip') throw refuse('reconcile-non-canonical', 'message ends in a skip');
  if (r.remaining !== 0) throw refuse('reconcile-trailing-bytes', `${r.remaining} bytes after the last range`);
  return ranges;
}

function readBound(r: Reader, previous: Bound): Bound {
  const code = r.varint(Number.MAX_SAFE_INTEGER + 1, 'reconcile-bad-bound', 'version code');
  // code - 1 is exact; a sum past 2^53 - 1 rounds to 2^53 or more, never back into range.
  const version = code === 0 ? Infinity : previous.version + (code - 1);
  if (version !== Infinity && !Number.isSafeInteger(version)) throw refuse('reconcile-bad-bound', 'version beyond 2^53 - 1');
  const length = r.varint(KEY_BYTES, 'reconcile-bad-bound', 'prefix length');
  const prefix = r.take(length);
  if (length > 0 && prefix[length - 1] === 0) throw refuse('reconcile-non-canonical', 'bound prefix ends in a zero byte');
  if (version === Infinity && length > 0) throw refuse('reconcile-bad-bound', 'infinite bound with a prefix');
  const bound = { version, prefix };
  if (compareBounds(bound, previous) <= 0) throw refuse('reconcile-bad-bound', 'bounds not strictly increasing');
  return bound;
}

/** `n` hashes (n already checked against the limits), refusing one listed twice. */
function readIds(r: Reader, n: number): Uint8Array[] {
  const all = r.take(n * ID_BYTES);
  const ids: Uint8Array[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const id = all.subarray(i * ID_BYTES, (i + 1) * ID_BYTES);
    const key = Buffer.from(id.buffer, id.byteOffset, ID_BYTES).toString('latin1');
    if (seen.has(key)) throw refuse('reconcile-duplicate-id', 'a hash listed twice in one range');
    seen.add(key);
    ids.push(id);
  }
  return ids;
}
