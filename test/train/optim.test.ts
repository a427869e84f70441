import { expect, test } from "vitest";
import { adamWStep, clipGradNorm, learningRate, newAdamWState } from "../../src/train/adamw.js";
import type { ParamSet } from "../../src/train/params.js";

function paramSet(): ParamSet {
  const p = (name: string, shape: number[], value: number[], grad: number[]) => ({
    name,
    shape,
    value: Float64Array.from(value),
    grad: Float64Array.from(grad),
  });
  return new Map([
    ["w", p("w", [1, 2], [0.5, -2], [3, -4])],
    ["norm", p("norm", [2], [1, 1], [0.1, -0.2])],
  ]);
}

const settings = { beta1: 0.9, beta2: 0.95, eps: 0, weightDecay: 0.1 };

test("the first AdamW step moves each weight by lr·(sign(g) + λ·w), with no decay on norm weights", () => {
  // After one step the bias-corrected moments are m̂ = g and v̂ = g², so the Adam step is g/|g| = sign(g).
  const params = paramSet();
  const state = newAdamWState(params, (n) => new Float64Array(n));
  adamWStep(params, state, settings, 0.01);
  expect(state.step).toBe(1);
  const w = params.get("w")?.value as Float64Array;
  expect(w[0]).toBeCloseTo(0.5 - 0.01 * (1 + 0.1 * 0.5), 12);
  expect(w[1]).toBeCloseTo(-2 - 0.01 * (-1 + 0.1 * -2), 12);
  const norm = params.get("norm")?.value as Float64Array;
  expect(norm[0]).toBeCloseTo(1 - 0.01, 12);
  expect(norm[1]).toBeCloseTo(1 + 0.01, 12);
});

test("the second AdamW step follows the moment recurrences", () => {
  const params = paramSet();
  const state = newAdamWState(params, (n) => new Float64Array(n));
  adamWStep(params, state, { ...settings, weightDecay: 0 }, 0.01);
  const w = params.get("w");
  if (!w) throw new Error("no w");
  w.grad[0] = 1; // second gradient for w[0]; first was 3
  const before = w.value[0];
  adamWStep(params, state, { ...settings, weightDecay: 0 }, 0.01);
  const m = 0.9 * 0.1 * 3 + 0.1 * 1;
  const v = 0.95 * 0.05 * 9 + 0.05 * 1;
  const expected = before - (0.01 * (m / (1 - 0.9 ** 2))) / Math.sqrt(v / (1 - 0.95 ** 2));
  expect(w.value[0]).toBeCloseTo(expected, 12);
});

test("gradient clipping scales all gradients together to the maximum global norm", () => {
  const params = paramSet();
  const norm = Math.sqrt(9 + 16 + 0.01 + 0.04);
  expect(clipGradNorm(params, 1)).toBeCloseTo(norm, 12);
  const g = [...(params.get("w")?.grad ?? []), ...(params.get("norm")?.grad ?? [])];
  expect(Math.hypot(...g)).toBeCloseTo(1, 12);
  expect(g[0] / g[1]).toBeCloseTo(3 / -4, 12);
  // Below the limit nothing changes.
  expect(clipGradNorm(params, 2)).toBeCloseTo(1, 12);
  expect(Math.hypot(...(params.get("w")?.grad ?? []))).toBeCloseTo(5 / norm, 12);
});

test("learning rate: linear warmup, then cosine from maxLr down to minLr", () => {
  const o = { maxLr: 1e-3, minLr: 1e-4, warmupSteps: 10, totalSteps: 110 };
  expect(learningRate(0, o)).toBeCloseTo(1e-4, 15);
  expect(learningRate(4, o)).toBeCloseTo(5e-4, 15);
  expect(learningRate(10, o)).toBeCloseTo(1e-3, 15);
  expect(learningRate(60, o)).toBeCloseTo(5.5e-4, 15); // halfway: the mean of max and min
  expect(learningRate(110, o)).toBeCloseTo(1e-4, 15);
  for (let s = 11; s <= 110; s++) expect(learningRate(s, o)).toBeLessThanOrEqual(learningRate(s - 1, o));
});
