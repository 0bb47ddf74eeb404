// Compact update items (protocol 3): an envelope on the wire without the stream's dataset name
// and with its source's public key sent once per stream, then by index. The receiver rebuilds
// the exact bytes the source signed; the signature is verified over those, as ever.
import { cborHead, minimalHeadLength, readHead, writeHead } from '../envelope/cbor.ts';
import { UPDATE_FORMAT, type Update } from '../envelope/update.ts';
import type { NodeId } from '../identity/node-id.ts';
import { MAX_STREAM_KEYS } from '../limits.ts';
import { utf8 } from '../util/bytes.ts';
import { Slab } from '../util/slab.ts';

/**
 * An item of an updates message is one of:
 * - a whole envelope (first byte 0x82), as signed: any envelope the compact forms cannot rebuild
 *   bit for bit;
 * - `0x58 0x20 publicKey rest signature`: a source key this stream has not named yet, which both
 *   sides append to their table (while it holds fewer than MAX_STREAM_KEYS);
 * - `index rest signature` (a CBOR unsigned integer): the key at that place in the table.
 * `rest` is the payload after the key (version and body), `signature` its last 64 bytes. The
 * payload rebuilt is `[1, dataset, publicKey, ...rest]` with minimal heads, the dataset being
 * the stream's own.
 */
const KEY_HEAD = [0x58, 0x20] as const;
const SIGNATURE_BYTES = 64;
/** Smallest item: a one-byte index, a version, a one-byte body, the signature. */
export const MIN_ITEM_BYTES = 1 + 1 + 1 + SIGNATURE_BYTES;

/** `[1, dataset, ` and the key's head: the bytes every compactable payload of a stream starts with. */
function payloadPrefix(dataset: string): Uint8Array {
  const name = utf8(dataset);
  return new Uint8Array([0x85, UPDATE_FORMAT, ...cborHead(3, name.length), ...name, ...KEY_HEAD]);
}

/** Items are copied into their message at once: views into shared chunks, not an ArrayBuffer each. */
const items = new Slab(64 * 1024);

/** Expanded envelopes: views into shared chunks. An update keeps its envelope only until its
 *  store commit lands (then it is backed or compact, a copy of its own) or, with no store, until
 *  it is held; one kept longer (deferred, remembered as superseded) is made compact at once. */
const envelopes = new Slab(64 * 1024);

/** The sending side's table: which sources this stream has named, in order. */
export class KeyTableWriter {
  private readonly index = new Map<NodeId, number>();
  private readonly prefix: Uint8Array;

  constructor(dataset: string) {
    this.prefix = payloadPrefix(dataset);
  }

  /** The wire item for `update`; names its source in the table the first time. */
  encode(update: Update): Uint8Array {
    const bytes = update.bytes;
    const head = readHead(bytes, 1);
    // Only an envelope the reader rebuilds exactly is compacted: a minimal outer head and a
    // payload that starts with this stream's prefix (the envelope parsed, so it ends with
    // 0x58 0x40 and the signature, and the heads inside its payload are minimal).
    if (head === null || head[2] !== minimalHeadLength(head[1]) || !startsWith(bytes, 1 + head[2], this.prefix)) return bytes;
    const keyStart = 1 + head[2] + this.prefix.length;
    const restStart = keyStart + 32;
    const restLength = bytes.length - SIGNATURE_BYTES - 2 - restStart;
    const known = this.index.get(update.source);
    const refLength = known !== undefined ? minimalHeadLength(known) : 34;
    if (known === undefined && this.index.size < MAX_STREAM_KEYS) this.index.set(update.source, this.index.size);
    const out = items.take(refLength + restLength + SIGNATURE_BYTES);
    if (known === undefined) out.set(bytes.subarray(keyStart - 2, keyStart + 32));
    else writeHead(out, 0, 0, known);
    out.set(bytes.subarray(restStart, restStart + restLength), refLength);
    out.set(bytes.subarray(bytes.length - SIGNATURE_BYTES), refLength + restLength);
    return out;
  }
}

/** Bytes reserved after an expanded envelope in its buffer: room for the payload hash, so that
 *  parseAdoptedUpdate can keep the envelope without copying it. */
export const EXPANDED_SPARE = 32;

/** The receiving side's table, mirroring the peer's writer. */
export class KeyTableReader {
  private readonly keys: Uint8Array[] = [];
  private readonly prefix: Uint8Array;

  constructor(dataset: string) {
    this.prefix = payloadPrefix(dataset);
  }

  /** Keys named so far (at most MAX_STREAM_KEYS). */
  get size(): number {
    return this.keys.length;
  }

  /**
   * The envelope an item stands for (a whole envelope is returned as it is), or why the item
   * is malformed. Items must be expanded in the order they arrived: naming a key changes the
   * table. The rebuilt envelope is the item plus a constant (the dataset name, the key, heads).
   */
  expand(item: Uint8Array): Uint8Array | string {
    if (item[0] === 0x82) return item;
    let key: Uint8Array;
    let restStart: number;
    if (item[0] === KEY_HEAD[0] && item[1] === KEY_HEAD[1]) {
      if (item.length < 34 + 2 + SIGNATURE_BYTES) return 'item too short for a key, a version and a signature';
      key = item.subarray(2, 34);
      if (this.keys.length < MAX_STREAM_KEYS) this.keys.push(key.slice());
      restStart = 34;
    } else {
      const ref = readHead(item, 0);
      if (ref === null || ref[0] !== 0) return 'item is neither an envelope, a key nor a key index';
      if (ref[1] >= this.keys.length) return `key index ${ref[1]} not named (${this.keys.length} named)`;
      key = this.keys[ref[1]]!;
      restStart = ref[2];
    }
    const restLength = item.length - restStart - SIGNATURE_BYTES;
    if (restLength < 2) return 'item too short for a version, a body and a signature';
    const payloadLength = this.prefix.length + 32 + restLength;
    const length = 1 + minimalHeadLength(payloadLength) + payloadLength + 2 + SIGNATURE_BYTES;
    // EXPANDED_SPARE bytes more, reserved: the update parsed from it keeps its hash there.
    const out = envelopes.take(length, EXPANDED_SPARE);
    out[0] = 0x82;
    let at = 1 + writeHead(out, 1, 2, payloadLength);
    out.set(this.prefix, at);
    out.set(key, (at += this.prefix.length));
    out.set(item.subarray(restStart, restStart + restLength), (at += 32));
    at += restLength;
    out[at] = 0x58;
    out[at + 1] = 0x40;
    out.set(item.subarray(item.length - SIGNATURE_BYTES), at + 2);
    return out;
  }
}

function startsWith(bytes: Uint8Array, at: number, expected: Uint8Array): boolean {
  if (bytes.length < at + expected.length) return false;
  for (let i = 0; i < expected.length; i++) if (bytes[at + i] !== expected[i]) return false;
  return true;
}
