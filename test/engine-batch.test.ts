import { readFileSync } from "node:fs";
import { beforeAll, expect, test } from "vitest";
import { ReferenceBackend } from "../src/backend/reference/reference-backend.js";
import { Request } from "../src/core/request.js";
import { samplingParams } from "../src/core/sampling-params.js";
import { defaultEngineConfig, type EngineConfig } from "../src/engine/engine-config.js";
import { EngineCore } from "../src/engine/engine-core.js";
import { LLM } from "../src/engine/llm.js";
import { loadModel } from "../src/model/load.js";
import type { LoadedModel } from "../src/model/model.js";
import { greedyIds } from "./helpers.js";
import { describeShared, stories260K } from "./shared-models.js";

/** A deterministic stream of numbers in [0, 1). */
function lcg(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describeShared("continuous batching on stories260K", () => {
  let model: LoadedModel;
  let golden: { prompt_text: string; prompt_tokens: number[]; generated_tokens_after_prompt: number[] }[];
  beforeAll(() => {
    model = loadModel(stories260K.model, { tokenizer: stories260K.tokenizer });
    golden = JSON.parse(readFileSync(stories260K.golden, "utf8")).cases.slice(1);
  });

  test("64 requests with random arrivals, chunked prefill and preemption give exactly their solo outputs", async () => {
    const rand = lcg(7);
    const words = golden
      .map((g) => g.prompt_text)
      .join(" ")
      .concat(" she saw a big red ball in the park and ran home")
      .split(" ");
    const jobs = Array.from({ length: 64 }, (_, i) => {
      const promptIds =
        i < golden.length
          ? golden[i].prompt_tokens
          : model.tokenizer.encode(
              Array.from(
                { length: 1 + Math.floor(rand() * 40) },
                () => words[Math.floor(rand() * words.length)],
              ).join(" "),
            );
      const maxTokens =
        i < golden.length ? golden[i].generated_tokens_after_prompt.length : 5 + Math.floor(rand() * 40);
      return { id: `r${i}`, promptIds, maxTokens, arrivalStep: Math.floor(rand() * 60) };
    });

    const config: EngineConfig = {
      ...defaultEngineConfig,
      maxModelLen: 512,
      maxNumBatchedTokens: 24, // forces prompts into chunks
      maxNumSeqs: 16,
      numBlocks: 40, // 40 blocks of 16 = 640 tokens: far less than 64 requests need, so preemption happens
    };
    let step = 0;
    const core = new EngineCore(new ReferenceBackend(model), model.config.vocabSize, config, () => step);
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

    for (const [i, job] of jobs.entries()) {
      const alone = await greedyIds(
        new ReferenceBackend(model),
        job.promptIds,
        job.maxTokens,
        model.tokenizer.stopIds,
        512,
      );
      const got = requests.get(job.id)?.outputTokenIds ?? [];
      // The engine keeps the EOS that ended a request in its output ids (as vLLM does); generateSequence drops it.
      const ended = got.length > 0 && model.tokenizer.stopIds.includes(got[got.length - 1]);
      expect(ended ? got.slice(0, -1) : got, job.id).toEqual(alone);
      if (i < golden.length) expect(got).toEqual(golden[i].generated_tokens_after_prompt);
    }
  });

  test("prefix caching: same tokens on and off; a request sharing a prefix computes only its uncached tokens", async () => {
    const shared =
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends.";
    const prompts = [
      shared,
      `${shared} One day`,
      `${shared} Her mom said`,
      golden[0].prompt_text,
      golden[1].prompt_text,
    ];
    const params = { temperature: 0, maxTokens: 24 };
    const withCache = LLM.fromModel(model, { maxModelLen: 512, numBlocks: 200 });
    const without = LLM.fromModel(model, { maxModelLen: 512, numBlocks: 200, enablePrefixCaching: false });
    const a = await withCache.generate(prompts, params);
    const b = await without.generate(prompts, params);
    expect(a.map((o) => o.outputs[0].tokenIds)).toEqual(b.map((o) => o.outputs[0].tokenIds));
    expect(a[3].outputs[0].tokenIds.slice(0, 24)).toEqual(
      golden[0].generated_tokens_after_prompt.slice(0, 24),
    );

    // Now one more request with the shared prefix, alone: only its uncached tokens are prefilled.
    const core = withCache.engine.core;
    const before = core.numPrefillTokensComputed;
    const prompt = model.tokenizer.encode(`${shared} They played all day`);
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
