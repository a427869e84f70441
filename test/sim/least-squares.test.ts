import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { nonNegativeLeastSquares } from "../../src/sim/least-squares.js";

const coefficient = fc.double({ min: 0, max: 10, noNaN: true });
const row = (n: number) =>
  fc.array(fc.double({ min: 0, max: 100, noNaN: true }), { minLength: n, maxLength: n });

describe("non-negative least squares", () => {
  it("recovers the coefficients of data they generate exactly", () => {
    fc.assert(
      fc.property(
        fc
          .array(coefficient, { minLength: 1, maxLength: 5 })
          .chain((c) =>
            fc.tuple(fc.constant(c), fc.array(row(c.length), { minLength: 3 * c.length, maxLength: 40 })),
          ),
        ([c, x]) => {
          // Independent columns: a unit row for each, so the system is never singular.
          const rows = [...c.map((_, j) => c.map((__, k) => (k === j ? 1 : 0))), ...x];
          const y = rows.map((r) => r.reduce((sum, v, j) => sum + v * c[j], 0));
          const fitted = nonNegativeLeastSquares(rows, y);
          for (const [j, f] of fitted.entries()) expect(f).toBeCloseTo(c[j], 6);
        },
      ),
    );
  });

  it("never gives a negative coefficient, and fits the rest alone when the data would want one", () => {
    // y = 3·x0 − 2·x1: unconstrained, x1's coefficient is −2; constrained, 0 and x0's is refitted alone.
    const x = [
      [1, 0],
      [0, 1],
      [2, 1],
      [1, 2],
    ];
    const y = x.map(([a, b]) => 3 * a - 2 * b);
    const [a, b] = nonNegativeLeastSquares(x, y);
    expect(b).toBe(0);
    // x0 alone: Σ x0·y / Σ x0² = (3 + 0 + 8 − 1) / (1 + 0 + 4 + 1)
    expect(a).toBeCloseTo(10 / 6, 12);
    fc.assert(
      fc.property(
        fc.array(row(3), { minLength: 1, maxLength: 20 }),
        fc.array(fc.double({ min: -50, max: 50, noNaN: true }), { minLength: 20, maxLength: 20 }),
        (rows, ys) => {
          for (const v of nonNegativeLeastSquares(rows, ys.slice(0, rows.length)))
            expect(v).toBeGreaterThanOrEqual(0);
        },
      ),
    );
  });

  it("fits with one of two columns that are equal in every row, as well as with both", () => {
    // A decode's pairs and keys are the same count when nothing is shared: y = 2 + 3·pairs + 1·keys. Counts are
    // integers, so two distinct ones are at least 1 apart and the intercept stays apart from the slope (doubles a
    // ulp apart would make the first two columns equal too).
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 1000 }), { minLength: 3, maxLength: 30 }), (xs) => {
        fc.pre(new Set(xs).size > 1);
        const rows = xs.map((v) => [1, v, v]);
        const [once, a, b] = nonNegativeLeastSquares(
          rows,
          xs.map((v) => 2 + 4 * v),
        );
        expect(once).toBeCloseTo(2, 6);
        expect(a + b).toBeCloseTo(4, 9);
        expect(Math.min(a, b)).toBe(0);
      }),
    );
  });
});
