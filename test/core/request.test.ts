import { describe, expect, it } from "vitest";
import { isFinished, Request } from "../../src/core/request.js";
import { samplingParams } from "../../src/core/sampling-params.js";

describe("Request", () => {
  it("keeps allTokenIds = prompt + output as outputs are appended", () => {
    const prompt = [1, 2, 3];
    const r = new Request({
      id: "a",
      promptTokenIds: prompt,
      samplingParams: samplingParams(),
      arrivalTime: 5,
    });
    r.appendOutputTokenIds([7]);
    r.appendOutputTokenIds([8, 9]);
    expect(r.outputTokenIds).toEqual([7, 8, 9]);
    expect(r.allTokenIds).toEqual([1, 2, 3, 7, 8, 9]);
    expect(r.numTokens).toBe(6);
    expect(prompt).toEqual([1, 2, 3]);
    expect(r).toMatchObject({
      status: "WAITING",
      numComputedTokens: 0,
      priority: 0,
      timestamps: { arrival: 5 },
    });
  });

  it("calls only the FINISHED_* statuses finished", () => {
    expect(["WAITING", "RUNNING", "PREEMPTED"].map((s) => isFinished(s as "WAITING"))).toEqual([
      false,
      false,
      false,
    ]);
    expect(
      isFinished("FINISHED_STOPPED") && isFinished("FINISHED_LENGTH") && isFinished("FINISHED_ABORTED"),
    ).toBe(true);
  });
});
