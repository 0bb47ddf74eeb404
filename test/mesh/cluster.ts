// Test helpers for meshes on 127.0.0.1: start nodes, stop every one of them whatever happens,
// and wait for conditions re-checked on events, with a deadline (never a fixed sleep).
import type { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { Identity, Model, Node, type NodeOptions } from '../../src/index.ts';
import { deadline } from '../helpers/streams.ts';

export const networkKey = randomBytes(32);

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
