// Mesh over loopback TCP: N Nodes (10, 30) in one process join through one seed; then how long one
// write takes to reach every node, what it costs on the wire, and the steady membership load.
// `npm run bench:mesh`; quick mode (SIGNET_BENCH_QUICK=1) runs N=10 only, one cluster.
import { randomBytes } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { HandshakeLimiter, Identity, Model, Node } from '../src/index.ts';
import { QUICK, printTable } from './lib/table.ts';

/** N, and how many clusters of N nodes (each joined from scratch) to measure. */
const SIZES: Array<[n: number, clusters: number]> = QUICK ? [[10, 1]] : [[10, 5], [30, 3]];
const WRITES = QUICK ? 2 : 4;
// The Node defaults (GOSSIP_INTERVAL_MS, HEARTBEAT_INTERVAL_MS), so the costs are what users get.
const GOSSIP_MS = 1000;
const HEARTBEAT_MS = 5000;
/** Steady-state window, after the join and before the writes. */
const STEADY_MS = QUICK ? 2000 : 10_000;
/** A write starts after this long without a membership update applied anywhere. */
const QUIET_MS = 300;
/** After the last node applied a write, bytes are still counted this long (forwards in flight). */
const SETTLE_MS = 200;
/** With the defaults, 30 nodes through one seed took 30-75 s to join: the seed drops newcomers
 *  while its inbound surplus is full, and the peers it trims each round redial it at once. */
const JOIN_DEADLINE_MS = QUICK ? 30_000 : 180_000;
const WRITE_DEADLINE_MS = 30_000;
const networkKey = randomBytes(32);
const value = 'v'.repeat(100);

// Wire bytes: every connection has both ends in this process, and exactly one of them was
// accepted by a listener, so an accepted socket's bytesRead + bytesWritten is every TCP payload
// byte (Noise frames, mux, replication) that crossed that connection, both ways, counted once.
const accepted = new Set<Socket>();
const onAccepted = (message: unknown): void => void accepted.add((message as { socket: Socket }).socket);
subscribe('net.server.socket', onAccepted);
const socketBytes = (s: Socket): number => s.bytesRead + (s.bytesWritten ?? 0);
/** Bytes so far on every connection open now; `since(snapshot)` adds what those carried since. */
const snapshot = (): Map<Socket, number> => new Map([...accepted].map((s) => [s, socketBytes(s)]));
const since = (snap: Map<Socket, number>): number => [...snap].reduce((n, [s, b]) => n + socketBytes(s) - b, 0);
const wireBytes = (): number => [...accepted].reduce((n, s) => n + socketBytes(s), 0);

