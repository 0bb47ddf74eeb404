// CBOR written and read by hand, for the fuzz properties: any value in any head width (valid,
// not the shortest form), and a plain reference decoder to compare cbor-x with.
import fc from 'fast-check';
import type { Value } from '../../src/envelope/cbor.ts';
import { head } from './arbitraries.ts';

/** Head widths to cycle through: 0 is minimal, else 1, 2, 4 or 8 bytes (RFC 8949 allows all). */
export const headWidths = fc.array(fc.constantFrom(0 as const, 0 as const, 1 as const, 2 as const, 4 as const, 8 as const), { minLength: 1, maxLength: 8 });

/**
 * Encodes a signet value as CBOR whose heads (lengths, counts, integers) take the given widths
 * in turn: valid, well-formed CBOR of the same value, just not the shortest form. Floats are
 * written as float64.
 */
export function encodeWide(v: Value, widths: readonly (0 | 1 | 2 | 4 | 8)[]): Uint8Array {
  const out: Uint8Array[] = [];
  let i = 0;
  const h = (major: number, n: number | bigint) => out.push(head(major, n, widths[i++ % widths.length]!));
  const walk = (x: Value): void => {
    if (x === null) out.push(Uint8Array.of(0xf6));
    else if (x === true || x === false) out.push(Uint8Array.of(x ? 0xf5 : 0xf4));
    else if (typeof x === 'number') {
      if (Number.isSafeInteger(x)) h(x < 0 ? 1 : 0, x < 0 ? -1 - x : x);
      else {
        const f = new Uint8Array(9);
        f[0] = 0xfb;
        new DataView(f.buffer).setFloat64(1, x);
        out.push(f);
      }
    } else if (typeof x === 'string') {
      const b = Buffer.from(x);
      h(3, b.length);
      out.push(b);
    } else if (x instanceof Uint8Array) {
      h(2, x.length);
      out.push(x);
    } else if (Array.isArray(x)) {
      h(4, x.length);
      x.forEach(walk);
    } else {
      const keys = Object.keys(x);
      h(5, keys.length);
      for (const k of keys) {
        walk(k);
        walk(x[k]!);
      }
    }
  };
  walk(v);
  return Buffer.concat(out);
}

// ---- a reference decoder -----------------------------------------------------------------------

/**
 * A plain CBOR decoder for the subset the guard admits (RFC 8949 section 3), written for the
 * tests: the oracle cbor-x's output is compared with. Assumes the guard accepted `bytes`.
 */
export function referenceDecode(bytes: Uint8Array): Value {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }); // keep a leading U+FEFF: it is text
  let pos = 0;
  const item = (): Value => {
    const initial = bytes[pos++]!;
    const major = initial >> 5;
    const info = initial & 31;
    if (major === 7) {
      if (info === 20) return false;
      if (info === 21) return true;
      if (info === 22) return null;
      const size = 1 << (info - 24);
      const at = pos;
      pos += size;
      if (info === 25) return halfFloat(view.getUint16(at));
      return info === 26 ? view.getFloat32(at) : view.getFloat64(at);
    }
    let n = info;
    if (info >= 24) {
      const size = 1 << (info - 24);
      n = 0;
      for (let i = 0; i < size; i++) n = n * 256 + bytes[pos++]!;
    }
    switch (major) {
      case 0: return n;
      case 1: return -1 - n;
      case 2: return bytes.slice(pos, (pos += n));
      case 3: return utf8.decode(bytes.subarray(pos, (pos += n)));
      case 4: return Array.from({ length: n }, item);
      default: {
        const map: Record<string, Value> = {};
        for (let i = 0; i < n; i++) {
          const key = item() as string;
          map[key] = item();
        }
        return map;
      }
    }
  };
  return item();
}

function halfFloat(h: number): number {
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  const sign = h & 0x8000 ? -1 : 1;
  return exp === 0 ? sign * frac * 2 ** -24 : sign * (1 + frac / 1024) * 2 ** (exp - 15);
}
