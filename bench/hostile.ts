// What hostile peers cost a node: each attack of issue 7, sent through the public API, with the
// outcome, the memory still held (heap + array buffers, after a full GC), the longest event-loop
// stall and the time. Inputs are built before the baseline, so `held` is what the node keeps.
// `npm run bench hostile`; quick mode shrinks every input.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Identity, Model, owner, signUpdate } from '../src/index.ts';
import { encodeHello, encodeUpdates } from '../src/replication/messages.ts';
import { QUICK, printTable } from './lib/table.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const held = () => {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};
const id = (n: number) => Identity.fromSecretKey(new Uint8Array(32).fill(n));
const T = Date.now() * 1000;
const MB = 1e6;
const scale = QUICK ? 0.05 : 1;
const rows: Array<Record<string, string | number>> = [];

/** Runs one attack: `send` delivers the bytes and resolves with the outcome once the node settled. */
async function measure(name: string, wire: number, send: () => Promise<string>): Promise<void> {
  const before = held();
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  await new Promise((r) => setTimeout(r, 20)); // one recorded interval before the work
  const start = performance.now();
  const outcome = await send();
  const ms = performance.now() - start;
  loop.disable();
  const after = held();
  rows.push({ attack: name, 'wire MB': wire / MB, outcome, 'held MB': Math.max(0, after - before) / MB, 'max stall ms': loop.max / 1e6, 'time ms': ms });
}

async function stream(model: Model, bytes: Buffer): Promise<string> {
  const s = model.createStream();
  const closed = new Promise<void>((r) => s.once('close', () => r()));
  s.write(bytes);
  await closed;
  return `cut ${s.closeReason?.reason ?? 'none'}`;
}

function framed(body: Uint8Array): Buffer {
  const out = Buffer.alloc(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  out.set(body, 4);
  return out;
}

// 1. a message of tiny CBOR items (empty byte strings) typed as updates, before any hello
{
  const n = Math.floor(15 * MB * scale);
  const body = new Uint8Array(n).fill(0x40);
  body.set([0x82, 0x01, 0x9a], 0);
  new DataView(body.buffer).setUint32(3, n - 7);
  const input = framed(body);
  const m = new Model({ identity: id(1) });
  await m.ready;
  await measure('tiny items before hello', n, () => stream(m, input));
  m.dispose();
}
// 2. a hello whose meta is millions of empty byte strings
{
  const n = Math.floor(16 * MB * scale);
  const peer = id(2);
  const hello = encodeHello({ dataset: 'default', id: peer.id, digest: new Map(), meta: null, readable: true, writable: true });
  const head = hello.subarray(4, hello.length - 2); // up to meta (null) and flags
  const meta = new Uint8Array(n).fill(0x40);
  meta.set([0x9a], 0);
  new DataView(meta.buffer).setUint32(1, n - 5);
  const input = framed(Buffer.concat([head, meta, Uint8Array.of(0x03)]));
  const m = new Model({ identity: id(3) });
  await m.ready;
  await measure('hello with a 16 MB meta', n, () => stream(m, input));
  m.dispose();
}
// 3. forged updates (claiming one source, signed by another) in one write
{
  const victim = id(4);
  const forger = id(5);
  const count = Math.max(2, Math.floor(500 * scale));
  const forge = (v: number) => {
    const f = Buffer.from(signUpdate(forger, { dataset: 'default', version: T - 1e9 + v, body: ['set', 'k', 'x'.repeat(60_000)] }).bytes);
    f.set(victim.publicKey, f.indexOf(Buffer.from(forger.publicKey)));
    return f;
  };
  const msgs = [encodeHello({ dataset: 'default', id: victim.id, digest: new Map(), meta: null, readable: true, writable: true })];
  for (let i = 0; i < count; i += 250) msgs.push(encodeUpdates(Array.from({ length: Math.min(250, count - i) }, (_, j) => forge(i + j))));
  const all = Buffer.concat(msgs);
  const m = new Model({ identity: id(6) });
  await m.ready;
  await measure('forged updates in one write', all.length, async () => `${await stream(m, all)}, applied ${m.clock.get(victim.id) ?? 0}`);
  m.dispose();
}
// 4. a legitimate member writing ~60 KB values under its own prefix (owner policy)
{
  const w = id(7);
  const count = Math.max(2, Math.floor(360 * scale));
  const updates = Array.from({ length: count }, (_, i) => signUpdate(w, { dataset: 'default', version: T - 1e9 + i, body: ['set', `${w.id}/k${i}`, 'x'.repeat(60_000)] }).bytes);
  const m = new Model({ identity: id(8), policy: owner() });
  await m.ready;
  const wire = updates.reduce((n, u) => n + u.length, 0);
  await measure('owner policy: one member, 60 KB values', wire, async () => {
    let applied = 0;
    for (const u of updates) if ((await m.ingest(u)).status === 'applied') applied++;
    const kept = m.keys().reduce((n, k) => n + m.updateOf(k)!.bytes.length, 0);
    return `applied ${applied}, envelopes kept = ${(kept / wire).toFixed(2)}x wire`;
  });
  m.dispose();
}
// 5. a source minting equivocations at one version
{
  const s = id(9);
  const count = Math.floor(40_000 * scale);
  const updates = Array.from({ length: count }, (_, i) => signUpdate(s, { dataset: 'default', version: T - 1e9, body: ['set', `k${i}`, i] }).bytes);
  const m = new Model({ identity: id(10) });
  await m.ready;
  await measure(`${count} equivocations at one version`, updates.reduce((n, u) => n + u.length, 0), async () => {
    for (const u of updates) await m.ingest(u);
    return `evidence ${m.equivocations().length}, quarantined ${m.isQuarantined(s.id)}`;
  });
  m.dispose();
}

printTable('What a hostile peer costs one node (issue 7 attacks; held = heap + array buffers still referenced)', rows);
