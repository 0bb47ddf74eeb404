// Wire framing: 2-byte big-endian length prefixes (handshake and transport), and the frame
// header inside each encrypted transport plaintext (message / continuation / close / keepalive).
import { ChannelProtocolError, FrameTooLargeError } from '../errors.ts';
import { NOISE_MAX_FRAME } from '../limits.ts';
import { TAGLEN } from './primitives.ts';

/** Allocates a buffer for bytes that have all arrived. Injectable so tests can watch sizes. */
export type Allocate = (size: number) => Uint8Array;
const defaultAllocate: Allocate = (size) => Buffer.allocUnsafe(size);

/** Largest plaintext in one transport frame: 65535 - 16 (spec section 3). */
export const MAX_FRAME_PLAINTEXT = NOISE_MAX_FRAME - TAGLEN;

/**
 * Received chunks shorter than this are copied into a shared buffer of COALESCE_BYTES instead of
 * being held as they are: a peer that sends a frame a byte at a time would otherwise make us hold
 * one Buffer (some 200-500 bytes of heap and RSS) per byte it sent, up to 65537 of them.
 */
export const SMALL_CHUNK_BYTES = 512;
const COALESCE_BYTES = 16 * 1024;

/** Frame types: the first plaintext byte of every transport frame. */
export const FrameType = { message: 1, continuation: 2, close: 3, keepalive: 4 } as const;
/** [type 1][u32 BE total length][first bytes of the message]. */
const MESSAGE_HEADER = 5;
/** [type 2][next bytes of the message]. */
const CONTINUATION_HEADER = 1;

/**
 * Reads length-prefixed frames out of a byte stream delivered in arbitrary chunks. A frame's
 * bytes are copied out only once all of them have arrived, and a declared length over the cap
 * throws as soon as the 2 prefix bytes are in, so nothing is allocated for a claimed size.
 */
export class FrameReader {
  private chunks: Uint8Array[] = [];
  private offset = 0; // read position in chunks[0]
  private length = 0; // unread bytes across chunks
  private tail: Uint8Array | null = null; // our buffer of coalesced small chunks...
  private tailView: Uint8Array | null = null; // ...and its view, while it is the last of `chunks`
  private tailStart = 0;
  private tailEnd = 0;

  constructor(private maxFrame: number, private readonly allocate: Allocate = defaultAllocate) {}

  /** Unread bytes held. */
  get buffered(): number {
    return this.length;
  }

  /** Changes the cap (handshake frames, then transport frames on the same reader). */
  setMaxFrame(maxFrame: number): void {
    this.maxFrame = maxFrame;
  }

  /** Drops every unread byte and the coalescing buffer. */
  clear(): void {
    this.chunks = [];
    this.offset = this.length = 0;
    this.tail = this.tailView = null;
    this.tailStart = this.tailEnd = 0;
  }

  /** Received chunks held (each costs a Buffer's overhead; small ones are coalesced). */
  get held(): number {
    return this.chunks.length;
  }

