// Helpers for the limit tests: fixed identities and clock, hand-built CBOR whose decode cost is
// computed here from DECODED_COST (independently of the scanner), and envelopes signed around
// bodies that signUpdate would refuse to sign.
import { Identity } from '../../src/index.ts';
import { cborHead, DECODED_COST } from '../../src/envelope/cbor.ts';
import { DOMAIN, domainBytes } from '../../src/identity/signature.ts';
import { DECODE_SLACK_BYTES, MAX_DECODE_EXPANSION } from '../../src/limits.ts';
import { concatBytes, utf8 } from '../../src/util/bytes.ts';

/** A fixed "now" in µs (2023-11-14T22:13:20Z); tests sign versions just below it. */
export const T = 1_700_000_000_000_000;

/** A deterministic identity from one seed byte. */
export const identity = (byte: number): Identity => Identity.fromSecretKey(new Uint8Array(32).fill(byte));

/** An item of a flat top-level CBOR array, chosen for its decode cost per wire byte. */
export type Item = 'array' | 'map' | 'a' | 'int';

/** Wire bytes and estimated decoded cost of one item, from the DECODED_COST table. */
const ITEM: Record<Item, { wire: Uint8Array; cost: number }> = {
  array: { wire: Uint8Array.of(0x80), cost: DECODED_COST.slot + DECODED_COST.array }, // []
  map: { wire: Uint8Array.of(0xa0), cost: DECODED_COST.slot + DECODED_COST.map }, // {}
  a: { wire: Uint8Array.of(0x61, 0x61), cost: DECODED_COST.slot + DECODED_COST.text + 1 }, // "a"
  int: { wire: Uint8Array.of(0x00), cost: DECODED_COST.slot }, // 0
};

/** A flat CBOR array of `items`, with its estimated cost and the budget it is held to. */
export interface Flat {
  bytes: Uint8Array;
  /** Estimated decoded bytes, as the scanner should compute them. */
  cost: number;
  /** MAX_DECODE_EXPANSION x wire bytes + DECODE_SLACK_BYTES. */
  budget: number;
  /** Largest cost - budget after any item but the last (the scanner checks after every item). */
  worstPrefix: number;
}

/** Builds [items...] and computes its cost the way the decode budget is specified. */
export function flat(items: Item[]): Flat {
  const head = cborHead(4, items.length);
  let wire = head.length;
  let cost = DECODED_COST.slot + DECODED_COST.array;
  let worstPrefix = cost - (MAX_DECODE_EXPANSION * wire + DECODE_SLACK_BYTES);
  for (let i = 0; i < items.length; i++) {
    const it = ITEM[items[i]!];
    wire += it.wire.length;
    cost += it.cost;
    const over = cost - (MAX_DECODE_EXPANSION * wire + DECODE_SLACK_BYTES);
    if (i < items.length - 1) worstPrefix = Math.max(worstPrefix, over);
  }
  const bytes = concatBytes(head, ...items.map((k) => ITEM[k].wire));
  return { bytes, cost, budget: MAX_DECODE_EXPANSION * wire + DECODE_SLACK_BYTES, worstPrefix };
}

/** `n` copies of `item`. */
export const many = (n: number, item: Item): Item[] => new Array<Item>(n).fill(item);

/** An envelope [payload, signature] around raw body bytes, signed for real by `signer`. */
export function signRawBody(signer: Identity, fields: { dataset: string; version: number }, body: Uint8Array): Uint8Array {
  const name = utf8(fields.dataset);
  const payload = concatBytes(Uint8Array.of(0x85, 0x01), cborHead(3, name.length), name, cborHead(2, 32), signer.publicKey,
    cborHead(0, fields.version), body);
  const sig = signer.sign(domainBytes(DOMAIN.update, payload));
  return concatBytes(Uint8Array.of(0x82), cborHead(2, payload.length), payload, Uint8Array.of(0x58, 0x40), sig);
}
