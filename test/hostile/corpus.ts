// The shared list of hostile inputs: what a peer can send to crash, stall or bloat a node,
// one entry per defect or limit edge, each with what every entry point must make of it.
//
// Grow it per defect: add an entry with a name, the defect it probes (issue and item), a
// builder (build.ts), and the verdict each entry point owes. entry-points.test.ts runs every
// entry through parseUpdate, openUpdate, FrameDecoder, decodeMessage and a Model's replication
// stream. Large inputs are built on demand by `build()` and dropped after use.
import type { CutReason as SrcCutReason } from '../../src/index.ts';
import type { UpdateReason } from '../../src/index.ts';
import { cborHead } from '../../src/envelope/cbor.ts';
import { MIN_ITEM_BYTES } from '../../src/replication/compact.ts';
import { MAX_MESSAGE_BYTES, MAX_META_BYTES, MAX_UPDATE_BYTES } from '../../src/limits.ts';
import { encodeSync, MSG_HELLO, MSG_UPDATES, PROTOCOL_VERSION } from '../../src/replication/messages.ts';
import { concatBytes } from '../../src/util/bytes.ts';
import {
  LONE_HIGH, LONE_LOW, NOW, claimedFrame, envelopeOf, forgedWire, framed, garbage, garbageEnvelopes, helloWithDigest, helloWithMeta,
  nested, rawPayload, repeated, setBody, signedOfBodySize, signedRepeated, text, textBytes, tinyItems, typed, updatesMessage, validHello,
  writer,
} from './build.ts';

export * from './build.ts';

// ---- the corpus's shape -------------------------------------------------------------------

/** Where an input belongs: one update envelope; one replication message without its 4-byte
 *  length prefix; or bytes exactly as a peer writes them to the stream (framed). */
export type Layer = 'envelope' | 'message' | 'wire';

/** The documented reasons a replication stream is cut off (src/replication/stream.ts). Anything
 *  else, 'internal-error' above all, means an exception inside the stream. */
export const CUT_REASONS = [
  'too-large', 'no-hello', 'malformed', 'unknown-message', 'unsupported-version', 'second-hello',
  'wrong-dataset', 'wrong-peer', 'second-sync', 'bad-signature', 'fault-budget', 'hello-timeout',
  // reconciliation (src/reconcile/wire.ts)
  'reconcile-truncated', 'reconcile-too-large', 'reconcile-bad-format', 'reconcile-bad-varint', 'reconcile-bad-bound',
  'reconcile-bad-mode', 'reconcile-non-canonical', 'reconcile-too-many-ranges', 'reconcile-too-many-ids',
  'reconcile-duplicate-id', 'reconcile-trailing-bytes', 'reconcile-bad-want', 'reconcile-rounds', 'reconcile-unexpected',
] as const satisfies ReadonlyArray<Exclude<SrcCutReason, 'internal-error'>>;
export type CutReason = (typeof CUT_REASONS)[number];
/** Compile-time: every reason the stream can cut with (but its own bug) is in the list above. */
const everyReasonListed: [Exclude<SrcCutReason, 'internal-error' | CutReason>] extends [never] ? true : never = true;
void everyReasonListed;
/** What decodeMessage's reason maps to (as the stream maps it). */
export type MessageVerdict = 'ok' | 'malformed' | 'unknown-message' | 'unsupported-version';

export interface Expect {
  /** parseUpdate on the entry's bytes as given. */
  parse: 'ok' | UpdateReason;
  /** openUpdate: the same, then the signature. */
  open: 'ok' | UpdateReason;
  /** decodeMessage on every message FrameDecoder yields from the wire form (null: it yields none). */
  message: MessageVerdict | null;
  /** FrameDecoder fed the wire form: how many messages it yields, or 'too-large' if it refuses a length. */
  frames: number | 'too-large';
  /** The stream (after a valid hello if `afterHello`, and followed by SYNC): 'open' means it
   *  still works (reaches 'sync'); else the reason it is cut off. */
  stream: 'open' | CutReason;
  /** Rejected updates counted against the peer on an 'open' stream. Default 0. */
  faults?: number;
  /** Updates applied on an 'open' stream. Default 0. */
  applied?: number;
}

