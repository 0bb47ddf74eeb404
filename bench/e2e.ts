// End to end, two processes on 127.0.0.1: a signet Node with LmdbStore writes N keys (12-character
// keys, 100-byte values) and another applies them through the secure channel, beside npm
// scuttlebutt (unsigned, plain TCP) and hypercore 11 (appends of 100 and of 1 block) on the same
// workload, and the signature ceilings of node:crypto and libsodium measured in the same run.
// Each round runs every scenario in fresh processes; ratios are taken within a round, then the
// median and range over rounds are printed. Quick mode (SIGNET_BENCH_QUICK=1): tiny N, one round.
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { KEY_AND_VALUE, type Command } from './lib/e2e-workload.ts';
import { QUICK, printTable } from './lib/table.ts';

const N = QUICK ? 2_000 : 50_000;
const SYNC_N = QUICK ? 5_000 : 100_000;
const ROUNDS = QUICK ? 1 : 3;
const CEILING_N = QUICK ? 2_000 : 20_000;
/** A scenario that has not finished by then is reported as failed (a hang, not a slow run). */
const DEADLINE_MS = 180_000;
/** The roles run compiled, as an installed package runs (dist/), not through tsx: the peak RSS
 *  figures are then what a user's process holds, without the TypeScript loader's own memory. */
const ROLES = compileRoles();
const networkKey = randomBytes(32).toString('base64');

type Report = Record<string, number | string>;

/** Compiles bench/lib/e2e-roles.ts and the sources it imports with tsc into node_modules/.cache
 *  (inside the checkout, so the compiled files resolve the same packages); returns its path. */
function compileRoles(): string {
  const root = fileURLToPath(new URL('..', import.meta.url));
  // SIGNET_E2E_CACHE names another folder there, so that two runs at once never compile into one.
  const out = `${root}node_modules/.cache/${process.env.SIGNET_E2E_CACHE ?? 'signet-e2e'}`;
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const flags = [
    '--outDir', out, '--rootDir', root, '--target', 'ES2022', '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--lib', 'ES2023',
    '--types', 'node', '--strict', '--skipLibCheck', '--allowImportingTsExtensions', '--rewriteRelativeImportExtensions', '--verbatimModuleSyntax',
    '--resolveJsonModule', '--noUncheckedIndexedAccess', `${root}bench/lib/e2e-roles.ts`,
  ];
  const r = spawnSync(process.execPath, [tsc, ...flags], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`tsc could not compile the e2e roles (exit ${r.status ?? r.signal})`);
  return `${out}/bench/lib/e2e-roles.js`;
}

/** One child process running one role, with a queue of the events it reported. */
class Peer {
  private readonly child: ChildProcess;
  private readonly events: Report[] = [];
  private readonly waiters: Array<() => void> = [];
  private exited: string | null = null;

  constructor(role: string) {
    this.child = fork(ROLES, [role], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (m) => {
      this.events.push(m as Report);
      this.waiters.splice(0).forEach((w) => w());
    });
    this.child.on('error', (err) => console.error(`e2e child ${role}: ${err.message}`));
    this.child.on('exit', (code, signal) => {
      this.exited = `exited (${code ?? signal})`;
      this.waiters.splice(0).forEach((w) => w());
    });
  }

  send(c: Command): void {
    this.child.send(c);
  }

  /** The next report named `event` (earlier reports of other names are kept). */
  async wait(event: string): Promise<Report> {
    const deadline = setTimeout(() => this.child.kill(), DEADLINE_MS);
    try {
      for (;;) {
        const i = this.events.findIndex((e) => e.event === event);
        if (i >= 0) return this.events.splice(i, 1)[0]!;
        if (this.exited) throw new Error(`waiting for '${event}': child ${this.exited}`);
        await new Promise<void>((r) => this.waiters.push(r));
      }
    } finally {
      clearTimeout(deadline);
    }
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((r) => this.child.once('exit', () => r()));
    // A role that already said all it had (the ceilings) may be closing its channel: a failed
    // send then only means it is on its way out, which the wait below covers.
    if (this.child.connected) this.child.send({ cmd: 'stop' } satisfies Command, () => {});
    const timer = setTimeout(() => this.child.kill(), 10_000);
    await gone;
    clearTimeout(timer);
  }
}

