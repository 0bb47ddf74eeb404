// Checks 1-4 of signet's single Ed25519 acceptance rule (DESIGN.md, "Signatures"), run in
// front of every backend so that all nodes accept exactly the same signatures.
// Check 5 (the cofactorless equation) is the backend's job.

/** The 8 points of small order (the torsion subgroup), canonically encoded, as hex. Any
 *  other encoding of them is non-canonical and fails check 3 first. test/identity proves
 *  this list is exactly [k]T for k = 0..7 with T of order 8. */
export const SMALL_ORDER_ENCODINGS: readonly string[] = [
  '0100000000000000000000000000000000000000000000000000000000000000', // identity
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // order 2: (0, -1)
  '0000000000000000000000000000000000000000000000000000000000000000', // order 4
  '0000000000000000000000000000000000000000000000000000000000000080', // order 4
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a', // order 8
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa', // order 8
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', // order 8
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85', // order 8
];
const smallOrder = SMALL_ORDER_ENCODINGS.map((hex) => Uint8Array.from(Buffer.from(hex, 'hex')));

/** Field prime p = 2^255 - 19, little-endian bytes. */
const P_LE = Uint8Array.from([
  0xed, ...new Array<number>(30).fill(0xff), 0x7f,
]);
/** Group order L = 2^252 + 27742317777372353535851937790883648493, little-endian bytes. */
const L_LE = Uint8Array.from(Buffer.from('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010', 'hex'));

/** a < b for 32-byte little-endian integers, a read at `at` (`topMask` masks a's top byte, e.g.
 *  0x7f to drop a sign bit). Offsets rather than views: these run on every verification. */
function lessThanLE(a: Uint8Array, at: number, b: Uint8Array, topMask = 0xff): boolean {
  for (let i = 31; i >= 0; i--) {
    const x = i === 31 ? a[at + i]! & topMask : a[at + i]!;
    const y = b[i]!;
    if (x !== y) return x < y;
  }
  return false;
}

/** True if y is 1 or p - 1: the only y values whose x is 0 (y^2 = 1). */
function isXZero(point: Uint8Array, at: number): boolean {
  const b0 = point[at]!;
  for (let i = 1; i < 31; i++) if (point[at + i] !== (b0 === 1 ? 0 : 0xff)) return false;
  const top = point[at + 31]! & 0x7f;
  return (b0 === 1 && top === 0) || (b0 === 0xec && top === 0x7f);
}

/** Check 3: y < p, and no x = 0 with the sign bit set (the 32 bytes of `point` at `at`). */
export function isCanonicalPoint(point: Uint8Array, at = 0): boolean {
  if (!lessThanLE(point, at, P_LE, 0x7f)) return false;
  return !((point[at + 31]! & 0x80) !== 0 && isXZero(point, at));
}

/** Check 4: the encoding (the 32 bytes of `point` at `at`) is one of the small-order points
 *  (after check 3, the only encodings). */
export function isSmallOrderEncoding(point: Uint8Array, at = 0): boolean {
  // Byte comparison without allocating: on the hot path of every verification.
  outer: for (const candidate of smallOrder) {
    for (let i = 0; i < 32; i++) if (point[at + i] !== candidate[i]) continue outer;
    return true;
  }
  return false;
}

/** Check 2: S < L, S read little-endian from signature bytes 32..63. */
export function isCanonicalScalar(signature: Uint8Array): boolean {
  return lessThanLE(signature, 32, L_LE);
}

/**
 * Checks 1-4 of the acceptance rule. True when the signature may go on to the equation.
 * Never throws on byte input of any length.
 */
export function passesPrechecks(signature: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== 64 || publicKey.length !== 32) return false;
  if (!isCanonicalScalar(signature)) return false;
  // R is the signature's first 32 bytes.
  if (!isCanonicalPoint(publicKey) || !isCanonicalPoint(signature, 0)) return false;
  return !isSmallOrderEncoding(publicKey) && !isSmallOrderEncoding(signature, 0);
}
