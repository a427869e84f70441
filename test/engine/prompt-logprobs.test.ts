import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { ReferenceBackend } from "../../src/backend/reference/reference-backend.js";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { kvCacheGroups } from "../../src/core/kv-cache-groups.js";
import { Request } from "../../src/core/request.js";
import { samplingParams } from "../../src/core/sampling-params.js";
import { defaultEngineConfig, type EngineConfig } from "../../src/engine/engine-config.js";
import { EngineCore } from "../../src/engine/engine-core.js";
import { LLM } from "../../src/engine/llm.js";
import { loadModel } from "../../src/model/load.js";
import type { LoadedModel } from "../../src/model/model.js";
import type { PromptTokenLogprob } from "../../src/runner/prompt-logprobs.js";
import { logitsAt } from "../helpers.js";
import { describeShared, needs, stories260K } from "../shared-models.js";

/**
 * What prompt_logprobs must be, from the logits of the whole prompt in one forward pass: for each token after
 * the first, log-softmax (float64) of the previous position's logits at it, its rank, and the k best.
 */
function expectedPromptLogprobs(logits: Float32Array[], prompt: number[], k: number) {
  return prompt.slice(1).map((tokenId, j) => {
    const row = Array.from(logits[j]);
    const max = Math.max(...row);
    const lse = max + Math.log(row.reduce((sum, x) => sum + Math.exp(x - max), 0));
    const byRank = row.map((_, id) => id).sort((a, b) => row[b] - row[a] || a - b);
    return {
      tokenId,
      logprob: row[tokenId] - lse,
      rank: row.filter((x) => x > row[tokenId]).length + 1,
      top: byRank.slice(0, k).map((id) => ({ tokenId: id, logprob: row[id] - lse })),
    };
  });
}

function expectClose(actual: PromptTokenLogprob[] | undefined, expected: PromptTokenLogprob[], what: string) {
  expect(actual?.length, what).toBe(expected.length);
  actual?.forEach((a, j) => {
    const e = expected[j];
    const where = `${what}, prompt token ${j + 1}`;
    expect([a.tokenId, a.rank], where).toEqual([e.tokenId, e.rank]);
    expect(Math.abs(a.logprob - e.logprob), where).toBeLessThan(1e-4);
    expect(
      a.top.map((t) => t.tokenId),
      where,
    ).toEqual(e.top.map((t) => t.tokenId));
    a.top.forEach((t, i) => {
      expect(Math.abs(t.logprob - e.top[i].logprob), where).toBeLessThan(1e-4);
    });
  });
}

describe("prompt_logprobs on the reference backend (the bundled demo model)", () => {
  const model = loadModel(bundledModelPath);
  const { tokenizer } = model;
  const prompts = [
    tokenizer.encode("In the beginning God created the heaven and the earth. ".repeat(6)).slice(0, 70),
    tokenizer.encode("And God said, Let there be light: and there was light."),
  ];

  test.each([
    ["chunked prefill (16 tokens a step)", 16],
    ["whole prompts in one step", 2048],
  ])(
    "equal log-softmax of the whole prompt's logits, with %s, and the prefix cache is not used",
    async (_, budget) => {
      const expected = await Promise.all(
        prompts.map(async (p) =>
          expectedPromptLogprobs(
            await logitsAt(new ReferenceBackend(model), p, model.config.vocabSize),
            p,
            4,
          ),
        ),
      );
      const llm = await LLM.fromModel(model, {
        numBlocks: 64,
        backend: "reference",
        maxNumBatchedTokens: budget,
      });
      // The first prompt's blocks are in the prefix cache: a request without prompt_logprobs takes them.
      const [warm] = await llm.generate([prompts[0]], { temperature: 0, maxTokens: 2 });
      expect(warm.outputs[0].promptLogprobs).toBeUndefined();
      const [again] = await llm.generate([prompts[0]], { temperature: 0, maxTokens: 2 });
      expect(again.outputs[0].metrics?.numCachedTokens).toBeGreaterThan(0);

      const outs = await llm.generate(prompts, { temperature: 0, maxTokens: 3, promptLogprobs: 4 });
      outs.forEach((out, i) => {
        expect(out.outputs[0].metrics?.numCachedTokens, `prompt ${i}`).toBe(0);
        expectClose(out.outputs[0].promptLogprobs, expected[i], `prompt ${i}`);
      });
      // prompt_logprobs 0: each prompt token's own log-prob and rank, no alternatives; n = 2: both completions.
      const [bare] = await llm.generate([prompts[1]], {
        temperature: 0,
        maxTokens: 1,
        promptLogprobs: 0,
        n: 2,
      });
      for (const c of bare.outputs) {
        expectClose(
          c.promptLogprobs,
          expected[1].map((e) => ({ ...e, top: [] })),
          "prompt_logprobs 0",
        );
      }
    },
  );
});

