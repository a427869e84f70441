import { execFile } from "node:child_process";
import { request } from "node:http";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { syntheticModel } from "../../src/model/synth/synth-model.js";
import { defaultLimits } from "../../src/server/server.js";
import { waitFor, watchEventLoop } from "../helpers.js";
import { post, scrapeMetrics, startServer, type TestServer } from "../server-helpers.js";

// A random-weight model of tiny shapes (vocab 512, 256 positions); eight running at a time keeps each engine
// step short, so what /health waits for is the server's own work.
const model = syntheticModel("tiny-test", "f32");
const engineOptions = { maxNumSeqs: 8, backend: "reference" as const };
const aborted = 'vellum:request_success_total{finished_reason="abort"}';

/** The error body's fields. */
function errorOf(r: { body: unknown }) {
  return (r.body as { error: { message: string; type: string; param: string | null } }).error;
}

/**
 * Sends a long streamed completion of `prompts` × n, waits until all of it is queued, then closes the connection
 * while /health is probed every 20 ms. Returns the slowest /health answer and the completions the server counted as aborted.
 */
async function disconnectDuringFanOut(s: TestServer, prompts: string[], n: number) {
  const before = (await scrapeMetrics(s.url)).get(aborted) ?? 0;
  const client = request(`${s.url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
  });
  client.on("error", () => undefined);
  client.end(JSON.stringify({ prompt: prompts, n, max_tokens: 200, ignore_eos: true, stream: true }));
  await waitFor(() => {
    const q = s.engine.core.scheduler.stats();
    return q.numRunning + q.numWaiting === prompts.length * n && s.engine.core.kvCacheManager.usage > 0;
  }, 20_000);
  const healthMs: number[] = [];
  let probing = true;
  const probe = (async () => {
    while (probing) {
      const t0 = performance.now();
      expect((await fetch(`${s.url}/health`)).status).toBe(200);
      healthMs.push(performance.now() - t0);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  const loop = watchEventLoop();
  client.destroy();
  await waitFor(() => !s.engine.core.hasUnfinishedRequests, 20_000);
  const longestTurnMs = await loop.stop();
  probing = false;
  await probe;
  const after = await scrapeMetrics(s.url);
  return {
    healthMaxMs: Math.max(...healthMs),
    probes: healthMs.length,
    longestTurnMs,
    aborted: (after.get(aborted) ?? 0) - before,
    kvCacheUsage: after.get("vellum:kv_cache_usage_perc"),
  };
}

describe("default limits", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer(model, engineOptions, { servedModelName: "tiny" });
  });
  afterAll(() => s.close(1000));

  test("a 10 KB body asking for 2,000 prompts × n 128 gets a 400 naming prompt at once; nothing is queued", async () => {
    const prompts = Array.from({ length: 2000 }, (_, i) => `p${i % 10}`);
    const started = performance.now();
    const r = await post(`${s.url}/v1/completions`, { prompt: prompts, n: 128, max_tokens: 64 });
    const ms = performance.now() - started;
    console.log(`[measure] fan-out request (2,000 prompts × n 128): ${r.status} in ${ms.toFixed(1)} ms`);
    expect(r.status).toBe(400);
    expect(errorOf(r)).toMatchObject({ type: "BadRequestError", param: "prompt" });
    expect(errorOf(r).message).toMatch(/256000 sequences .* more than .* one request \(1024\)/);
    expect(ms).toBeLessThan(1000);
    expect(s.engine.core.hasUnfinishedRequests).toBe(false);
  });

  test("prompts few enough but too many completions each: 400 naming n", async () => {
    const r = await post(`${s.url}/v1/completions`, { prompt: Array(9).fill("a"), n: 128 });
    expect(r.status).toBe(400);
    expect(errorOf(r)).toMatchObject({ param: "n" });
    expect(errorOf(r).message).toMatch(/1152 sequences \(9 prompts × n 128\)/);
  });

  test("a client that leaves a request as large as the limit allows: /health keeps answering, all of it is aborted", async () => {
    const n = 128;
    const prompts = Array.from({ length: defaultLimits.maxSeqsPerRequest / n }, (_, i) => `And ${i}`);
    const r = await disconnectDuringFanOut(s, prompts, n);
    console.log(
      `[measure] disconnect with ${prompts.length * n} sequences queued: /health max ${r.healthMaxMs.toFixed(1)} ms ` +
        `(${r.probes} probes), longest event-loop turn ${r.longestTurnMs.toFixed(0)} ms`,
    );
    expect(r.aborted).toBe(defaultLimits.maxSeqsPerRequest);
    expect(r.kvCacheUsage).toBe(0);
    expect(r.longestTurnMs).toBeLessThan(1000);
    expect(r.healthMaxMs).toBeLessThan(1000);
  });
});

describe("--max-queue 0 and --max-seqs-per-request 0: no bounds", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer(model, engineOptions, { maxQueue: 0, maxSeqsPerRequest: 0 });
  });
  afterAll(() => s.close(1000));

  test("60,000 sequences are admitted; when their client leaves, /health keeps answering while all are aborted", async () => {
    const prompts = Array.from({ length: 600 }, (_, i) => `And ${i}`);
    const r = await disconnectDuringFanOut(s, prompts, 100);
    console.log(
      `[measure] disconnect with 60000 sequences queued: /health max ${r.healthMaxMs.toFixed(1)} ms ` +
        `(${r.probes} probes), longest event-loop turn ${r.longestTurnMs.toFixed(0)} ms`,
    );
    expect(r.aborted).toBe(60_000);
    expect(r.kvCacheUsage).toBe(0);
    expect(r.longestTurnMs).toBeLessThan(1000);
    expect(r.healthMaxMs).toBeLessThan(1000);
  });
});

describe("limits below a request's size", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer(model, engineOptions, { maxQueue: 3, maxSeqsPerRequest: 2 });
  });
  afterAll(() => s.close(1000));

  test("more sequences than one request may have: 400 naming prompt or n, for completions and chat", async () => {
    const tooManyPrompts = await post(`${s.url}/v1/completions`, { prompt: ["a", "b", "c"] });
    expect(tooManyPrompts.status).toBe(400);
    expect(errorOf(tooManyPrompts)).toMatchObject({ param: "prompt" });
    const chat = await post(`${s.url}/v1/chat/completions`, {
      messages: [{ role: "user", content: "hi" }],
      n: 3,
    });
    expect(chat.status).toBe(400);
    expect(errorOf(chat)).toMatchObject({ param: "n" });
    expect(errorOf(chat).message).toMatch(/3 sequences \(1 prompt × n 3\) .* one request \(2\)/);
    expect((await post(`${s.url}/v1/completions`, { prompt: ["a", "b"], max_tokens: 2 })).status).toBe(200);
  });

  test("a request larger than the whole queue could never be admitted: 400, not 503", async () => {
    const big = await startServer(model, engineOptions, { maxQueue: 3 });
    try {
      const r = await post(`${big.url}/v1/completions`, { prompt: "a", n: 4 });
      expect(r.status).toBe(400);
      expect(r.headers.get("retry-after")).toBeNull();
      expect(errorOf(r)).toMatchObject({ param: "n" });
      expect(errorOf(r).message).toMatch(/whole queue holds \(3\)/);
    } finally {
      await big.close(1000);
    }
  });
});

describe("vellum serve flags", () => {
  const cli = join(import.meta.dirname, "..", "..", "bin", "vellum.js");
  const run = promisify(execFile);

  test("--help states the default limits; a negative limit names its flag", async () => {
    const help = (await run("node", [cli, "serve", "--help"])).stdout.replace(/\s+/g, " ");
    expect(help).toMatch(/--max-queue <n> .*\(0 = no bound\) \(default: 4096\)/);
    expect(help).toMatch(/--max-seqs-per-request <n> .*\(0 = no cap\) \(default: 1024\)/);
    const bad = await run("node", [cli, "serve", "--max-queue", "-1"]).catch((e) => e);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--max-queue.*expected an integer ≥ 0/);
  });
});
