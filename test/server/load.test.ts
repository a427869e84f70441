import type OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Backend } from "../../src/backend/backend.js";
import { ReferenceBackend } from "../../src/backend/reference/reference-backend.js";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { LLM } from "../../src/engine/llm.js";
import { loadModel } from "../../src/model/load.js";
import { waitFor } from "../helpers.js";
import { scrapeMetrics, startServer, type TestServer } from "../server-helpers.js";

const numClients = 64;
const maxTokens = 32;

/** A long streamed completion: vLLM's ignore_eos (not in the openai client's types) keeps it going. */
function longStream(maxTokens: number): OpenAI.CompletionCreateParamsStreaming {
  const body = {
    model: "demo",
    prompt: "In the beginning",
    max_tokens: maxTokens,
    ignore_eos: true,
    stream: true as const,
  };
  return body;
}

/** Sorted-sample percentile. */
function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** Reads a completions stream to its end; returns the last finish_reason seen. */
async function finishReasonOf(chunks: AsyncIterator<{ choices: { finish_reason: string | null }[] }>) {
  let finishReason: string | null = null;
  for (let r = await chunks.next(); !r.done; r = await chunks.next()) {
    finishReason = r.value.choices[0]?.finish_reason ?? finishReason;
  }
  return finishReason;
}

/** Longer than any test needs its requests to run, within the demo model's 256-token context. */
const longTokens = 240;