  /** Adds received bytes: large chunks as they are, small ones copied together (SMALL_CHUNK_BYTES). */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.length += chunk.length;
    const last = this.chunks.length - 1;
    if (chunk.length >= SMALL_CHUNK_BYTES) {
      this.chunks.push(chunk);
      this.tailView = null;
      return;
    }
    let grow = this.tailView !== null && last >= 0 && this.chunks[last] === this.tailView;
    if (this.tail === null || this.tail.length - this.tailEnd < chunk.length) {
      this.tail = Buffer.allocUnsafe(COALESCE_BYTES);
      this.tailStart = this.tailEnd = 0;
      grow = false;
    } else if (!grow) {
      this.tailStart = this.tailEnd; // a new view after the bytes already handed out (never overwritten)
    }
    this.tail.set(chunk, this.tailEnd);
    this.tailEnd += chunk.length;
    const view = this.tail.subarray(this.tailStart, this.tailEnd);
    if (grow) this.chunks[last] = view; // same start: `offset` into it stays valid
    else this.chunks.push(view);
    this.tailView = view;
  }

  private byteAt(index: number): number {
    let i = this.offset + index;
    for (const chunk of this.chunks) {
      if (i < chunk.length) return chunk[i]!;
      i -= chunk.length;
    }
    throw new RangeError('byteAt past the buffered bytes');
  }

  /**
   * The length the next frame declares, once its 2 prefix bytes are in; else null.
   * @throws FrameTooLargeError when it declares more than the cap.
   */
  peekLength(): number | null {
    if (this.length < 2) return null;
    const declared = (this.byteAt(0) << 8) | this.byteAt(1);
    if (declared > this.maxFrame) {
      throw new FrameTooLargeError(`frame declares ${declared} bytes, over the ${this.maxFrame}-byte limit`);
    }
    return declared;
  }

  /**
   * The next complete frame (without its prefix), or null until all its bytes have arrived.
   * @throws FrameTooLargeError when the prefix declares more than the cap.
   */
  next(): Uint8Array | null {
    const declared = this.peekLength();
    if (declared === null || this.length < 2 + declared) return null;
    this.skip(2);
    return this.take(declared);
  }

  /**
   * Like {@link next}, but returns the frame as views into the received chunks, copying
   * nothing (the transport decrypts the parts in place).
   * @throws FrameTooLargeError when the prefix declares more than the cap.
   */
  nextParts(): Uint8Array[] | null {
    const declared = this.peekLength();
    if (declared === null || this.length < 2 + declared) return null;
    this.skip(2);
    const parts: Uint8Array[] = [];
    for (let left = declared; left > 0; ) {
      const chunk = this.chunks[0]!;
      const part = Math.min(left, chunk.length - this.offset);
      parts.push(chunk.subarray(this.offset, this.offset + part));
      left -= part;
      this.skip(part);
    }
    return parts;
  }

  private skip(n: number): void {
    this.length -= n;
    while (n > 0) {
      const first = this.chunks[0]!;
      const available = first.length - this.offset;
      if (n < available) {
        this.offset += n;
        return;
      }
      n -= available;
      this.chunks.shift();
      this.offset = 0;
    }
  }

  private take(n: number): Uint8Array {
    const first = this.chunks[0];
    if (n === 0 || first === undefined) return new Uint8Array(0);
    if (first.length - this.offset >= n) {
      const out = first.subarray(this.offset, this.offset + n);
      this.skip(n);
      return out;
    }
    const out = this.allocate(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[0]!;
      const part = Math.min(n - filled, chunk.length - this.offset);
      out.set(chunk.subarray(this.offset, this.offset + part), filled);
      filled += part;
      this.skip(part);
    }
    return out;
  }
}

/** A 2-byte big-endian length prefix. @throws RangeError past 65535 (a caller bug). */
export function lengthPrefix(length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 0 || length > NOISE_MAX_FRAME) {
    throw new RangeError(`"length" expected an integer in [0, ${NOISE_MAX_FRAME}], got ${length}`);
  }
  return Uint8Array.of(length >>> 8, length & 0xff);
}

/**
 * The plaintexts of the frames carrying one application message, each as parts to encrypt
 * without copying `data`: [header, slice]. Every plaintext is at most 65519 bytes.
 */
export function messageFrames(data: Uint8Array): Uint8Array[][] {
  const first = Math.min(data.length, MAX_FRAME_PLAINTEXT - MESSAGE_HEADER);
  const header = new Uint8Array(MESSAGE_HEADER);
  header[0] = FrameType.message;
  new DataView(header.buffer).setUint32(1, data.length);
  const frames: Uint8Array[][] = [[header, data.subarray(0, first)]];
  const continuation = Uint8Array.of(FrameType.continuation);
  for (let at = first; at < data.length; at += MAX_FRAME_PLAINTEXT - CONTINUATION_HEADER) {
    frames.push([continuation, data.subarray(at, at + MAX_FRAME_PLAINTEXT - CONTINUATION_HEADER)]);
  }
  return frames;
}

/** What one decrypted frame meant. */
export type Received =
  | { readonly kind: 'message'; readonly data: Uint8Array }
  | { readonly kind: 'partial' }
  | { readonly kind: 'close' }
  | { readonly kind: 'keepalive' };

/** Byte `i` of the concatenation of `parts` (i < total length). */
function byteAt(parts: readonly Uint8Array[], i: number): number {
  for (const p of parts) {
    if (i < p.length) return p[i]!;
    i -= p.length;
  }
  return -1;
}

