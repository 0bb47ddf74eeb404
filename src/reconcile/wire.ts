// Byte-level reading and writing for reconciliation messages: LEB128 varints (canonical, at most
// 8 bytes) and fixed fields. A reader never reads past its end and never allocates for a length.

import { ProtocolError } from '../errors.ts';

/** Why a reconciliation message was refused: the `reason` of the ProtocolError thrown. */
export type ReconcileReason =
  | 'reconcile-truncated'
  | 'reconcile-too-large'
  | 'reconcile-bad-format'
  | 'reconcile-bad-varint'
  | 'reconcile-bad-bound'
  | 'reconcile-bad-mode'
  | 'reconcile-non-canonical'
  | 'reconcile-too-many-ranges'
  | 'reconcile-too-many-ids'
  | 'reconcile-duplicate-id'
  | 'reconcile-trailing-bytes'
  | 'reconcile-bad-want'
  | 'reconcile-rounds'
  | 'reconcile-unexpected';

/** The error for a peer's reconciliation message that breaks the protocol. */
export function refuse(reason: ReconcileReason, detail: string): ProtocolError {
  return new ProtocolError(reason, `${reason}: ${detail}`);
}

/** Largest value a varint may carry: 2^53 (a version delta of MAX_SAFE_INTEGER, plus one). */
const MAX_VARINT = 2 ** 53;

/** Reads fields from a peer's message; every failure is a ProtocolError. */
export class Reader {
  private offset = 0;
  constructor(private readonly bytes: Uint8Array) {}

  get remaining(): number {
    return this.bytes.length - this.offset;
  }

  byte(): number {
    if (this.offset >= this.bytes.length) throw refuse('reconcile-truncated', 'message ends inside a field');
    return this.bytes[this.offset++]!;
  }

  /** A canonical LEB128 varint no larger than `max`; a larger one is refused `reason`, naming `what`. */
  varint(max: number, reason: ReconcileReason, what: string): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; ; i++) {
      if (i === 8) throw refuse('reconcile-bad-varint', 'varint longer than 8 bytes');
      const b = this.byte();
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (b === 0 && i > 0) throw refuse('reconcile-bad-varint', 'varint with a redundant zero byte');
        break;
      }
      scale *= 128;
    }
    if (value > max || value > MAX_VARINT) throw refuse(reason, `${what} ${value} over the limit ${max}`);
    return value;
  }

  /** A view of the next `length` bytes (no copy); `length` is checked against what is left first. */
  take(length: number): Uint8Array {
    if (length > this.remaining) throw refuse('reconcile-truncated', `field of ${length} bytes, ${this.remaining} left`);
    const out = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return out;
  }
}

/** Builds a message in a growable buffer, with checkpoints to take back a range that did not fit. */
export class Writer {
  private buffer = new Uint8Array(256);
  length = 0;

  private reserve(extra: number): void {
    if (this.length + extra <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < this.length + extra) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buffer.subarray(0, this.length));
    this.buffer = next;
  }

  byte(value: number): void {
    this.reserve(1);
    this.buffer[this.length++] = value;
  }

  /** LEB128 of a safe integer >= 0. */
  varint(value: number): void {
    this.reserve(8);
    while (value >= 0x80) {
      this.buffer[this.length++] = (value % 0x80) | 0x80;
      value = Math.floor(value / 0x80);
    }
    this.buffer[this.length++] = value;
  }

  bytes(data: Uint8Array): void {
    this.reserve(data.length);
    this.buffer.set(data, this.length);
    this.length += data.length;
  }

  /** A copy of what was written. */
  finish(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }
}

/** Bytes of `value` as a varint. */
export function varintLength(value: number): number {
  let n = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 0x80);
    n++;
  }
  return n;
}
