// Input strategies shared by the fuzz properties: arbitrary bytes, chunkings, mutations of
// valid inputs (bit flips, insertions, deletions, truncation, lengths set to edge values).
import fc from 'fast-check';
import { CBOR_MAX_ITEMS, cborHead, FORBIDDEN_KEYS, readHead, type Value } from '../../src/envelope/cbor.ts';
import {
  MAX_DATASET_LENGTH, MAX_HANDSHAKE_FRAME, MAX_MESSAGE_BYTES, MAX_UPDATE_BYTES, NOISE_MAX_FRAME,
} from '../../src/limits.ts';

/** Lengths worth claiming: CBOR head widths, integer widths, and signet's limits either side. */
export const EDGE_VALUES: ReadonlyArray<number | bigint> = [
  0, 1, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 2n ** 64n - 1n,
  MAX_DATASET_LENGTH, MAX_DATASET_LENGTH + 1, MAX_HANDSHAKE_FRAME, MAX_HANDSHAKE_FRAME + 1,
  NOISE_MAX_FRAME, MAX_UPDATE_BYTES, MAX_UPDATE_BYTES + 1, CBOR_MAX_ITEMS, CBOR_MAX_ITEMS + 1,
  MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES + 1,
];
/** Edge values, the smallest (0, 1) and the head-width boundaries (23, 24) drawn most often. */
const edge = fc.oneof(fc.constantFrom(0, 1, 23, 24), fc.constantFrom(...EDGE_VALUES));

/** Arbitrary bytes, mostly short, sometimes a few KiB. */
export const anyBytes = fc.oneof(
  { weight: 4, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 4096 }) },
);

/** Chunk sizes, used in turn to cut a byte string (shrinks towards one byte at a time). */
export const chunking = fc.array(
  fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 4096 })),
  { minLength: 1, maxLength: 6 },
);

/** Cuts `bytes` into chunks of the given sizes, taken in turn. */
export function split(bytes: Uint8Array, sizes: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const size = sizes[i % sizes.length]!;
    out.push(Buffer.from(bytes.subarray(at, at + size)));
    at += size;
  }
  return out;
}

/** One change to a byte string. `at` picks a position (modulo the length), or with `mark` an interesting offset. */
export type Mutation =
  | { kind: 'flip'; at: number; mark: boolean; bit: number }
  | { kind: 'insert'; at: number; mark: boolean; bytes: Uint8Array }
  | { kind: 'delete'; at: number; mark: boolean; count: number }
  | { kind: 'truncate'; at: number; mark: boolean }
  | { kind: 'head'; at: number; mark: boolean; value: number | bigint; width: 0 | 1 | 2 | 4 | 8 }
  | { kind: 'u32' | 'u16'; at: number; mark: boolean; value: number | bigint };

const at = { at: fc.nat(), mark: fc.boolean() };
export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), ...at, bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('insert' as const), ...at, bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('delete' as const), ...at, count: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ kind: fc.constant('truncate' as const), ...at }),
  fc.record({ kind: fc.constant('head' as const), ...at, value: edge, width: fc.constantFrom(0 as const, 1 as const, 2 as const, 4 as const, 8 as const) }),
  fc.record({ kind: fc.constantFrom('u32' as const, 'u16' as const), ...at, value: edge }),
);
export const mutations = fc.array(mutation, { minLength: 1, maxLength: 4 });

/** A CBOR head for `major` and `value`, `width` bytes wide (0: minimal; too narrow: the widest). */
export function head(major: number, value: number | bigint, width: 0 | 1 | 2 | 4 | 8): Uint8Array {
  const n = BigInt(value);
  let w: number = width;
  if (w === 0) w = n < 24n ? -1 : n < 0x100n ? 1 : n < 0x10000n ? 2 : n < 0x100000000n ? 4 : 8;
  if (w === -1) return Uint8Array.of((major << 5) | Number(n));
  if (n >= 1n << BigInt(8 * w)) w = 8;
  const out = new Uint8Array(1 + w);
  out[0] = (major << 5) | (24 + Math.log2(w));
  for (let i = 0; i < w; i++) out[w - i] = Number((n >> BigInt(8 * i)) & 0xffn);
  return out;
}

const clampTo = (value: number | bigint, bits: number): number => {
  const max = 2 ** bits - 1;
  return Number(BigInt(value) > BigInt(max) ? BigInt(max) : BigInt(value));
};

/** Applies the mutations in order. `marks` are offsets worth hitting (frame starts, CBOR heads). */
export function mutate(input: Uint8Array, list: readonly Mutation[], marks: readonly number[] = []): Uint8Array {
  let bytes = Uint8Array.from(input);
  for (const m of list) {
    const pos = m.mark && marks.length > 0 ? Math.min(marks[m.at % marks.length]!, bytes.length) : m.at % (bytes.length + 1);
    const before = bytes.subarray(0, pos);
    switch (m.kind) {
      case 'flip':
        if (pos < bytes.length) bytes[pos]! ^= 1 << m.bit;
        break;
      case 'insert':
        bytes = Buffer.concat([before, m.bytes, bytes.subarray(pos)]);
        break;
      case 'delete':
        bytes = Buffer.concat([before, bytes.subarray(pos + m.count)]);
        break;
      case 'truncate':
        bytes = bytes.slice(0, pos);
        break;
      case 'head': {
        if (pos >= bytes.length) break;
        const old = readHead(bytes, pos);
        const replacement = head(bytes[pos]! >> 5, m.value, m.width);
        bytes = Buffer.concat([before, replacement, bytes.subarray(pos + (old ? old[2] : 1))]);
        break;
      }
      case 'u32':
      case 'u16': {
        const width = m.kind === 'u32' ? 4 : 2;
        const field = Buffer.alloc(width);
        field.writeUIntBE(clampTo(m.value, 8 * width), 0, width);
        bytes = Buffer.concat([before, field, bytes.subarray(pos + width)]);
        break;
      }
    }
  }
  return Uint8Array.from(bytes);
}

