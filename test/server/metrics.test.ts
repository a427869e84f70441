import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { loadModel } from "../../src/model/load.js";
import { scrapeMetrics, startServer, type TestServer } from "../server-helpers.js";

/** Requests of several n and max_tokens; a stop string ends some completions of a request before others. */
const requests = [
  { prompt: "In the beginning", n: 1, max_tokens: 12 },
  { prompt: "And Moses said unto the LORD", n: 3, max_tokens: 40, temperature: 1, seed: 7, stop: [","] },
  { prompt: "Blessed are the meek", n: 2, max_tokens: 5 },
  { prompt: "The LORD is my shepherd", n: 1, max_tokens: 30, temperature: 1, seed: 3 },
];

describe("the vLLM metrics beyond latencies and token counts (the bundled demo model)", () => {
  const model = loadModel(bundledModelPath);
  let s: TestServer;
  beforeAll(async () => {
    // Prefix caching off: every prompt token is computed, so tokens per step add up to an exact total.
    s = await startServer(model, { enablePrefixCaching: false }, { servedModelName: "demo" });
  });
  afterAll(() => s.close(1000));

  test("each finished request and completion is counted once; step tokens add up to the tokens computed", async () => {
    const before = await scrapeMetrics(s.url);
    let steps = 0;
    s.engine.onStep((step) => {
      if (step.numScheduledTokens > 0) steps++;
    });
    const responses = await Promise.all(
      requests.map((r) => s.client.completions.create({ model: "demo", logprobs: 0, ...r })),
    );
    const after = await scrapeMetrics(s.url);
    const delta = (name: string) => (after.get(name) ?? 0) - (before.get(name) ?? 0);

    // Each choice's logprobs list one entry per generated token (the client's own view of the lengths).
    const lengths = responses.map((r) => r.choices.map((c) => c.logprobs?.tokens?.length ?? 0));
    const promptLengths = responses.map((r) => r.usage?.prompt_tokens ?? 0);
    const completions = requests.reduce((sum, r) => sum + r.n, 0);
    lengths.forEach((l, i) => {
      expect(l.reduce((a, b) => a + b)).toBe(responses[i].usage?.completion_tokens);
    });
    // The stop string ends the n = 3 request's completions at different lengths, so the max is not any one's.
    expect(new Set(lengths[1]).size).toBeGreaterThan(1);

    for (const name of ["prefill", "decode", "inference"]) {
      expect(delta(`vellum:request_${name}_time_seconds_count`)).toBe(completions);
    }
    expect(
      delta("vellum:request_prefill_time_seconds_sum") + delta("vellum:request_decode_time_seconds_sum"),
    ).toBeCloseTo(delta("vellum:request_inference_time_seconds_sum"), 9);
    // Queue time and inference time lie within arrival-to-finish.
    expect(
      delta("vellum:request_queue_time_seconds_sum") + delta("vellum:request_inference_time_seconds_sum"),
    ).toBeLessThanOrEqual(delta("vellum:e2e_request_latency_seconds_sum") + 1e-9);
    expect(delta("vellum:request_decode_time_seconds_sum")).toBeGreaterThan(0);

    expect(delta("vellum:request_params_n_count")).toBe(requests.length);
    expect(delta("vellum:request_params_n_sum")).toBe(completions);
    expect(delta('vellum:request_params_n_bucket{le="2"}')).toBe(3);
    expect(delta("vellum:request_params_max_tokens_count")).toBe(completions);
    expect(delta("vellum:request_params_max_tokens_sum")).toBe(
      requests.reduce((sum, r) => sum + r.n * r.max_tokens, 0),
    );
    expect(delta("vellum:request_max_num_generation_tokens_count")).toBe(requests.length);
    expect(delta("vellum:request_max_num_generation_tokens_sum")).toBe(
      lengths.reduce((sum, l) => sum + Math.max(...l), 0),
    );

    // A completion computes its prompt, then feeds back every token it generated but the last.
    const computed = lengths.reduce(
      (sum, l, i) => sum + l.reduce((s2, generated) => s2 + promptLengths[i] + generated - 1, 0),
      0,
    );
    expect(delta("vellum:iteration_tokens_total_sum")).toBe(computed);
    expect(delta("vellum:iteration_tokens_total_count")).toBe(steps);
  });

  test("cache_config_info carries the KV cache's configuration; process and runtime metrics are exported", async () => {
    const text = await (await fetch(`${s.url}/metrics`)).text();
    const config = s.engine.config;
    expect(text).toContain(
      `vellum:cache_config_info{block_size="${config.blockSize}",cache_dtype="f32",enable_prefix_caching="false",kv_allocation="paged",num_gpu_blocks="512",model_name="demo"} 1`,
    );
    const samples = await scrapeMetrics(s.url);
    expect(samples.get("process_resident_memory_bytes")).toBeGreaterThan(model.tensors.size);
    expect(samples.get("process_cpu_user_seconds_total")).toBeGreaterThan(0);
    expect(samples.has("nodejs_eventloop_lag_p99_seconds")).toBe(true);
    expect(samples.has("nodejs_heap_size_used_bytes")).toBe(true);
  });
});
