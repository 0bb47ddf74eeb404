// signet node: the daemon. A mesh Node on an LmdbStore in its data directory, its datasets from
// the command line, a control socket, optional metrics, one log line per event on stderr, and a
// clean stop on SIGINT/SIGTERM.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { open, owner, writers, type WritePolicy } from '../core/policy.ts';
import { loadNetworkKey } from '../identity/key-files.ts';
import { isNodeId } from '../identity/node-id.ts';
import { MEMBERS_DATASET } from '../mesh/membership.ts';
import { Node, PUBLIC_NETWORK_KEY } from '../mesh/node.ts';
import { Model } from '../models/model.ts';
// Registers how models make replication streams (core never imports upward); the Node needs it.
import '../replication/index.ts';
import { LmdbStore } from '../store/lmdb.ts';
import { acquireLock, prepareDirectory, releaseLock } from '../store/lmdb-directory.ts';
import { parseHostPort } from '../util/address.ts';
import { controlOps, type DaemonState } from './control-ops.ts';
import { CONTROL_SOCKET, DEFAULT_DATA_DIR, controlSocketPath, printable, safeJson } from './control-protocol.ts';
import { ControlServer } from './control-server.ts';
import { DaemonEvents, type LogFn } from './daemon-events.ts';
import { ProgressBars } from './progress.ts';
import { checkDataDir } from './data-dir.ts';
import { type CliIo, parse, CliError, UsageError, EXIT_OK } from './io.ts';
import { DEFAULT_KEYS_DIR, NETWORK_KEY_FILE, loadKeysIdentity } from './keys.ts';
import { metricsRegistry, serveMetrics, type MetricsServer } from './metrics.ts';
import { version } from './version.ts';

export const nodeHelp = `usage: signet node [--data DIR [--memory]] [--listen HOST:PORT] [--advertise HOST:PORT]...
                   [--seed HOST:PORT[#ID]]... [--keys DIR]
                   [--network-key FILE | --public] [--dataset NAME[:POLICY]]... [--replica-of ID]
                   [--metrics HOST:PORT] [--log text|json]
Runs a mesh node until SIGINT or SIGTERM (a second signal exits at once). Its datasets live in
an LMDB store in DIR, which one node at a time may use; the commands set, get, del, keys,
watch, peers, members and status talk to it through DIR/${CONTROL_SOCKET} (mode 0600). DIR must
not be writable by group or others. Logs one line per event on stderr (started, peer
up/down/banned, member new/dead/alive, rejected updates by reason, equivocations). Catching
up with a peer shows a progress bar per dataset and peer when stderr is a terminal (sources of
the peer's digest done, updates received), else a catching-up line each second; then caught-up.
  --data DIR             the store and the control socket (default ${DEFAULT_DATA_DIR}; created 0700)
  --memory               keep the datasets in memory only (lost when the node stops); DIR still
                         holds the lock and the control socket
  --listen HOST:PORT     accept connections here (port 0 picks one; the 'started' line says which)
  --advertise HOST:PORT  where peers should dial this node, if not the listen address (behind NAT,
                         in a container); signed in its membership record (repeatable, up to 8)
  --seed HOST:PORT[#ID]  a member to join through; #ID pins the node id it must prove (repeatable)
  --keys DIR             identity and network key directory (default ${DEFAULT_KEYS_DIR})
  --network-key FILE     the network key (default DIR/${NETWORK_KEY_FILE} from --keys)
  --public               join the public mesh (all-zero network key): policies must be explicit
  --dataset NAME[:POLICY]  host a Model dataset; POLICY is open, owner or writers:ID,ID (repeatable)
  --replica-of ID        every dataset follows this master: its updates only, no local writes
  --metrics HOST:PORT    serve Prometheus metrics on http://HOST:PORT/metrics (port 0 picks one)
  --log text|json        log format (default text)

example: two nodes, each with its own identity, sharing one network key
  signet keygen --keys a && signet keygen --keys b && signet netkey --keys a && cp a/network.key b/
  signet node --keys a --data a/data --listen 127.0.0.1:7420 --dataset chat --metrics 127.0.0.1:9420
  signet node --keys b --data b/data --listen 127.0.0.1:7421 --seed 127.0.0.1:7420 --dataset chat`;

