// What each control request does in the daemon: reads and writes on its datasets, its peers,
// members and status, with every field checked where it enters.
import { performance } from 'node:perf_hooks';
import type { Update } from '../envelope/update.ts';
import type { Node } from '../mesh/node.ts';
import { MEMBERS_DATASET } from '../mesh/membership.ts';
import type { Change, Model } from '../models/model.ts';
import { DURABLE_TIMEOUT_MS, valueToJson, type ControlRequest, type WireChange } from './control-protocol.ts';
import type { ControlHandlers } from './control-server.ts';
import type { DaemonEvents, DatasetCounters } from './daemon-events.ts';
import { CliError, UsageError } from './io.ts';

/** The running daemon, as the control requests see it. */
export interface DaemonState {
  node: Node;
  /** The datasets given with --dataset, by name (the membership dataset is not among them). */
  datasets: ReadonlyMap<string, Model>;
  events: DaemonEvents;
  /** The data directory, absolute. */
  dataDir: string;
  /** Where the datasets live: the LMDB store in dataDir, or memory (--memory). */
  store: 'lmdb' | 'memory';
  version: string;
  network: 'private' | 'public';
  replicaOf: string | null;
  /** The metrics endpoint's bound address, if --metrics. */
  metrics: string | null;
  /** performance.now() when the daemon started. */
  startedAt: number;
}

const optionalString = (request: ControlRequest, field: 'dataset' | 'prefix'): string | undefined => {
  const v = request[field];
  if (v !== undefined && typeof v !== 'string') throw new UsageError(`"${field}" expected a string`);
  return v;
};

const requiredKey = (request: ControlRequest): string => {
  if (typeof request.key !== 'string') throw new UsageError('"key" expected a string');
  return request.key;
};

/** µs since the epoch as an ISO time. */
const isoMicros = (micros: number): string => new Date(Math.floor(micros / 1000)).toISOString();

const counted = (c: DatasetCounters | undefined) => ({
  applied: { local: c?.appliedLocal ?? 0, peer: c?.appliedRemote ?? 0 },
  rejected: Object.fromEntries(c?.rejected ?? []),
  old: c?.old ?? 0,
  deferredTotal: c?.deferred ?? 0,
  equivocations: c?.equivocations ?? 0,
});

/** Waits until `update` (a local write) is durable: its `'update'` event. */
function durable(model: Model, write: () => Update): Promise<Update> {
  const seen = new Set<Update>();
  const listener = (u: Update): void => void seen.add(u);
  model.on('update', listener);
  let update: Update;
  try {
    update = write();
  } catch (err) {
    model.off('update', listener);
    throw err;
  }
  if (seen.has(update)) {
    model.off('update', listener);
    return Promise.resolve(update);
  }
  return new Promise<Update>((resolve, reject) => {
    const timer = setTimeout(() => {
      model.off('update', done);
      reject(new CliError('ERR_TIMEOUT', `the write was signed but was not stored within ${DURABLE_TIMEOUT_MS} ms (see the daemon's log)`));
    }, DURABLE_TIMEOUT_MS);
    const done = (u: Update): void => {
      if (u !== update) return;
      clearTimeout(timer);
      model.off('update', done);
      resolve(update);
    };
    model.off('update', listener);
    model.on('update', done);
  });
}

