// Secure channel: handshakes/s of signet beside @hyperswarm/secret-stream (hypercore's Noise XX on
// libsodium) in paired rounds, and the per-frame cost of the transport for 300 B and 64 KiB
// messages with the libsodium primitives and with the node:crypto fallback, beside the raw
// ChaCha20-Poly1305 seal+open of each measured in the same run.
//
// Both ends of every connection run in this process over an in-memory duplex pair (one for each
// library), so a handshake's figure is the CPU of both sides. The machine is shared: rounds are
// paired (signet then secret-stream, order alternating) and the ratio is taken within a round;
// the table shows the median round and the range. The node:crypto fallback's handshakes are
// measured in a child process started with SIGNET_NO_SODIUM=1 (the whole fallback: X25519,
// ChaCha20-Poly1305, SHA-256 and Ed25519 on node:crypto), so that its code paths do not share
// this process's JIT state with the paired rounds.
//
// Usage: npx tsx bench/channel.ts   (SIGNET_BENCH_QUICK=1: a few seconds, numbers not meaningful)
import { spawn } from 'node:child_process';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Duplex } from 'node:stream';
import { Identity } from '../src/identity/identity.ts';
import { secureChannel, type SecureChannel } from '../src/channel/index.ts';
import { NODE_PRIMITIVES, SODIUM_PRIMITIVES, type NoisePrimitives } from '../src/channel/primitives.ts';
import { sodium } from '../src/util/sodium.ts';
import { QUICK, printTable } from './lib/table.ts';

/** An in-memory socket pair: what one end writes, the other reads (asynchronously, in order). */
class End extends Duplex {
  peer!: End;
  override _read(): void {}
  override _write(chunk: Buffer, _e: BufferEncoding, cb: (error?: Error | null) => void): void {
    process.nextTick(() => {
      this.peer.push(chunk);
      cb();
    });
  }
  override _final(cb: () => void): void {
    process.nextTick(() => {
      this.peer.push(null);
      cb();
    });
  }
}
function pair(): [End, End] {
  const a = new End();
  const b = new End();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

const alice = Identity.generate();
const bob = Identity.generate();
const networkKey = randomBytes(32);

/** Connects a pair; `primitives` picks the set through the channel's test hook (default: the channel's own). */
async function connect(primitives?: NoisePrimitives): Promise<[SecureChannel, SecureChannel]> {
  const [ea, eb] = pair();
  const testing = primitives ? { primitives } : undefined;
  return Promise.all([
    secureChannel(ea, { identity: alice, networkKey, initiator: true, testing }),
    secureChannel(eb, { identity: bob, networkKey, initiator: false, testing }),
  ]);
}

// @hyperswarm/secret-stream is CommonJS without types; a dev dependency for this bench only.
interface SecretStreamLike {
  rawStream: { pipe<T>(destination: T): T };
  opened: Promise<boolean>;
  destroy(): void;
}
type SecretStreamClass = (new (isInitiator: boolean, rawStream: null, options: { keyPair: unknown }) => SecretStreamLike) & { keyPair(): unknown };
const SecretStream = createRequire(import.meta.url)('@hyperswarm/secret-stream') as SecretStreamClass;
// Each side keeps its key pair across handshakes, as signet keeps its identity and process static key.
const ssKeys = [SecretStream.keyPair(), SecretStream.keyPair()] as const;

async function secretStreamHandshake(): Promise<void> {
  const a = new SecretStream(true, null, { keyPair: ssKeys[0] });
  const b = new SecretStream(false, null, { keyPair: ssKeys[1] });
  a.rawStream.pipe(b.rawStream).pipe(a.rawStream);
  const [x, y] = await withDeadline(Promise.all([a.opened, b.opened]), 'secret-stream handshake');
  if (!x || !y) throw new Error('secret-stream handshake failed');
  a.destroy();
  b.destroy();
}

/** A bench that stalls fails instead (secret-stream has no handshake deadline of its own). */
async function withDeadline<T>(promise: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not complete in ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

async function signetHandshake(primitives?: NoisePrimitives): Promise<void> {
  const [a, b] = await connect(primitives);
  a.destroy();
  b.destroy();
}

/** Handshakes per second over `count` handshakes run one after another. */
async function handshakeRate(fn: () => Promise<void>, count: number): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < count; i++) await fn();
  return count / ((performance.now() - start) / 1000);
}

