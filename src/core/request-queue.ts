import type { Request } from "./request.js";

export type SchedulingPolicy = "fcfs" | "priority";

/** A request's place in the queue; `removed` marks a request taken out of the middle. */
interface Entry {
  request: Request;
  /** Insertion order, the last tie-breaker under the priority policy. */
  order: number;
  removed: boolean;
}

/**
 * The waiting queue. fcfs: arrival order, and a preempted request goes back to the front.
 * priority: ordered by (priority, arrival time, insertion order), lower first; a preempted request
 * simply takes its place again.
 *
 * Kept as a sorted array read from a moving head. Removing a request from the middle (a client that
 * went away) only marks its entry, which is skipped when it reaches the head and dropped when the
 * marked entries outnumber the live ones: every operation but a priority insertion is O(1) amortized,
 * so aborting a queue of 100,000 requests takes linear time, not quadratic.
 */
export class RequestQueue {
  private entries: Entry[] = [];
  private head = 0;
  private readonly live = new Map<Request, Entry>();
  private nextOrder = 0;

  constructor(readonly policy: SchedulingPolicy) {}

  get length(): number {
    return this.live.size;
  }

  *[Symbol.iterator](): IterableIterator<Request> {
    for (let i = this.head; i < this.entries.length; i++) {
      if (!this.entries[i].removed) yield this.entries[i].request;
    }
  }

  peek(): Request | undefined {
    while (this.head < this.entries.length && this.entries[this.head].removed) this.head++;
    return this.entries[this.head]?.request;
  }

  pop(): Request | undefined {
    const r = this.peek();
    if (r) {
      this.head++;
      this.live.delete(r);
      this.compact();
    }
    return r;
  }

  /** A new arrival. */
  push(r: Request): void {
    const entry = this.entryOf(r);
    if (this.policy === "fcfs") this.entries.push(entry);
    else this.entries.splice(this.insertionIndex(entry), 0, entry);
  }

  /** A preempted request: ahead of everything under fcfs, at its rank under priority. */
  pushPreempted(r: Request): void {
    if (this.policy !== "fcfs") {
      this.push(r);
      return;
    }
    const entry = this.entryOf(r);
    if (this.head > 0) this.entries[--this.head] = entry;
    else this.entries.unshift(entry);
  }

  remove(r: Request): boolean {
    const entry = this.live.get(r);
    if (!entry) return false;
    entry.removed = true;
    this.live.delete(r);
    this.compact();
    return true;
  }

  private entryOf(request: Request): Entry {
    const entry = { request, order: this.nextOrder++, removed: false };
    this.live.set(request, entry);
    return entry;
  }

  /** Drops the entries before the head and the marked ones once they are more than the live ones. */
  private compact(): void {
    if (this.entries.length < 2 * this.live.size + 64) return;
    this.entries = this.entries.slice(this.head).filter((e) => !e.removed);
    this.head = 0;
  }

  private insertionIndex(entry: Entry): number {
    let lo = this.head;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (comparePriority(this.entries[mid], entry) <= 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

function comparePriority(a: Entry, b: Entry): number {
  return (
    a.request.priority - b.request.priority ||
    a.request.timestamps.arrival - b.request.timestamps.arrival ||
    a.order - b.order
  );
}
