// The multiplexer's wire messages: one per secure-channel message, a type byte, a 16-bit
// channel number, then fixed fields. Hand-encoded and read by structure, every length checked.
import { isDatasetName } from '../envelope/update.ts';
import { isNodeId, NODE_ID_LENGTH, type NodeId } from '../identity/node-id.ts';
import { MUX_MAX_CONTROL_BYTES, MUX_MAX_DATA_BYTES } from '../limits.ts';

/** Version of the multiplexer protocol, carried in its hello. */
export const MUX_VERSION = 1;

/** Message types. Channel numbers are the opener's: DATA, END and CLOSE name the sender's own
 *  channel; ACCEPT, REFUSE and CREDIT name a channel the recipient opened. */
export const MuxType = { hello: 1, open: 2, accept: 3, refuse: 4, data: 5, credit: 6, end: 7, close: 8 } as const;

/** What an OPEN says about the dataset the opener hosts. */
export interface OpenInfo {
  name: string;
  /** The opener's write policy, as a comparable descriptor (see policyDescriptor in node.ts). */
  policy: string;
  /** The master this opener follows, when its copy is a replica; null otherwise. */
  replicaOf: NodeId | null;
}

export type MuxMessage =
  | { type: 'hello'; version: number; window: number; id: string }
  | { type: 'open'; channel: number; info: OpenInfo }
  | { type: 'accept'; channel: number }
  | { type: 'refuse'; channel: number; reason: string }
  | { type: 'data'; channel: number; payload: Buffer }
  | { type: 'credit'; channel: number; bytes: number }
  | { type: 'end'; channel: number }
  | { type: 'close'; channel: number };

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();

function header(type: number, channel: number, extra: number): Buffer {
  const b = Buffer.allocUnsafe(3 + extra);
  b[0] = type;
  b.writeUInt16BE(channel, 1);
  return b;
}

/** HELLO: [1][version u8][window u32][node id, 52 ASCII bytes]. */
export function encodeHello(window: number, id: NodeId): Buffer {
  const b = Buffer.allocUnsafe(6 + NODE_ID_LENGTH);
  b[0] = MuxType.hello;
  b[1] = MUX_VERSION;
  b.writeUInt32BE(window, 2);
  b.write(id, 6, 'latin1');
  return b;
}

/** Longest policy descriptor in an OPEN, in UTF-16 code units (policyDescriptor stays under it). */
export const MAX_POLICY_LENGTH = 128;

/** What is wrong with an OPEN's fields, or null: the one rule for what we send and what we accept. */
function openInfoFault(info: OpenInfo): string | null {
  if (!isDatasetName(info.name)) return 'an invalid dataset name';
  if (info.policy.length === 0 || info.policy.length > MAX_POLICY_LENGTH) return 'an invalid policy';
  if (info.replicaOf !== null && !isNodeId(info.replicaOf)) return 'a replicaOf that is not a node id';
  return null;
}

/**
 * OPEN: [2][channel u16] then three strings, each [length u16][UTF-8]: name, policy, replicaOf ('' for none).
 * @throws RangeError for fields the peer would refuse (it would cut us off).
 */
export function encodeOpen(channel: number, info: OpenInfo): Buffer {
  const fault = openInfoFault(info);
  if (fault !== null) throw new RangeError(`"info" is an OPEN with ${fault}`);
  const parts = [info.name, info.policy, info.replicaOf ?? ''].map((s) => encoder.encode(s));
  const b = header(MuxType.open, channel, parts.reduce((n, p) => n + 2 + p.length, 0));
  let at = 3;
  for (const p of parts) {
    b.writeUInt16BE(p.length, at);
    b.set(p, at + 2);
    at += 2 + p.length;
  }
  if (b.length > MUX_MAX_CONTROL_BYTES) throw new RangeError(`an OPEN of ${b.length} bytes exceeds MUX_MAX_CONTROL_BYTES`);
  return b;
}

export const encodeAccept = (channel: number): Buffer => header(MuxType.accept, channel, 0);
export const encodeEnd = (channel: number): Buffer => header(MuxType.end, channel, 0);
export const encodeClose = (channel: number): Buffer => header(MuxType.close, channel, 0);

/** Longest refusal reason, in bytes. */
export const MAX_REFUSE_REASON = 64;

/** True for a refusal reason the peer accepts: 1 to MAX_REFUSE_REASON printable ASCII characters. */
const isRefuseReason = (reason: string): boolean => reason.length > 0 && reason.length <= MAX_REFUSE_REASON && /^[\x20-\x7e]+$/.test(reason);

