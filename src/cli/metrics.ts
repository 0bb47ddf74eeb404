// signet node --metrics: Prometheus text on GET /metrics (prom-client, a private registry per
// daemon), read from the daemon's counters, its Node and its datasets at each scrape.
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Model } from '../models/model.ts';
import type { Node } from '../mesh/node.ts';
import { formatHostPort } from '../util/address.ts';
import type { DaemonEvents } from './daemon-events.ts';

/** What the metrics read. */
export interface MetricsSource {
  node: Node;
  /** The datasets the daemon hosts, by name, plus the node's membership dataset. */
  datasets: ReadonlyMap<string, Model>;
  events: DaemonEvents;
  version: string;
}

/** Concurrent HTTP connections to the metrics endpoint (a scraper needs one or two). Past it
 *  new connections are closed at once. */
export const MAX_METRICS_CONNECTIONS = 16;
/** Deadline (ms) for a scrape's request headers and whole request. Past it the connection is closed. */
export const METRICS_REQUEST_TIMEOUT_MS = 10_000;

/**
 * Builds the registry. Counters are kept by {@link DaemonEvents} and copied in at each scrape
 * (one source for `status` and the metrics); gauges are read from the Node and datasets then.
 * Labels are dataset names (chosen by the operator), reason codes and states: never peer ids,
 * so a hostile mesh cannot grow the series without bound.
 */
