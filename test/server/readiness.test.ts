import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { loadNativeAddon } from "../../src/backend/native/addon.js";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { createEngine } from "../../src/engine/create-engine.js";
import { loadModel } from "../../src/model/load.js";
import { listenWhileLoading } from "../../src/server/loading.js";
import { buildServer } from "../../src/server/server.js";
import { post, scrapeMetrics, startServer, type TestServer } from "../server-helpers.js";
import { zeroWeightsModel } from "../zero-weights-model.js";

const model = loadModel(bundledModelPath);

describe("--metrics-prefix vllm", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer(model, {}, { servedModelName: "demo", metricsPrefix: "vllm" });
  });
  afterAll(() => s.close(1000));

  test("every vellum: series has a vllm: twin with the same value, and nothing else is added", async () => {
    await s.client.completions.create({ model: "demo", prompt: "In the beginning", max_tokens: 8 });
    const samples = await scrapeMetrics(s.url);
    const vellum = [...samples].filter(([name]) => name.startsWith("vellum:"));
    const vllm = [...samples].filter(([name]) => name.startsWith("vllm:"));
    expect(vellum.length).toBeGreaterThan(50);
    expect(vllm).toEqual(vellum.map(([name, value]) => [name.replace(/^vellum:/, "vllm:"), value]));
    expect(samples.get('vllm:request_success_total{finished_reason="length"}')).toBe(1);
    // Each family once, with its own HELP and TYPE: a scraper rejects a family that appears twice.
    const text = await (await fetch(`${s.url}/metrics`)).text();
    const types = text.split("\n").filter((l) => l.startsWith("# TYPE "));
    expect(new Set(types).size).toBe(types.length);
    expect(types).toContain("# TYPE vllm:time_to_first_token_seconds histogram");
  });

  test("by default only vellum: names", async () => {
    const plain = await startServer(model, {}, {});
    const samples = await scrapeMetrics(plain.url);
    await plain.close(1000);
    expect([...samples.keys()].some((n) => n.startsWith("vellum:"))).toBe(true);
    expect([...samples.keys()].some((n) => n.startsWith("vllm:"))).toBe(false);
  });
});

describe("readiness (/health) and liveness (/live)", () => {
  test("while the model loads: /live 200, /health and /v1 503 in OpenAI's shape; then the app answers on the same socket", async () => {
    const loading = await listenWhileLoading("127.0.0.1", 0);
    const agent = { keepalive: true } as const;
    expect((await fetch(`${loading.url}/live`, agent)).status).toBe(200);
    const health = await fetch(`${loading.url}/health`, agent);
    expect(health.status).toBe(503);
    expect(health.headers.get("retry-after")).toBe("5");
    expect(await health.json()).toEqual({
      error: { message: "the model is loading", type: "ServiceUnavailableError", param: null, code: 503 },
    });
    const completion = await post(`${loading.url}/v1/completions`, { model: "x", prompt: "a" });
    expect(completion.status).toBe(503);
    expect(completion.body.error.type).toBe("ServiceUnavailableError");

    const { engine } = await createEngine(model, { numBlocks: 64 });
    const server = buildServer(engine, model, { httpServer: loading.server });
    await server.app.ready();
    loading.serveWith(server.app.routing);
    expect((await fetch(`${loading.url}/health`, agent)).status).toBe(200);
    expect((await fetch(`${loading.url}/live`, agent)).status).toBe(200);
    const ok = await post(`${loading.url}/v1/completions`, {
      model: model.name,
      prompt: "In",
      max_tokens: 3,
    });
    expect(ok.status).toBe(200);
    expect(ok.body.usage.completion_tokens).toBe(3);
    await server.close(1000);
    expect(loading.server.listening).toBe(false);
  });

  test.skipIf(loadNativeAddon() instanceof Error)(
    "/live answers at once while a large native model is built and its KV cache allocated",
    async () => {
      const loading = await listenWhileLoading("127.0.0.1", 0);
      const big = zeroWeightsModel(6); // TinyLlama's shapes, 6 layers: 350 MB of weights to interleave
      const started = performance.now();
      let loaded = false;
      const engine = createEngine(big, { numBlocks: 4096, backend: "native", threads: 2 }).finally(() => {
        loaded = true;
      });
      const probesMs: number[] = [];
      while (!loaded) {
        const t0 = performance.now();
        expect((await fetch(`${loading.url}/live`)).status).toBe(200);
        probesMs.push(performance.now() - t0);
      }
      await engine;
      const loadMs = performance.now() - started;
      loading.server.close();
      console.log(
        `load ${loadMs.toFixed(0)} ms: ${probesMs.length} probes, slowest ${Math.max(...probesMs).toFixed(1)} ms`,
      );
      // Built on the JS thread, the model would hold every probe until the load ends.
      expect(probesMs.length).toBeGreaterThan(3);
      expect(Math.max(...probesMs)).toBeLessThan(loadMs / 4);
    },
  );

  test("a drain: /health turns 503 at once, /live and /metrics stay 200, new requests get 503, the running stream finishes", async () => {
    const s = await startServer(model, { backend: "reference" }, { servedModelName: "demo" });
    const stream = await s.client.completions.create({
      model: "demo",
      prompt: "In the beginning",
      max_tokens: 200,
      n: 4,
      temperature: 0,
      stream: true,
    });
    const chunks = stream[Symbol.asyncIterator]();
    const first = await chunks.next();
    expect(first.done).toBe(false);

    const closed = s.close(60_000);
    const health = await fetch(`${s.url}/health`);
    expect(health.status).toBe(503);
    expect((await health.json()).error.message).toBe("the server is shutting down");
    expect((await fetch(`${s.url}/live`)).status).toBe(200);
    expect((await fetch(`${s.url}/metrics`)).status).toBe(200);
    const late = await post(`${s.url}/v1/completions`, { model: "demo", prompt: "a", max_tokens: 2 });
    expect(late.status).toBe(503);
    expect(s.engine.stats().numRunning).toBeGreaterThan(0); // still draining when the probes were answered

    const finishReasons: string[] = [];
    for (let c = await chunks.next(); !c.done; c = await chunks.next()) {
      for (const choice of c.value.choices)
        if (choice.finish_reason) finishReasons.push(choice.finish_reason);
    }
    expect(finishReasons.sort()).toEqual(["length", "length", "length", "length"]);
    await closed;
    expect(s.app.server.listening).toBe(false);
  });
});
