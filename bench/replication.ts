// Replication throughput: N signed updates from one Model to a fresh one over an in-memory
// stream pair, beside the native verify ceiling (node:crypto verify of the same messages,
// pool kept full) and npm scuttlebutt's unsigned Model on the same workload, in one run.
import { createRequire } from 'node:module';
import { Identity, Model } from '../src/index.ts';
import { verifyNative } from '../src/identity/backend-native.ts';
import { DOMAIN, domainBytes } from '../src/identity/signature.ts';
import { QUICK, printTable } from './lib/table.ts';

const N = QUICK ? 500 : 50_000;
const value = 'v'.repeat(64);

// -- signet: sign N updates on A, then time a fresh B syncing from A.
const a = new Model({ identity: Identity.generate(), dataset: 'bench' });
const t0 = performance.now();
for (let i = 0; i < N; i++) a.set(`key-${i}`, value);
const signMs = performance.now() - t0;
const history = a.history();

async function replicateSignet(): Promise<number> {
  const b = new Model({ identity: Identity.generate(), dataset: 'bench' });
  const as = a.createStream({ tail: false });
  const bs = b.createStream({ tail: false });
  const start = performance.now();
  const done = new Promise<void>((resolve) => bs.once('sync', () => resolve()));
  as.pipe(bs).pipe(as);
  await done;
  const ms = performance.now() - start;
  if (b.keys().length !== N) throw new Error(`replicated ${b.keys().length} of ${N}`);
  as.destroy();
  bs.destroy();
  b.dispose();
  return ms;
}

// -- ceiling: verify the same N signatures with node:crypto, as many in flight as the pool takes.
async function verifyCeiling(): Promise<number> {
  const messages = history.map((u) => domainBytes(DOMAIN.update, u.payload));
  const start = performance.now();
  const IN_FLIGHT = 1024;
  let next = 0;
  let ok = 0;
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (next < history.length) {
      const i = next++;
      if (await verifyNative(history[i]!.signature, messages[i]!, history[i]!.publicKey)) ok++;
    }
  }));
  if (ok !== N) throw new Error('ceiling verification failed');
  return performance.now() - start;
}

// -- npm scuttlebutt: the same workload, unsigned (what signet replaces).
function replicateNpm(): Promise<number> {
  const require = createRequire(import.meta.url);
  const NpmModel = require('scuttlebutt/model');
  const na = new NpmModel();
  for (let i = 0; i < N; i++) na.set(`key-${i}`, value);
  const nb = new NpmModel();
  const as = na.createStream();
  const bs = nb.createStream();
  const start = performance.now();
  return new Promise((resolve) => {
    bs.on('sync', () => {
      const ms = performance.now() - start;
      if (Object.keys(nb.toJSON()).length !== N) throw new Error('npm scuttlebutt did not replicate everything');
      resolve(ms);
    });
    as.pipe(bs).pipe(as);
  });
}

// Paired rounds: each round measures the ceiling and then signet back to back, and the ratio
// is taken within the round, so load on this shared machine affects both sides alike.
const rounds = QUICK ? 1 : 5;
const pairs: Array<{ ceilingMs: number; signetMs: number; ratio: number }> = [];
for (let i = 0; i < rounds; i++) {
  const ceilingMs = await verifyCeiling();
  const signetMs = await replicateSignet();
  pairs.push({ ceilingMs, signetMs, ratio: ceilingMs / signetMs });
}
pairs.sort((x, y) => x.ratio - y.ratio);
const median = pairs[Math.floor(pairs.length / 2)]!;
let npmMs = Infinity;
for (let i = 0; i < (QUICK ? 1 : 3); i++) npmMs = Math.min(npmMs, await replicateNpm());
const rate = (ms: number) => (N * 1000) / ms;
printTable(`Replication of ${N.toLocaleString('en-US')} updates, in-memory pair (median of ${rounds} paired rounds)`, [
  { what: 'native verify ceiling (same messages, pool full)', 'updates/s': rate(median.ceilingMs), 'ratio to ceiling': 1 },
  { what: 'signet Model -> Model (signed, verified)', 'updates/s': rate(median.signetMs), 'ratio to ceiling': median.ratio },
  { what: 'npm scuttlebutt Model (unsigned, unverified; best of 3)', 'updates/s': rate(npmMs), 'ratio to ceiling': median.ceilingMs / npmMs },
  { what: 'signet local set (sign + apply)', 'updates/s': rate(signMs), 'ratio to ceiling': median.ceilingMs / signMs },
]);
console.log(`ratio to ceiling per round: ${pairs.map((p) => p.ratio.toFixed(3)).join(', ')} (min ${pairs[0]!.ratio.toFixed(3)}, max ${pairs[pairs.length - 1]!.ratio.toFixed(3)})`);
a.dispose();
