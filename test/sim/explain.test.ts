import { describe, expect, it } from "vitest";
import type { StepShape } from "../../src/core/scheduler-output.js";
import type { StepStats } from "../../src/engine/stats.js";
import { CostModel } from "../../src/sim/cost-model.js";
import { explainDrift, explainSteps } from "../../src/sim/explain.js";
import { hardwareProfile } from "../../src/sim/hardware.js";
import { modelProfile } from "../../src/sim/model-profile.js";
import { measuredSteps, totalTime } from "../../src/sim/step-terms.js";

const decodes = (n: number): StepShape => ({
  contexts: new Array(n).fill(100),
  numRequests: n,
  numTokens: n,
  numSampled: n,
  decodeRequests: n,
  decodePairs: 100 * n,
  decodeKeys: 100 * n,
  prefillTokens: 0,
  prefillPairs: 0,
});

/** A step starting at `start` that took `duration`, of which forward (attention inside it) and sampling. */
const step = (start: number, duration: number, shape: StepShape): StepStats =>
  ({
    time: start + duration,
    duration,
    forwardSeconds: duration * 0.8,
    attentionSeconds: duration * 0.2,
    sampleSeconds: duration * 0.1,
    shape,
  }) as StepStats;

describe("a real step's terms", () => {
  const steps = [
    step(0, 0.01, decodes(1)),
    step(0.0105, 0.02, decodes(2)),
    step(0.031, 0.01, decodes(2)),
    // idle: the engine waited for a request
    step(1.5, 0.01, decodes(1)),
    step(1.511, 0.01, decodes(1)),
  ];

  it("add up to the time from the step's start to the next one's, over busy steps only", () => {
    const measured = measuredSteps(steps);
    expect(measured.map((m) => m.step)).toEqual([steps[0], steps[1], steps[3]]);
    const starts = steps.map((s) => s.time - s.duration);
    expect(totalTime(measured[0].terms)).toBeCloseTo(starts[1] - starts[0], 12);
    expect(totalTime(measured[1].terms)).toBeCloseTo(starts[2] - starts[1], 12);
    expect(measured[0].terms).toEqual({
      forward: expect.closeTo(0.006, 12),
      attention: expect.closeTo(0.002, 12),
      sampling: expect.closeTo(0.001, 12),
      overhead: expect.closeTo(0.0105 - 0.009, 12),
    });
  });

  it("are set beside the cost model's, kind by kind and for all steps", () => {
    const cost = new CostModel(
      modelProfile("small-160m").config,
      "int8",
      "fp32",
      hardwareProfile("h100-80gb"),
      16,
    );
    const simulated = [decodes(1), decodes(3), decodes(3), decodes(3)];
    const lines = explainSteps(measuredSteps(steps), simulated, cost).split("\n");
    expect(lines[0]).toMatch(/^step \(ms\)\s+n real\s+n sim\s+tokens\s+real forward/);
    expect(lines.find((l) => l.startsWith("1 decodes"))).toMatch(/^1 decodes\s+2\s+1\s+1\s/);
    expect(lines.find((l) => l.startsWith("2 decodes"))).toMatch(/^2 decodes\s+1\s+0\s+2\s.*\s-\s+-$/);
    const onlySimulated = lines.find((l) => l.startsWith("3 decodes")) ?? "";
    const price = (totalTime(cost.stepTerms(decodes(3))) * 1000).toFixed(2);
    expect(onlySimulated.split(/\s+/).slice(2)).toEqual(["0", "3", ...Array(12).fill("-"), "3", price]);
    expect(lines.at(-1)).toMatch(/^all steps\s+3\s+4\s/);
  });

  it("give the machine's drift across a run: the real time beside its price at the rates before and after", () => {
    const profile = hardwareProfile("h100-80gb");
    const config = modelProfile("small-160m").config;
    const at = (bandwidth: number) =>
      new CostModel(config, "int8", "fp32", { ...profile, bandwidthBytesPerS: bandwidth }, 16);
    const measured = measuredSteps(steps);
    const realTime = measured.reduce((t, m) => t + totalTime(m.terms), 0);
    const priceAt = (cost: CostModel) =>
      measured.reduce((t, m) => t + totalTime(cost.stepTerms(m.step.shape)), 0) / realTime;
    const [slow, fast] = [at(1e11), at(2e11)];
    expect(priceAt(slow)).toBeGreaterThan(priceAt(fast));
    expect(explainDrift(measured, slow, fast)).toBe(
      `the run's 3 busy steps took ${(realTime).toFixed(2)} s; priced at the rates measured before it: ${priceAt(slow).toFixed(2)}x, after it: ${priceAt(fast).toFixed(2)}x`,
    );
  });
});