/** Starts `role` as a writer and a reader of `n` updates; `preload` writes before the reader starts. */
async function pair(role: string, n: number, options: { preload?: boolean; replica?: boolean; blocksPerAppend?: number } = {}) {
  const writer = new Peer(role);
  let reader: Peer | undefined;
  try {
    writer.send({ cmd: 'start', networkKey, expect: 0 });
    const w = await writer.wait('ready');
    const write = async () => {
      writer.send({ cmd: 'write', n, from: 0, blocksPerAppend: options.blocksPerAppend });
      return writer.wait('written');
    };
    const written = options.preload ? await write() : undefined;
    reader = new Peer(role);
    reader.send({ cmd: 'start', networkKey, seed: String(w.address), key: w.key as string | undefined, expect: n, replicaOf: options.replica ? String(w.id) : undefined });
    await reader.wait('ready');
    if (role === 'signet') await reader.wait('connected');
    const live = written ?? (await write());
    const done = await reader.wait('done');
    writer.send({ cmd: 'usage' });
    const wu = await writer.wait('usage');
    const ms = options.preload ? Number(done.ms) : Number(done.at) - Number(live.t0);
    return {
      rate: (n * 1000) / ms, ms,
      writerCpuUs: Number(wu.cpuUs) / n, readerCpuUs: Number(done.cpuUs) / n,
      wire: Number(wu.bytes) / n - KEY_AND_VALUE,
      writerRssMb: Number(wu.maxRssKb) / 1024, readerRssMb: Number(done.maxRssKb) / 1024,
      readerAnonMb: Number(done.peakAnonKb ?? 0) / 1024, readerFileMb: Number(done.peakFileKb ?? 0) / 1024,
    };
  } finally {
    await Promise.all([writer.stop(), reader?.stop()]);
  }
}

async function ceilings(): Promise<Record<string, number>> {
  const meter = new Peer('ceilings');
  try {
    meter.send({ cmd: 'ceilings', n: CEILING_N });
    const r = await meter.wait('ceilings');
    return Object.fromEntries(Object.entries(r).filter(([k]) => k !== 'event').map(([k, v]) => [k, Number(v)]));
  } finally {
    await meter.stop();
  }
}

