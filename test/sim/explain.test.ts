import { describe, expect, it } from "vitest";
import type { StepShape } from "../../src/core/scheduler-output.js";
import type { StepStats } from "../../src/engine/stats.js";
import { CostModel } from "../../src/sim/cost-model.js";
import { explainSteps } from "../../src/sim/explain.js";
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
    const lines = explainSteps(steps, cost).split("\n");
    expect(lines[0]).toMatch(/^step \(ms\)\s+n\s+real forward/);
    expect(lines.find((l) => l.startsWith("1 decodes"))).toMatch(/^1 decodes\s+2\s/);
    expect(lines.find((l) => l.startsWith("2 decodes"))).toMatch(/^2 decodes\s+1\s/);
    expect(lines.at(-1)).toMatch(/^all steps\s+3\s/);
  });
});
