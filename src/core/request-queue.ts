import type { Request } from "./request.js";

export type SchedulingPolicy = "fcfs" | "priority";

/**
 * The waiting queue. fcfs: arrival order, and a preempted request goes back to the front.
 * priority: ordered by (priority, arrival time, insertion order), lower first; a preempted request
 * simply takes its place again. Kept as a sorted array: queues are hundreds long, not millions.
 */
export class RequestQueue {
  private items: Request[] = [];
  private readonly order = new Map<Request, number>();
  private nextOrder = 0;

  constructor(readonly policy: SchedulingPolicy) {}

  get length(): number {
    return this.items.length;
  }

  [Symbol.iterator]() {
    return this.items[Symbol.iterator]();
  }

  peek(): Request | undefined {
    return this.items[0];
  }

  pop(): Request | undefined {
    const r = this.items.shift();
    if (r) this.order.delete(r);
    return r;
  }

  /** A new arrival. */
  push(r: Request): void {
    if (this.policy === "fcfs") {
      this.items.push(r);
    } else {
      this.order.set(r, this.nextOrder++);
      this.items.splice(this.insertionIndex(r), 0, r);
    }
  }

  /** A preempted request: ahead of everything under fcfs, at its rank under priority. */
  pushPreempted(r: Request): void {
    if (this.policy === "fcfs") this.items.unshift(r);
    else this.push(r);
  }

  remove(r: Request): boolean {
    const i = this.items.indexOf(r);
    if (i < 0) return false;
    this.items.splice(i, 1);
    this.order.delete(r);
    return true;
  }

  private insertionIndex(r: Request): number {
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (comparePriority(this.items[mid], r, this.order) <= 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

function comparePriority(a: Request, b: Request, order: Map<Request, number>): number {
  return (
    a.priority - b.priority ||
    a.timestamps.arrival - b.timestamps.arrival ||
    (order.get(a) ?? 0) - (order.get(b) ?? 0)
  );
}