/** Membership updates applied and peer changes, on every node. `last`: the latest membership update. */
const activity = { members: 0, remoteMembers: 0, peers: 0, last: 0 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => (xs.length === 0 ? NaN : [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!);
/** A number for the table, or '-' when there was nothing to measure. */
const cell = (x: number): number | string => (Number.isNaN(x) ? '-' : x);
const range = (xs: number[], digits = 0) => (xs.length === 0 ? '-' : `${Math.min(...xs).toFixed(digits)}-${Math.max(...xs).toFixed(digits)}`);

/** Resolves once `ready()` holds, re-checked on the listed events; rejects at the deadline. */
function until(what: string, ready: () => boolean, sources: Array<[EventEmitter, string]>, ms: number): Promise<void> {
  if (ready()) return Promise.resolve();
  const off: Array<() => void> = [];
  let timer: NodeJS.Timeout | undefined;
  return new Promise<void>((resolve, reject) => {
    const check = (): void => void (ready() && resolve());
    for (const [emitter, event] of sources) {
      emitter.on(event, check);
      off.push(() => emitter.off(event, check));
    }
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  }).finally(() => {
    clearTimeout(timer);
    off.forEach((f) => f());
  });
}

/** Waits until no membership update was applied for QUIET_MS (false if that never came within 10 s). */
async function quiet(): Promise<boolean> {
  const end = performance.now() + 10_000;
  for (;;) {
    const idle = performance.now() - activity.last;
    if (idle >= QUIET_MS) return true;
    if (performance.now() > end) return false;
    await sleep(QUIET_MS - idle);
  }
}

interface Sample { ms: number; bytesPerNode: number | null; missing: number }
interface Result { joinMs: number[]; samples: Sample[]; memberRate: number[]; bgBytes: number[]; churn: number[]; degree: number[]; newConnections: number[]; failures: string[]; envelope: number }

/** One cluster of `n` nodes: join, a steady window, WRITES writes. Every node is stopped in the end. */
async function cluster(n: number, c: number, out: Result): Promise<void> {
  const nodes: Node[] = [];
  const models: Model[] = [];
  const make = (seeds: string[]): void => {
    const node = new Node({
      identity: Identity.generate(), networkKey, listen: '127.0.0.1:0', seeds, gossipIntervalMs: GOSSIP_MS, heartbeatIntervalMs: HEARTBEAT_MS,
      maxConnectionsPerAddress: 1000, handshakeLimiter: new HandshakeLimiter({ perAddress: 1000 }),
    });
    nodes.push(node);
    models.push(node.dataset('bench', Model));
    node.membersDataset.on('update', (u) => {
      activity.members++;
      if (u.source !== node.id) activity.remoteMembers++;
      activity.last = performance.now();
    });
    for (const e of ['peer:up', 'peer:down'] as const) node.on(e, () => void activity.peers++);
  };
  try {
    make([]);
    await nodes[0]!.start();
    for (let i = 1; i < n; i++) make([nodes[0]!.address()!]);
    const joinStart = performance.now();
    await Promise.all(nodes.slice(1).map((node) => node.start()));
    const joined = () => nodes.every((node) => node.members().length === n - 1);
    try {
      await until(`N=${n} cluster ${c}: every node knows ${n - 1} members`, joined, nodes.map((node) => [node, 'member:new']), JOIN_DEADLINE_MS);
    } catch (error) {
      const known = nodes.map((node) => node.members().length);
      out.failures.push(`${(error as Error).message} (members known per node: ${known.join(' ')})`);
      return;
    }
    out.joinMs.push(performance.now() - joinStart);

    // The steady window comes first: right after the join every node is connected to the seed
    // alone, and a write then would measure a star, not the mesh the gossip rounds build.
    const s0 = { ...activity, bytes: wireBytes(), t: performance.now() };
    await sleep(STEADY_MS);
    const seconds = (performance.now() - s0.t) / 1000;
    out.memberRate.push((activity.remoteMembers - s0.remoteMembers) / n / seconds);
    out.bgBytes.push((wireBytes() - s0.bytes) / n / seconds);
    out.churn.push((activity.peers - s0.peers) / n / seconds);

    for (let w = 0; w < WRITES; w++) {
      const wasQuiet = await quiet();
      out.degree.push(median(nodes.map((node) => node.peers().filter((p) => p.state === 'connected').length)));
      const writer = (c * WRITES + w + 1) % n;
      const key = `c${c}w${w}`;
      const arrived = new Map<number, number>();
      const off: Array<() => void> = [];
      models.forEach((m, i) => {
        if (i === writer) return;
        const on = (): void => void (m.get(key) !== undefined && !arrived.has(i) && arrived.set(i, performance.now()));
        m.on('update', on);
        off.push(() => m.off('update', on));
      });
      const before = { ...activity };
      const snap = snapshot();
      const t0 = performance.now();
      out.envelope = models[writer]!.set(key, value).bytes.length;
      try {
        await until(`N=${n} write ${key}`, () => arrived.size === n - 1, models.map((m) => [m, 'update']), WRITE_DEADLINE_MS);
      } catch (error) {
        out.failures.push(`${(error as Error).message}: ${n - 1 - arrived.size} of ${n - 1} nodes never applied it`);
      } finally {
        off.forEach((f) => f());
      }
      const ms = Math.max(...arrived.values()) - t0;
      await sleep(SETTLE_MS);
      // Clean: no heartbeat crossed the window. Connections opened in it are left out (their
      // handshake and first sync are churn, not this write); out.newConnections counts them.
      const clean = wasQuiet && activity.members === before.members;
      out.newConnections.push([...accepted].filter((s) => !snap.has(s)).length);
      out.samples.push({ ms, bytesPerNode: clean ? since(snap) / n : null, missing: n - 1 - arrived.size });
    }

  } finally {
    await Promise.all(nodes.map((node) => node.stop()));
    await new Promise((r) => setImmediate(r));
    const open = [...accepted].filter((s) => !s.destroyed).length;
    const handles = process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap' || r === 'TCPServerWrap').length;
    if (open > 0 || handles > 0) out.failures.push(`N=${n} cluster ${c}: after stop(), ${open} accepted sockets not destroyed, ${handles} TCP handles active`);
    accepted.clear();
  }
}

const rows: Array<Record<string, string | number>> = [];
const joinRows: Array<Record<string, string | number>> = [];
const failures: string[] = [];
let envelope = 0;
try {
  for (const [n, clusters] of SIZES) {
    const r: Result = { joinMs: [], samples: [], memberRate: [], bgBytes: [], churn: [], degree: [], newConnections: [], failures: [], envelope: 0 };
    for (let c = 0; c < clusters; c++) await cluster(n, c, r);
    failures.push(...r.failures);
    envelope = r.envelope || envelope;
    const done = r.samples.filter((s) => s.missing === 0).map((s) => s.ms);
    const bytes = r.samples.flatMap((s) => (s.bytesPerNode === null ? [] : [s.bytesPerNode]));
    rows.push({
      N: String(n), 'clusters x writes': `${r.joinMs.length} x ${WRITES}`, 'median ms to all': cell(median(done)), 'range ms': range(done, 1),
      'median gossip rounds': cell(median(done) / GOSSIP_MS), 'B/node/update (samples)': bytes.length ? `${Math.round(median(bytes))} (${bytes.length})` : '-',
      'member updates/node/s': cell(median(r.memberRate)), '(N-1)/heartbeat s': (n - 1) / (HEARTBEAT_MS / 1000),
      'log3 N': Math.log(n) / Math.log(3), 'log2 N + ln N': Math.log2(n) + Math.log(n),
    });
    joinRows.push({
      N: String(n), 'joined/clusters': `${r.joinMs.length}/${clusters}`, 'join s median': cell(median(r.joinMs) / 1000), 'join range s': range(r.joinMs.map((ms) => ms / 1000), 1),
      'peers/node at writes': cell(median(r.degree)), 'background B/node/s': cell(median(r.bgBytes)), 'peer up+down /node/s': cell(median(r.churn)),
      'new conns per write window': cell(median(r.newConnections)), 'writes incomplete': String(r.samples.filter((s) => s.missing > 0).length),
    });
  }
} finally {
  unsubscribe('net.server.socket', onAccepted);
}

printTable(
  `One write (${envelope || '?'} B envelope) until every other node applied it; N nodes on 127.0.0.1, in one process, joined through ` +
    `one seed (Node defaults: gossip ${GOSSIP_MS} ms, heartbeat ${HEARTBEAT_MS} ms, maxPeers 8).\n` +
    `gossip rounds = ms / gossip interval (a write is pushed over the open connections at once; rounds only make connections).\n` +
    `B/node/update: TCP payload bytes (Noise + mux + replication, both ways, counted once) on the connections open at the write, ` +
    `from the write until ${SETTLE_MS} ms after the last apply, / N; only windows no membership update crossed (how many in brackets).\n` +
    `member updates/node/s: other members' records applied (one signature verified each) per node per second, ${STEADY_MS / 1000} s steady window`,
  rows,
);
printTable('Join (N-1 nodes started at once until each knows N-1 members) and the steady background, per node', joinRows);
if (failures.length > 0) {
  console.error(`\n${failures.length} failure(s):\n${failures.join('\n')}`);
  process.exitCode = 1;
}
