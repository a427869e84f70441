const NONE = -1;

/**
 * The free blocks, in the order they will be reused: the head is taken first. A doubly linked list
 * threaded through two arrays indexed by block id, so taking a cached block back out of the middle
 * (a prefix hit) is O(1) and nothing is allocated after construction.
 *
 * Layout: prev[id] / next[id] = neighbouring block ids, NONE at the ends; queued[id] = 1 while id is in the list.
 */
export class FreeBlockQueue {
  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  private readonly queued: Uint8Array;
  private head = NONE;
  private tail = NONE;
  private count = 0;

  /** Starts holding `blockIds` in the given order. */
  constructor(capacity: number, blockIds: Iterable<number>) {
    this.prev = new Int32Array(capacity).fill(NONE);
    this.next = new Int32Array(capacity).fill(NONE);
    this.queued = new Uint8Array(capacity);
    for (const id of blockIds) this.append(id);
  }

  get length(): number {
    return this.count;
  }

  has(id: number): boolean {
    return this.queued[id] === 1;
  }

  popLeft(): number {
    const id = this.head;
    if (id === NONE) throw new Error("FreeBlockQueue: popLeft on an empty queue");
    this.remove(id);
    return id;
  }

  append(id: number): void {
    this.checkNotQueued(id);
    this.prev[id] = this.tail;
    this.next[id] = NONE;
    if (this.tail === NONE) this.head = id;
    else this.next[this.tail] = id;
    this.tail = id;
    this.queued[id] = 1;
    this.count++;
  }

  prepend(id: number): void {
    this.checkNotQueued(id);
    this.prev[id] = NONE;
    this.next[id] = this.head;
    if (this.head === NONE) this.tail = id;
    else this.prev[this.head] = id;
    this.head = id;
    this.queued[id] = 1;
    this.count++;
  }

  remove(id: number): void {
    if (this.queued[id] !== 1) throw new Error(`FreeBlockQueue: block ${id} is not in the queue`);
    const p = this.prev[id];
    const n = this.next[id];
    if (p === NONE) this.head = n;
    else this.next[p] = n;
    if (n === NONE) this.tail = p;
    else this.prev[n] = p;
    this.prev[id] = NONE;
    this.next[id] = NONE;
    this.queued[id] = 0;
    this.count--;
  }

  /** Block ids from head (reused first) to tail. */
  toArray(): number[] {
    const out: number[] = [];
    for (let id = this.head; id !== NONE; id = this.next[id]) out.push(id);
    return out;
  }

  private checkNotQueued(id: number): void {
    if (this.queued[id] === 1) throw new Error(`FreeBlockQueue: block ${id} is already in the queue`);
  }
}
