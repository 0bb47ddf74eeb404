// Signatures and envelopes: sign and verify per second on the native (OpenSSL) and noble
// backends, side by side in one run, and the native/noble ratio.
import { Identity, signUpdate, openUpdate, parseUpdate } from '../src/index.ts';
import { verifySignature, verifySignatureSync } from '../src/identity/signature.ts';
import { signNoble } from '../src/identity/backend-noble.ts';
import { exportSecretKey } from '../src/identity/identity.ts';
import { QUICK, opsPerSecond, printTable } from './lib/table.ts';

const id = Identity.generate();
const seed = exportSecretKey(id);
const msg = new Uint8Array(256).fill(7);
const sig = id.sign(msg);
const update = signUpdate(id, { dataset: 'bench', version: 1, body: ['set', 'key', 'x'.repeat(200)] });

/** Verifications in flight at once for the async figures (enough to fill the libuv pool). */
const IN_FLIGHT = 64;
async function verifyBatch(backend: 'native' | 'noble'): Promise<void> {
  const all: Promise<boolean>[] = [];
  for (let i = 0; i < IN_FLIGHT; i++) all.push(verifySignature(sig, msg, id.publicKey, { backend }));
  await Promise.all(all);
}
async function openBatch(): Promise<void> {
  const all: Promise<unknown>[] = [];
  for (let i = 0; i < IN_FLIGHT; i++) all.push(openUpdate(update.bytes));
  await Promise.all(all);
}

const ms = QUICK ? 30 : 1500;
const rows: Array<Record<string, string | number>> = [];
const pair = async (op: string, native: () => unknown, noble: () => unknown, batch = 1) => {
  const n = await opsPerSecond(native, ms, batch);
  const b = await opsPerSecond(noble, ms, batch);
  rows.push({ operation: op, 'native ops/s': n, 'noble ops/s': b, 'native/noble': n / b });
};

await pair('sign (256 B)', () => id.sign(msg), () => signNoble(seed, msg));
await pair('verify sync (256 B)', () => verifySignatureSync(sig, msg, id.publicKey), () => verifySignatureSync(sig, msg, id.publicKey, { backend: 'noble' }));
await pair(`verify async, ${IN_FLIGHT} in flight`, () => verifyBatch('native'), () => verifyBatch('noble'), IN_FLIGHT);
printTable('Ed25519 backends', rows);

const parse = await opsPerSecond(() => parseUpdate(update.bytes), ms);
const open = await opsPerSecond(openBatch, ms, IN_FLIGHT);
const sign = await opsPerSecond(() => signUpdate(id, { dataset: 'bench', version: 1, body: ['set', 'key', 'x'.repeat(200)] }), ms);
printTable(`Envelopes (${update.bytes.length} B update)`, [
  { operation: 'signUpdate', 'ops/s': sign },
  { operation: 'parseUpdate (shape only)', 'ops/s': parse },
  { operation: `openUpdate (parse + native verify, ${IN_FLIGHT} in flight)`, 'ops/s': open },
]);
