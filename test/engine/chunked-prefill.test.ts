import { describe, expect, test } from "vitest";
import { ReferenceBackend } from "../../src/backend/reference/reference-backend.js";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { kvCacheGroups } from "../../src/core/kv-cache-groups.js";
import { Request } from "../../src/core/request.js";
import { samplingParams } from "../../src/core/sampling-params.js";
import { defaultEngineConfig, type EngineConfig } from "../../src/engine/engine-config.js";
import { EngineCore } from "../../src/engine/engine-core.js";
import { loadModel } from "../../src/model/load.js";
import { greedyIds } from "../helpers.js";

describe("chunked prefill on the bundled demo model", () => {
  const model = loadModel(bundledModelPath);

  test("a 200-token prompt arriving while 8 requests decode is prefilled in chunks; the 8 get a token every step", async () => {
    const budget = 64;
    const config: EngineConfig = {
      ...defaultEngineConfig,
      maxModelLen: model.config.maxSeqLen,
      maxNumBatchedTokens: budget,
      numBlocks: 64,
      kvCacheGroups: kvCacheGroups(model.config.layerWindows, true),
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

    const verses = [
      "In the beginning",
      "And God said, Let there be light",
      "The LORD is my shepherd",
      "Blessed are the meek",
    ];
    const decoders = Array.from({ length: 8 }, (_, i) =>
      request(`d${i}`, model.tokenizer.encode(verses[i % 4]), 40),
    );
    for (const r of decoders) core.addRequest(r);
    while (decoders.some((r) => r.outputTokenIds.length === 0)) {
      await core.step();
      step++;
    }

    const text =
      "And the earth was without form, and void; and darkness was upon the face of the deep. And the Spirit of God moved upon the face of the waters. ";
    const longPrompt = model.tokenizer.encode(text.repeat(10)).slice(0, 200);
    expect(longPrompt).toHaveLength(200);
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
    // 200 tokens in chunks of 64 − 8 = 56: three full chunks and a last one of 32.
    expect(chunks).toEqual([56, 56, 56, 32]);

    while (core.hasUnfinishedRequests) {
      await core.step();
      step++;
    }
    // Chunking does not change what the long request generates.
    const alone = await greedyIds(new ReferenceBackend(model), longPrompt, 4, [], model.config.maxSeqLen);
    expect(long.outputTokenIds).toEqual(alone);
    expect(core.kvCacheManager.usage).toBe(0);
  });
});