/** The request handlers of a daemon. */
export function controlOps(state: DaemonState): ControlHandlers {
  const { node, datasets, events } = state;

  /** The dataset a request names, or the only one hosted. @throws UsageError naming the choices. */
  const pick = async (request: ControlRequest): Promise<[string, Model]> => {
    const name = optionalString(request, 'dataset');
    const names = [...datasets.keys()];
    const choices = names.length > 0 ? names.join(', ') : 'none: start the node with --dataset NAME';
    if (name === undefined) {
      if (names.length !== 1) throw new UsageError(`this node hosts ${names.length === 0 ? 'no dataset' : `${names.length} datasets (${choices})`}: pass --dataset NAME`);
      const model = datasets.get(names[0]!)!;
      await model.ready;
      return [names[0]!, model];
    }
    const model = datasets.get(name);
    if (!model) throw new UsageError(`this node hosts no dataset ${JSON.stringify(name)} (it hosts ${choices})`);
    await model.ready;
    return [name, model];
  };

  const wireChange = (dataset: string, change: Change): WireChange => ({
    dataset, op: change.value === undefined ? 'del' : 'set', key: change.key,
    ...(change.value === undefined ? {} : { value: valueToJson(change.value) }), source: change.update.source, version: change.update.version,
  });

  const ops: Record<Exclude<ControlRequest['op'], 'watch'>, (request: ControlRequest) => Promise<unknown>> = {
    async get(request) {
      const [dataset, model] = await pick(request);
      const key = requiredKey(request);
      const value = model.get(key);
      if (value === undefined) throw new CliError('ERR_NOT_FOUND', `dataset ${dataset} holds no key ${JSON.stringify(key)}`);
      const update = model.updateOf(key)!;
      const ttl = Array.isArray(update.body) && typeof update.body[3] === 'number' ? update.body[3] : undefined;
      return {
        dataset, key, value: valueToJson(value), source: update.source, version: update.version, time: isoMicros(update.version),
        expires: ttl === undefined ? null : isoMicros(update.version + ttl * 1000),
      };
    },
    async set(request) {
      const [dataset, model] = await pick(request);
      const key = requiredKey(request);
      if (!Object.hasOwn(request, 'value')) throw new UsageError('"value" is missing');
      if (request.ttl !== undefined && (typeof request.ttl !== 'number' || !Number.isSafeInteger(request.ttl) || request.ttl < 1)) {
        throw new UsageError('"ttl" expected a whole number of milliseconds >= 1');
      }
      const ttl = request.ttl;
      const update = await durable(model, () => model.set(key, request.value, ttl === undefined ? undefined : { ttl }));
      return { dataset, key, source: update.source, version: update.version, time: isoMicros(update.version) };
    },
    async del(request) {
      const [dataset, model] = await pick(request);
      const key = requiredKey(request);
      const existed = model.has(key);
      const update = await durable(model, () => model.delete(key));
      return { dataset, key, existed, source: update.source, version: update.version, time: isoMicros(update.version) };
    },
    async keys(request) {
      const [dataset, model] = await pick(request);
      const prefix = optionalString(request, 'prefix') ?? '';
      return { dataset, prefix, keys: model.keys().filter((k) => k.startsWith(prefix)).sort() };
    },
    async peers() {
      const now = performance.now();
      return {
        peers: node.peers().map((p) => ({
          id: p.id ?? null, address: p.address ?? null, state: p.state, direction: p.direction ?? null,
          phi: Number.isFinite(p.phi) ? p.phi : null,
          lastSeenMsAgo: p.lastSeen === null ? null : Math.round(now - p.lastSeen),
          ...(p.state === 'banned' ? { banEndsInMs: Math.round(p.since - now), reason: p.reason ?? null } : { connectedForMs: Math.round(now - p.since) }),
          datasets: p.datasets,
        })),
      };
    },
    async members() {
      const now = performance.now();
      return {
        members: node.members().map((m) => ({
          id: m.id, state: m.state, addresses: m.addresses, phi: Number.isFinite(m.phi) ? m.phi : null,
          lastSeenMsAgo: m.lastSeen === null ? null : Math.round(now - m.lastSeen), heartbeatIntervalMs: m.heartbeatIntervalMs,
        })),
      };
    },
    async status() {
      const peers = node.peers();
      const members = node.members();
      const totals = events.totals();
      const describe = (name: string, model: Model, system: boolean) => ({
        name, system, policy: model.policy.policyName ?? 'custom', writers: model.policy.writerIds ? [...model.policy.writerIds] : null,
        replicaOf: system ? null : state.replicaOf, keys: model.keys().length, clockSize: model.clock.size, stateHash: model.stateHash(),
        evidence: model.equivocations().length, deferred: model.deferredCount, streams: model.streams, ...counted(events.datasets.get(name)),
      });
      return {
        id: node.id, version: state.version, pid: process.pid, uptimeMs: Math.round(performance.now() - state.startedAt),
        listen: node.address() ?? null, dataDir: state.dataDir, store: state.store, network: state.network, metrics: state.metrics,
        datasets: [
          ...[...datasets].map(([name, model]) => describe(name, model, false)),
          describe(MEMBERS_DATASET, node.membersDataset, true),
        ],
        peers: {
          live: peers.filter((p) => p.state === 'connected').length,
          dead: members.filter((m) => m.state === 'dead').length,
          banned: peers.filter((p) => p.state === 'banned').length,
        },
        members: { alive: members.filter((m) => m.state === 'alive').length, dead: members.filter((m) => m.state === 'dead').length },
        updates: { applied: totals.applied, rejected: Object.fromEntries(totals.rejected), equivocations: totals.equivocations },
      };
    },
  };

  return {
    request: (request) => ops[request.op as keyof typeof ops](request),
    async watch(request, emit) {
      const [dataset, model] = await pick(request);
      const prefix = optionalString(request, 'prefix') ?? '';
      const listener = (change: Change): void => {
        if (change.key.startsWith(prefix)) emit(wireChange(dataset, change));
      };
      model.on('change', listener);
      return { result: { dataset, prefix }, stop: () => model.off('change', listener) };
    },
  };
}
