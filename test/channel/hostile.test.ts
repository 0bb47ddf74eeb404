// Hostile inputs at the handshake's front door: a shared corpus of what an outsider (or a
// confused client) may send a listener, each run against a fresh responder over an in-memory pair.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lengthPrefix } from '../../src/channel/framing.ts';
import { MESSAGE_1_BYTES } from '../../src/channel/handshake.ts';
import { SignetError } from '../../src/errors.ts';
import { MAX_HANDSHAKE_FRAME, NOISE_MAX_FRAME } from '../../src/limits.ts';
import { Prng } from '../helpers/prng.ts';
import { byteByByte, networkKey, recordMessage1, turns, watchedResponder, whenClosed } from './pair.ts';

/** Seeded: set SIGNET_SEED to try another corpus of random inputs. */
const SEED = process.env.SIGNET_SEED ? Number(process.env.SIGNET_SEED) : 0x7e57;
const prng = new Prng(SEED);
const DEADLINE_MS = 50;
const LISTENED = ['data', 'end', 'close', 'error', 'drain', 'readable'] as const;

/** One hostile input: the chunks written, whether the peer then ends, and the codes allowed. */
interface Hostile {
  name: string;
  chunks: Buffer[];
  eof?: boolean;
  oneByteAtATime?: boolean;
  codes: readonly string[];
}

const REFUSED = ['ERR_HANDSHAKE'] as const; // a message 1 that cannot be opened, whatever it is
const STALLED = ['ERR_TIMEOUT'] as const; // not a whole message 1 yet when the deadline passed
const bytes = (n: number): Buffer => Buffer.from(prng.bytes(n));
const framed = (declared: number, body = declared): Buffer => Buffer.concat([lengthPrefix(declared), bytes(body)]);

