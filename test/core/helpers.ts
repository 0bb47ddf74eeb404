// Shared test helpers for core/ and models/: fixed identities, an injectable clock, a fake
// origin that counts faults, forged envelopes, stream pairs, snapshots of observable state.
import { once } from 'node:events';
import { Transform, type TransformCallback } from 'node:stream';
import { Identity, Model, MemoryStore, type Rejection, type UpdateOrigin, type ReplicationStream, type StreamOptions, type Scuttlebutt } from '../../src/index.ts';
import { cborHead, encodeCbor } from '../../src/envelope/cbor.ts';
import { DOMAIN, domainBytes, signatureEquations } from '../../src/identity/signature.ts';
import { concatBytes, utf8 } from '../../src/util/bytes.ts';

/** A deterministic identity from one seed byte. */
export const identity = (byte: number): Identity => Identity.fromSecretKey(new Uint8Array(32).fill(byte));

/** 2023-11-14T22:13:20Z in µs: a fixed "now" for tests. */
export const T0 = 1_700_000_000_000_000;

/** An injectable clock in µs: `clock.now` for the model, `clock.t` to move it. */
export function testClock(start = T0): { now: () => number; t: number; advanceMs(ms: number): void } {
  const c = {
    t: start,
    now: () => c.t,
    advanceMs(ms: number) {
      c.t += ms * 1000;
    },
  };
  return c;
}

/** A fake stream origin that records every fault it is charged with. */
export function fakeOrigin(): UpdateOrigin & { faults: Rejection[] } {
  const faults: Rejection[] = [];
  return { faults, fault: (r: Rejection) => void faults.push(r) };
}

/** An envelope around arbitrary payload bytes, signed for real by `signer`. */
export function craft(payload: Uint8Array, signer: Identity, tag: string = DOMAIN.update): Uint8Array {
  const sig = signer.sign(domainBytes(tag, payload));
  return concatBytes(Uint8Array.of(0x82), cborHead(2, payload.length), payload, Uint8Array.of(0x58, 0x40), sig);
}

/** A canonical payload: [1, dataset, publicKey, version, body]. */
export function payload(fields: { dataset?: string; publicKey: Uint8Array; version: number; body: unknown }): Uint8Array {
  const name = utf8(fields.dataset ?? 'default');
  return concatBytes(Uint8Array.of(0x85, 0x01), cborHead(3, name.length), name, cborHead(2, 32), fields.publicKey,
    cborHead(0, fields.version), encodeCbor(fields.body));
}

/** An update that claims `victim` as its source but is signed by `forger`: a forged signature. */
export function forge(victim: Identity, forger: Identity, fields: { dataset?: string; version: number; body: unknown }): Uint8Array {
  return craft(payload({ ...fields, publicKey: victim.publicKey }), forger);
}

/** The same envelope with one signature bit flipped (payload untouched, so the same update hash). */
export function flipSignature(envelope: Uint8Array, at = 10): Uint8Array {
  const out = envelope.slice();
  out[out.length - 64 + at]! ^= 0x01;
  return out;
}

/** Everything observable about a model and its store, for "unchanged" assertions. */
export async function snapshot(model: Model, store?: MemoryStore) {
  const stored = store ? await store.load(model.dataset) : undefined;
  return {
    json: JSON.stringify(model.entries().sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    clock: JSON.stringify([...model.clock].sort()),
    hash: model.stateHash(),
    storeSize: store ? store.size(model.dataset) : 0,
    storeClock: stored ? JSON.stringify(stored.clock.sort()) : '',
  };
}

/** Counts signatures that reached the signature equation (check 5), on any backend. */
export const verifyCounter = { get calls(): number { return signatureEquations(); } };

/** Pipes two streams together both ways; returns them and a promise of both 'sync' events. */
export function connect(a: Scuttlebutt, b: Scuttlebutt, options: { a?: StreamOptions; b?: StreamOptions; middle?: Transform } = {}) {
  const sa = a.createStream(options.a);
  const sb = b.createStream(options.b);
  if (options.middle) sa.pipe(options.middle).pipe(sb).pipe(sa);
  else sa.pipe(sb).pipe(sa);
  const synced = Promise.all([once(sa, 'sync'), once(sb, 'sync')]).then(() => undefined);
  const closed = Promise.all([closedP(sa), closedP(sb)]).then(() => undefined);
  return { sa, sb, synced, closed, destroy: () => (sa.destroy(), sb.destroy()) };
}

const closedP = (s: ReplicationStream) => (s.destroyed && s.closed ? Promise.resolve() : once(s, 'close').then(() => undefined));

/** One anti-entropy round: a tail:false pair that ends after sync; resolves when both streams closed. */
export async function syncOnce(a: Scuttlebutt, b: Scuttlebutt): Promise<void> {
  const { closed, sa, sb } = connect(a, b, { a: { tail: false }, b: { tail: false } });
  await closed;
  if (sa.closeReason || sb.closeReason) throw new Error(`sync cut off: ${sa.closeReason?.message ?? sb.closeReason?.message}`);
}

/** A Transform that re-frames the replication byte stream (4-byte length + CBOR message) and
 *  lets `edit` replace any message's bytes. */
export function messageEditor(edit: (message: Buffer) => Buffer): Transform {
  let buf = Buffer.alloc(0);
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 4) {
        const n = buf.readUInt32BE(0);
        if (buf.length < 4 + n) break;
        const body = edit(buf.subarray(4, 4 + n));
        const head = Buffer.alloc(4);
        head.writeUInt32BE(body.length, 0);
        this.push(Buffer.concat([head, body]));
        buf = buf.subarray(4 + n);
      }
      cb();
    },
  });
}

/** A model with a fresh MemoryStore, loaded. */
export async function storedModel(options: ConstructorParameters<typeof Model>[0]): Promise<{ model: Model; store: MemoryStore }> {
  const store = (options.store as MemoryStore | undefined) ?? new MemoryStore();
  const model = new Model({ ...options, store });
  await model.ready;
  return { model, store };
}

/** Resolves after the model announced `n` more 'update' events (stored, then announced). */
export function updates(sb: Scuttlebutt, n = 1): Promise<void> {
  return new Promise((resolve) => {
    let left = n;
    const on = () => {
      if (--left === 0) {
        sb.off('update', on);
        resolve();
      }
    };
    sb.on('update', on);
  });
}
