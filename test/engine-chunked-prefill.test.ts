import { beforeAll, expect, test } from "vitest";
import { ReferenceBackend } from "../src/backend/reference/reference-backend.js";
import { Request } from "../src/core/request.js";
import { samplingParams } from "../src/core/sampling-params.js";
import { defaultEngineConfig, type EngineConfig } from "../src/engine/engine-config.js";
import { EngineCore } from "../src/engine/engine-core.js";
import { loadModel } from "../src/model/load.js";
import type { LoadedModel } from "../src/model/model.js";
import { greedyIds } from "./helpers.js";
import { describeShared, stories260K } from "./shared-models.js";

describeShared("chunked prefill on stories260K", () => {
  let model: LoadedModel;
  beforeAll(() => {
    model = loadModel(stories260K.model, { tokenizer: stories260K.tokenizer });
  });

  test("a 400-token prompt arriving while 8 requests decode is prefilled in chunks; the 8 get a token every step", async () => {
    const budget = 64;
    const config: EngineConfig = {
      ...defaultEngineConfig,
      maxModelLen: 512,
      maxNumBatchedTokens: budget,
      numBlocks: 64,
    };
    let step = 0;
    const core = new EngineCore(new ReferenceBackend(model), model.config.vocabSize, config, () => step);
    const request = (id: string, promptTokenIds: number[], maxTokens: number) =>
      new Request({
        id,
        promptTokenIds,
        samplingParams: samplingParams({ temperature: 0, maxTokens, ignoreEos: true }),
        arrivalTime: step,
        eosTokenIds: model.tokenizer.stopIds,
      });

    const stories = [
      "Once upon a time",
      "Lily and Tom went to the park",
      "The cat sat on a mat",
      "A big dog ran",
    ];
    const decoders = Array.from({ length: 8 }, (_, i) =>
      request(`d${i}`, model.tokenizer.encode(stories[i % 4]), 40),
    );
    for (const r of decoders) core.addRequest(r);
    while (decoders.some((r) => r.outputTokenIds.length === 0)) {
      await core.step();
      step++;
    }

    const text =
      "One day, a little girl named Lily went to the park with her mom. She saw a big tree and a red ball. ";
    const longPrompt = model.tokenizer.encode(text.repeat(20)).slice(0, 400);
    expect(longPrompt).toHaveLength(400);
    const long = request("long", longPrompt, 4);
    core.addRequest(long);

    const chunks: number[] = [];
    while (long.outputTokenIds.length === 0) {
      const before = decoders.map((r) => r.outputTokenIds.length);
      const computedBefore = long.numComputedTokens;
      const { updates, stats } = await core.step();
      step++;
      // Every decoder got exactly one token this step, and the long prompt took the rest of the budget.
      expect(decoders.map((r) => r.outputTokenIds.length)).toEqual(before.map((n) => n + 1));
      expect(updates.filter((u) => u.request !== long)).toHaveLength(8);
      expect(stats.numDecodeTokens).toBe(8);
      expect(stats.numScheduledTokens).toBeLessThanOrEqual(budget);
      chunks.push(long.numComputedTokens - computedBefore);
      expect(stats.numPrefillTokens).toBe(chunks[chunks.length - 1]);
    }
    // 400 tokens in chunks of 64 − 8 = 56: seven full chunks and a last one of 8.
    expect(chunks).toEqual([56, 56, 56, 56, 56, 56, 56, 8]);

    while (core.hasUnfinishedRequests) {
      await core.step();
      step++;
    }
    // Chunking does not change what the long request generates.
    const alone = await greedyIds(new ReferenceBackend(model), longPrompt, 4, [], 512);
    expect(long.outputTokenIds).toEqual(alone);
    expect(core.kvCacheManager.usage).toBe(0);
  });
});