/** The concatenation of `parts` from byte `from` on, as views (no copy). */
function viewsFrom(parts: readonly Uint8Array[], from: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const p of parts) {
    if (from >= p.length) {
      from -= p.length;
      continue;
    }
    out.push(from === 0 ? p : p.subarray(from));
    from = 0;
  }
  return out;
}

/**
 * Reassembles application messages from decrypted frame plaintexts. The declared total is
 * checked against the cap before anything is kept, and the message buffer is allocated only
 * when every byte of it has arrived (a peer that claims 16 MiB and stalls costs what it sent).
 * Plaintexts may come in parts (a frame that spanned transport chunks); a message that fits
 * one part is delivered as it is, anything else is copied exactly once.
 */
export class Reassembler {
  private parts: Uint8Array[] = [];
  private expected = -1; // declared total of the message in progress, -1 when none
  private received = 0;

  constructor(private readonly maxMessageBytes: number, private readonly allocate: Allocate = defaultAllocate) {}

  /** {@link acceptParts} for a plaintext in one piece. */
  accept(plaintext: Uint8Array): Received {
    return this.acceptParts([plaintext]);
  }

  /**
   * Interprets one decrypted frame plaintext, given as parts.
   * @throws FrameTooLargeError for a declared total over the cap; ChannelProtocolError for
   * an unknown type, a bad length, or a continuation out of place.
   */
  acceptParts(plaintext: readonly Uint8Array[]): Received {
    let length = 0;
    for (const p of plaintext) length += p.length;
    const type = byteAt(plaintext, 0);
    if (type === FrameType.message) {
      if (this.expected >= 0) throw new ChannelProtocolError('new message before the previous one was complete');
      if (length < MESSAGE_HEADER) throw new ChannelProtocolError('short message header');
      const total = ((byteAt(plaintext, 1) << 24) >>> 0) + (byteAt(plaintext, 2) << 16) + (byteAt(plaintext, 3) << 8) + byteAt(plaintext, 4);
      if (total > this.maxMessageBytes) {
        throw new FrameTooLargeError(`message declares ${total} bytes, over the ${this.maxMessageBytes}-byte limit`);
      }
      const dataLength = length - MESSAGE_HEADER;
      if (dataLength > total) throw new ChannelProtocolError('message frame longer than its declared total');
      const data = viewsFrom(plaintext, MESSAGE_HEADER);
      if (dataLength === total) return { kind: 'message', data: this.join(data, total) };
      if (dataLength !== MAX_FRAME_PLAINTEXT - MESSAGE_HEADER) throw new ChannelProtocolError('short non-final frame');
      this.expected = total;
      this.received = dataLength;
      this.parts = data;
      return { kind: 'partial' };
    }
    if (type === FrameType.continuation) {
      if (this.expected < 0) throw new ChannelProtocolError('continuation without a message');
      const dataLength = length - CONTINUATION_HEADER;
      if (dataLength === 0 || this.received + dataLength > this.expected) {
        throw new ChannelProtocolError('continuation does not fit the declared total');
      }
      this.received += dataLength;
      this.parts.push(...viewsFrom(plaintext, CONTINUATION_HEADER));
      if (this.received < this.expected) {
        if (dataLength !== MAX_FRAME_PLAINTEXT - CONTINUATION_HEADER) throw new ChannelProtocolError('short non-final frame');
        return { kind: 'partial' };
      }
      const out = this.join(this.parts, this.expected);
      this.parts = [];
      this.expected = -1;
      return { kind: 'message', data: out };
    }
    if (length !== 1) throw new ChannelProtocolError(`frame type ${String(type)} with a bad length`);
    if (type === FrameType.close) {
      if (this.expected >= 0) throw new ChannelProtocolError('close in the middle of a message');
      return { kind: 'close' };
    }
    if (type === FrameType.keepalive) return { kind: 'keepalive' };
    throw new ChannelProtocolError(`unknown frame type ${String(type)}`);
  }

  /** One buffer of `total` bytes: the single part itself, or one allocation and one copy. */
  private join(parts: readonly Uint8Array[], total: number): Uint8Array {
    if (parts.length === 1) return parts[0]!;
    const out = this.allocate(total);
    let at = 0;
    for (const part of parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  }

  /** Bytes held for a message in progress. */
  get pending(): number {
    return this.received * (this.expected >= 0 ? 1 : 0);
  }
}
