// Mesh simulation: the real Node (src/mesh/node.ts) on a MemoryNetwork with a virtual clock and
// scheduler, so hundreds of nodes run reproducibly in one process: join, connections, the steady
// membership cost, and how far (hops) and at what cost (bytes) one write spreads.
// `npm run bench:mesh-sim` (N=100 and 300) or `npx tsx bench/mesh-sim.ts [--quick] [--sizes=100,1000]
// [--verbose]`; bench/mesh.ts may call simulate().
import './lib/no-sodium.ts'; // first: node:crypto only, patched below to follow the seed
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { getHeapStatistics } from 'node:v8';
import { CLOSE_TIMEOUT_MS, HandshakeLimiter, Identity, MemoryNetwork, Model, Node, limits, shortId, type NodeId, type Transport } from '../src/index.ts';
import type { NodeTimers } from '../src/mesh/node.ts';
import { Prng } from '../test/helpers/prng.ts';
import { QUICK as QUICK_ENV, printTable } from './lib/table.ts';

/** Options of {@link simulate}. Every one but `n` and `seed` has a default. */
export interface SimulateOptions {
  /** Nodes in the mesh. */
  n: number;
  /** Seed of everything random: identities, bootstrap seeds, every Node's `random`, writers. */
  seed: number;
  /** Each node but the first is given this many distinct random earlier nodes as seeds. Default 3. */
  bootstrapSeeds?: number;
  /** Node gossip round (ms). Default the Node's, GOSSIP_INTERVAL_MS (1 s). */
  gossipIntervalMs?: number;
  /** Node heartbeat (ms). Default the Node's, HEARTBEAT_INTERVAL_MS (5 s). */
  heartbeatIntervalMs?: number;
  /** Virtual seconds to wait at most for every node to know every other alive. Default 120. */
  joinDeadlineS?: number;
  /** Virtual seconds after the join before the steady window (join churn dies down). Default 20. */
  warmupS?: number;
  /** Virtual seconds of the steady window. Default 10 (two heartbeats). */
  steadyS?: number;
  /** Writes measured one after another, each by a random node. Default 3. */
  writes?: number;
  /** Signature backend of the datasets and membership. Default 'native'. */
  backend?: 'native' | 'noble';
  /** How node:crypto's callback verify runs: 'inline' (synchronously, its callback on a microtask:
   *  the run depends on the seed alone) or 'pool' (the libuv pool, as in production; the settle
   *  waits for it). Default 'inline'. Handshakes always verify through node:crypto. */
  verify?: 'inline' | 'pool';
  /** Real seconds after which the join, warm-up and steady window stop early (see `truncated`);
   *  the writes still run. Default no limit. */
  realBudgetS?: number;
  /** Progress lines (real and virtual time). Default none. */
  log?: (line: string) => void;
}

/** One write: how far, how fast, at what cost. */
export interface WriteFigures {
  writer: number;
  /** Nodes (besides the writer) that applied it. */
  applied: number;
  /** Virtual ms from the write until the last node applied it. */
  ms: number;
  /** `ms` in gossip intervals. */
  rounds: number;
  /** Deepest node in the tree of first arrivals (each node's parent: the peer it first applied the write from). */
  depth: number;
  /** Mean depth over the other nodes. */
  meanDepth: number;
  /** Hops from the writer to the farthest node over the connection graph (the least depth possible). */
  eccentricity: number;
  /** Size of the signed envelope written (a 100-byte value). */
  envelopeBytes: number;
  /** Real ms the simulation took to carry it everywhere. */
  realMs: number;
  /** Network bytes from the write until every node had it, / N; null if timers ran meanwhile
   *  (the count would include other traffic). */
  bytesPerNode: number | null;
}

/** What {@link simulate} measured. Times are virtual unless named real or CPU. */
export interface SimulationResult {
  n: number;
  seed: number;
  bootstrap: string;
  backend: 'native' | 'noble';
  verify: 'inline' | 'pool';
  /** Virtual seconds from the first start until every node judged every other alive, or null. */
  joinS: number | null;
  /** When the last node started (nodes start spread over one heartbeat interval). */
  lastStartS: number;
  /** After the join phase: fewest members any node judged alive, and nodes that knew all N - 1. */
  minAlive: number;
  completeNodes: number;
  /** Connections per node after the steady window. */
  connections: { median: number; min: number; max: number };
  /** Hops between the two farthest nodes of the connection graph (Infinity if it is cut). */
  diameter: number;
  /** Length of the steady window actually run (virtual s). */
  steadyS: number;
  /** Steady window: remote membership records applied (= signatures verified) per node per second. */
  memberUpdatesPerNodeS: number;
  /** Steady window: membership records received again (old_data: no verification) per node per second. */
  memberDuplicatesPerNodeS: number;
  /** Steady window: node:crypto verifications of any kind per node per second (handshakes included;
   *  with the noble backend only handshakes). */
  cryptoVerifiesPerNodeS: number;
  /** Steady window, per node per second: network bytes, dials, and peer:up + peer:down events. */
  backgroundBytesPerNodeS: number;
  dialsPerNodeS: number;
  churnPerNodeS: number;
  writes: WriteFigures[];
  /** Dials over the whole run, per node. */
  totalDialsPerNode: number;
  /** Library timers that fired on the virtual clock (not the Node's own rounds and heartbeats), by
   *  setter and delay: `closeChannel 2000 ms` is a close that had to be forced. */
  libraryTimers: Record<string, number>;
  /** Phases cut short by the real-time budget. */
  truncated: string[];
  /** What should not happen: bans, refused updates, errors, timer throws, unhandled rejections. */
  anomalies: string[];
  /** Digest of the virtual figures (all but real times) and of every node's connections: the same
   *  seed gives the same digest. */
  digest: string;
  virtualS: number;
  realS: number;
  cpuS: number;
}

