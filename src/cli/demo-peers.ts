// The demo's in-process actors that do not behave like a daemon: a replication peer speaking the
// wire protocol by hand over a real secure channel and multiplexer (a forger, a withholding relay),
// and an outsider dialing from its own loopback address with the wrong network key.
import { Duplex } from 'node:stream';
import { Socket } from 'node:net';
import { dial } from '../channel/dial.ts';
import type { SecureChannel } from '../channel/secure-channel.ts';
import { tcpTransport, type Transport } from '../channel/transport.ts';
import { parseUpdate, type Update } from '../envelope/update.ts';
import type { Identity } from '../identity/identity.ts';
import { MAX_MESSAGE_BYTES } from '../limits.ts';
import { Mux, type MuxSession } from '../mesh/mux.ts';
import { FrameDecoder, decodeMessage, encodeHello } from '../replication/messages.ts';
import { KeyTableReader } from '../replication/compact.ts';
import { parseHostPort } from '../util/address.ts';
import { within } from './demo-processes.ts';
import { open } from '../core/policy.ts';
import { datasetDescriptor } from '../mesh/datasets.ts';
import { Model } from '../models/model.ts';

/** One replication session opened by hand: what we send is up to us; what the peer sends is kept. */
export interface RawSession {
  /** Updates the peer sent (parsed, signatures not checked: this side only looks). */
  received: Update[];
  /** Resolves when the peer's SYNC arrives (its history is in `received`). */
  synced: Promise<void>;
  /** Sends replication messages (encodeUpdates(...), ...) after our hello. */
  send(messages: Buffer[]): void;
  /** Resolves when the connection has closed (the peer cut us off, or close()). */
  closed: Promise<void>;
  close(): void;
}

/**
 * Dials the member at `address` as `identity` with `networkKey`, opens `dataset` (policy open) and
 * says a hello with an empty digest and no reconciliation: the peer sends its whole history.
 */
export async function openRawSession(options: { identity: Identity; networkKey: Uint8Array; address: string; dataset: string }): Promise<RawSession> {
  const { identity, networkKey, dataset } = options;
  const { host, port } = parseHostPort(options.address, 'address');
  const channel: SecureChannel = await dial({ identity, networkKey, host, port });
  const closed = new Promise<void>((resolve) => channel.once('close', () => resolve()));
  const received: Update[] = [];
  let synced: () => void = () => {};
  const syncedP = new Promise<void>((resolve) => (synced = resolve));
  const decoder = new FrameDecoder(MAX_MESSAGE_BYTES);
  const keys = new KeyTableReader(dataset);
  const stream = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      const frames = decoder.push(chunk);
      if (typeof frames !== 'string') {
        for (const f of frames) {
          const m = decodeMessage(f);
          if (!m.ok) continue;
          if (m.message.type === 'sync') synced();
          if (m.message.type === 'updates') {
            for (const item of m.message.updates) {
              const bytes = keys.expand(item); // in arrival order: an item may name a key
              const u = typeof bytes === 'string' ? null : parseUpdate(bytes);
              if (u?.ok) received.push(u.update);
            }
          }
        }
      }
      callback();
    },
  });
  try {
    const mux = new Mux(channel, { localId: identity.id, remoteId: channel.remote.id, decide: () => null });
    const session = new Promise<MuxSession>((resolve) => mux.once('session', resolve));
    mux.open({ name: dataset, policy: daemonDescriptor(identity), replicaOf: null });
    (await within(session, `the ${dataset} session with ${options.address}`)).attach(stream);
  } catch (err) {
    channel.destroy();
    throw err;
  }
  stream.push(encodeHello({ dataset, id: identity.id, digest: new Map(), meta: null, readable: true, writable: true }));
  return {
    received,
    synced: syncedP,
    send: (messages) => void messages.forEach((m) => stream.push(m)),
    closed,
    close: () => void channel.destroy(),
  };
}

/** What an outsider's dial came to. */
export interface OutsiderResult {
  /** The dial's error code (ERR_HANDSHAKE: the member closed without a word), or 'connected'. */
  outcome: string;
  /** Bytes the member sent it. */
  bytesRead: number;
}

/**
 * Dials `address` from `localAddress` (another loopback address: members never ban the one their
 * peers come from) holding `networkKey`, which is not the mesh's.
 */
export async function dialAsOutsider(options: { identity: Identity; networkKey: Uint8Array; address: string; localAddress: string; timeoutMs: number }): Promise<OutsiderResult> {
  const { host, port } = parseHostPort(options.address, 'address');
  let socket: Socket | undefined;
  // TCP from a chosen local address, otherwise the default transport.
  const transport: Transport = {
    createServer: tcpTransport.createServer,
    connect: (h, p, signal) => new Promise((resolve, reject) => {
      const s = new Socket();
      socket = s;
      const onError = (error: Error): void => reject(error);
      s.once('error', onError);
      signal.addEventListener('abort', () => (s.destroy(), reject(signal.reason)), { once: true });
      s.connect({ host: h, port: p, localAddress: options.localAddress }, () => (s.off('error', onError), resolve(s)));
    }),
  };
  try {
    const channel = await dial({ identity: options.identity, networkKey: options.networkKey, host, port, transport, limits: { handshakeTimeoutMs: options.timeoutMs } });
    channel.destroy();
    return { outcome: 'connected', bytesRead: socket?.bytesRead ?? 0 };
  } catch (err) {
    return { outcome: (err as { code?: string }).code ?? String(err), bytesRead: socket?.bytesRead ?? 0 };
  }
}

/** What a daemon's `--dataset NAME` (an open Model with the defaults) says in its OPEN: a
 *  hand-driven peer offers the same, or the daemon refuses it `config-mismatch`. */
export function daemonDescriptor(identity: Identity): string {
  const model = new Model({ identity });
  try {
    return datasetDescriptor(open(), model.replicationProfile);
  } finally {
    model.dispose();
  }
}
