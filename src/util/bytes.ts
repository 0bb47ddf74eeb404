// Input checks at the edges (named arguments, TypeError vs RangeError) and small byte
// helpers shared by every layer.

/** Throws TypeError unless `value` is a Uint8Array; RangeError if `length` is given and differs. */
export function assertBytes(value: unknown, name: string, length?: number): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`"${name}" expected Uint8Array, got ${describe(value)}`);
  }
  if (length !== undefined && value.length !== length) {
    throw new RangeError(`"${name}" expected Uint8Array of length ${length}, got length=${value.length}`);
  }
}

/** Throws TypeError unless `value` is a string; RangeError if empty or longer than `maxLength`. */
export function assertString(value: unknown, name: string, maxLength = Infinity): asserts value is string {
  if (typeof value !== 'string') throw new TypeError(`"${name}" expected string, got ${describe(value)}`);
  if (value.length === 0 || value.length > maxLength) {
    throw new RangeError(`"${name}" expected a string of 1..${maxLength} characters, got length=${value.length}`);
  }
}

/** Throws unless `value` is an integer in [min, max]. */
export function assertInteger(value: unknown, name: string, min: number, max: number): asserts value is number {
  if (typeof value !== 'number') throw new TypeError(`"${name}" expected number, got ${describe(value)}`);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`"${name}" expected an integer in [${min}, ${max}], got ${value}`);
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value === 'object' ? (value.constructor?.name ?? 'object') : typeof value;
}

const textEncoder = new TextEncoder();
/** UTF-8 bytes of a string. */
export const utf8 = (text: string): Uint8Array => textEncoder.encode(text);

/** Concatenates byte arrays into one new array. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** Byte equality (not constant time: use node:crypto timingSafeEqual for secrets). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Lexicographic comparison of byte strings: negative, zero or positive. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** Lower-case hex of bytes. */
export const toHex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex');

/** Bytes of a hex string; throws RangeError on odd length or a non-hex digit. */
export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new RangeError('"hex" expected an even-length hex string');
  return new Uint8Array(Buffer.from(hex, 'hex'));
}