/** Median and range of a list of numbers. */
function spread(values: number[]): { median: number; min: number; max: number } {
  const sorted = [...values].sort((x, y) => x - y);
  return { median: sorted[Math.floor(sorted.length / 2)]!, min: sorted[0]!, max: sorted[sorted.length - 1]! };
}

const fmtRange = (s: { median: number; min: number; max: number }, digits: number): string =>
  `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}-${s.max.toFixed(digits)})`;

// ---- handshakes ---------------------------------------------------------------------------

const HANDSHAKES = QUICK ? 40 : 400; // per library per round
const ROUNDS = QUICK ? 3 : 9;
/** Set in the child process that measures the node:crypto fallback (with SIGNET_NO_SODIUM=1). */
const FALLBACK_CHILD = 'SIGNET_BENCH_CHANNEL_FALLBACK';

if (process.env[FALLBACK_CHILD] === '1') {
  if (sodium() !== null) throw new Error(`${FALLBACK_CHILD} needs SIGNET_NO_SODIUM=1`);
  await handshakeRate(() => signetHandshake(), HANDSHAKES / 4); // warm up
  const rates: number[] = [];
  for (let round = 0; round < ROUNDS; round++) rates.push(await handshakeRate(() => signetHandshake(), HANDSHAKES / 2));
  process.stdout.write(`${JSON.stringify(rates)}\n`);
  process.exit(0);
}

/** Handshakes/s per round of the node:crypto fallback, from a child process (this file, SIGNET_NO_SODIUM=1). */
function fallbackRates(): Promise<number[]> {
  return withDeadline(new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url)], {
      env: { ...process.env, SIGNET_NO_SODIUM: '1', [FALLBACK_CHILD]: '1' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as number[]) : reject(new Error(`fallback child exited ${code}`))));
  }), 'the node:crypto fallback child', 300_000);
}

await handshakeRate(() => signetHandshake(), HANDSHAKES / 4); // warm up
await handshakeRate(secretStreamHandshake, HANDSHAKES / 4);
const signetRates: number[] = [];
const ssRates: number[] = [];
const ratios: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  let signet: number;
  let ss: number;
  if (round % 2 === 0) {
    signet = await handshakeRate(() => signetHandshake(), HANDSHAKES);
    ss = await handshakeRate(secretStreamHandshake, HANDSHAKES);
  } else {
    ss = await handshakeRate(secretStreamHandshake, HANDSHAKES);
    signet = await handshakeRate(() => signetHandshake(), HANDSHAKES);
  }
  signetRates.push(signet);
  ssRates.push(ss);
  ratios.push(signet / ss);
  process.stderr.write(`round ${round + 1}/${ROUNDS}: signet ${signet.toFixed(0)}/s, secret-stream ${ss.toFixed(0)}/s\n`);
}
const nodeRates = SODIUM_PRIMITIVES ? await fallbackRates() : [];
const ratio = spread(ratios);
const handshakeRows: Array<Record<string, string | number>> = [
  {
    implementation: `signet (${sodium() ? 'libsodium' : 'node:crypto'} primitives)`,
    'handshakes/s, median (range)': fmtRange(spread(signetRates), 0),
    'ratio to secret-stream, median (range)': fmtRange(ratio, 2),
  },
  {
    implementation: '@hyperswarm/secret-stream 6.9.2 (Noise XX, libsodium)',
    'handshakes/s, median (range)': fmtRange(spread(ssRates), 0),
    'ratio to secret-stream, median (range)': '1',
  },
];
if (nodeRates.length > 0) {
  handshakeRows.splice(1, 0, {
    implementation: 'signet (node:crypto fallback, SIGNET_NO_SODIUM=1, own process)',
    'handshakes/s, median (range)': fmtRange(spread(nodeRates), 0),
    'ratio to secret-stream, median (range)': '',
  });
}
printTable(
  `secure-channel handshakes, both ends in one process over in-memory pairs (${HANDSHAKES} handshakes per library per round, ${ROUNDS} paired rounds; ratio within each round)`,
  handshakeRows,
);

