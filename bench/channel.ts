// Secure channel throughput: handshakes per second, and transport MB/s for 300 B and 64 KiB
// messages beside the raw node:crypto ChaCha20-Poly1305 seal+open rate measured in the same run.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { Duplex } from 'node:stream';
import { Identity } from '../src/identity/identity.ts';
import { secureChannel, type SecureChannel } from '../src/channel/index.ts';
import { QUICK, opsPerSecond, printTable } from './lib/table.ts';

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

async function connect(): Promise<[SecureChannel, SecureChannel]> {
  const [ea, eb] = pair();
  return Promise.all([
    secureChannel(ea, { identity: alice, networkKey, initiator: true }),
    secureChannel(eb, { identity: bob, networkKey, initiator: false }),
  ]);
}

/** Payload MB/s through a connected pair (encrypt on one end, decrypt on the other). */
async function channelRate(size: number, totalBytes: number): Promise<number> {
  const [a, b] = await connect();
  const message = randomBytes(size);
  const count = Math.max(1, Math.floor(totalBytes / size));
  let received = 0;
  const done = new Promise<void>((resolve) => b.on('data', () => ++received === count && resolve()));
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    if (!a.write(message)) await new Promise<void>((r) => a.once('drain', () => r()));
  }
  await done;
  const seconds = (performance.now() - start) / 1000;
  a.destroy();
  b.destroy();
  return (count * size) / seconds / 1e6;
}

/** Raw node:crypto ChaCha20-Poly1305: seal and open each message with a fresh cipher object. */
function rawRate(size: number, totalBytes: number): number {
  const key = randomBytes(32);
  const message = randomBytes(size);
  const nonce = Buffer.alloc(12);
  const count = Math.max(1, Math.floor(totalBytes / size));
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    nonce.writeBigUInt64LE(BigInt(i), 4);
    const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
    const ct = c.update(message);
    c.final();
    const tag = c.getAuthTag();
    const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
    d.setAuthTag(tag);
    d.update(ct);
    d.final();
  }
  return (count * size) / ((performance.now() - start) / 1000) / 1e6;
}

const handshakes = await opsPerSecond(async () => {
  const [a, b] = await connect();
  a.destroy();
  b.destroy();
}, QUICK ? 100 : 2000);

const rows: Array<Record<string, string | number>> = [
  { workload: 'handshake (both ends, one process)', channel: `${Math.round(handshakes)} /s`, 'raw chacha20-poly1305 seal+open': '', ratio: '' },
];
// Paired rounds: raw then channel back to back, the ratio taken within each round (this
// machine is shared and noisy); the row shows the median round.
const rounds = QUICK ? 1 : 5;
const spreads: string[] = [];
for (const size of [300, 64 * 1024]) {
  const total = QUICK ? 2 * 1024 * 1024 : size < 1024 ? 16 * 1024 * 1024 : 256 * 1024 * 1024;
  rawRate(size, total / 8); // warm up
  await channelRate(size, total / 8);
  const pairs: Array<{ raw: number; channel: number; ratio: number }> = [];
  for (let i = 0; i < rounds; i++) {
    const raw = rawRate(size, total);
    const channel = await channelRate(size, total);
    pairs.push({ raw, channel, ratio: channel / raw });
  }
  pairs.sort((x, y) => x.ratio - y.ratio);
  const median = pairs[Math.floor(pairs.length / 2)]!;
  const label = size === 300 ? '300 B' : '64 KiB';
  spreads.push(`${label}: ${pairs.map((p) => p.ratio.toFixed(2)).join(', ')}`);
  rows.push({
    workload: `transport ${label} messages`,
    channel: `${median.channel.toFixed(0)} MB/s`,
    'raw chacha20-poly1305 seal+open': `${median.raw.toFixed(0)} MB/s`,
    ratio: median.ratio.toFixed(2),
  });
}
printTable(`secure channel (Noise_XXpsk0_25519_ChaChaPoly_SHA256, in-memory pair, payload bytes; median of ${rounds} paired rounds)`, rows);
console.log(`channel/raw ratio per round: ${spreads.join('; ')}`);
