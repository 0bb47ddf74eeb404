// Every hostile input of corpus.ts through every entry point that takes a peer's bytes:
// parseUpdate, openUpdate, FrameDecoder, decodeMessage, and a Model's replication stream
// (whole writes, and one byte per write for small inputs). For each: the documented verdict,
// nothing escapes (no throw, no 'error', no unhandled rejection), and heap held, peak memory
// and the longest event-loop stall stay within budgets derived from the limits (measure.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Model, ProtocolError, openUpdate, parseUpdate, type ReplicationStream, type UpdateResult } from '../../src/index.ts';
import { FrameDecoder, decodeMessage, encodeSync } from '../../src/replication/messages.ts';
import { MAX_MESSAGE_BYTES } from '../../src/limits.ts';
import { closed, deadline } from '../helpers/streams.ts';
import { CUT_REASONS, DATASET, NOW, corpus, self, validHello, wireOf, type HostileInput, type MessageVerdict } from './corpus.ts';
import { measured, settledEscapes, takeEscapes } from './measure.ts';

/** Inputs at most this long are also written to the stream one byte per write. */
const BYTE_BY_BYTE_MAX = 20 * 1024;

const verdictOf = (r: UpdateResult): string => {
  if (r.ok) return 'ok';
  assert.type(r.detail, 'string');
  return r.reason;
};

function messageVerdict(bytes: Uint8Array): MessageVerdict {
  const r = decodeMessage(bytes);
  if (r.ok) return 'ok';
  // the stream's mapping (src/replication/stream.ts receive)
  return r.reason.startsWith('unknown') ? 'unknown-message' : r.reason.startsWith('unsupported') ? 'unsupported-version' : 'malformed';
}

interface StreamOutcome {
  model: Model;
  stream: ReplicationStream;
  errors: Error[];
  headers: number;
  synced: boolean;
}

/** A fresh model's stream, fed `chunks` (a valid hello first where the entry needs one, SYNC
 *  after it): resolves once the stream reached 'sync' (`until` 'open') or closed. */
async function throughStream(chunks: Uint8Array[], until: 'open' | 'cut'): Promise<StreamOutcome> {
  const model = new Model({ identity: self, dataset: DATASET, now: () => NOW });
  await model.ready;
  const stream = model.createStream({ name: 'hostile' });
  const outcome: StreamOutcome = { model, stream, errors: [], headers: 0, synced: false };
  stream.on('error', (e) => outcome.errors.push(e));
  stream.on('header', () => outcome.headers++);
  stream.resume(); // read what it says; the attacker ignores it
  // An open stream is done at 'sync'; one to be cut is done at 'close' (it may sync first).
  const done = deadline(new Promise<void>((resolve) => {
    stream.once('sync', () => {
      outcome.synced = true;
      if (until === 'open') resolve();
    });
    stream.once('close', () => resolve());
  }), until === 'open' ? 'sync' : 'close');
  for (const c of chunks) {
    if (stream.destroyed) break;
    stream.write(c);
  }
  try {
    await done;
  } catch (err) {
    await dispose(outcome);
    throw err;
  }
  return outcome;
}

function checkStream(entry: HostileInput, how: string, o: StreamOutcome): void {
  const where = `${entry.name} via ${how}`;
  assert.equal(o.errors.map((e) => e.message), [], `${where}: 'error' event`);
  const reason = o.stream.closeReason;
  if (reason !== null) {
    assert.ok(reason instanceof ProtocolError, `${where}: closeReason is a ProtocolError`);
    assert.ok((CUT_REASONS as readonly string[]).includes(reason.reason), `${where}: undocumented cut reason: ${reason.message}`);
  }
  if (entry.expect.stream === 'open') {
    assert.is(reason, null, `${where}: cut off: ${reason?.message}`);
    assert.ok(o.synced, `${where}: did not reach 'sync'`);
    assert.is(o.stream.faults, entry.expect.faults ?? 0, `${where}: faults`);
    assert.is(o.stream.stats.applied, entry.expect.applied ?? 0, `${where}: applied`);
  } else {
    assert.is(reason?.reason, entry.expect.stream, `${where}: ${reason?.message ?? 'not cut'}`);
    assert.ok(o.stream.destroyed, `${where}: cut but not destroyed`);
    assert.is(o.stream.stats.applied, 0, `${where}: applied updates from a peer it cut off`);
  }
  if (!entry.afterHello && entry.expect.stream !== 'open') assert.is(o.headers, 0, `${where}: 'header' for a hello it refused`);
}