const EPOCH_US = Date.UTC(2026, 0, 1) * 1000;
const NETWORK_KEY = new Uint8Array(32).fill(7);
const PORT = 7420;
const VALUE = 'v'.repeat(100);

// ---- virtual scheduler ---------------------------------------------------------------------------

interface Timer { due: number; seq: number; callback: () => void; cancelled: boolean }

/** Virtual time in ms and the Node timers on it: a callback runs only when the clock is advanced
 *  past its due time; timers due at one instant run in the order they were set. */
class VirtualScheduler {
  now = 0;
  readonly errors: unknown[] = [];
  private seq = 0;
  private readonly heap: Timer[] = [];
  readonly timers: NodeTimers = {
    setTimeout: (callback, ms) => this.add(callback, ms),
    clearTimeout: (handle) => this.cancel(handle),
  };

  /** Earliest due time of a live timer, or Infinity. */
  nextDue(): number {
    while (this.heap.length > 0 && this.heap[0]!.cancelled) this.pop();
    return this.heap[0]?.due ?? Infinity;
  }

  /** Moves the clock to the earliest due time and runs every timer due then. */
  fireNext(): void {
    const due = this.nextDue();
    if (due === Infinity) return;
    this.now = due;
    while (this.nextDue() === due) {
      const t = this.pop();
      try {
        t.callback();
      } catch (error) {
        this.errors.push(error);
      }
    }
  }

  add(callback: () => void, ms: number): Timer {
    const t: Timer = { due: this.now + Math.max(1, ms), seq: this.seq++, callback, cancelled: false };
    this.push(t);
    return t;
  }

  cancel(handle: unknown): void {
    if (handle && typeof handle === 'object') (handle as Timer).cancelled = true;
  }

  private before(a: Timer, b: Timer): boolean {
    return a.due < b.due || (a.due === b.due && a.seq < b.seq);
  }