async function corpus(): Promise<Hostile[]> {
  const otherNetwork = await recordMessage1({ networkKey: new Uint8Array(32).fill(0xee) });
  const genuine = await recordMessage1();
  const stale = await recordMessage1({ testing: { now: () => Date.now() - 10 * 60_000 } });
  const list: Hostile[] = [
    { name: 'empty', chunks: [], codes: STALLED },
    { name: 'empty, then EOF', chunks: [], eof: true, codes: REFUSED },
    { name: 'one byte (half a length prefix)', chunks: [Buffer.of(0)], codes: STALLED },
    { name: 'a whole message 1 prefix and no body', chunks: [Buffer.from(lengthPrefix(MESSAGE_1_BYTES))], codes: STALLED },
    { name: 'a whole message 1 prefix and no body, then EOF', chunks: [Buffer.from(lengthPrefix(MESSAGE_1_BYTES))], eof: true, codes: REFUSED },
    { name: 'a truncated message 1 (one byte short)', chunks: [genuine.subarray(0, genuine.length - 1)], codes: STALLED },
    { name: 'a truncated message 1, then EOF', chunks: [genuine.subarray(0, genuine.length - 1)], eof: true, codes: REFUSED },
    { name: 'a valid message 1 under another network key', chunks: [otherNetwork], codes: REFUSED },
    { name: 'a valid message 1 under another network key, one byte at a time', chunks: [otherNetwork], oneByteAtATime: true, codes: REFUSED },
    { name: 'a message 1 ten minutes old, one byte at a time', chunks: [stale], oneByteAtATime: true, codes: REFUSED },
    { name: 'a message 1 with one bit flipped', chunks: [Buffer.from(genuine.map((b, i) => (i === 20 ? b ^ 1 : b)))], codes: REFUSED },
    { name: 'an HTTP request line', chunks: [Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n')], codes: REFUSED },
    { name: 'an HTTP request line, then EOF', chunks: [Buffer.from('GET / HTTP/1.1\r\n\r\n')], eof: true, codes: REFUSED },
    {
      // record header (handshake, TLS 1.0 record version, 512 bytes), ClientHello, TLS 1.2, random...
      name: 'a TLS ClientHello prefix',
      chunks: [Buffer.concat([Buffer.from('160301020001000001fc0303', 'hex'), bytes(32), Buffer.from('20', 'hex'), bytes(32)])],
      codes: REFUSED,
    },
    { name: 'an SSH banner', chunks: [Buffer.from('SSH-2.0-OpenSSH_9.6\r\n')], codes: REFUSED },
    { name: 'a 2^16-1 prefix alone', chunks: [Buffer.from(lengthPrefix(NOISE_MAX_FRAME))], codes: REFUSED },
    { name: 'a 2^16-1 prefix and 2^16-1 bytes', chunks: [framed(NOISE_MAX_FRAME)], codes: REFUSED },
    { name: 'a 1 KiB frame', chunks: [framed(MAX_HANDSHAKE_FRAME)], codes: REFUSED },
    { name: 'a 1 KiB + 1 frame', chunks: [framed(MAX_HANDSHAKE_FRAME + 1)], codes: REFUSED },
  ];
  for (const declared of [0, 1, 2, 47, 48, 49, MESSAGE_1_BYTES - 1, MESSAGE_1_BYTES + 1, 255, 256, 257]) {
    list.push({ name: `prefix ${declared} and as many random bytes`, chunks: [framed(declared)], codes: REFUSED });
  }
  list.push({ name: `prefix ${MESSAGE_1_BYTES} and random bytes (does not authenticate)`, chunks: [framed(MESSAGE_1_BYTES)], codes: REFUSED });
  for (const n of [2, 3, 57, 58, 300, 4096, 70_000]) {
    const random = bytes(n);
    // a random prefix could declare exactly MESSAGE_1_BYTES and then wait for the rest
    const codes = random.readUInt16BE(0) === MESSAGE_1_BYTES && n < 2 + MESSAGE_1_BYTES ? STALLED : REFUSED;
    list.push({ name: `${n} random bytes (seed ${SEED})`, chunks: [random], codes });
  }
  return list;
}

/** Feeds one input to a fresh responder and checks the contract; closes both ends whatever happens. */
async function run(input: Hostile): Promise<void> {
  const r = watchedResponder({ networkKey, limits: { handshakeTimeoutMs: DEADLINE_MS } });
  try {
    if (input.oneByteAtATime) r.ea.tap = byteByByte;
    for (const chunk of input.chunks) r.ea.write(chunk);
    if (input.eof) r.ea.end();
    const error = await r.result.then(() => null, (e: unknown) => e);
    assert.instance(error, SignetError, `${input.name}: rejects with a SignetError`);
    const code = (error as SignetError).code;
    assert.ok(input.codes.includes(code), `${input.name}: code ${code}, expected one of ${input.codes.join(', ')}`);
    await whenClosed(r.eb);
    assert.ok(r.eb.destroyed, `${input.name}: the duplex is closed`);
    assert.is(r.eb.bytesWritten, 0, `${input.name}: nothing written to the peer`);
    assert.is(r.state().dhCount, 0, `${input.name}: no DH`);
    assert.is(r.state().localEphemeral, undefined, `${input.name}: no ephemeral generated`);
    for (const e of LISTENED) assert.is(r.eb.listenerCount(e), 0, `${input.name}: a '${e}' listener left`);
  } finally {
    r.ea.destroy();
    r.eb.destroy();
  }
}

test('hostile corpus at the responder: a coded SignetError, nothing written, no DH, closed, nothing escapes', async () => {
  const escaped: unknown[] = [];
  const onEscape = (error: unknown): void => void escaped.push(error);
  process.on('unhandledRejection', onEscape);
  process.on('uncaughtException', onEscape);
  try {
    const inputs = await corpus();
    assert.ok(inputs.length >= 35, `${inputs.length} inputs`);
    await Promise.all(inputs.map(run));
    await turns(3); // anything emitted late (an 'error' after close, a rejection) surfaces now
    assert.equal(escaped, [], 'no unhandled rejection or uncaught error');
  } finally {
    process.off('unhandledRejection', onEscape);
    process.off('uncaughtException', onEscape);
  }
});

test.run();