type Sample = Awaited<ReturnType<typeof pair>>;
const rounds: Array<{ c: Record<string, number>; live: Sample; recv: Sample; sync: Sample; npm: Sample; hc100: Sample; hc1: Sample; load: number }> = [];
const load0 = loadavg()[0]!;
for (let r = 0; r < ROUNDS; r++) {
  const load = loadavg()[0]!;
  const c = await ceilings();
  const live = await pair('signet', N);
  const recv = await pair('signet', N, { preload: true });
  const sync = await pair('signet', SYNC_N, { preload: true, replica: true });
  const npm = await pair('scuttlebutt', N);
  const hc100 = await pair('hypercore', N, { blocksPerAppend: 100 });
  const hc1 = await pair('hypercore', QUICK ? N : N / 5, { blocksPerAppend: 1 });
  rounds.push({ c, live, recv, sync, npm, hc100, hc1, load });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const stat = (f: (r: (typeof rounds)[number]) => number, digits = 2): string => {
  const xs = rounds.map(f);
  const fmt = (x: number) => (Math.abs(x) >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(digits));
  return xs.length > 1 ? `${fmt(median(xs))} [${fmt(Math.min(...xs))}-${fmt(Math.max(...xs))}]` : fmt(xs[0]!);
};
const sodiumCeiling = (r: (typeof rounds)[number]) => r.c.sodiumVerify ?? NaN;

printTable(`Ceilings on this machine (${CEILING_N.toLocaleString('en-US')} operations; median [range] of ${ROUNDS} round(s))`, [
  { primitive: 'node:crypto Ed25519 sign, one thread', 'ops/s': stat((r) => r.c.nativeSign!) },
  { primitive: 'node:crypto Ed25519 verify, callback form (libuv pool, both cores)', 'ops/s': stat((r) => r.c.nativeVerify!) },
  { primitive: 'libsodium Ed25519 sign, one thread', 'ops/s': stat((r) => r.c.sodiumSign ?? NaN) },
  { primitive: 'libsodium Ed25519 verify, one worker per core', 'ops/s': stat(sodiumCeiling) },
]);

printTable(`Issue 14 goals: ${N.toLocaleString('en-US')} writes of 100-byte values, two processes on 127.0.0.1 (median [range] of ${ROUNDS} round(s))`, [
  { figure: 'end-to-end apply rate / node:crypto verify ceiling', value: stat((r) => r.live.rate / r.c.nativeVerify!), goal: '>= 0.8' },
  { figure: 'end-to-end apply rate / libsodium verify ceiling', value: stat((r) => r.live.rate / sodiumCeiling(r)), goal: '>= 0.6' },
  { figure: 'receiving side alone (sender pre-signed) / node:crypto verify ceiling', value: stat((r) => r.recv.rate / r.c.nativeVerify!), goal: '>= 0.9' },
  { figure: 'receiving side alone (sender pre-signed) / libsodium verify ceiling', value: stat((r) => r.recv.rate / sodiumCeiling(r)), goal: '-' },
  { figure: 'local write (set(), no store) / node:crypto sign ceiling', value: stat((r) => r.c.localSet! / r.c.nativeSign!), goal: '>= 0.8' },
  { figure: `peak RSS of a replica doing its initial sync of ${SYNC_N.toLocaleString('en-US')} keys, MB`, value: stat((r) => r.sync.readerRssMb, 0), goal: '< 200' },
  { figure: 'wire bytes per update beyond key and value, live', value: stat((r) => r.live.wire, 0), goal: '<= 112' },
  { figure: 'end-to-end rate / hypercore, appends of 100 blocks', value: stat((r) => r.live.rate / r.hc100.rate), goal: '>= 1.5' },
]);

const row = (what: string, f: (r: (typeof rounds)[number]) => Sample, note = '') => ({
  workload: what, 'updates/s': stat((r) => f(r).rate, 0), 'writer CPU us/update': stat((r) => f(r).writerCpuUs, 1),
  'reader CPU us/update': stat((r) => f(r).readerCpuUs, 1), 'wire B/update beyond key+value': stat((r) => f(r).wire, 0),
  'writer peak RSS MB': stat((r) => f(r).writerRssMb, 0), 'reader peak RSS MB': stat((r) => f(r).readerRssMb, 0), note,
});
printTable('The workloads side by side (wire bytes: TCP payload both directions, counted on the writer (its accepted socket); CPU: all threads of the process)', [
  row('signet live: Node + LmdbStore, secure channel, signed and verified', (r) => r.live),
  row('signet receiving alone (writer signed first, then the reader joined)', (r) => r.recv),
  row(`signet replica initial sync of ${SYNC_N.toLocaleString('en-US')} keys`, (r) => r.sync,
    `time ${stat((r) => r.sync.ms / 1000, 1)} s; reader RSS at its highest 50 ms sample: anonymous ${stat((r) => r.sync.readerAnonMb, 0)} MB, ` +
    `file-backed ${stat((r) => r.sync.readerFileMb, 0)} MB (the node binary and LMDB's mapped data file)`),
  row('npm scuttlebutt Model, unsigned, plain TCP', (r) => r.npm),
  row('hypercore 11, appends of 100 blocks (one signature per append)', (r) => r.hc100),
  row(`hypercore 11, appends of 1 block (${(QUICK ? N : N / 5).toLocaleString('en-US')} blocks)`, (r) => r.hc1),
]);
console.log(`\nload average (1 min) before each round: ${rounds.map((r) => r.load.toFixed(2)).join(', ')} (at start ${load0.toFixed(2)}; 2 cores)`);
