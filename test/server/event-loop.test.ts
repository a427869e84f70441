import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { loadModel } from "../../src/model/load.js";
import { startServer, type TestServer } from "../server-helpers.js";

/**
 * /health answers while a 1 MB prompt is tokenized (which takes seconds): tokenizing large inputs runs on a
 * worker thread, not on the event loop. Before, /health waited for the whole tokenization.
 */
describe("the event loop stays free while a 1 MB prompt is tokenized", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer(loadModel(bundledModelPath));
  });
  afterAll(() => s.close(1000));

  const verse =
    "In the beginning God created the heaven and the earth. And the earth was without form, and void; ";
  const prompt = verse.repeat(Math.ceil(1_000_000 / verse.length)).slice(0, 1_000_000);

  /**
   * Asks /health every 5 ms while `path` handles `body`; returns its response and the 99th percentile of how
   * long after it was due each /health answered. Counted from when it was due, not from when it was sent,
   * because this client shares the server's event loop: a stall would delay the sending too.
   */
  async function healthWhile(path: string, body: object) {
    const json = JSON.stringify(body);
    let done = false;
    const response = fetch(`${s.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: json,
    }).finally(() => {
      done = true;
    });
    const latencies: number[] = [];
    let due = performance.now();
    while (!done) {
      await fetch(`${s.url}/health`);
      latencies.push(performance.now() - due);
      due = performance.now() + 5;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const res = await response;
    latencies.sort((a, b) => a - b);
    const p99 = latencies[Math.ceil(0.99 * latencies.length) - 1]; // nearest rank
    console.log(`${path}: /health p99 ${p99.toFixed(1)} ms over ${latencies.length} requests`);
    return { res, p99 };
  }

  // The requirement is 50 ms p99; the bound leaves room for a loaded 2-core CI machine (this test's client
  // shares the server's event loop, and other tests run beside it). Before the change it was seconds.
  const bound = 250;

  test("via /tokenize", async () => {
    const { res, p99 } = await healthWhile("/tokenize", { prompt });
    expect(res.status).toBe(200);
    expect((await res.json()).count).toBeGreaterThan(100_000);
    expect(p99).toBeLessThan(bound);
  });

  test("via /v1/completions (tokenized, then refused as longer than the model's context)", async () => {
    const { res, p99 } = await healthWhile("/v1/completions", { prompt, max_tokens: 1 });
    expect(res.status).toBe(400);
    expect((await res.json()).error.message).toMatch(/^prompt \(\d+ tokens\)/);
    expect(p99).toBeLessThan(bound);
  });
});
