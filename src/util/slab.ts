// Views cut from shared chunks: many small byte arrays in one ArrayBuffer, where one ArrayBuffer
// each would cost an allocation, a heap object and a malloc'd backing store per array.

/**
 * Hands out fresh, zero-filled, non-overlapping views of a shared chunk. A chunk is never reused:
 * once full it is let go, and freed when no view of it is reachable any more. So each view is
 * its owner's alone, and whoever keeps one view keeps its whole chunk: views must be short-lived,
 * or copied out (see compactUpdate) before they are kept for long.
 */
export class Slab {
  private chunk: Uint8Array | null = null;
  private used = 0;

  /**
   * @param chunkBytes size of each chunk; requests above an eighth of it get an array of their own.
   */
  constructor(private readonly chunkBytes: number) {}

  /** A view of `n` fresh bytes, followed in its buffer by `spare` more bytes reserved for it. */
  take(n: number, spare = 0): Uint8Array {
    const total = n + spare;
    if (total > this.chunkBytes >> 3) return new Uint8Array(new ArrayBuffer(total), 0, n);
    if (this.chunk === null || this.used + total > this.chunkBytes) {
      this.chunk = new Uint8Array(this.chunkBytes);
      this.used = 0;
    }
    const out = this.chunk.subarray(this.used, this.used + n);
    this.used += total;
    return out;
  }
}