  private push(t: Timer): void {
    const h = this.heap;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): Timer {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.before(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

// ---- the library's own timers on the virtual clock ------------------------------------------------

const SRC_DIR = fileURLToPath(new URL('../src/', import.meta.url));

/** A Timeout look-alike for a virtual timer (the library calls unref/refresh on its timers). */
class VirtualTimeout {
  constructor(private readonly sched: VirtualScheduler, public timer: Timer, private readonly ms: number, private readonly run: () => void) {}
  unref(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  hasRef(): boolean {
    return true;
  }
  refresh(): this {
    this.sched.cancel(this.timer);
    this.timer = this.sched.add(this.run, this.ms);
    return this;
  }
  [Symbol.toPrimitive](): number {
    return this.timer.seq;
  }
}

/**
 * Runs every setTimeout the library (src/) sets during the simulation on the virtual clock: the
 * ones a Node takes through its `timers` option are virtual already, but the channel's close
 * deadline (CLOSE_TIMEOUT_MS), the replication hello deadline, handshake deadlines and deferrals
 * call the global setTimeout. On real time they would fire at moments that depend on how fast this
 * machine runs the simulation, and the run would no longer depend on its seed alone. Timers set by
 * anything else (Node.js internals, this bench) stay real. `restore()` puts the globals back.
 */
function virtualizeLibraryTimers(sched: VirtualScheduler): { fired: Map<string, number>; restore(): void } {
  const realSetTimeout = globalThis.setTimeout;
  const realClearTimeout = globalThis.clearTimeout;
  /** Timers that fired, by the library function that set them and their delay. */
  const fired = new Map<string, number>();
  globalThis.setTimeout = function (callback: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) {
    const setter = typeof callback === 'function' ? (new Error().stack ?? '').split('\n').find((line) => line.includes(SRC_DIR)) : undefined;
    if (setter === undefined) return realSetTimeout(callback, ms, ...args);
    const delay = Math.max(1, Number(ms) || 0);
    const name = `${/at (?:async )?([\w.<>]+) \(/.exec(setter)?.[1] ?? 'anonymous'} ${delay} ms`;
    const run = (): void => {
      fired.set(name, (fired.get(name) ?? 0) + 1);
      callback(...args);
    };
    return new VirtualTimeout(sched, sched.add(run, delay), delay, run);
  } as typeof setTimeout;
  globalThis.clearTimeout = function (handle?: unknown) {
    if (handle instanceof VirtualTimeout) sched.cancel(handle.timer);
    else realClearTimeout(handle as NodeJS.Timeout);
  } as typeof clearTimeout;
  return {
    fired,
    restore(): void {
      globalThis.setTimeout = realSetTimeout;
      globalThis.clearTimeout = realClearTimeout;
    },
  };
}

// ---- node:crypto verify instrument ---------------------------------------------------------------

/** Wraps node:crypto's verify (the native backend, and every handshake, use its callback form) to
 *  count calls and know when none is in flight; 'inline' runs it synchronously, so the order of
 *  verdicts, and so the whole run, depends on the seed alone. Restored by `restore()`. */
function instrumentVerify(mode: 'inline' | 'pool') {
  const original = crypto.verify;
  const state = { calls: 0, inflight: 0, wake: null as (() => void) | null };
  const wrapped = function (this: unknown, ...args: unknown[]): unknown {
    state.calls++;
    const callback = args[4];
    if (typeof callback !== 'function') return (original as (...a: unknown[]) => unknown)(...args);
    const [algorithm, data, key, signature] = args;
    if (mode === 'inline') {
      let error: unknown = null;
      let ok = false;
      try {
        ok = (original as (...a: unknown[]) => boolean)(algorithm, data, key, signature);
      } catch (e) {
        error = e;
      }
      queueMicrotask(() => (callback as (e: unknown, ok: boolean) => void)(error, ok));
      return undefined;
    }
    state.inflight++;
    return (original as (...a: unknown[]) => unknown)(algorithm, data, key, signature, (error: unknown, ok: boolean) => {
      state.inflight--;
      if (state.inflight === 0 && state.wake) {
        const wake = state.wake;
        state.wake = null;
        wake();
      }
      (callback as (e: unknown, ok: boolean) => void)(error, ok);
    });
  } as typeof crypto.verify;
  crypto.verify = wrapped;
  syncBuiltinESMExports();
  return {
    state,
    /** Resolves once no verification is in flight. */
    drained: (): Promise<void> => (state.inflight === 0 ? Promise.resolve() : new Promise<void>((r) => (state.wake = r))),
    restore(): void {
      crypto.verify = original;
      syncBuiltinESMExports();
    },
  };
}

// ---- helpers -------------------------------------------------------------------------------------

const hostOf = (i: number): string => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
const median = (xs: number[]): number => (xs.length === 0 ? NaN : [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!);
const immediate = (): Promise<void> => new Promise((r) => setImmediate(r));
const realTimeout = globalThis.setTimeout;

/** Hops from `from` to every node over `adjacency` (Infinity where unreachable). */
function bfs(adjacency: number[][], from: number): number[] {
  const dist = new Array<number>(adjacency.length).fill(Infinity);
  dist[from] = 0;
  const queue = [from];
  for (let head = 0; head < queue.length; head++) {
    const u = queue[head]!;
    for (const v of adjacency[u]!) {
      if (dist[v] === Infinity) {
        dist[v] = dist[u]! + 1;
        queue.push(v);
      }
    }
  }
  return dist;
}

/** FNV-1a over a string, as hex: a short fingerprint of a run. */
function fnv(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

// ---- the simulation ------------------------------------------------------------------------------

/**
 * Runs N real Nodes on a MemoryNetwork in virtual time. Node `i` listens on `10.x.y.z:7420`, is
 * seeded with `bootstrapSeeds` random earlier nodes and starts at `i * heartbeat / N` virtual ms,
 * so heartbeats and rounds are spread as on a real network. The clock jumps from one timer's due
 * time to the next; after each, the event loop settles (setImmediate turns until no byte moves and
 * no verification is in flight). The network has no latency: whatever a timer sets off finishes at
 * that virtual instant, so the hops of a write are read from the peer each node first applied it
 * from, not from time.
 *
 * Phases: join (until every node knows every other alive), warm-up, a steady window, then
 * `writes` single writes by random nodes. Past `realBudgetS` of real time, the join and steady
 * windows stop early and `truncated` says what was cut.
 *
 * While it runs it replaces node:crypto's `verify` and the global `setTimeout`/`clearTimeout`
 * (for callers in src/ only; both restored at the end): run nothing else of the library in this
 * process meanwhile, no Node over TCP in particular.
 */
export async function simulate(options: SimulateOptions): Promise<SimulationResult> {
  const n = options.n;
  const b = options.bootstrapSeeds ?? 3;
  const gossipMs = options.gossipIntervalMs ?? limits.GOSSIP_INTERVAL_MS;
  const heartbeatMs = options.heartbeatIntervalMs ?? limits.HEARTBEAT_INTERVAL_MS;
  const backend = options.backend ?? 'native';
  const verifyMode = options.verify ?? 'inline';
  const budgetMs = (options.realBudgetS ?? Infinity) * 1000;
  const log = options.log ?? (() => {});
  const realStart = performance.now();
  const cpuStart = process.cpuUsage();
  const overBudget = (): boolean => performance.now() - realStart > budgetMs;
  const elapsed = (): string => {
    const cpu = process.cpuUsage(cpuStart);
    return `${((performance.now() - realStart) / 1000).toFixed(1)}s real (${((cpu.user + cpu.system) / 1e6).toFixed(1)}s CPU)`;
  };
  const rng = new Prng(options.seed);
  const sched = new VirtualScheduler();
  const net = new MemoryNetwork();
  const verifier = instrumentVerify(verifyMode);
  const libraryTimers = virtualizeLibraryTimers(sched);
  const anomalies: string[] = [];
  const truncated: string[] = [];
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);

  const settle = async (): Promise<void> => {
    let quiet = 0;
    let bytes = net.bytes;
    while (quiet < 2) {
      await verifier.drained();
      await immediate();
      if (net.bytes === bytes && verifier.state.inflight === 0) quiet++;
      else {
        quiet = 0;
        bytes = net.bytes;
      }
    }
  };
  const advanceTo = async (t: number): Promise<void> => {
    while (sched.nextDue() <= t) {
      sched.fireNext();
      await settle();
    }
    sched.now = Math.max(sched.now, t);
  };

  const counts = { memberUpdates: 0, memberOld: 0, dials: 0, up: 0, down: 0 };
  const trouble: string[] = [];
  // Members each node judges alive, from its own events, and when all N - 1 were for every node.
  const alive: number[] = new Array<number>(n).fill(0);
  let complete = 0;
  let joinedAt: number | null = null;
  const aliveChange = (i: number, delta: number): void => {
    if (alive[i] === n - 1) complete--;
    alive[i]! += delta;
    if (alive[i] === n - 1) complete++;
    if (complete === n && joinedAt === null) joinedAt = sched.now;
  };
  const nodes: Node[] = [];
  const models: Model[] = [];
  const index = new Map<string, number>(); // short id (stream names) -> node index
  const idIndex = new Map<NodeId, number>();
  const starts: Promise<void>[] = [];
  let result: SimulationResult | undefined;
  try {
    for (let i = 0; i < n; i++) {
      const host = hostOf(i + 1);
      const identity = Identity.fromSecretKey(rng.bytes(32));
      const seeds = new Set<number>();
      while (seeds.size < Math.min(b, i)) seeds.add(rng.int(i));
      const nodeRng = new Prng((options.seed * 1_000_003 + i * 7919) >>> 0);
      const transport = net.transport(host);
      const counted: Transport = {
        createServer: (onConnection) => transport.createServer(onConnection),
        connect: (toHost, port, signal) => {
          counts.dials++;
          return transport.connect(toHost, port, signal);
        },
      };
      const node = new Node({
        identity, networkKey: NETWORK_KEY, listen: `${host}:${PORT}`, transport: counted,
        seeds: [...seeds].sort((x, y) => x - y).map((s) => `${hostOf(s + 1)}:${PORT}`),
        gossipIntervalMs: gossipMs, heartbeatIntervalMs: heartbeatMs,
        now: () => sched.now, wallClock: () => EPOCH_US + Math.round(sched.now * 1000), timers: sched.timers, random: () => nodeRng.next(),
        backend,
        // Real time must decide nothing: no idle or keepalive timers, an hour to handshake.
        channelLimits: { handshakeTimeoutMs: 3_600_000, idleTimeoutMs: 0, keepaliveMs: 0 },
        // Every simulated node has an address of its own, as on a real network, so the per-address
        // defaults hold; the total is sized for a seed that many nodes dial at one virtual instant.
        maxConnectionsPerAddress: limits.MAX_CONNECTIONS_PER_ADDRESS,
        handshakeLimiter: new HandshakeLimiter({ perAddress: limits.MAX_PENDING_HANDSHAKES_PER_ADDRESS, total: Math.max(limits.MAX_PENDING_HANDSHAKES, n) }),
      });
      const model = node.dataset('sim', Model);
      nodes.push(node);
      models.push(model);
      if (index.has(shortId(node.id))) throw new Error(`seed ${options.seed}: two node ids share a short id; pick another seed`);
      index.set(shortId(node.id), i);
      idIndex.set(node.id, i);
      node.membersDataset.on('update', (u) => void (u.source !== node.id && counts.memberUpdates++));
      node.membersDataset.on('old_data', () => void counts.memberOld++);
      node.on('member:new', () => aliveChange(i, 1));
      node.on('member:alive', () => aliveChange(i, 1));
      node.on('member:dead', () => aliveChange(i, -1));
      node.on('peer:up', () => void counts.up++);
      node.on('peer:down', () => void counts.down++);
      node.on('peer:banned', (ban) => void trouble.push(`node ${i} banned ${ban.id ? `node ${idIndex.get(ban.id)}` : ban.address}: ${ban.reason}`));
      for (const [name, m] of [['members', node.membersDataset], ['sim', model]] as const) {
        m.on('invalid', (r) => void trouble.push(`node ${i} ${name}: ${r.reason} ${r.detail}`));
        m.on('error', (e) => void trouble.push(`node ${i} ${name}: ${e.message}`));
      }
      sched.timers.setTimeout(() => {
        starts.push(node.start().catch((e: Error) => void anomalies.push(`node ${i} start: ${e.message}`)));
      }, Math.floor((i * heartbeatMs) / n));
    }
    const connectionCounts = (): number[] => nodes.map((x) => x.peers().filter((p) => p.state === 'connected').length);

    // -- join: until every node judges every other alive
    const joinDeadline = (options.joinDeadlineS ?? 120) * 1000;
    while (joinedAt === null && sched.now < joinDeadline) {
      if (overBudget()) {
        truncated.push(`join stopped at ${sched.now / 1000} virtual s (real-time budget)`);
        break;
      }
      await advanceTo(Math.floor(sched.now / 1000) * 1000 + 1000);
      log(`N=${n} seed ${options.seed}: t=${(sched.now / 1000).toFixed(3)}s virtual, ${elapsed()}: ${complete} of ${n} nodes know all ${n - 1} others alive; fewest ${Math.min(...alive)}; median connections ${median(connectionCounts())}; ${verifier.state.calls} verifications, ${counts.memberUpdates} member records applied, ${(net.bytes / 2 ** 20).toFixed(0)} MiB sent; heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB`);
    }
    if (joinedAt === null && truncated.length === 0) anomalies.push(`membership did not converge within ${joinDeadline / 1000} virtual s: fewest members known alive ${Math.min(...alive)} of ${n - 1}`);
    const known = { minAlive: Math.min(...alive), complete };
    await Promise.all(starts);

    // -- warm-up, then the steady window, a virtual second at a time
    const phase = async (seconds: number, name: string, each?: (second: number) => void): Promise<number> => {
      const from = sched.now;
      for (let s = 1; s <= seconds; s++) {
        if (overBudget()) {
          truncated.push(`${name} cut to ${s - 1} of ${seconds} virtual s (real-time budget)`);
          break;
        }
        await advanceTo(from + s * 1000);
        each?.(s);
      }
      return (sched.now - from) / 1000;
    };
    await phase(options.warmupS ?? 20, 'warm-up');
    const s0 = { ...counts, bytes: net.bytes, verifies: verifier.state.calls };
    let c0 = { ...counts, bytes: net.bytes };
    const steadyS = await phase(options.steadyS ?? 10, 'steady window', () => {
      const per = (x: number, y: number): string => ((x - y) / n).toFixed(2);
      log(`N=${n} seed ${options.seed}: steady t=${sched.now / 1000}s virtual, ${elapsed()}: per node ${per(counts.memberUpdates, c0.memberUpdates)} member updates, ${per(counts.dials, c0.dials)} dials, ${per(counts.up + counts.down, c0.up + c0.down)} peer up/down, ${((net.bytes - c0.bytes) / n / 1000).toFixed(1)} kB`);
      c0 = { ...counts, bytes: net.bytes };
    });
    const perNodeS = (x: number): number => (steadyS > 0 ? x / n / steadyS : NaN);
    const steady = {
      steadyS,
      memberUpdatesPerNodeS: perNodeS(counts.memberUpdates - s0.memberUpdates),
      memberDuplicatesPerNodeS: perNodeS(counts.memberOld - s0.memberOld),
      cryptoVerifiesPerNodeS: perNodeS(verifier.state.calls - s0.verifies),
      backgroundBytesPerNodeS: perNodeS(net.bytes - s0.bytes),
      dialsPerNodeS: perNodeS(counts.dials - s0.dials),
      churnPerNodeS: perNodeS(counts.up - s0.up + counts.down - s0.down),
    };

    // -- the connection graph now
    const adjacency: number[][] = nodes.map(() => []);
    nodes.forEach((node, i) => {
      for (const p of node.peers()) {
        const j = p.state === 'connected' && p.id ? idIndex.get(p.id) : undefined;
        if (j === undefined) continue;
        if (!adjacency[i]!.includes(j)) adjacency[i]!.push(j);
        if (!adjacency[j]!.includes(i)) adjacency[j]!.push(i);
      }
    });
    const degrees = connectionCounts();
    let diameter = 0;
    for (let i = 0; i < n; i++) diameter = Math.max(diameter, ...bfs(adjacency, i));

    // -- writes, each by a random node, a few virtual ms apart
    const writes: WriteFigures[] = [];
    for (let w = 0; w < (options.writes ?? 3); w++) {
      await advanceTo(sched.now + 1 + rng.int(100));
      writes.push(await measureWrite(w, rng.int(n)));
    }

    async function measureWrite(w: number, writer: number): Promise<WriteFigures> {
      const key = `w${w}`;
      const arrived = new Map<number, { at: number; parent: number | undefined }>();
      const off: Array<() => void> = [];
      models.forEach((m, i) => {
        if (i === writer) return;
        const on = (_u: unknown, origin: unknown): void => {
          if (arrived.has(i) || m.get(key) === undefined) return;
          // The stream an update came in on is named `<dataset>@<short id of the peer>` (Node.session).
          const name = (origin as { name?: string } | null)?.name;
          arrived.set(i, { at: sched.now, parent: name === undefined ? undefined : index.get(name.slice(name.indexOf('@') + 1)) });
        };
        m.on('update', on);
        off.push(() => m.off('update', on));
      });
      const t0 = sched.now;
      const bytes0 = net.bytes;
      const real0 = performance.now();
      const envelopeBytes = models[writer]!.set(key, VALUE).bytes.length;
      await settle();
      const bytes = net.bytes - bytes0;
      const atOnce = arrived.size === n - 1; // no timer ran in between: the bytes are this write's alone
      while (arrived.size < n - 1 && sched.nextDue() <= t0 + 60_000 && !overBudget()) {
        sched.fireNext();
        await settle();
      }
      const realMs = performance.now() - real0;
      off.forEach((f) => f());
      const depthOf = new Map<number, number>([[writer, 0]]);
      const depth = (i: number, hops = 0): number => {
        const d0 = depthOf.get(i);
        if (d0 !== undefined) return d0;
        const parent = arrived.get(i)?.parent;
        const d = parent === undefined || hops > n ? NaN : depth(parent, hops + 1) + 1;
        depthOf.set(i, d);
        return d;
      };
      const depths = [...arrived.keys()].map((i) => depth(i));
      if (depths.some((d) => Number.isNaN(d))) anomalies.push(`write ${w}: a node applied it from no known peer`);
      if (arrived.size < n - 1) anomalies.push(`write ${w} by node ${writer}: ${n - 1 - arrived.size} nodes had not applied it ${((sched.now - t0) / 1000).toFixed(1)} virtual s later`);
      const ms = arrived.size === 0 ? NaN : Math.max(...[...arrived.values()].map((a) => a.at)) - t0;
      return {
        writer, applied: arrived.size, ms, rounds: ms / gossipMs, depth: Math.max(0, ...depths),
        meanDepth: depths.reduce((sum, d) => sum + d, 0) / Math.max(1, depths.length),
        eccentricity: Math.max(...bfs(adjacency, writer)), envelopeBytes, realMs, bytesPerNode: atOnce ? bytes / n : null,
      };
    }

    if (trouble.length > 0) anomalies.push(`${trouble.length} bans, refused updates or errors; first: ${trouble.slice(0, 5).join('; ')}`);
    if (sched.errors.length > 0) anomalies.push(`${sched.errors.length} timer callbacks threw; first: ${String(sched.errors[0])}`);
    const figures = {
      n, seed: options.seed, bootstrap: `${b} random earlier nodes as seeds`, backend, verify: verifyMode,
      joinS: joinedAt === null ? null : joinedAt / 1000, lastStartS: Math.floor(((n - 1) * heartbeatMs) / n) / 1000,
      minAlive: known.minAlive, completeNodes: known.complete,
      connections: { median: median(degrees), min: Math.min(...degrees), max: Math.max(...degrees) }, diameter,
      ...steady, writes, totalDialsPerNode: counts.dials / n,
    };
    const virtualOnly = { ...figures, writes: writes.map(({ realMs: _, ...w }) => w) };
    const digest = fnv(JSON.stringify(virtualOnly) + JSON.stringify(adjacency.map((a) => [...a].sort((x, y) => x - y))));
    result = { ...figures, libraryTimers: {}, truncated, anomalies, digest, virtualS: sched.now / 1000, realS: 0, cpuS: 0 };
  } finally {
    // stop() waits for channels to close, and a close may wait for a (virtual) deadline: run the clock.
    let stopped = false;
    const stopping = Promise.all(nodes.map((node) => node.stop())).finally(() => void (stopped = true));
    while (!stopped) {
      await settle();
      if (!stopped && sched.nextDue() < Infinity) sched.fireNext();
      else if (!stopped) await Promise.race([stopping, new Promise((r) => realTimeout(r, 10))]);
    }
    for (let i = 0; i < 3; i++) await immediate();
    if (result) result.libraryTimers = Object.fromEntries([...libraryTimers.fired].sort());
    libraryTimers.restore();
    verifier.restore();
    process.off('unhandledRejection', onUnhandled);
    if (unhandled.length > 0) anomalies.push(`${unhandled.length} unhandled rejections; first: ${String(unhandled[0])}`);
  }
  const cpu = process.cpuUsage(cpuStart);
  return { ...result!, realS: (performance.now() - realStart) / 1000, cpuS: (cpu.user + cpu.system) / 1e6 };
}

// ---- the bench -----------------------------------------------------------------------------------

interface Plan { n: number; seeds: number[]; warmupS: number; steadyS: number; writes: number }

/** The heartbeat interval (ms) of a Node in a mesh of `n` live members, with the defaults. */
const heartbeatAt = (n: number): number =>
  Math.min(limits.HEARTBEAT_INTERVAL_MS * Math.max(1, Math.ceil(n / limits.HEARTBEAT_MEMBERS)), limits.MAX_HEARTBEAT_INTERVAL_MS);

/** Sizes run by default (`--sizes=` overrides). */
const DEFAULT_SIZES = [100, 300];

const spread = (xs: number[], digits = 0): string => {
  const ys = xs.filter((x) => Number.isFinite(x));
  if (ys.length === 0) return '-';
  const f = (x: number): string => x.toFixed(digits);
  const lo = Math.min(...ys);
  const hi = Math.max(...ys);
  return lo === hi ? f(lo) : `${f(median(ys))} (${f(lo)}-${f(hi)})`;
};

async function main(): Promise<void> {
  const quick = QUICK_ENV || process.argv.includes('--quick');
  const verbose = process.argv.includes('--verbose');
  const sizesArg = process.argv.find((a) => a.startsWith('--sizes='));
  const sizes = sizesArg ? sizesArg.slice('--sizes='.length).split(',').map(Number) : quick ? [100] : DEFAULT_SIZES;
  if (sizes.some((n) => !Number.isInteger(n) || n < 2)) throw new RangeError('"--sizes" expected node counts >= 2, e.g. --sizes=100,1000');
  // Every node holds every member's records: about 5 MiB of heap per node at N=1000.
  if (Math.max(...sizes) >= 500 && getHeapStatistics().heap_size_limit < 12 * 2 ** 30 && !process.env.SIGNET_SIM_REEXEC) {
    const child = spawnSync(process.execPath, ['--max-old-space-size=16384', ...process.execArgv, ...process.argv.slice(1)], {
      stdio: 'inherit', env: { ...process.env, SIGNET_SIM_REEXEC: '1' },
    });
    process.exit(child.status ?? 1);
  }
  const plans: Plan[] = sizes.map((n): Plan => {
    if (quick) return { n, seeds: [1], warmupS: 5, steadyS: 5, writes: 2 };
    if (n <= 200) return { n, seeds: [1, 2, 3, 4, 5], warmupS: 20, steadyS: 10, writes: 3 };
    // Past a few hundred nodes a virtual second of join costs minutes (see the note printed
    // below): one seed, no warm-up, one heartbeat interval of steady state at that size.
    // At N=1000 the heartbeat interval is 50 s; a 10 s window still holds ~200 heartbeats per node.
    return { n, seeds: [1], warmupS: 0, steadyS: Math.min(heartbeatAt(n) / 1000, 10), writes: 3 };
  });
  const log = (line: string, n: number): void => void ((verbose || n >= 300) && console.error(line));
  const results = new Map<number, SimulationResult[]>();
  let determinism = '';
  const t0 = performance.now();
  for (const plan of plans) {
    const list: SimulationResult[] = [];
    const run = (seed: number): Promise<SimulationResult> =>
      simulate({ n: plan.n, seed, warmupS: plan.warmupS, steadyS: plan.steadyS, writes: plan.writes, log: (line) => log(line, plan.n) });
    for (const seed of plan.seeds) {
      const r = await run(seed);
      console.error(`N=${plan.n} seed ${seed}: ${r.realS.toFixed(0)} s real (${r.cpuS.toFixed(0)} s CPU) for ${r.virtualS.toFixed(1)} virtual s, digest ${r.digest}`);
      list.push(r);
    }
    results.set(plan.n, list);
    // The determinism check runs the first size again: skipped past 300 nodes, where one run takes an hour.
    if (!quick && plan === plans[0] && plan.n <= 300) {
      const again = await run(plan.seeds[0]!);
      const same = again.digest === list[0]!.digest;
      determinism = `N=${plan.n} seed ${plan.seeds[0]} run again in the same process: digest ${list[0]!.digest}, then ${again.digest}: ${same ? 'identical figures and connection graphs' : 'DIFFERENT'}`;
      if (!same) process.exitCode = 1;
    }
  }

  const writeRows: Array<Record<string, string | number>> = [];
  const meshRows: Array<Record<string, string | number>> = [];
  for (const plan of plans) {
    const rs = results.get(plan.n)!;
    const ws = rs.flatMap((r) => r.writes);
    const n = plan.n;
    const log3 = Math.log(n) / Math.log(3);
    writeRows.push({
      N: n, 'seeds x writes': `${rs.length} x ${plan.writes}`, 'nodes reached': spread(ws.map((w) => w.applied + 1)),
      'virtual ms to all': spread(ws.map((w) => w.ms)), 'gossip rounds': spread(ws.map((w) => w.rounds), 2),
      'hops (depth)': spread(ws.map((w) => w.depth)), 'mean hops': spread(ws.map((w) => w.meanDepth), 2),
      'writer eccentricity': spread(ws.map((w) => w.eccentricity)), 'graph diameter': spread(rs.map((r) => r.diameter)),
      'log3 N': log3, 'log3 N + 3': log3 + 3, '1.5 x (log3 N + 3)': 1.5 * (log3 + 3), 'log2 N + ln N': Math.log2(n) + Math.log(n),
      'B/node/update': spread(ws.flatMap((w) => (w.bytesPerNode === null ? [] : [w.bytesPerNode]))),
    });
    meshRows.push({
      N: n, 'join s (after last start)': spread(rs.map((r) => (r.joinS === null ? NaN : r.joinS - r.lastStartS)), 2),
      'fewest alive known': spread(rs.map((r) => r.minAlive)),
      'connections/node': `${spread(rs.map((r) => r.connections.median))} [${Math.min(...rs.map((r) => r.connections.min))}-${Math.max(...rs.map((r) => r.connections.max))}]`,
      'window s': spread(rs.map((r) => r.steadyS)),
      'member verif./node/s': spread(rs.map((r) => r.memberUpdatesPerNodeS), 1), '(N-1)/heartbeat': (n - 1) / (heartbeatAt(n) / 1000),
      'dup. records/node/s': spread(rs.map((r) => r.memberDuplicatesPerNodeS), 0),
      'kB/node/s': spread(rs.map((r) => r.backgroundBytesPerNodeS / 1000), 1), 'dials/node/s': spread(rs.map((r) => r.dialsPerNodeS), 3),
      'peer up+down/node/s': spread(rs.map((r) => r.churnPerNodeS), 3),
      'forced closes/run': spread(rs.map((r) => r.libraryTimers[`closeChannel ${CLOSE_TIMEOUT_MS} ms`] ?? 0)),
      'real s/run': spread(rs.map((r) => r.realS)),
    });
  }
  const envelope = [...results.values()].flat().flatMap((r) => r.writes)[0]?.envelopeBytes ?? 0;
  printTable(
    'One write until every node applied it. The real Node on a MemoryNetwork (no latency) in virtual time: gossip 1 s, ' +
      'heartbeat 5 s, maxPeers 8; node i seeded with 3 random nodes < i; nodes start one by one over the first heartbeat interval. ' +
      'An applied update is forwarded at once over every live connection, so a write reaches every node at the virtual instant it ' +
      'is made (0 rounds); hops = depth of the tree of first arrivals (the peer each node first applied it from); eccentricity = ' +
      `the fewest hops that could reach the farthest node. B/node/update = all bytes on the network for one ${envelope} B envelope ` +
      '(100 B value), / N. Cells: median (min-max) over seeds x writes',
    writeRows,
  );
  printTable(
    'Join and steady state. join = from the last start until every node judged every other alive; connections = median ' +
      '[min-max] after the steady window; member verif. = remote membership records applied (each signature-verified once) per ' +
      'node per virtual second in the steady window (after the warm-up); dup. = copies of records already held (not verified); ' +
      'kB = all network bytes; forced closes = connections whose close waited for CLOSE_TIMEOUT_MS (virtual)',
    meshRows,
  );
  console.log('\nsignature backend: native (node:crypto, ~60 µs per verification here; noble takes ~1 ms), with its callback run inline ' +
    'on the main thread by the bench so that a run depends on its seed alone; the library\'s own setTimeout deadlines run on the virtual clock too');
  console.log('bootstrap: node i is seeded with 3 distinct random nodes among 0..i-1; node 0 with none');
  if (quick) console.log('quick mode: N=100, one seed, 5 s warm-up and steady window: a smoke test of the simulation, not a measurement');
  for (const plan of plans) {
    if (plan.n > 200) {
      console.log(`N=${plan.n}: one seed, no warm-up (join churn may not have died down), a 5 s steady window: simulating a virtual ` +
        'second of membership costs ~1 s of real time at N=100, ~8 s at N=200, ~30 s at N=300 (every node receives every heartbeat ' +
        'from ~all of its connections); at N=500 the join took 11 minutes of real time and each steady virtual second ~5 minutes; ' +
        'at N=1000 (--sizes=1000) the join (2 million membership records verified) took 1 h 57 min, and the first virtual ' +
        'seconds after it, while heartbeat intervals stretch to 50 s, run at minutes each, so N=1000 is not in the default run');
    }
  }
  if (determinism) console.log(`determinism: ${determinism}`);
  for (const plan of plans) {
    for (const r of results.get(plan.n)!) {
      for (const t of r.truncated) console.log(`N=${plan.n} seed ${r.seed}: ${t}`);
      for (const a of r.anomalies) console.log(`N=${plan.n} seed ${r.seed}: ANOMALY ${a}`);
    }
  }
  console.log(`total ${((performance.now() - t0) / 1000).toFixed(0)} s real`);
  if ([...results.values()].flat().some((r) => r.anomalies.length > 0)) process.exitCode = 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
