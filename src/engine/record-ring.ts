import type { RingRows } from "./engine-snapshot.js";

/**
 * The last `capacity` rows of `width` numbers, in one preallocated Float64Array: push() is O(1) and the memory
 * is bounded, so the engine can record every step whether or not anyone reads. Rows are numbered from 0 in push
 * order; a reader asks for the rows from the number it has not seen yet, and gets those still retained.
 */
export class RecordRing<Row extends number[]> {
  private readonly data: Float64Array;
  private count = 0;

  constructor(
    readonly capacity: number,
    private readonly width: number,
  ) {
    this.data = new Float64Array(capacity * width);
  }

  /** Rows pushed since construction, the overwritten ones included. */
  get length(): number {
    return this.count;
  }

  push(row: Readonly<Row>): void {
    this.data.set(row, (this.count % this.capacity) * this.width);
    this.count++;
  }

  /** The retained rows numbered `from` and later, oldest first. */
  since(from: number): RingRows<Row> {
    const first = Math.max(from, this.count - this.capacity, 0);
    const rows: Row[] = [];
    for (let n = first; n < this.count; n++) {
      const at = (n % this.capacity) * this.width;
      rows.push(Array.from(this.data.subarray(at, at + this.width)) as Row);
    }
    return { first, next: this.count, rows };
  }
}
