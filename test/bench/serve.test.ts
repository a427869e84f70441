import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { benchServe } from "../../src/bench/serve/bench-serve.js";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { loadModel } from "../../src/model/load.js";
import { checkServer, normalizeBaseUrl } from "../../src/workload/openai-client.js";
import { type WorkloadFlags, workloadFrom } from "../../src/workload/workload.js";
import { scrapeMetrics, startServer, type TestServer } from "../server-helpers.js";

const flags = (o: Partial<WorkloadFlags> = {}): WorkloadFlags => ({
  dataset: "random",
  numPrompts: 50,
  inputLen: 16,
  outputLen: 16,
  rangeRatio: 0.5,
  prefixLen: 0,
  vocabSize: 512,
  requestRate: "25",
  burstiness: 1,
  seed: 0,
  ...o,
});

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe("bench serve against a real vellum server (the bundled demo model)", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer(loadModel(bundledModelPath), {}, { servedModelName: "demo" });
  });
  afterAll(() => s.close(1000));

  it("completes a 50-request Poisson run with 0 failures; token counts match /metrics", async () => {
    const workload = workloadFrom(flags());
    const before = await scrapeMetrics(s.url);
    const run = await benchServe(
      { baseUrl: `${s.url}/v1`, endpoint: "completions", ignoreEos: true },
      workload,
      "run",
      false,
    );
    const after = await scrapeMetrics(s.url);
    const delta = (name: string) => (after.get(name) ?? 0) - (before.get(name) ?? 0);

    expect(run.model).toBe("demo");
    expect(run.summary.failed).toBe(0);
    expect(run.summary.completed).toBe(50);
    expect(run.summary.total_output_tokens).toBe(delta("vellum:generation_tokens_total"));
    expect(run.summary.total_input_tokens).toBe(delta("vellum:prompt_tokens_total"));
    // ignore_eos: every request generates exactly its output length; prompts are sent as token ids.
    for (const [i, r] of run.records.entries()) {
      expect(r.outputTokens).toBe(workload.prompts[i].outputLen);
      expect(r.promptTokens).toBe(workload.prompts[i].promptTokenIds.length);
      // One gap per streamed chunk after the first; a chunk may carry several tokens (or none, for a
      // token that ends inside a UTF-8 character), so chunks are not tokens.
      expect(r.itl.length).toBeGreaterThan(0);
      expect(r.e2e).toBeCloseTo(r.ttft + r.itl.reduce((a, b) => a + b, 0), 6);
    }
    expect(run.summary.duration).toBeGreaterThanOrEqual(50 / 25);
    expect(run.summary.median_ttft_ms).toBeGreaterThan(0);
  });

  it("streams the chat endpoint too", async () => {
    const workload = workloadFrom(flags({ numPrompts: 4, requestRate: "inf" }));
    const run = await benchServe(
      { baseUrl: s.url, endpoint: "chat", ignoreEos: true },
      workload,
      "chat",
      false,
    );
    expect(run.summary.failed).toBe(0);
    expect(run.summary.total_output_tokens).toBe(workload.prompts.reduce((a, p) => a + p.outputLen, 0));
  });
});

describe("bench serve against fake servers", () => {
  const servers: Server[] = [];
  afterAll(() => {
    for (const server of servers) server.close();
  });

  /** An OpenAI-like server: every third completion fails with 500, the others stream 3 tokens 20 ms apart. */
  async function fakeOpenAi(): Promise<string> {
    let n = 0;
    const server = createServer((req, res) => {
      if (req.url === "/v1/models") {
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify({ object: "list", data: [{ id: "fake", object: "model" }] }));
        return;
      }
      req.resume();
      if (n++ % 3 === 2) {
        res.statusCode = 500;
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify({ error: { message: "boom", type: "InternalServerError", code: 500 } }));
        return;
      }
      res.setHeader("content-type", "text/event-stream");
      const chunk = (data: unknown) => res.write(`data: ${JSON.stringify(data)}\n\n`);
      let sent = 0;
      const timer = setInterval(() => {
        chunk({ object: "text_completion", choices: [{ index: 0, text: "x", finish_reason: null }] });
        if (++sent === 3) {
          clearInterval(timer);
          chunk({ choices: [], usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 } });
          res.end("data: [DONE]\n\n");
        }
      }, 20);
    });
    servers.push(server);
    return listen(server);
  }

  it("times the stream and counts failed requests instead of dropping them", async () => {
    const url = await fakeOpenAi();
    const workload = workloadFrom(flags({ numPrompts: 6, requestRate: "inf", maxConcurrency: 1 }));
    const run = await benchServe(
      { baseUrl: url, endpoint: "completions", ignoreEos: false },
      workload,
      "fake",
      false,
    );
    expect(run.summary.completed).toBe(4);
    expect(run.summary.failed).toBe(2);
    expect(run.records[2].error).toBe("HTTP 500: boom");
    expect(run.summary.total_input_tokens).toBe(4 * 7); // from usage, not the ids sent
    expect(run.summary.total_output_tokens).toBe(4 * 3);
    for (const r of run.records.filter((x) => x.success)) {
      expect(r.itl).toHaveLength(2);
      for (const gap of r.itl) expect(gap).toBeGreaterThan(0.01);
      expect(r.ttft).toBeGreaterThan(0.01);
      expect(r.e2e).toBeCloseTo(r.ttft + r.itl[0] + r.itl[1], 9);
    }
  });

  it("reports a server that does not speak OpenAI in one line", async () => {
    const server = createServer((_req, res) => {
      res.setHeader("content-type", "text/html");
      res.end("<html>hello</html>");
    });
    servers.push(server);
    const url = await listen(server);
    await expect(checkServer(url)).rejects.toThrow(
      /\/v1\/models did not answer like an OpenAI-compatible server: HTTP 200, text\/html, body "<html>hello<\/html>"/,
    );
  });

  it("reports an unreachable server in one line", async () => {
    const server = createServer();
    const url = await listen(server);
    await new Promise((resolve) => server.close(resolve));
    await expect(checkServer(url)).rejects.toThrow(
      new RegExp(`cannot reach the server at ${url}: ECONNREFUSED`),
    );
    expect(() => normalizeBaseUrl("not a url")).toThrow(/--base-url "not a url" is not a URL/);
    expect(normalizeBaseUrl("http://h:1/v1/")).toBe("http://h:1");
  });
});
