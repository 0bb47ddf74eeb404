// Test helpers for meshes on 127.0.0.1: start nodes, stop every one of them whatever happens,
// and wait for conditions re-checked on events, with a deadline (never a fixed sleep).
import type { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { dial, Identity, Model, Node, open, owner, type NodeOptions, type SecureChannel } from '../../src/index.ts';
import { datasetDescriptor } from '../../src/mesh/datasets.ts';
import { Mux, type MuxSession } from '../../src/mesh/mux.ts';
import type { OpenInfo } from '../../src/mesh/mux-messages.ts';
import { parseHostPort } from '../../src/util/address.ts';
import { deadline } from '../helpers/streams.ts';

export const networkKey = randomBytes(32);

/** The OPEN descriptor of a default Model under `policy` (`'open'` or `'owner'`), as a Node
 *  sends it: hand-driven peers must offer it to be let in. */
export function modelDescriptor(policy: 'open' | 'owner' = 'open'): string {
  const m = new Model({ identity: Identity.generate() });
  try {
    return datasetDescriptor(policy === 'open' ? open() : owner(), m.replicationProfile);
  } finally {
    m.dispose();
  }
}

/** Options that suit a loopback test: fast rounds and heartbeats, every node from 127.0.0.1. */
export const FAST: Partial<NodeOptions> = {
  gossipIntervalMs: 50,
  heartbeatIntervalMs: 100,
  maxConnectionsPerAddress: 64,
  backoff: { baseMs: 50, maxMs: 400 },
  channelLimits: { handshakeTimeoutMs: 2000 },
};

/** The nodes a test started; `stopAll()` in a finally stops every one. */
export class Cluster {
  readonly nodes: Node[] = [];

  node(options: Partial<NodeOptions> = {}): Node {
    const node = new Node({ identity: Identity.generate(), networkKey, listen: '127.0.0.1:0', ...FAST, ...options });
    this.nodes.push(node);
    return node;
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
  }
}

/**
 * Resolves once `ready()` holds: checked now and after every listed event on every emitter.
 * Rejects with `what` at the deadline.
 */
export function until(what: string, ready: () => boolean, sources: Array<[EventEmitter, string[]]>, ms = 30_000): Promise<void> {
  if (ready()) return Promise.resolve();
  const off: Array<() => void> = [];
  const done = new Promise<void>((resolve) => {
    const check = (): void => {
      if (ready()) resolve();
    };
    for (const [emitter, events] of sources) {
      for (const e of events) {
        emitter.on(e, check);
        off.push(() => emitter.off(e, check));
      }
    }
  });
  return deadline(done, what, ms).finally(() => off.forEach((f) => f()));
}

/** Waits until every model holds `key` with `value`. */
export function converged(models: Model[], key: string, value: unknown, ms?: number): Promise<void> {
  return until(`${key}=${JSON.stringify(value)} on ${models.length} nodes`, () => models.every((m) => m.get(key) === value), models.map((m) => [m, ['update']]), ms);
}

/** Waits until `node` has a connection to each of `ids`. */
export function connectedTo(node: Node, ids: string[], ms?: number): Promise<void> {
  return until(`${node.id.slice(0, 8)} connected to ${ids.length} peers`, () => ids.every((id) => node.peers().some((p) => p.id === id && p.state === 'connected')), [[node, ['peer:up']]], ms);
}

/** A hand-driven peer: a real secure channel and multiplexer to `address`, offering `dataset`
 *  with `info`, so a test controls every byte a hostile member sends. */
export async function rawPeer(address: string, identity: Identity, info: Partial<OpenInfo> & { name: string }, key = networkKey): Promise<{ channel: SecureChannel; mux: Mux; session: Promise<MuxSession> }> {
  const { host, port } = parseHostPort(address, 'address');
  const channel = await dial({ identity, networkKey: key, host, port });
  const mux = new Mux(channel, { localId: identity.id, remoteId: channel.remote.id, decide: () => null });
  // Settles when the session opens, or rejects when the channel closes first (no timer left behind).
  const session = new Promise<MuxSession>((resolve, reject) => {
    mux.once('session', resolve);
    channel.once('close', () => reject(new Error('the channel closed before a session opened')));
  });
  session.catch(() => {}); // a test that never awaits it must not see an unhandled rejection
  mux.open({ policy: modelDescriptor(), replicaOf: null, ...info });
  return { channel, mux, session };
}