export interface HostileInput {
  /** Short unique name; test names use it. */
  name: string;
  /** What the input probes (issue and item where a defect was found) and what must become of it. */
  why: string;
  layer: Layer;
  /** The stream must see a valid hello first for the input to reach the code it targets. */
  afterHello: boolean;
  /** Builds the bytes. */
  build(): Uint8Array;
  expect: Expect;
}

// ---- the corpus ---------------------------------------------------------------------------

const V = NOW - 10_000_000; // a version well in the past

export const corpus: HostileInput[] = [
  // -- issue 7 item 1: decoding work and memory out of all proportion to the bytes --
  {
    name: 'tiny-items-15MB-before-hello',
    why: 'issue 7 item 1: 15 MB of empty byte strings (in arrays under cbor-x\'s item limit) typed as updates, before any hello. The old decoder built 15M Uint8Arrays (2.9 GB, 12 s); now refused from the type alone.',
    layer: 'message', afterHello: false,
    build: () => typed(MSG_UPDATES, tinyItems(15_000_000)),
    expect: { parse: 'too-large', open: 'too-large', message: 'malformed', frames: 1, stream: 'no-hello' },
  },
  {
    name: 'tiny-items-15MB-after-hello',
    why: 'issue 7 item 1: the same after a hello: the envelope list is read by structure (each must be a byte string of at least MIN_ITEM_BYTES), so the first item ends it.',
    layer: 'message', afterHello: true,
    build: () => typed(MSG_UPDATES, tinyItems(15_000_000)),
    expect: { parse: 'too-large', open: 'too-large', message: 'malformed', frames: 1, stream: 'malformed' },
  },
  {
    name: 'tiny-items-15MB-unknown-type',
    why: 'issue 7 item 1: 15 MB of empty byte strings in a message of unknown type 9: refused from the type.',
    layer: 'message', afterHello: false,
    build: () => typed(9, tinyItems(15_000_000)),
    expect: { parse: 'too-large', open: 'too-large', message: 'unknown-message', frames: 1, stream: 'unknown-message' },
  },
  {
    name: 'tiny-items-15MB-as-hello',
    why: 'issue 7 item 1: a "hello" [0, 1, [15M empty byte strings]]: the hello is read field by field; its dataset is not a string.',
    layer: 'message', afterHello: false,
    build: () => typed(MSG_HELLO, tinyItems(15_000_000), cborHead(0, PROTOCOL_VERSION)),
    expect: { parse: 'too-large', open: 'too-large', message: 'malformed', frames: 1, stream: 'malformed' },
  },
  {
    name: 'hello-meta-4M-empty-byte-strings',
    why: 'issue 7 item 1: a valid hello whose meta holds 4 million empty byte strings (4 MB; 740 MB once decoded): over MAX_META_BYTES, scanned no further than that.',
    layer: 'message', afterHello: false,
    build: () => helloWithMeta(tinyItems(4_000_000)),
    expect: { parse: 'too-large', open: 'too-large', message: 'malformed', frames: 1, stream: 'malformed' },
  },
  {
    name: 'hello-meta-at-limit-empty-byte-strings',
    why: 'decode budget: meta of exactly MAX_META_BYTES, all empty byte strings (192 estimated heap bytes per wire byte > 32): refused though within the size limit.',
    layer: 'message', afterHello: false,
    build: () => helloWithMeta(repeated(0x40, MAX_META_BYTES - 3)),
    expect: { parse: 'bad-shape', open: 'bad-shape', message: 'malformed', frames: 1, stream: 'malformed' },
  },
  {
    name: 'hello-meta-at-limit-text',
    why: 'limit: meta of exactly MAX_META_BYTES (one text string) is accepted.',
    layer: 'message', afterHello: false,
    build: () => helloWithMeta(concatBytes(cborHead(3, MAX_META_BYTES - 3), new Uint8Array(MAX_META_BYTES - 3).fill(0x61))),
    expect: { parse: 'bad-shape', open: 'bad-shape', message: 'ok', frames: 1, stream: 'open' },
  },
  {
    name: 'hello-meta-limit-plus-1-text',
    why: 'limit + 1: meta of MAX_META_BYTES + 1 is refused.',
    layer: 'message', afterHello: false,
    build: () => helloWithMeta(concatBytes(cborHead(3, MAX_META_BYTES - 2), new Uint8Array(MAX_META_BYTES - 2).fill(0x61))),
    expect: { parse: 'bad-shape', open: 'bad-shape', message: 'malformed', frames: 1, stream: 'malformed' },
  },
  {
    name: 'hello-digest-250k-sources',
    why: 'SECURITY.md "Digest size": a hello naming 250,000 sources (16.25 MB, just under MAX_MESSAGE_BYTES) is legitimate; reading and holding it must stay linear.',
    layer: 'message', afterHello: false,
    build: () => helloWithDigest(250_000),
    expect: { parse: 'too-large', open: 'too-large', message: 'ok', frames: 1, stream: 'open' },
  },
  // -- issue 7 item 1: envelope counts bounded by the message size --
  {
    name: 'updates-16MiB-min-size-garbage-envelopes',
    why: 'issue 7 item 1: a 16 MiB updates message of ~250k garbage items of MIN_ITEM_BYTES each (protocol 3: the smallest compact item): read as views; the fault budget ends it after 65.',
    layer: 'message', afterHello: true,
    build: () => garbageEnvelopes(MAX_MESSAGE_BYTES, MIN_ITEM_BYTES),
    expect: { parse: 'too-large', open: 'too-large', message: 'ok', frames: 1, stream: 'fault-budget' },
  },
  {
    name: 'updates-envelopes-of-MIN-1-bytes',
    why: 'limit + 1 below: items of MIN_ITEM_BYTES - 1 (66) bytes make the message malformed.',
    layer: 'message', afterHello: true,
    build: () => updatesMessage(Array.from({ length: 1000 }, (_, i) => garbage(i, MIN_ITEM_BYTES - 1))),
    expect: { parse: 'too-large', open: 'too-large', message: 'malformed', frames: 1, stream: 'malformed' },
  },
  {
    name: 'updates-one-envelope-of-MIN-bytes',
    why: 'limit: an item of exactly MIN_ITEM_BYTES is read, stands for no envelope, and is rejected by parseUpdate (one fault).',
    layer: 'message', afterHello: true,
    build: () => updatesMessage([garbage(1, MIN_ITEM_BYTES)]),
    expect: { parse: 'bad-shape', open: 'bad-shape', message: 'ok', frames: 1, stream: 'open', faults: 1 },
  },
  {
    name: 'updates-count-2^32-1',
    why: 'length prefix 2^32-1: an updates list claiming 4,294,967,295 envelopes in a few bytes.',
    layer: 'message', afterHello: true,
    build: () => concatBytes(cborHead(4, 2), cborHead(0, MSG_UPDATES), cborHead(4, 2 ** 32 - 1), new Uint8Array(200)),
    expect: { parse: 'bad-shape', open: 'bad-shape', message: 'malformed', frames: 1, stream: 'malformed' },
  },
  {
    name: 'updates-count-2^64-1',
    why: 'length prefix 2^64-1: beyond a safe integer.',
    layer: 'message', afterHello: true,
    build: () => concatBytes(cborHead(4, 2), cborHead(0, MSG_UPDATES), Uint8Array.of(0x9b, 255, 255, 255, 255, 255, 255, 255, 255), new Uint8Array(200)),
    expect: { parse: 'bad-shape', open: 'bad-shape', message: 'malformed', frames: 1, stream: 'malformed' },
  },
  {
    name: 'envelope-length-0',
    why: 'length prefix 0: an empty envelope.',
    layer: 'message', afterHello: true,
    build: () => updatesMessage([new Uint8Array(0)]),
    expect: { parse: 'bad-shape', open: 'bad-shape', message: 'malformed', frames: 1, stream: 'malformed' },
  },
  {
    name: 'envelope-length-1',
    why: 'length prefix 1: a one-byte envelope.',
    layer: 'message', afterHello: true,
    build: () => updatesMessage([Uint8Array.of(0x82)]),
    expect: { parse: 'bad-shape', open: 'bad-shape', message: 'malformed', frames: 1, stream: 'malformed' },
  },
  {
    name: 'envelope-length-2^32-1',
    why: 'length prefix 2^32-1 on an envelope with 300 bytes behind it.',
    layer: 'message', afterHello: true,
    build: () => concatBytes(cborHead(4, 2), cborHead(0, MSG_UPDATES), cborHead(4, 1), cborHead(2, 2 ** 32 - 1), new Uint8Array(300)),
    expect: { parse: 'bad-shape', open: 'bad-shape', message: 'malformed', frames: 1, stream: 'malformed' },
  },
  {
    name: 'digest-count-2^32-1',
    why: 'length prefix 2^32-1: a hello whose digest claims 4,294,967,295 sources in a few bytes.',
    layer: 'message', afterHello: false,
    build: () => helloWithMeta(Uint8Array.of(0xf6), { digest: concatBytes(cborHead(4, 2 ** 32 - 1), new Uint8Array(300)) }),
    expect: { parse: 'bad-shape', open: 'bad-shape', message: 'malformed', frames: 1, stream: 'malformed' },
  },
  {
    name: 'meta-text-length-2^32-1',
    why: 'length prefix 2^32-1: a hello whose meta is a text string claiming 4 GiB.',
    layer: 'message', afterHello: false,
    build: () => helloWithMeta(concatBytes(cborHead(3, 2 ** 32 - 1), new Uint8Array(300).fill(0x61))),
    expect: { parse: 'bad-shape', open: 'bad-shape', message: 'malformed', frames: 1, stream: 'malformed' },
  },
  {
    name: 'payload-length-2^32-1',
    why: 'length prefix 2^32-1 on the payload inside an envelope.',
    layer: 'envelope', afterHello: true,
    build: () => concatBytes(Uint8Array.of(0x82), cborHead(2, 2 ** 32 - 1), new Uint8Array(200)),
    expect: { parse: 'bad-shape', open: 'bad-shape', message: 'ok', frames: 1, stream: 'open', faults: 1 },
  },
  // -- issue 7 item 3: signed bodies that decode to far more than their size --
  ...([[0xa0, 'empty-maps'], [0x80, 'empty-arrays'], [0x40, 'empty-byte-strings']] as const).map(([item, what], i): HostileInput => ({
    name: `signed-60KB-body-of-${what}`,
    why: `issue 7 item 3: a ~60 KB body of ${what}, validly signed by a legitimate writer, decodes to 40-190 heap bytes per wire byte: refused too-large by the decode budget (one fault, the stream goes on).`,
    layer: 'envelope', afterHello: true,
    build: () => signedRepeated(item, 60_000, 'k', V + i),
    expect: { parse: 'too-large', open: 'too-large', message: 'ok', frames: 1, stream: 'open', faults: 1 },
  })),
  // -- issue 7 item 2: forged updates in bulk --
  {
    name: 'forged-30MB-one-write',
    why: 'issue 7 item 2: 30 MB of updates claiming one source, signed by another, in one write: at most MAX_PENDING_BYTES await verification; the first bad signature cuts the peer off.',
    layer: 'wire', afterHello: true,
    build: () => forgedWire(500, 60_000, 50),
    expect: { parse: 'too-large', open: 'too-large', message: 'ok', frames: 10, stream: 'bad-signature' },
  },
  // -- text that is not Unicode --
  {
    name: 'lone-surrogate-in-signed-key',
    why: 'a validly signed update whose key is "k" + a lone high surrogate in WTF-8 (invalid UTF-8).',
    layer: 'envelope', afterHello: true,
    build: () => envelopeOf(rawPayload(writer.publicKey, V, concatBytes(Uint8Array.of(0x83), text('set'), textBytes([0x6b, ...LONE_HIGH]), Uint8Array.of(1))), writer),
    expect: { parse: 'bad-shape', open: 'bad-shape', message: 'ok', frames: 1, stream: 'open', faults: 1 },
  },
  {
    name: 'lone-surrogate-in-meta-text',
    why: 'a hello whose meta is a text string holding a lone low surrogate.',
    layer: 'message', afterHello: false,
    build: () => helloWithMeta(textBytes([0x61, ...LONE_LOW, 0x62])),
    expect: { parse: 'bad-shape', open: 'bad-shape', message: 'malformed', frames: 1, stream: 'malformed' },
  },
  {
    name: 'lone-surrogate-in-meta-map-key',
    why: 'a hello whose meta is a map with a lone-surrogate key.',
    layer: 'message', afterHello: false,
    build: () => helloWithMeta(concatBytes(Uint8Array.of(0xa1), textBytes(LONE_HIGH), Uint8Array.of(0x01))),
    expect: { parse: 'bad-shape', open: 'bad-shape', message: 'malformed', frames: 1, stream: 'malformed' },
  },
  {
    name: 'lone-surrogate-in-hello-dataset',
    why: 'a hello whose dataset name holds a lone surrogate.',
    layer: 'message', afterHello: false,
    build: () => helloWithMeta(Uint8Array.of(0xf6), { dataset: textBytes([0x64, ...LONE_HIGH]) }),
    expect: { parse: 'bad-shape', open: 'bad-shape', message: 'malformed', frames: 1, stream: 'malformed' },
  },
  // -- nesting --
  {
    name: 'deep-nesting-100k-in-meta',
    why: '100,000 nested arrays as hello meta: refused at depth MAX_MESSAGE_DEPTH, iteratively (no stack overflow).',
    layer: 'message', afterHello: false,
    build: () => helloWithMeta(nested(100_000)),
    expect: { parse: 'too-large', open: 'too-large', message: 'malformed', frames: 1, stream: 'malformed' },
  },
  {
    name: 'deep-nesting-100k-as-envelope-list',
    why: '100,000 nested arrays where the envelope list belongs.',
    layer: 'message', afterHello: true,
    build: () => concatBytes(cborHead(4, 2), cborHead(0, MSG_UPDATES), nested(100_000)),
    expect: { parse: 'too-large', open: 'too-large', message: 'malformed', frames: 1, stream: 'malformed' },
  },
  {
    name: 'deep-nesting-60k-in-signed-body',
    why: 'a validly signed ~60 KB body of 60,000 nested arrays: refused at depth MAX_BODY_DEPTH.',
    layer: 'envelope', afterHello: true,
    build: () => envelopeOf(rawPayload(writer.publicKey, V, setBody('k', nested(60_000))), writer),
    expect: { parse: 'bad-shape', open: 'bad-shape', message: 'ok', frames: 1, stream: 'open', faults: 1 },
  },
  // -- frame length prefixes: 0, 1, 2^32-1, the limit, the limit + 1 --
  {
    name: 'frame-length-0',
    why: 'length prefix 0: an empty message.',
    layer: 'wire', afterHello: false,
    build: () => new Uint8Array(4),
    expect: { parse: 'bad-shape', open: 'bad-shape', message: 'malformed', frames: 1, stream: 'malformed' },
  },
  {
    name: 'frame-length-1',
    why: 'length prefix 1: a one-byte message (an empty array).',
    layer: 'wire', afterHello: false,
    build: () => Uint8Array.of(0, 0, 0, 1, 0x80),
    expect: { parse: 'bad-shape', open: 'bad-shape', message: 'malformed', frames: 1, stream: 'malformed' },
  },
  {
    name: 'frame-length-2^32-1',
    why: 'length prefix 2^32-1: refused from the 4-byte header alone, nothing allocated.',
    layer: 'wire', afterHello: false,
    build: () => claimedFrame(2 ** 32 - 1, 1024),
    expect: { parse: 'bad-shape', open: 'bad-shape', message: null, frames: 'too-large', stream: 'too-large' },
  },
  {
    name: 'frame-length-limit',
    why: 'limit: a message of exactly MAX_MESSAGE_BYTES, one envelope filling it: read, then the envelope is too large (one fault).',
    layer: 'message', afterHello: true,
    build: () => {
      const envelope = MAX_MESSAGE_BYTES - 8; // [1, [bytes]]: 3 one-byte heads, then the byte string's 5-byte head
      const out = new Uint8Array(MAX_MESSAGE_BYTES);
      out.set(concatBytes(cborHead(4, 2), cborHead(0, MSG_UPDATES), cborHead(4, 1), cborHead(2, envelope)), 0);
      out.set(garbage(5, 4096), 8);
      return out;
    },
    expect: { parse: 'too-large', open: 'too-large', message: 'ok', frames: 1, stream: 'open', faults: 1 },
  },
  {
    name: 'frame-length-limit-plus-1',
    why: 'limit + 1: a length prefix of MAX_MESSAGE_BYTES + 1 is refused from the header alone.',
    layer: 'wire', afterHello: false,
    build: () => claimedFrame(MAX_MESSAGE_BYTES + 1, 1024),
    expect: { parse: 'bad-shape', open: 'bad-shape', message: null, frames: 'too-large', stream: 'too-large' },
  },
  // -- the update body limit --
  {
    name: 'signed-body-at-MAX_UPDATE_BYTES',
    why: 'limit: a validly signed body of exactly MAX_UPDATE_BYTES is applied.',
    layer: 'envelope', afterHello: true,
    build: () => signedOfBodySize(MAX_UPDATE_BYTES, V),
    expect: { parse: 'ok', open: 'ok', message: 'ok', frames: 1, stream: 'open', applied: 1 },
  },
  {
    name: 'signed-body-at-MAX_UPDATE_BYTES-plus-1',
    why: 'limit + 1: a validly signed body of MAX_UPDATE_BYTES + 1 is rejected too-large (one fault).',
    layer: 'envelope', afterHello: true,
    build: () => signedOfBodySize(MAX_UPDATE_BYTES + 1, V),
    expect: { parse: 'too-large', open: 'too-large', message: 'ok', frames: 1, stream: 'open', faults: 1 },
  },
  // -- protocol order --
  {
    name: 'second-hello',
    why: 'a second hello after the first.',
    layer: 'wire', afterHello: true,
    build: () => validHello(),
    expect: { parse: 'bad-shape', open: 'bad-shape', message: 'ok', frames: 1, stream: 'second-hello' },
  },
  {
    name: 'second-sync',
    why: 'SYNC twice (the harness adds one more after the input).',
    layer: 'wire', afterHello: true,
    build: () => encodeSync(),
    expect: { parse: 'bad-shape', open: 'bad-shape', message: 'ok', frames: 1, stream: 'second-sync' },
  },
];

/** The message form of an entry (no length prefix), or null for wire input. */
export function messageOf(entry: HostileInput, bytes: Uint8Array): Uint8Array | null {
  if (entry.layer === 'envelope') return updatesMessage([bytes]);
  if (entry.layer === 'message') return bytes;
  return null;
}

/** The wire form of an entry: what a peer writes (framed). */
export function wireOf(entry: HostileInput, bytes: Uint8Array): Uint8Array {
  if (entry.layer === 'wire') return bytes;
  return framed(messageOf(entry, bytes)!);
}