// ---- frames -------------------------------------------------------------------------------

/** µs per message through a connected pair (encrypt on one end, decrypt on the other), one process. */
async function channelCost(size: number, count: number, primitives: NoisePrimitives): Promise<number> {
  const [a, b] = await connect(primitives);
  const message = randomBytes(size);
  let received = 0;
  const done = new Promise<void>((resolve) => b.on('data', () => ++received === count && resolve()));
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    if (!a.write(message)) await withDeadline(new Promise<void>((r) => a.once('drain', () => r())), 'drain');
  }
  await withDeadline(done, `${count} messages of ${size} B`, 60_000);
  const us = ((performance.now() - start) * 1000) / count;
  a.destroy();
  b.destroy();
  return us;
}

/** µs per raw ChaCha20-Poly1305 seal+open of `size` bytes (node: a fresh cipher object each). */
function rawCost(size: number, count: number, primitives: NoisePrimitives): number {
  const key = randomBytes(32);
  const message = randomBytes(size);
  const nonce = Buffer.alloc(12);
  const sealed = Buffer.alloc(size + 16);
  const start = performance.now();
  if (primitives.name === 'sodium') {
    const na = sodium()!;
    const opened = Buffer.alloc(size);
    for (let i = 0; i < count; i++) {
      nonce.writeUInt32LE(i, 4);
      na.crypto_aead_chacha20poly1305_ietf_encrypt(sealed, message, null, null, nonce, key);
      na.crypto_aead_chacha20poly1305_ietf_decrypt(opened, null, sealed, null, nonce, key);
    }
  } else {
    for (let i = 0; i < count; i++) {
      nonce.writeUInt32LE(i, 4);
      const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
      const ct = c.update(message);
      c.final();
      const tag = c.getAuthTag();
      const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
      d.setAuthTag(tag);
      d.update(ct);
      d.final();
    }
  }
  return ((performance.now() - start) * 1000) / count;
}

const sets = [SODIUM_PRIMITIVES, NODE_PRIMITIVES].filter((p): p is NoisePrimitives => p !== null);
const FRAME_ROUNDS = QUICK ? 1 : 5;
const frameRows: Array<Record<string, string | number>> = [];
for (const size of [300, 64 * 1024]) {
  const count = QUICK ? (size < 1024 ? 2000 : 60) : size < 1024 ? 40_000 : 2000;
  for (const set of sets) {
    await channelCost(size, Math.ceil(count / 8), set); // warm up
    rawCost(size, Math.ceil(count / 8), set);
    const channel: number[] = [];
    const raw: number[] = [];
    for (let i = 0; i < FRAME_ROUNDS; i++) {
      channel.push(await channelCost(size, count, set));
      raw.push(rawCost(size, count, set));
    }
    const c = spread(channel);
    frameRows.push({
      message: size === 300 ? '300 B' : '64 KiB',
      primitives: set.name === 'sodium' ? 'libsodium' : 'node:crypto',
      'channel µs/message, median (range)': fmtRange(c, 1),
      'channel MB/s': ((size / c.median) * 1e6) / 1e6,
      'raw seal+open µs (median)': spread(raw).median.toFixed(1),
    });
  }
}
printTable(
  `secure-channel transport, one message written on one end and read on the other, one process (${FRAME_ROUNDS} rounds; a 64 KiB message is two frames)`,
  frameRows,
);
