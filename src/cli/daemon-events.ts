// What the daemon hears from its Node and datasets: one log line per event on stderr (peer,
// member, ban, rejected update, equivocation, store failure) and the counters status and metrics show.
import type { AnyScuttlebutt } from '../core/scuttlebutt.ts';
import type { Equivocation, Rejection, UpdateOrigin } from '../core/types.ts';
import type { Update } from '../envelope/update.ts';
import { shortId } from '../identity/node-id.ts';
import type { Node } from '../mesh/node.ts';
import type { ProgressBars } from './progress.ts';

/** Writes one log line: an event name and its fields. */
export type LogFn = (event: string, fields: Record<string, unknown>) => void;

/** `'rejected'` lines logged per REJECT_LOG_WINDOW_MS. Past it they are counted, not logged, and one
 *  `'rejected:suppressed'` line gives the count when the window ends (the counters stay exact). */
export const REJECT_LOG_BUDGET = 50;
export const REJECT_LOG_WINDOW_MS = 10_000;
/** At most one `'catching-up'` line per peer and dataset this often (ms). */
export const PROGRESS_LOG_MS = 1_000;

/** Counters of one dataset since the daemon started. */
export interface DatasetCounters {
  /** Updates applied that this node signed. */
  appliedLocal: number;
  /** Updates applied that arrived from peers. */
  appliedRemote: number;
  /** Updates refused, by reason code (`bad-signature`, `forbidden`, `future`...). */
  rejected: Map<string, number>;
  /** Updates that arrived again (or older than what is held): not a fault. */
  old: number;
  /** Verified updates from the future held until their time. */
  deferred: number;
  /** Equivocations seen (two validly signed updates with one source and version). */
  equivocations: number;
}

const bump = (map: Map<string, number>, key: string): void => void map.set(key, (map.get(key) ?? 0) + 1);

/** The daemon's event wiring: call {@link dataset} for every dataset, {@link node} once. */
export class DaemonEvents {
  readonly datasets = new Map<string, DatasetCounters>();
  /** Node events by name (`peer:up`, `peer:down`, `peer:banned`, `member:new`, ...). */
  readonly nodeEvents = new Map<string, number>();
  /** Datasets peers refused to replicate with us, by reason. */
  readonly refusals = new Map<string, number>();
  private windowStart = -Infinity;
  private logged = 0;
  private suppressed = 0;
  private timer: NodeJS.Timeout | undefined;

  /** `bars`: on a terminal, catch-ups show as progress bars instead of `'catching-up'` lines. */
  constructor(private readonly log: LogFn, private readonly now: () => number = () => performance.now(), private readonly bars?: ProgressBars) {}

  /** Counts and logs what `model` (hosted as `name`) reports. */
  dataset(name: string, model: AnyScuttlebutt): DatasetCounters {
    const c: DatasetCounters = { appliedLocal: 0, appliedRemote: 0, rejected: new Map(), old: 0, deferred: 0, equivocations: 0 };
    this.datasets.set(name, c);
    model.on('update', (_u: Update, origin: UpdateOrigin | null) => void (origin === null ? c.appliedLocal++ : c.appliedRemote++));
    model.on('old_data', () => void c.old++);
    model.on('deferred', () => void c.deferred++);
    model.on('invalid', (r: Rejection) => {
      bump(c.rejected, r.reason);
      this.rejected(name, r);
    });
    model.on('equivocation', (e: Equivocation) => {
      c.equivocations++;
      this.log('equivocation', { dataset: name, source: e.source, version: e.version, updates: e.updates.map((u) => u.hashHex) });
    });
    // A store failure: logged (without a listener it would be a bare process warning).
    model.on('error', (err: Error) => this.log('dataset:error', { dataset: name, message: err?.message ?? String(err) }));
    return c;
  }