test("a request preempted in the middle of its prompt still gets every prompt position, once", async () => {
  const model = loadModel(bundledModelPath);
  const { vocabSize } = model.config;
  // Two 100-token prompts in 16-token chunks and a pool of 9 usable blocks: the second one cannot finish its
  // prompt while the first decodes, so it is preempted part way and recomputed from its first token.
  const config: EngineConfig = {
    ...defaultEngineConfig,
    maxModelLen: model.config.maxSeqLen,
    maxNumBatchedTokens: 16,
    numBlocks: 10,
    kvCacheGroups: kvCacheGroups(model.config.layerWindows, true),
  };
  const core = new EngineCore(new ReferenceBackend(model), vocabSize, config, () => 0);
  const text = "And the earth was without form, and void; and darkness was upon the face of the deep. ";
  const prompts = [text, `And God said, ${text}`].map((t) =>
    model.tokenizer.encode(t.repeat(6)).slice(0, 100),
  );
  const requests = prompts.map(
    (promptTokenIds, i) =>
      new Request({
        id: `r${i}`,
        promptTokenIds,
        samplingParams: samplingParams({ temperature: 0, maxTokens: 28, ignoreEos: true, promptLogprobs: 2 }),
        arrivalTime: 0,
      }),
  );
  for (const r of requests) core.addRequest(r);
  const received = new Map<string, PromptTokenLogprob[][]>();
  let preemptedInPrompt = false;
  while (core.hasUnfinishedRequests) {
    const { updates } = await core.step();
    for (const { request, promptLogprobs } of updates) {
      if (promptLogprobs) received.set(request.id, [...(received.get(request.id) ?? []), promptLogprobs]);
    }
    preemptedInPrompt ||= requests.some((r) => r.status === "PREEMPTED" && r.outputTokenIds.length === 0);
  }
  expect(preemptedInPrompt).toBe(true);
  for (const [i, r] of requests.entries()) {
    const expected = expectedPromptLogprobs(
      await logitsAt(new ReferenceBackend(model), prompts[i], vocabSize),
      prompts[i],
      2,
    );
    expect(received.get(r.id), r.id).toHaveLength(1);
    expectClose(received.get(r.id)?.[0], expected, r.id);
  }
});

describeShared("prompt_logprobs against stories260K's golden logits", needs.golden, () => {
  interface PositionLogits {
    pos: number;
    input_token: number;
    top10: [number, number][];
  }
  test("the 10 best at every prompt position are the golden top 10, their log-prob gaps the golden logit gaps", async () => {
    const model: LoadedModel = loadModel(stories260K.model, { tokenizer: stories260K.tokenizer });
    const cases: { prompt_tokens: number[]; prompt_positions_logits?: PositionLogits[] }[] = JSON.parse(
      readFileSync(stories260K.golden, "utf8"),
    ).cases;
    const withPrompt = cases.filter((c) => c.prompt_positions_logits && c.prompt_tokens.length > 1);
    expect(withPrompt.length).toBeGreaterThanOrEqual(2);
    const llm = await LLM.fromModel(model, { numBlocks: 64, backend: "reference", maxNumBatchedTokens: 4 });
    const outs = await llm.generate(
      withPrompt.map((c) => c.prompt_tokens),
      { temperature: 0, maxTokens: 1, promptLogprobs: 10 },
    );
    withPrompt.forEach((c, i) => {
      const got = outs[i].outputs[0].promptLogprobs ?? [];
      expect(got).toHaveLength(c.prompt_tokens.length - 1);
      for (const golden of c.prompt_positions_logits ?? []) {
        if (golden.pos >= got.length) continue;
        const entry = got[golden.pos];
        expect(entry.tokenId).toBe(c.prompt_tokens[golden.pos + 1]);
        expect(entry.top.map((t) => t.tokenId)).toEqual(golden.top10.map(([id]) => id));
        // log-softmax shifts every logit of a row by one constant: differences are the logits' differences.
        entry.top.forEach((t, r) => {
          const gap = t.logprob - entry.top[0].logprob;
          expect(Math.abs(gap - (golden.top10[r][1] - golden.top10[0][1]))).toBeLessThan(1e-4);
        });
        const own = golden.top10.findIndex(([id]) => id === entry.tokenId);
        if (own >= 0) expect(entry.rank).toBe(own + 1);
      }
    });
  });
});