export function metricsRegistry(src: MetricsSource): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const { node, datasets, events } = src;
  const metric = <L extends string>(
    name: string, help: string, labelNames: readonly L[], fill: (set: (labels: Record<L, string>, v: number) => void) => void, kind: 'counter' | 'gauge',
  ): void => {
    const Metric = kind === 'counter' ? Counter : Gauge;
    new Metric<L>({
      name, help, labelNames, registers: [registry],
      collect(this: Counter<L> | Gauge<L>) {
        this.reset();
        fill((labels, v) => (this instanceof Counter ? this.inc(labels, v) : this.set(labels, v)));
      },
    });
  };
  new Gauge({ name: 'signet_info', help: 'This node: its id and the signet-sync version (value 1).', labelNames: ['id', 'version'], registers: [registry] })
    .set({ id: node.id, version: src.version }, 1);

  metric('signet_updates_applied_total', 'Updates applied, by dataset and origin (local: signed by this node; peer: received).', ['dataset', 'origin'], (set) => {
    for (const [dataset, c] of events.datasets) {
      set({ dataset, origin: 'local' }, c.appliedLocal);
      set({ dataset, origin: 'peer' }, c.appliedRemote);
    }
  }, 'counter');
  metric('signet_updates_rejected_total', 'Updates refused, by dataset and reason code (bad-signature, bad-shape, too-large, future, forbidden, wrong-dataset, quarantined...).', ['dataset', 'reason'], (set) => {
    for (const [dataset, c] of events.datasets) for (const [reason, n] of c.rejected) set({ dataset, reason }, n);
  }, 'counter');
  metric('signet_updates_old_total', 'Updates received that were already held (or older): duplicates, not faults.', ['dataset'], (set) => {
    for (const [dataset, c] of events.datasets) set({ dataset }, c.old);
  }, 'counter');
  metric('signet_updates_deferred_total', 'Verified updates from the future (beyond maxClockSkew) held until their time.', ['dataset'], (set) => {
    for (const [dataset, c] of events.datasets) set({ dataset }, c.deferred);
  }, 'counter');
  metric('signet_equivocations_total', 'Equivocations seen: two validly signed updates with one source and version.', ['dataset'], (set) => {
    for (const [dataset, c] of events.datasets) set({ dataset }, c.equivocations);
  }, 'counter');
  metric('signet_dataset_keys', 'Live keys held (not deleted, not expired).', ['dataset'], (set) => {
    for (const [dataset, m] of datasets) set({ dataset }, m.keys().length);
  }, 'gauge');
  metric('signet_dataset_sources', 'Sources in the dataset clock (clock size).', ['dataset'], (set) => {
    for (const [dataset, m] of datasets) set({ dataset }, m.clock.size);
  }, 'gauge');
  metric('signet_dataset_deferred_updates', 'Future updates held now, waiting for their time.', ['dataset'], (set) => {
    for (const [dataset, m] of datasets) set({ dataset }, m.deferredCount);
  }, 'gauge');
  metric('signet_dataset_streams', 'Replication streams open (one per peer replicating the dataset).', ['dataset'], (set) => {
    for (const [dataset, m] of datasets) set({ dataset }, m.streams);
  }, 'gauge');
  metric('signet_peers', 'Peers by state: connected, or banned (by id or address).', ['state'], (set) => {
    const peers = node.peers();
    for (const state of ['connected', 'banned'] as const) set({ state }, peers.filter((p) => p.state === state).length);
  }, 'gauge');
  metric('signet_members', 'Members learned from the signed membership dataset, by liveness.', ['state'], (set) => {
    const members = node.members();
    for (const state of ['alive', 'dead'] as const) set({ state }, members.filter((m) => m.state === state).length);
  }, 'gauge');
  metric('signet_node_events_total', 'Node events: peer:up, peer:down, peer:banned, member:new, member:dead, member:alive.', ['event'], (set) => {
    for (const event of ['peer:up', 'peer:down', 'peer:banned', 'member:new', 'member:dead', 'member:alive']) set({ event }, events.nodeEvents.get(event) ?? 0);
  }, 'counter');
  // Node.stats() once per scrape would be cheaper; each collect reads it (a handful of maps).
  metric('signet_bytes_total', 'Multiplexer bytes on every connection since start (inside the encryption), by direction.', ['direction'], (set) => {
    const { bytes } = node.stats();
    set({ direction: 'in' }, bytes.in);
    set({ direction: 'out' }, bytes.out);
  }, 'counter');
  metric('signet_handshakes_total', 'Secure channels established (result ok, by direction), inbound connections refused and dials failed (by code).', ['direction', 'result'], (set) => {
    const { handshakes } = node.stats();
    set({ direction: 'in', result: 'ok' }, handshakes.completed.in);
    set({ direction: 'out', result: 'ok' }, handshakes.completed.out);
    for (const [code, n] of Object.entries(handshakes.refused)) set({ direction: 'in', result: code }, n);
    for (const [code, n] of Object.entries(handshakes.dialFailed)) set({ direction: 'out', result: code }, n);
  }, 'counter');
  metric('signet_verify_queue', 'Updates waiting for their signature verdict or their turn, by dataset.', ['dataset'], (set) => {
    for (const [dataset, d] of Object.entries(node.stats().datasets)) set({ dataset }, d.pendingVerifications);
  }, 'gauge');
  metric('signet_reconciliations_total', 'Reconciliation sessions ended on this node, by dataset.', ['dataset'], (set) => {
    for (const [dataset, d] of Object.entries(node.stats().datasets)) set({ dataset }, d.reconciliation.sessions);
  }, 'counter');
  metric('signet_reconcile_updates_total', 'Updates reconciliation found missing, by dataset and side (have: the peer lacked ours; need: we lacked the peer\'s).', ['dataset', 'side'], (set) => {
    for (const [dataset, d] of Object.entries(node.stats().datasets)) {
      set({ dataset, side: 'have' }, d.reconciliation.have);
      set({ dataset, side: 'need' }, d.reconciliation.need);
    }
  }, 'counter');
  metric('signet_dataset_refusals_total', 'Datasets a peer refused to replicate with this node, by reason (not-hosted, policy-mismatch, config-mismatch, master-mismatch).', ['reason'], (set) => {
    for (const [reason, n] of events.refusals) set({ reason }, n);
  }, 'counter');
  return registry;
}

/** The metrics endpoint: `close()` stops it and drops its connections. */
export interface MetricsServer {
  /** The bound `host:port`. */
  address: string;
  close(): Promise<void>;
}

/**
 * Serves `registry` on http://host:port/metrics (GET or HEAD, 200, Prometheus text format);
 * any other path answers 404, another method on /metrics 405.
 * @throws Error (EADDRINUSE, EACCES...) if the address cannot be bound.
 */
export async function serveMetrics(registry: Registry, host: string, port: number): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(req.method === 'HEAD' ? undefined : text),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`metrics failed: ${(err as Error)?.message ?? String(err)}\n`),
    );
  });
  server.maxConnections = MAX_METRICS_CONNECTIONS;
  server.headersTimeout = METRICS_REQUEST_TIMEOUT_MS;
  server.requestTimeout = METRICS_REQUEST_TIMEOUT_MS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // An accept failure later (EMFILE...) drops that connection; it must not end the daemon.
  server.on('error', () => {});
  const bound = server.address();
  const address = bound && typeof bound === 'object' ? formatHostPort(bound.address, bound.port) : `${host}:${port}`;
  return {
    address,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