/** Disposes the model (and destroys the stream if dispose left it open) and waits for 'close'. */
async function dispose(o: StreamOutcome): Promise<void> {
  o.model.dispose();
  o.stream.destroy();
  await closed(o.stream);
}

for (const entry of corpus) {
  test(`${entry.name}: every entry point`, async () => {
    takeEscapes();
    const bytes = entry.build();
    const size = bytes.length;

    // parseUpdate / openUpdate: the bytes as given (the result is held while heap is measured)
    const parsed = verdictOf((await measured(`${entry.name} via parseUpdate`, size, () => parseUpdate(bytes, { dataset: DATASET }))).result);
    assert.is(parsed, entry.expect.parse, `${entry.name}: parseUpdate`);
    const opened = verdictOf((await measured(`${entry.name} via openUpdate`, size, () => openUpdate(bytes, { dataset: DATASET }))).result);
    assert.is(opened, entry.expect.open, `${entry.name}: openUpdate`);

    // FrameDecoder, then decodeMessage on every message it yields
    const w = wireOf(entry, bytes);
    const wire = Buffer.isBuffer(w) ? w : Buffer.from(w.buffer, w.byteOffset, w.byteLength);
    const frames = (await measured(`${entry.name} via FrameDecoder`, wire.length, () => new FrameDecoder(MAX_MESSAGE_BYTES).push(wire))).result;
    if (typeof frames === 'string') {
      assert.is(entry.expect.frames, 'too-large', `${entry.name}: FrameDecoder refused: ${frames}`);
      assert.match(frames, /exceeds/);
    } else {
      assert.is(frames.length, entry.expect.frames, `${entry.name}: FrameDecoder messages`);
      assert.ok(frames.reduce((n, f) => n + 4 + f.length, 0) <= wire.length, `${entry.name}: FrameDecoder yields no more than it was given`);
    }
    const messages = typeof frames === 'string' ? [] : frames;
    const verdicts = (await measured(`${entry.name} via decodeMessage`, size, () => messages.map(messageVerdict))).result;
    assert.equal(new Set(verdicts), new Set(entry.expect.message === null ? [] : [entry.expect.message]), `${entry.name}: decodeMessage`);

    // the replication stream, the whole input in one write
    const chunks = [...(entry.afterHello ? [validHello()] : []), wire, encodeSync()];
    const whole = await measured(`${entry.name} via stream`, size, () => throughStream(chunks, entry.expect.stream === 'open' ? 'open' : 'cut'), dispose);
    try {
      checkStream(entry, 'stream', whole.result);
    } finally {
      await dispose(whole.result);
    }

    // small inputs again, one byte per write
    const total = chunks.reduce((n, c) => n + c.length, 0);
    if (total <= BYTE_BY_BYTE_MAX) {
      const all = Buffer.concat(chunks);
      const bytewise = await throughStream(Array.from(all, (b) => Uint8Array.of(b)), entry.expect.stream === 'open' ? 'open' : 'cut');
      try {
        checkStream(entry, 'stream, one byte per write', bytewise);
      } finally {
        await dispose(bytewise);
      }
    }
    assert.equal(await settledEscapes(), [], `${entry.name}: something escaped`);
    assert.is(bytes.length, size); // the input stays alive (and in every baseline) to the end
  });
}

test('the corpus names are unique and every entry says why', () => {
  const names = corpus.map((e) => e.name);
  assert.is(new Set(names).size, names.length);
  for (const e of corpus) assert.ok(e.why.length > 20, e.name);
});

test.run();
