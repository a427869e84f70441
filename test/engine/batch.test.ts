import { describe, expect, test } from "vitest";
import { chooseBackend } from "../../src/backend/native/choose-backend.js";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { kvCacheGroups } from "../../src/core/kv-cache-groups.js";
import { Request } from "../../src/core/request.js";
import { samplingParams } from "../../src/core/sampling-params.js";
import { defaultEngineConfig, type EngineConfig } from "../../src/engine/engine-config.js";
import { EngineCore } from "../../src/engine/engine-core.js";
import { LLM } from "../../src/engine/llm.js";
import { loadModel } from "../../src/model/load.js";
import { greedyIds } from "../helpers.js";
import { genesis } from "../kjv-prompts.js";

/** A deterministic stream of numbers in [0, 1). */
function lcg(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe("continuous batching on the bundled demo model", () => {
  const model = loadModel(bundledModelPath);
  const maxModelLen = model.config.maxSeqLen;
  /** Native when its addon loads (on the reference backend this file takes 27 s instead of 2), one thread. */
  const backend = () => chooseBackend(model, { threads: 1 });

  test("64 requests with random arrivals, chunked prefill and preemption give exactly their solo outputs", async () => {
    const rand = lcg(7);
    const words = genesis.split(" ");
    const jobs = Array.from({ length: 64 }, (_, i) => ({
      id: `r${i}`,
      promptIds: model.tokenizer.encode(
        Array.from(
          { length: 1 + Math.floor(rand() * 40) },
          () => words[Math.floor(rand() * words.length)],
        ).join(" "),
      ),
      maxTokens: 5 + Math.floor(rand() * 40),
      arrivalStep: Math.floor(rand() * 60),
    }));

    const config: EngineConfig = {
      ...defaultEngineConfig,
      maxModelLen,
      maxNumBatchedTokens: 24, // forces prompts into chunks
      maxNumSeqs: 16,
      numBlocks: 40, // 40 blocks of 16 = 640 tokens: far less than 64 requests need, so preemption happens
      kvCacheGroups: kvCacheGroups(model.config.layerWindows, true),
    };
    let step = 0;
    const core = new EngineCore(await backend(), model.config.vocabSize, config, () => step);
    const requests = new Map<string, Request>();
    let preemptions = 0;
    let maxScheduled = 0;
    while (requests.size < jobs.length || core.hasUnfinishedRequests) {
      for (const job of jobs.filter((j) => j.arrivalStep === step)) {
        const request = new Request({
          id: job.id,
          promptTokenIds: job.promptIds,
          samplingParams: samplingParams({ temperature: 0, maxTokens: job.maxTokens }),
          arrivalTime: step,
          eosTokenIds: model.tokenizer.stopIds,
        });
        requests.set(job.id, request);
        core.addRequest(request);
      }
      const { stats } = await core.step();
      preemptions += stats.numPreempted;
      maxScheduled = Math.max(maxScheduled, stats.numScheduledTokens);
      expect(stats.numScheduledTokens).toBeLessThanOrEqual(config.maxNumBatchedTokens);
      expect(stats.numRunning).toBeLessThanOrEqual(config.maxNumSeqs);
      step++;
    }
    console.log(`batch invariance: ${jobs.length} requests, ${step} steps, ${preemptions} preemptions`);
    expect(preemptions).toBeGreaterThan(0);
    expect(core.kvCacheManager.usage).toBe(0);

    for (const job of jobs) {
      const alone = await greedyIds(
        await backend(),
        job.promptIds,
        job.maxTokens,
        model.tokenizer.stopIds,
        maxModelLen,
      );
      const got = requests.get(job.id)?.outputTokenIds ?? [];
      // The engine keeps the EOS that ended a request in its output ids (as vLLM does); generateSequence drops it.
      const ended = got.length > 0 && model.tokenizer.stopIds.includes(got[got.length - 1]);
      expect(ended ? got.slice(0, -1) : got, job.id).toEqual(alone);
    }
  });

  test("prefix caching: same tokens on and off; a request sharing a prefix computes only its uncached tokens", async () => {
    const shared =
      "In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness was upon the face of the deep.";
    const prompts = [
      shared,
      `${shared} And God said`,
      `${shared} And the Spirit`,
      "And God saw the light, that it was good",
      "Blessed are the meek",
    ];
    const params = { temperature: 0, maxTokens: 24 };
    const withCache = await LLM.fromModel(model, { numBlocks: 200 });
    const without = await LLM.fromModel(model, { numBlocks: 200, enablePrefixCaching: false });
    const a = await withCache.generate(prompts, params);
    const b = await without.generate(prompts, params);
    expect(a.map((o) => o.outputs[0].tokenIds)).toEqual(b.map((o) => o.outputs[0].tokenIds));

    // Now one more request with the shared prefix, alone: only its uncached tokens are prefilled.
    const core = withCache.engine.core;
    const before = core.numPrefillTokensComputed;
    const prompt = model.tokenizer.encode(`${shared} And God divided the light`);
    const [out] = await withCache.generate([prompt], { temperature: 0, maxTokens: 4 });
    const sharedIds = model.tokenizer.encode(shared);
    let common = 0;
    while (sharedIds[common] === prompt[common]) common++;
    const cachedTokens = Math.floor(common / 16) * 16;
    expect(out.outputs[0].metrics?.numCachedTokens).toBe(cachedTokens);
    expect(cachedTokens).toBeGreaterThanOrEqual(16);
    expect(core.numPrefillTokensComputed - before).toBe(prompt.length - cachedTokens);
  });
});
