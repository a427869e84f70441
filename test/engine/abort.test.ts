import { setMaxListeners } from "node:events";
import { expect, test } from "vitest";
import { samplingParams } from "../../src/core/sampling-params.js";
import { createEngine } from "../../src/engine/create-engine.js";
import type { CompletionDelta } from "../../src/engine/output-processor.js";
import { syntheticModel } from "../../src/model/synth/synth-model.js";
import { waitFor, watchEventLoop } from "../helpers.js";

test("aborting 100,000 sequences frees them all without blocking the event loop; every stream ends with abort", async () => {
  // Four running at a time keeps each engine step short: what the event loop waits for is the abort.
  const { engine } = await createEngine(syntheticModel("tiny-test", "f32"), {
    numBlocks: 64,
    maxNumSeqs: 4,
    backend: "reference",
  });
  const numPrompts = 1000;
  const n = 100;
  const controller = new AbortController();
  setMaxListeners(numPrompts, controller.signal);
  const params = samplingParams({ n, maxTokens: 200, ignoreEos: true });
  const streams = Array.from({ length: numPrompts }, (_, p) =>
    engine.generate([1, 2, 3, p % 500], params, { signal: controller.signal }),
  );
  const finishes = Promise.all(
    streams.map(async (stream) => {
      const finished: CompletionDelta[] = [];
      for await (const delta of stream) if (delta.finished) finished.push(delta);
      return finished;
    }),
  );
  await waitFor(() => engine.core.kvCacheManager.usage > 0, 5000);
  expect(engine.core.scheduler.stats().numWaiting).toBeGreaterThan(numPrompts * n - 10);

  const loop = watchEventLoop();
  const started = performance.now();
  controller.abort();
  const finished = (await finishes).flat();
  const seconds = (performance.now() - started) / 1000;
  const longestTurnMs = await loop.stop();
  console.log(
    `[measure] abort of ${numPrompts * n} sequences: all streams ended in ${seconds.toFixed(2)} s; ` +
      `longest event-loop turn meanwhile ${longestTurnMs.toFixed(0)} ms`,
  );
  expect(finished).toHaveLength(numPrompts * n);
  expect(finished.every((d) => d.finishReason === "abort")).toBe(true);
  expect(longestTurnMs).toBeLessThan(1000);
  expect(engine.core.kvCacheManager.usage).toBe(0);
  expect(engine.core.hasUnfinishedRequests).toBe(false);
  await engine.idle();
});
