import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FreeBlockQueue } from "../../src/core/free-block-queue.js";

const CAPACITY = 12;

type Op = { kind: "popLeft" } | { kind: "append" | "prepend" | "remove"; id: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.constant({ kind: "popLeft" as const }),
  fc.record({
    kind: fc.constantFrom("append" as const, "prepend" as const, "remove" as const),
    id: fc.integer({ min: 0, max: CAPACITY - 1 }),
  }),
);

describe("FreeBlockQueue", () => {
  it("behaves like an array under any sequence of popLeft / append / prepend / remove", () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const q = new FreeBlockQueue(CAPACITY, [3, 1, 2]);
        const model = [3, 1, 2];
        for (const o of ops) {
          if (o.kind === "popLeft") {
            if (model.length === 0) expect(() => q.popLeft()).toThrow(/empty/);
            else expect(q.popLeft()).toBe(model.shift());
          } else if (o.kind === "remove") {
            const at = model.indexOf(o.id);
            if (at < 0) expect(() => q.remove(o.id)).toThrow(/not in the queue/);
            else {
              q.remove(o.id);
              model.splice(at, 1);
            }
          } else if (model.includes(o.id)) {
            expect(() => q[o.kind](o.id)).toThrow(/already/);
          } else {
            q[o.kind](o.id);
            if (o.kind === "append") model.push(o.id);
            else model.unshift(o.id);
          }
          expect(q.toArray()).toEqual(model);
          expect(q.length).toBe(model.length);
          for (let id = 0; id < CAPACITY; id++) expect(q.has(id)).toBe(model.includes(id));
        }
      }),
    );
  });
});
