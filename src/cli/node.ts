// signet node: the daemon. A mesh Node on an LmdbStore (or in memory), its datasets from the
// command line, one log line per event on stderr, and a clean stop on SIGINT/SIGTERM.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { open, owner, writers, type WritePolicy } from '../core/policy.ts';
import { loadIdentity, loadNetworkKey } from '../identity/key-files.ts';
import { isNodeId, shortId } from '../identity/node-id.ts';
import { Node, PUBLIC_NETWORK_KEY } from '../mesh/node.ts';
import { Model } from '../models/model.ts';
import { LmdbStore } from '../store/lmdb.ts';
import type { Store } from '../store/store.ts';
import { type CliIo, parse, UsageError, EXIT_OK } from './io.ts';
import { DEFAULT_KEYS_DIR, IDENTITY_FILE, NETWORK_KEY_FILE } from './keys.ts';

export const nodeHelp = `usage: signet node [--listen HOST:PORT] [--seed HOST:PORT[#ID]]... [--data DIR] [--keys DIR]
                   [--network-key FILE | --public] [--dataset NAME[:POLICY]]... [--replica-of ID]
                   [--log text|json]
Runs a mesh node until SIGINT or SIGTERM (a second signal exits at once). Logs one line per
event on stderr (started, peer up/down/banned, member new/dead/alive).
  --listen HOST:PORT     accept connections here (port 0 picks one; the 'started' line says which)
  --seed HOST:PORT[#ID]  a member to join through; #ID pins the node id it must prove (repeatable)
  --data DIR             keep every dataset in an LMDB store in DIR (default: memory only)
  --keys DIR             identity and network key directory (default ${DEFAULT_KEYS_DIR})
  --network-key FILE     the network key (default DIR/${NETWORK_KEY_FILE} from --keys)
  --public               join the public mesh (all-zero network key): policies must be explicit
  --dataset NAME[:POLICY]  host a Model dataset; POLICY is open, owner or writers:ID,ID (repeatable)
  --replica-of ID        every dataset follows this master: its updates only, no local writes
  --log text|json        log format (default text)

example:
  signet node --listen 127.0.0.1:7420 --dataset chat:owner
  signet node --listen 127.0.0.1:7421 --seed 127.0.0.1:7420 --dataset chat:owner`;

const options = {
  listen: { type: 'string' },
  seed: { type: 'string', multiple: true, default: [] as string[] },
  data: { type: 'string' },
  keys: { type: 'string', default: DEFAULT_KEYS_DIR },
  'network-key': { type: 'string' },
  public: { type: 'boolean', default: false },
  dataset: { type: 'string', multiple: true, default: [] as string[] },
  'replica-of': { type: 'string' },
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
  const json = values.log === 'json';
  const log = (event: string, fields: Record<string, unknown>): void => {
    io.err(json
      ? JSON.stringify({ time: new Date().toISOString(), event, ...fields })
      : `${new Date().toISOString()} ${event} ${Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ')}`);
  };

  const identity = await loadIdentity(join(values.keys, IDENTITY_FILE));
  const keyFile = values['network-key'] ?? join(values.keys, NETWORK_KEY_FILE);
  let networkKey: Uint8Array;
  if (values.public) networkKey = PUBLIC_NETWORK_KEY;
  else if (values['network-key'] === undefined && !existsSync(keyFile)) {
    throw new UsageError(`no network key at ${keyFile}: create one with "signet netkey", pass --network-key FILE, or join the public mesh with --public`);
  } else networkKey = await loadNetworkKey(keyFile);

  const store: Store | undefined = values.data === undefined ? undefined : new LmdbStore(values.data);
  const mesh = new Node({ identity, networkKey, listen: values.listen, seeds: values.seed, store });
  try {
    for (const d of datasets) {
      mesh.dataset(d.name, Model, replicaOf !== undefined ? { replicaOf } : { policy: d.policy });
    }
    const short = (id: string | undefined): string => (id ? shortId(id) : '-');
    mesh.on('peer:up', (p) => log('peer:up', { peer: p.id, address: p.address, direction: p.direction }));
    mesh.on('peer:down', (p) => log('peer:down', { peer: p.id, address: p.address }));
    mesh.on('peer:banned', (b) => log('peer:banned', { peer: b.id ?? null, address: b.address ?? null, reason: b.reason }));
    mesh.on('member:new', (m) => log('member:new', { member: m.id, addresses: m.addresses, state: m.state }));
    mesh.on('member:dead', (m) => log('member:dead', { member: m.id, short: short(m.id) }));
    mesh.on('member:alive', (m) => log('member:alive', { member: m.id, short: short(m.id) }));
    mesh.on('dataset:refused', (r) => log('dataset:refused', r));
    await mesh.start();
    log('started', { id: mesh.id, address: mesh.address() ?? null, datasets: datasets.map((d) => d.name) });
    await stopSignal(() => {
      log('stopping', {});
    });
  } finally {
    await mesh.stop();
    await store?.close();
  }
  log('stopped', {});
  return EXIT_OK;
}

/** Resolves on the first SIGINT or SIGTERM; a second one exits the process at once (status 130). */
function stopSignal(onFirst: () => void): Promise<void> {
  return new Promise((resolve) => {
    const first = (): void => {
      process.off('SIGINT', first);
      process.off('SIGTERM', first);
      process.once('SIGINT', second);
      process.once('SIGTERM', second);
      onFirst();
      resolve();
    };
    const second = (): never => process.exit(130);
    process.on('SIGINT', first);
    process.on('SIGTERM', first);
  });
}