describe("vellum serve under load (the bundled demo model)", () => {
  const model = loadModel(bundledModelPath);
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer(model, {}, { servedModelName: "demo" });
  });
  afterAll(() => s.close(1000));

  test(`${numClients} concurrent streaming clients get their own correct outputs; metrics count them`, async () => {
    const names = ["Moses", "Aaron", "David", "Saul", "Abraham", "Jacob", "Joseph", "Samuel"];
    const things = [
      "the ark",
      "a lamb",
      "the temple",
      "a river",
      "the sun",
      "an altar",
      "a dove",
      "a mountain",
    ];
    const prompts = Array.from(
      { length: numClients },
      (_, i) => `${names[i % 8]} saw ${things[Math.floor(i / 8)]}`,
    );
    const llm = await LLM.fromModel(model, { numBlocks: 512 });
    const offline = await llm.generate(prompts, { temperature: 0, maxTokens });
    const before = await scrapeMetrics(s.url);

    const stepMs: number[] = [];
    s.engine.onStep((step) => stepMs.push(step.duration * 1000));
    let running = true;
    const healthMs: number[] = [];
    const probe = (async () => {
      while (running) {
        const t0 = performance.now();
        expect((await fetch(`${s.url}/health`)).status).toBe(200);
        healthMs.push(performance.now() - t0);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    const started = performance.now();
    const results = await Promise.all(
      prompts.map(async (prompt) => {
        const stream = await s.client.completions.create({
          model: "demo",
          prompt,
          max_tokens: maxTokens,
          temperature: 0,
          stream: true,
          stream_options: { include_usage: true },
        });
        let text = "";
        let finishReason: string | null = null;
        let usage = { prompt_tokens: 0, completion_tokens: 0 };
        for await (const chunk of stream) {
          for (const c of chunk.choices) {
            text += c.text;
            finishReason = c.finish_reason ?? finishReason;
          }
          if (chunk.usage) usage = chunk.usage;
        }
        return { text, finishReason, usage };
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    running = false;
    await probe;

    results.forEach((r, i) => {
      expect(r.text, prompts[i]).toBe(offline[i].outputs[0].text);
      expect(r.finishReason).toBe(offline[i].outputs[0].finishReason);
      expect(r.usage.prompt_tokens).toBe(offline[i].promptTokenIds.length);
      expect(r.usage.completion_tokens).toBe(offline[i].outputs[0].tokenIds.length);
    });
    const promptTokens = results.reduce((n, r) => n + r.usage.prompt_tokens, 0);
    const generated = results.reduce((n, r) => n + r.usage.completion_tokens, 0);
    console.log(
      `[measure] ${numClients} streaming clients, ${maxTokens} tokens each, kjv-demo: ` +
        `${(numClients / seconds).toFixed(1)} requests/s, ${(generated / seconds).toFixed(0)} generated tokens/s, ` +
        `/health p50 ${percentile(healthMs, 50).toFixed(1)} ms, p99 ${percentile(healthMs, 99).toFixed(1)} ms (${healthMs.length} probes); ` +
        `engine steps p50 ${percentile(stepMs, 50).toFixed(1)} ms, max ${Math.max(...stepMs).toFixed(1)} ms`,
    );

    const after = await scrapeMetrics(s.url);
    const delta = (name: string) => (after.get(name) ?? 0) - (before.get(name) ?? 0);
    const finished = ["stop", "length", "abort"].map((reason) =>
      delta(`vellum:request_success_total{finished_reason="${reason}"}`),
    );
    expect(finished).toEqual([
      offline.filter((o) => o.outputs[0].finishReason === "stop").length,
      offline.filter((o) => o.outputs[0].finishReason === "length").length,
      0,
    ]);
    expect(delta("vellum:prompt_tokens_total")).toBe(promptTokens);
    expect(delta("vellum:generation_tokens_total")).toBe(generated);
    expect(delta("vellum:e2e_request_latency_seconds_count")).toBe(numClients);
    expect(delta("vellum:time_to_first_token_seconds_count")).toBe(numClients);
    expect(delta("vellum:request_prompt_tokens_sum")).toBe(promptTokens);
    expect(delta("vellum:request_generation_tokens_sum")).toBe(generated);
    expect(delta("vellum:inter_token_latency_seconds_count")).toBe(generated - numClients);
    expect(delta("vellum:prefix_cache_queries_total")).toBeGreaterThan(0);
    expect(after.get("vellum:num_requests_running")).toBe(0);
    expect(after.get("vellum:num_requests_waiting")).toBe(0);
    expect(after.get("vellum:kv_cache_usage_perc")).toBe(0);
  });

  test("a client that disconnects mid-stream aborts its request and frees its KV blocks at once", async () => {
    const before = await scrapeMetrics(s.url);
    const stream = await s.client.completions.create(longStream(longTokens));
    const chunks = stream[Symbol.asyncIterator]();
    for (let i = 0; i < 3; i++) expect((await chunks.next()).done).toBe(false);
    expect(s.engine.core.kvCacheManager.usage).toBeGreaterThan(0);
    expect((await scrapeMetrics(s.url)).get("vellum:num_requests_running")).toBe(1);
    stream.controller.abort();
    await waitFor(() => s.engine.core.kvCacheManager.usage === 0, 2000);
    const after = await scrapeMetrics(s.url);
    expect(after.get("vellum:kv_cache_usage_perc")).toBe(0);
    expect(after.get("vellum:num_requests_running")).toBe(0);
    const aborted = 'vellum:request_success_total{finished_reason="abort"}';
    expect((after.get(aborted) ?? 0) - (before.get(aborted) ?? 0)).toBe(1);
    const generated =
      (after.get("vellum:generation_tokens_total") ?? 0) -
      (before.get("vellum:generation_tokens_total") ?? 0);
    expect(generated).toBeGreaterThanOrEqual(3);
    expect(generated).toBeLessThan(longTokens);
  });

  test("a non-streaming client that disconnects aborts its request too", async () => {
    const aborted = 'vellum:request_success_total{finished_reason="abort"}';
    const before = (await scrapeMetrics(s.url)).get(aborted) ?? 0;
    const controller = new AbortController();
    const response = fetch(`${s.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ prompt: "In", max_tokens: longTokens, ignore_eos: true }),
      signal: controller.signal,
    });
    await waitFor(() => s.engine.core.kvCacheManager.usage > 0, 2000);
    controller.abort();
    await expect(response).rejects.toThrow();
    await waitFor(() => s.engine.core.kvCacheManager.usage === 0, 2000);
    expect((await scrapeMetrics(s.url)).get(aborted)).toBe(before + 1);
  });
});

describe("graceful shutdown (the bundled demo model)", () => {
  test("stops accepting, lets short requests finish, aborts long ones after the grace period", async () => {
    const model = loadModel(bundledModelPath);
    // Every step takes at least 10 ms, so the long request cannot finish within the grace period.
    const reference = new ReferenceBackend(model);
    const backend: Backend = {
      name: "slowed reference",
      initKvCache: (spec) => reference.initKvCache(spec),
      forward: async (batch) => {
        await new Promise((resolve) => setTimeout(resolve, 10));
        return reference.forward(batch);
      },
    };
    const s = await startServer(model, { backend }, { servedModelName: "demo" });
    const long = await s.client.completions.create(longStream(longTokens));
    const short = await s.client.completions.create({
      model: "demo",
      prompt: "And",
      max_tokens: 3,
      temperature: 0,
      stream: true,
    });
    const [longChunks, shortChunks] = [long, short].map((stream) => stream[Symbol.asyncIterator]());
    expect((await longChunks.next()).done).toBe(false);
    expect((await shortChunks.next()).done).toBe(false);

    const closed = s.close(1500);
    // A new connection is refused; a request on a kept-alive one gets 503.
    const late = await fetch(`${s.url}/v1/models`).catch(() => undefined);
    if (late) {
      expect(late.status).toBe(503);
      expect((await late.json()).error.type).toBe("ServiceUnavailableError");
    }
    expect(await finishReasonOf(shortChunks)).toBe("length");
    expect(await finishReasonOf(longChunks)).toBe("abort");
    await closed;
    expect(s.engine.core.kvCacheManager.usage).toBe(0);
  });
});
