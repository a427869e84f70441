import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { benchWebOverhead } from "../../src/bench/web-overhead.js";
import { syntheticModel } from "../../src/model/synth/synth-model.js";
import { snapshotIntervalMs } from "../../src/server/engine-events.js";
import { workloadFrom } from "../../src/workload/workload.js";
import { startServer, type TestServer } from "../server-helpers.js";

describe("bench web-overhead (random-weight tiny model)", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer(syntheticModel("tiny-test", "f32"), { numBlocks: 128, backend: "reference" });
  });
  afterAll(() => s.close(1000));

  test("runs with and without a subscriber in ABBA order; only the watched ones read snapshots; ratio of medians", async () => {
    const workload = workloadFrom({
      dataset: "random",
      numPrompts: 8,
      inputLen: 16,
      outputLen: 24,
      rangeRatio: 0,
      prefixLen: 0,
      vocabSize: 512,
      requestRate: "inf",
      burstiness: 1,
      seed: 0,
    });
    const { runs, ratio } = await benchWebOverhead(s.url, workload, 2);
    expect(runs.map((r) => r.watched)).toEqual([false, true, true, false]);
    for (const run of runs) {
      expect(run.throughput).toBeGreaterThan(0);
      if (!run.watched) expect(run.snapshots).toBe(0);
      // One at once, then one per interval at most, while the run (and the server check before it) lasts.
      else expect(run.snapshots).toBeGreaterThanOrEqual(1);
      expect(run.snapshots).toBeLessThanOrEqual(Math.ceil((run.seconds * 1000) / snapshotIntervalMs) + 5);
    }
    const throughputs = (watched: boolean) =>
      runs.filter((r) => r.watched === watched).map((r) => r.throughput);
    const [a, b] = throughputs(false);
    const [c, d] = throughputs(true);
    expect(ratio).toBeCloseTo((c + d) / 2 / ((a + b) / 2), 10); // the median of two is their mean
  });
});
