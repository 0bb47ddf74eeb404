// signet peers / members / status: what a running node sees, through its control socket, as
// aligned text for people or JSON for scripts.
import { withClient } from './control-client.ts';
import { printable } from './control-protocol.ts';
import { commonHelp, commonOptions } from './control.ts';
import { type CliIo, parse, UsageError, EXIT_OK } from './io.ts';

export const peersHelp = `usage: signet peers [--data DIR] [--json]
Lists the running node's peers: connected ones (direction, address, datasets replicating), then
banned ones (by id or address, with the reason and when the ban ends).
${commonHelp(`{"peers": [{"id", "address", "state", "direction", "phi", "lastSeenMsAgo",
                  "connectedForMs" | "banEndsInMs" and "reason", "datasets"}]}`)}

example:
  signet peers --json`;

export const membersHelp = `usage: signet members [--data DIR] [--json]
Lists every member the running node has learned of (from their own signed records), alive or
dead, with the addresses they advertise and how long ago their last heartbeat arrived.
${commonHelp('{"members": [{"id", "state", "addresses", "phi", "lastSeenMsAgo", "heartbeatIntervalMs"}]}')}

example:
  signet members`;

export const statusHelp = `usage: signet status [--data DIR] [--json]
Shows the running node: its id, listen address, datasets (keys, clock size, state hash, updates
applied and rejected by reason, equivocations), peers and members. Peers: live (connected now),
dead (members the failure detector convicted), banned (bans in force). Counters run from the
node's start. Two nodes hold the same state of a dataset exactly when their state hashes are equal.
${commonHelp(`{"id", "version", "pid", "uptimeMs", "listen", "dataDir", "store", "network", "metrics",
                  "datasets": [...], "peers": {"live", "dead", "banned"}, "members": {"alive", "dead"},
                  "updates": {"applied", "rejected": {reason: n}, "equivocations"}}`)}

example:
  signet status --data ./data`;

/** Rows as columns padded to their widest cell. */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n');
}

/** Milliseconds as a short duration: 850ms, 12s, 5m, 3h, 2d. */
export function ago(ms: number | null): string {
  if (ms === null) return '-';
  if (ms < 1000) return `${ms}ms`;
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000]] as const) if (ms >= size) return `${Math.floor(ms / size)}${unit}`;
  return `${Math.floor(ms / 1000)}s`;
}

/** Counts by reason as `bad-signature 2, future 1`, or `none`. */
const reasons = (counts: Record<string, number>): string => Object.entries(counts).map(([r, n]) => `${r} ${n}`).join(', ') || 'none';

interface Peer {
  id: string | null; address: string | null; state: string; direction: string | null; lastSeenMsAgo: number | null;
  connectedForMs?: number; banEndsInMs?: number; reason?: string | null; datasets: string[];
}
interface Member { id: string; state: string; addresses: string[]; phi: number | null; lastSeenMsAgo: number | null }
interface DatasetStatus {
  name: string; system: boolean; policy: string; replicaOf: string | null; keys: number; clockSize: number; stateHash: string;
  applied: { local: number; peer: number }; rejected: Record<string, number>; equivocations: number; evidence: number; deferred: number; streams: number;
}
interface Status {
  id: string; version: string; listen: string | null; dataDir: string; store: string; network: string; metrics: string | null; uptimeMs: number;
  datasets: DatasetStatus[]; peers: { live: number; dead: number; banned: number }; members: { alive: number; dead: number };
  updates: { applied: number; rejected: Record<string, number>; equivocations: number };
}

/** Runs one no-argument inspection request and prints it as JSON or through `text`. */
async function inspect(args: string[], io: CliIo, help: string, op: 'peers' | 'members' | 'status', text: (result: never) => string): Promise<number> {
  const { values, positionals } = parse(args, commonOptions, true);
  if (values.help) return io.out(help), EXIT_OK;
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const result = await withClient(values.data, (c) => c.request({ op }));
  if (values.json) io.out(JSON.stringify(result));
  else io.out(text(result as never));
  return EXIT_OK;
}

export function peers(args: string[], io: CliIo): Promise<number> {
  return inspect(args, io, peersHelp, 'peers', ({ peers }: { peers: Peer[] }) => {
    if (peers.length === 0) return 'no peers';
    return table([
      ['ID', 'STATE', 'DIR', 'ADDRESS', 'FOR', 'DATASETS / REASON'],
      ...peers.map((p) => [
        p.id ?? '-', p.state, p.direction ?? '-', p.address ?? '-',
        ago(p.state === 'banned' ? p.banEndsInMs ?? null : p.connectedForMs ?? null),
        p.state === 'banned' ? printable(p.reason ?? '') : p.datasets.map(printable).join(',') || '-',
      ]),
    ]);
  });
}

export function members(args: string[], io: CliIo): Promise<number> {
  return inspect(args, io, membersHelp, 'members', ({ members }: { members: Member[] }) => {
    if (members.length === 0) return 'no members known';
    return table([
      ['ID', 'STATE', 'LAST SEEN', 'PHI', 'ADDRESSES'],
      ...members.map((m) => [m.id, m.state, m.lastSeenMsAgo === null ? 'never' : `${ago(m.lastSeenMsAgo)} ago`, m.phi === null ? '-' : m.phi.toFixed(1), m.addresses.join(',') || '-']),
    ]);
  });
}

export function status(args: string[], io: CliIo): Promise<number> {
  return inspect(args, io, statusHelp, 'status', (s: Status) => {
    const head = table([
      ['node', s.id],
      ['version', s.version],
      ['listen', s.listen ?? '- (dials only)'],
      ['data', `${s.dataDir}${s.store === 'memory' ? ' (datasets in memory only)' : ''}`],
      ['network', s.network],
      ['metrics', s.metrics ? `http://${s.metrics}/metrics` : '-'],
      ['uptime', ago(s.uptimeMs)],
      ['peers', `${s.peers.live} live, ${s.peers.dead} dead, ${s.peers.banned} banned`],
      ['members', `${s.members.alive} alive, ${s.members.dead} dead`],
      ['updates', `${s.updates.applied} applied, rejected: ${reasons(s.updates.rejected)}, ${s.updates.equivocations} equivocations`],
    ]);
    const datasets = s.datasets.map((d) => [
      `dataset ${printable(d.name)}${d.system ? ' (system)' : ''}: policy ${d.policy}${d.replicaOf ? `, replica of ${d.replicaOf}` : ''}`,
      `  ${d.keys} keys, clock ${d.clockSize} sources, ${d.streams} streams, state ${d.stateHash}`,
      `  applied ${d.applied.local} local + ${d.applied.peer} from peers, rejected: ${reasons(d.rejected)}, equivocations ${d.equivocations} (evidence held ${d.evidence}), deferred ${d.deferred}`,
    ].join('\n'));
    return [head, ...datasets].join('\n');
  });
}