  /** Logs and counts the node's peer, member, ban and refusal events. */
  node(node: Node): void {
    const count = (event: string): void => bump(this.nodeEvents, event);
    const short = (id: string | undefined): string => (id ? shortId(id) : '-');
    node.on('peer:up', (p) => (count('peer:up'), this.log('peer:up', { peer: p.id, address: p.address, direction: p.direction })));
    node.on('peer:down', (p) => (count('peer:down'), this.log('peer:down', { peer: p.id, address: p.address })));
    node.on('peer:banned', (b) => (count('peer:banned'), this.log('peer:banned', { peer: b.id ?? null, address: b.address ?? null, reason: b.reason })));
    node.on('member:new', (m) => (count('member:new'), this.log('member:new', { member: m.id, addresses: m.addresses, state: m.state })));
    node.on('member:dead', (m) => (count('member:dead'), this.log('member:dead', { member: m.id, short: short(m.id) })));
    node.on('member:alive', (m) => (count('member:alive'), this.log('member:alive', { member: m.id, short: short(m.id) })));
    node.on('dataset:refused', (r) => {
      bump(this.refusals, r.reason);
      this.log('dataset:refused', r);
    });
    // Catching up with a peer: a bar on a terminal, else a line at most every PROGRESS_LOG_MS per
    // peer and dataset; and a line when it is done (how many updates of how many sources its digest announced).
    const lastLine = new Map<string, number>();
    node.on('peer:down', (p) => {
      for (const key of lastLine.keys()) if (key.endsWith(`@${p.id}`)) lastLine.delete(key);
      if (p.id) for (const dataset of this.datasets.keys()) this.bars?.finish(dataset, p.id);
    });
    node.on('dataset:progress', (p) => {
      const key = `${p.dataset}@${p.peer}`;
      const now = this.now();
      const fields = { dataset: p.dataset, peer: p.peer, received: p.received, sources: `${p.sourcesDone}/${p.sourcesTotal}` };
      if (p.done) {
        lastLine.delete(key);
        this.bars?.finish(p.dataset, p.peer);
        this.log('caught-up', fields);
      } else if (this.bars) this.bars.update(p);
      else if (now - (lastLine.get(key) ?? -Infinity) >= PROGRESS_LOG_MS) {
        lastLine.set(key, now);
        this.log('catching-up', fields);
      }
    });
  }

  /** Logs the count of rejections the budget kept out of the log, if any. */
  flush(): void {
    clearTimeout(this.timer);
    if (this.suppressed > 0) this.log('rejected:suppressed', { count: this.suppressed, windowMs: REJECT_LOG_WINDOW_MS });
    this.suppressed = 0;
  }

  /** Totals over every dataset: applied, rejected by reason, equivocations. */
  totals(): { applied: number; rejected: Map<string, number>; equivocations: number } {
    const rejected = new Map<string, number>();
    let applied = 0;
    let equivocations = 0;
    for (const c of this.datasets.values()) {
      applied += c.appliedLocal + c.appliedRemote;
      equivocations += c.equivocations;
      for (const [reason, n] of c.rejected) rejected.set(reason, (rejected.get(reason) ?? 0) + n);
    }
    return { applied, rejected, equivocations };
  }

  /** One line per rejection, within the budget: a hostile peer must not flood the log. */
  private rejected(dataset: string, r: Rejection): void {
    const now = this.now();
    if (now - this.windowStart >= REJECT_LOG_WINDOW_MS) {
      this.flush();
      this.windowStart = now;
      this.logged = 0;
    }
    if (this.logged >= REJECT_LOG_BUDGET) {
      // The count is logged when the window ends, even if no rejection follows to notice it.
      if (this.suppressed++ === 0) this.timer = setTimeout(() => this.flush(), Math.max(1, this.windowStart + REJECT_LOG_WINDOW_MS - now)).unref();
      return;
    }
    this.logged++;
    // The stream a rejected update came from is named `<dataset>@<peer's short id>` by the Node.
    const from = (r.origin as { name?: unknown } | null)?.name;
    this.log('rejected', {
      dataset, reason: r.reason, detail: r.detail, source: r.update?.source ?? null, version: r.update?.version ?? null,
      from: typeof from === 'string' ? from : null,
    });
  }
}