const options = {
  listen: { type: 'string' },
  advertise: { type: 'string', multiple: true, default: [] as string[] },
  seed: { type: 'string', multiple: true, default: [] as string[] },
  data: { type: 'string', default: DEFAULT_DATA_DIR },
  memory: { type: 'boolean', default: false },
  keys: { type: 'string', default: DEFAULT_KEYS_DIR },
  'network-key': { type: 'string' },
  public: { type: 'boolean', default: false },
  dataset: { type: 'string', multiple: true, default: [] as string[] },
  'replica-of': { type: 'string' },
  metrics: { type: 'string' },
  log: { type: 'string', default: 'text' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

/** `NAME[:POLICY]` → name and policy (undefined: the node's default). @throws UsageError. */
export function parseDataset(spec: string): { name: string; policy: WritePolicy | undefined } {
  const colon = spec.indexOf(':');
  const name = colon < 0 ? spec : spec.slice(0, colon);
  const policy = colon < 0 ? undefined : spec.slice(colon + 1);
  if (name.length === 0) throw new UsageError(`--dataset ${JSON.stringify(spec)}: the name is empty`);
  if (policy === undefined) return { name, policy: undefined };
  if (policy === 'open') return { name, policy: open() };
  if (policy === 'owner') return { name, policy: owner() };
  if (policy.startsWith('writers:')) {
    const ids = policy.slice('writers:'.length).split(',');
    if (!ids.every(isNodeId)) throw new UsageError(`--dataset ${JSON.stringify(spec)}: writers: expects node ids separated by commas`);
    return { name, policy: writers(ids) };
  }
  throw new UsageError(`--dataset ${JSON.stringify(spec)}: unknown policy ${JSON.stringify(policy)} (open, owner, writers:ID,ID)`);
}

export async function node(args: string[], io: CliIo): Promise<number> {
  const { values } = parse(args, options);
  if (values.help) return io.out(nodeHelp), EXIT_OK;
  if (values.log !== 'text' && values.log !== 'json') throw new UsageError(`--log expects text or json, got ${JSON.stringify(values.log)}`);
  if (values.public && values['network-key'] !== undefined) throw new UsageError('--public and --network-key exclude each other');
  const replicaOf = values['replica-of'];
  if (replicaOf !== undefined && !isNodeId(replicaOf)) throw new UsageError('--replica-of expects a node id (52 base32 characters)');
  const datasets = values.dataset.map(parseDataset);
  const duplicate = datasets.find((d, i) => datasets.findIndex((e) => e.name === d.name) !== i);
  if (duplicate) throw new UsageError(`--dataset ${duplicate.name} is given twice`);
  let metricsAt: { host: string; port: number } | undefined;
  if (values.metrics !== undefined) {
    try {
      metricsAt = parseHostPort(values.metrics, '--metrics', true);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }
  // On a terminal (text logs), catch-ups draw bars and log lines print above them.
  const bars = io.errTty && values.log !== 'json' ? new ProgressBars(io.errTty) : undefined;
  const log = logger(bars ? { ...io, err: (text) => bars.log(text) } : io, values.log === 'json');

  const identity = await loadKeysIdentity(values.keys);
  const keyFile = values['network-key'] ?? join(values.keys, NETWORK_KEY_FILE);
  let networkKey: Uint8Array;
  if (values.public) networkKey = PUBLIC_NETWORK_KEY;
  else if (values['network-key'] === undefined && !existsSync(keyFile)) {
    throw new UsageError(`no network key at ${keyFile}: create one with "signet netkey", pass --network-key FILE, or join the public mesh with --public`);
  } else networkKey = await loadNetworkKey(keyFile);

  const dataDir = values.data;
  checkDataDir(dataDir);
  // The store locks the directory (in memory, the lock alone): a second daemon on it fails here,
  // naming the holder's pid, before it could take over the control socket.
  let store: LmdbStore | undefined;
  let lock: string | undefined;
  if (values.memory) {
    prepareDirectory(resolve(dataDir));
    lock = acquireLock(resolve(dataDir));
  } else store = new LmdbStore(dataDir);
  // A signal during startup is kept: the node stops as soon as it has started.
  const stopped = stopSignal(() => log('stopping', {}));
  const events = new DaemonEvents(log, undefined, bars);
  const models = new Map<string, Model>();
  let mesh: Node | undefined;
  let control: ControlServer | undefined;
  let metrics: MetricsServer | undefined;
  try {
    mesh = new Node({ identity, networkKey, listen: values.listen, seeds: values.seed, store, ...(values.advertise.length > 0 ? { advertise: values.advertise } : {}) });
    for (const d of datasets) {
      const model = mesh.dataset(d.name, Model, replicaOf !== undefined ? { replicaOf } : { policy: d.policy });
      models.set(d.name, model);
      events.dataset(d.name, model);
    }
    events.dataset(MEMBERS_DATASET, mesh.membersDataset);
    events.node(mesh);
    await mesh.start();
    await Promise.all([...models.values()].map((m) => m.ready));
    const state: DaemonState = {
      node: mesh, datasets: models, events, dataDir: resolve(dataDir), store: store ? 'lmdb' : 'memory', version: version(), network: values.public ? 'public' : 'private',
      replicaOf: replicaOf ?? null, metrics: null, startedAt: performance.now(),
    };
    if (metricsAt) {
      const all = new Map([...models, [MEMBERS_DATASET, mesh.membersDataset]]);
      metrics = await serveMetrics(metricsRegistry({ node: mesh, datasets: all, events, version: state.version }), metricsAt.host, metricsAt.port)
        .catch((err: unknown) => {
          throw new CliError('ERR_METRICS', `cannot serve metrics on ${values.metrics}: ${(err as Error).message}`);
        });
      state.metrics = metrics.address;
    }
    control = await ControlServer.listen(controlSocketPath(dataDir), controlOps(state));
    log('started', {
      id: mesh.id, address: mesh.address() ?? null, ...(values.advertise.length > 0 ? { advertise: values.advertise } : {}), datasets: datasets.map((d) => d.name), data: state.dataDir,
      control: resolve(control.path), metrics: state.metrics, store: state.store,
    });
    await stopped.signalled;
  } finally {
    stopped.dispose();
    // Control first (its requests use the node), then metrics, the mesh (authenticated closes), the store (flush).
    await control?.close();
    await metrics?.close();
    await mesh?.stop();
    events.flush();
    bars?.stop();
    await store?.close();
    if (lock !== undefined) releaseLock(resolve(dataDir), lock);
  }
  log('stopped', {});
  return EXIT_OK;
}

/** One line per event on stderr: JSON, or `time event key=value ...` with every string a peer
 *  could have chosen printed safely (quoted if it holds control characters). */
function logger(io: CliIo, json: boolean): LogFn {
  return (event, fields) => {
    const time = new Date().toISOString();
    io.err(json
      ? JSON.stringify({ time, event, ...fields })
      : `${time} ${event} ${Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'string' ? printable(v) : safeJson(v)}`).join(' ')}`.trimEnd());
  };
}

/** Resolves on the first SIGINT or SIGTERM; a second one exits the process at once (status 130).
 *  `dispose()` removes the handlers (startup failed: the process ends on its own). */
function stopSignal(onFirst: () => void): { signalled: Promise<void>; dispose: () => void } {
  let dispose = (): void => {};
  const signalled = new Promise<void>((resolve) => {
    const first = (): void => {
      dispose();
      process.once('SIGINT', second);
      process.once('SIGTERM', second);
      onFirst();
      resolve();
    };
    const second = (): never => process.exit(130);
    process.on('SIGINT', first);
    process.on('SIGTERM', first);
    dispose = () => {
      process.off('SIGINT', first);
      process.off('SIGTERM', first);
    };
  });
  return { signalled, dispose };
}