/** Offsets of every head in a well-formed CBOR item starting at `start` (stops at anything else). */
export function cborHeads(bytes: Uint8Array, start = 0): number[] {
  const heads: number[] = [];
  let pos = start;
  let owed = 1;
  while (owed > 0 && pos < bytes.length) {
    const h = readHead(bytes, pos);
    if (h === null) break;
    heads.push(pos);
    owed--;
    const [major, arg, size] = h;
    pos += size;
    if (major === 2 || major === 3) pos += arg;
    else if (major === 4) owed += arg;
    else if (major === 5) owed += 2 * arg;
  }
  return heads;
}

// ---- many small items --------------------------------------------------------------------------

/** One-kind items that cost the decoder most per wire byte. */
export const ITEMS: ReadonlyArray<[string, number[]]> = [
  ['0', [0x00]], ['null', [0xf6]], ['empty text', [0x60]], ['1-char text', [0x61, 0x41]],
  ['empty array', [0x80]], ['empty map', [0xa0]], ['empty byte string', [0x40]], ['1-byte byte string', [0x41, 0x00]],
  ['float64', [0xfb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 1]], ['one-key map', [0xa1, 0x61, 0x6b, 0x00]], ['[[]]', [0x81, 0x80]],
];
/** Indexes of the byte-string items (what an updates message carries). */
export const BYTE_STRING_ITEMS = [6, 7];

/**
 * Huge item counts in one value: `arrays` arrays side by side, each of up to 2^20
 * (CBOR_MAX_ITEMS) items of one kind, at most `maxBytes` in all. A description, built into
 * bytes by {@link itemsInput}, so a counterexample prints small.
 */
export const manyItems = (items: readonly number[] = ITEMS.map((_, i) => i)) => fc.record({
  item: fc.constantFrom(...items),
  count: fc.oneof(fc.integer({ min: 1, max: CBOR_MAX_ITEMS }), fc.constantFrom(1 << 16, CBOR_MAX_ITEMS)),
  arrays: fc.integer({ min: 1, max: 8 }),
});

/** The CBOR bytes `manyItems` describes: one array, or an array of `arrays` arrays. */
export function itemsInput({ item, count, arrays }: { item: number; count: number; arrays: number }, maxBytes = 8 << 20) {
  const [name, bytes] = ITEMS[item]!;
  const per = Math.max(1, Math.min(count, Math.floor(maxBytes / arrays / bytes.length)));
  const body = new Uint8Array(per * bytes.length);
  for (let i = 0; i < body.length; i += bytes.length) body.set(bytes, i);
  const one = Buffer.concat([cborHead(4, per), body]);
  const input = arrays === 1 ? one : Buffer.concat([cborHead(4, arrays), ...Array.from({ length: arrays }, () => one)]);
  return { what: `${arrays} x ${per} x ${name}`, input: new Uint8Array(input.buffer, input.byteOffset, input.length) };
}

// ---- signet values --------------------------------------------------------------------------

/** Well-formed text (no lone surrogates: those have no UTF-8 form). */
export const text = (maxLength: number) => fc.string({ unit: 'binary', maxLength });
const key = text(8).filter((k) => !FORBIDDEN_KEYS.has(k));
const leaf: fc.Arbitrary<Value> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 }),
  fc.maxSafeInteger(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  text(24),
  fc.uint8Array({ maxLength: 24 }),
);

/** Any signet CBOR value with containers nested at most `maxDepth` deep. */
export function value(maxDepth: number): fc.Arbitrary<Value> {
  if (maxDepth <= 0) return leaf;
  const { tree } = fc.letrec<{ tree: Value }>((tie) => ({
    tree: fc.oneof(
      { maxDepth, depthIdentifier: 'value' },
      leaf,
      fc.array(tie('tree'), { maxLength: 4 }),
      fc.dictionary(key, tie('tree'), { maxKeys: 4, noNullPrototype: true }),
    ),
  }));
  return tree;
}

/**
 * A canonical text form of a value for comparisons: byte strings of any class compare by
 * content, -0 is 0 (CBOR has one integer zero), object keys are sorted.
 */
export function canonical(v: unknown): string {
  if (v instanceof Uint8Array) return `h'${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')}'`;
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (typeof v === 'number') return Object.is(v, -0) ? '0' : String(v);
  if (v !== null && typeof v === 'object') {
    const keys = Object.keys(v).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? String(v);
}

/** Asserts two values have one canonical form; the message shows both (fast-check reports only the message). */
export function assertSame(actual: unknown, expected: unknown, what: string): void {
  const a = canonical(actual);
  const e = canonical(expected);
  if (a !== e) throw new Error(`${what}: got ${a.slice(0, 400)}, expected ${e.slice(0, 400)}`);
}