/**
 * REFUSE: [4][channel u16][reason, ASCII].
 * @throws RangeError for a reason the peer would refuse (empty, longer than MAX_REFUSE_REASON, not printable ASCII).
 */
export function encodeRefuse(channel: number, reason: string): Buffer {
  if (!isRefuseReason(reason)) throw new RangeError(`"reason" expected 1-${MAX_REFUSE_REASON} printable ASCII characters, got ${JSON.stringify(reason.slice(0, 80))}`);
  const b = header(MuxType.refuse, channel, reason.length);
  b.write(reason, 3, 'latin1');
  return b;
}

/** CREDIT: [6][channel u16][bytes u32]. */
export function encodeCredit(channel: number, bytes: number): Buffer {
  const b = header(MuxType.credit, channel, 4);
  b.writeUInt32BE(bytes, 3);
  return b;
}

/** DATA: [5][channel u16][payload]. */
export function encodeData(channel: number, payload: Uint8Array): Buffer {
  const b = header(MuxType.data, channel, payload.length);
  b.set(payload, 3);
  return b;
}

/**
 * Reads one message by its structure. Returns a string naming the fault for anything that is
 * not exactly a message (wrong length, bad UTF-8, unknown type): the peer is then cut off.
 * A DATA payload is a view into `bytes`, never copied.
 */
export function decodeMuxMessage(bytes: Buffer): MuxMessage | string {
  if (bytes.length < 3) return `a ${bytes.length}-byte mux message is too short`;
  const type = bytes[0]!;
  if (type === MuxType.hello) {
    if (bytes.length !== 6 + NODE_ID_LENGTH) return `a hello of ${bytes.length} bytes`;
    return { type: 'hello', version: bytes[1]!, window: bytes.readUInt32BE(2), id: bytes.toString('latin1', 6) };
  }
  const channel = bytes.readUInt16BE(1);
  switch (type) {
    case MuxType.data: {
      const payload = bytes.subarray(3);
      if (payload.length === 0 || payload.length > MUX_MAX_DATA_BYTES) return `a DATA payload of ${payload.length} bytes`;
      return { type: 'data', channel, payload };
    }
    case MuxType.credit:
      if (bytes.length !== 7) return `a CREDIT of ${bytes.length} bytes`;
      return { type: 'credit', channel, bytes: bytes.readUInt32BE(3) };
    case MuxType.accept:
    case MuxType.end:
    case MuxType.close:
      if (bytes.length !== 3) return `a ${type === MuxType.accept ? 'ACCEPT' : type === MuxType.end ? 'END' : 'CLOSE'} of ${bytes.length} bytes`;
      return { type: type === MuxType.accept ? 'accept' : type === MuxType.end ? 'end' : 'close', channel };
    case MuxType.refuse: {
      const reason = bytes.subarray(3);
      if (reason.length === 0 || reason.length > MAX_REFUSE_REASON || reason.some((c) => c < 0x20 || c > 0x7e)) return 'a REFUSE with a bad reason';
      return { type: 'refuse', channel, reason: reason.toString('latin1') };
    }
    case MuxType.open:
      return decodeOpen(bytes, channel);
    default:
      return `unknown mux message type ${type}`;
  }
}

function decodeOpen(bytes: Buffer, channel: number): MuxMessage | string {
  if (bytes.length > MUX_MAX_CONTROL_BYTES) return `an OPEN of ${bytes.length} bytes`;
  const strings: string[] = [];
  let at = 3;
  for (let i = 0; i < 3; i++) {
    if (at + 2 > bytes.length) return 'a truncated OPEN';
    const length = bytes.readUInt16BE(at);
    if (at + 2 + length > bytes.length) return 'a truncated OPEN';
    try {
      strings.push(strictUtf8.decode(bytes.subarray(at + 2, at + 2 + length)));
    } catch {
      return 'an OPEN with invalid UTF-8';
    }
    at += 2 + length;
  }
  if (at !== bytes.length) return 'an OPEN with trailing bytes';
  const [name, policy, replicaOf] = strings as [string, string, string];
  const info: OpenInfo = { name, policy, replicaOf: replicaOf === '' ? null : (replicaOf as NodeId) };
  const fault = openInfoFault(info);
  return fault === null ? { type: 'open', channel, info } : `an OPEN with ${fault}`;
}
