import fc from "fast-check";
import { describe, test } from "vitest";
import { Request } from "../../src/core/request.js";
import { RequestQueue, type SchedulingPolicy } from "../../src/core/request-queue.js";
import { samplingParams } from "../../src/core/sampling-params.js";

type Op =
  | { kind: "push"; priority: number; arrival: number }
  | { kind: "pop" }
  | { kind: "preempt"; pick: number }
  | { kind: "remove"; pick: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("push" as const),
      priority: fc.integer({ min: -2, max: 2 }),
      arrival: fc.integer({ min: 0, max: 5 }),
    }),
  },
  { weight: 2, arbitrary: fc.constant({ kind: "pop" as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("preempt" as const), pick: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("remove" as const), pick: fc.nat() }) },
);

/**
 * The queue's specification, written the plain way (one array, linear removal): fcfs keeps arrival order
 * with preempted requests in front; priority keeps (priority, arrival, insertion) order.
 */
class PlainQueue {
  readonly items: Request[] = [];
  private readonly order = new Map<Request, number>();
  private next = 0;

  constructor(private readonly policy: SchedulingPolicy) {}

  push(r: Request, preempted = false) {
    this.order.set(r, this.next++);
    if (this.policy === "fcfs") {
      if (preempted) this.items.unshift(r);
      else this.items.push(r);
      return;
    }
    const rank = (a: Request) => [a.priority, a.timestamps.arrival, this.order.get(a) ?? 0];
    const at = this.items.findIndex((x) => {
      const [p, t, o] = rank(x);
      const [rp, rt, ro] = rank(r);
      return p > rp || (p === rp && (t > rt || (t === rt && o > ro)));
    });
    this.items.splice(at < 0 ? this.items.length : at, 0, r);
  }

  remove(r: Request) {
    this.items.splice(this.items.indexOf(r), 1);
  }
}

describe("RequestQueue", () => {
  for (const policy of ["fcfs", "priority"] as const) {
    test(`${policy}: any mix of arrivals, pops, preemptions and removals keeps the specified order`, () => {
      fc.assert(
        // Returns whether both queues saw the same: a boolean, so that shrinking a failure stays fast.
        fc.property(fc.array(op, { maxLength: 400, size: "max" }), (ops) => {
          const queue = new RequestQueue(policy);
          const plain = new PlainQueue(policy);
          const popped: Request[] = [];
          const seen: string[] = [];
          const expected: string[] = [];
          let id = 0;
          for (const o of ops) {
            if (o.kind === "push") {
              const r = new Request({
                id: `r${id++}`,
                promptTokenIds: [1],
                samplingParams: samplingParams(),
                arrivalTime: o.arrival,
                priority: o.priority,
              });
              queue.push(r);
              plain.push(r);
            } else if (o.kind === "pop") {
              const r = queue.pop();
              seen.push(`pop ${r?.id}`);
              expected.push(`pop ${plain.items.shift()?.id}`);
              if (r) popped.push(r);
            } else if (o.kind === "preempt" && popped.length > 0) {
              const [r] = popped.splice(o.pick % popped.length, 1);
              queue.pushPreempted(r);
              plain.push(r, true);
            } else if (o.kind === "remove" && plain.items.length > 0) {
              const r = plain.items[o.pick % plain.items.length];
              seen.push(`remove ${queue.remove(r)} ${queue.remove(r)}`);
              expected.push("remove true false");
              plain.remove(r);
            }
            seen.push(`${queue.length} ${queue.peek()?.id}`);
            expected.push(`${plain.items.length} ${plain.items[0]?.id}`);
          }
          seen.push([...queue].map((r) => r.id).join());
          expected.push(plain.items.map((r) => r.id).join());
          return seen.join("\n") === expected.join("\n");
        }),
        { numRuns: 200 },
      );
    });
  }
});
