// A binary heap with index tracking, so an item whose priority changed can be fixed in place
// (Events keeps one per source and one of sources, for fair compaction).

/** A binary heap: `before(a, b)` is true when `a` must come out first. `moved` is told every
 *  item's new index, so a caller can {@link fix} an item whose priority changed. */
export class Heap<T> {
  readonly items: T[] = [];
  constructor(private readonly before: (a: T, b: T) => boolean, private readonly moved: (item: T, index: number) => void = () => {}) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    this.items.push(item);
    this.up(this.items.length - 1);
  }

  pop(): T | undefined {
    return this.items.length === 0 ? undefined : this.removeAt(0);
  }

  removeAt(index: number): T {
    const items = this.items;
    const out = items[index]!;
    const last = items.pop()!;
    if (index < items.length) {
      items[index] = last;
      this.fix(index);
    }
    return out;
  }

  /** Restores the heap after the item at `index` changed priority (either way). */
  fix(index: number): void {
    this.down(this.up(index));
  }

  private up(i: number): number {
    const items = this.items;
    const item = items[i]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(item, items[parent]!)) break;
      this.place(items[parent]!, i);
      i = parent;
    }
    this.place(item, i);
    return i;
  }

  private down(i: number): void {
    const items = this.items;
    const item = items[i]!;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= items.length) break;
      if (child + 1 < items.length && this.before(items[child + 1]!, items[child]!)) child++;
      if (!this.before(items[child]!, item)) break;
      this.place(items[child]!, i);
      i = child;
    }
    this.place(item, i);
  }

  private place(item: T, index: number): void {
    this.items[index] = item;
    this.moved(item, index);
  }
}
