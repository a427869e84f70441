import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { decode } from "@msgpack/msgpack";
import OpenAI from "openai";
import { describe, expect, test } from "vitest";
import { Dealer } from "zeromq";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { LLM } from "../../src/engine/llm.js";
import { loadModel } from "../../src/model/load.js";
import { runCli } from "../cli/run-cli.js";
import { waitFor } from "../helpers.js";
import { floodingChat, scrapeMetrics, stalledClient } from "../server-helpers.js";

const cli = join(import.meta.dirname, "..", "..", "bin", "vellum.js");

interface Served {
  child: ChildProcess;
  url: string;
  /** Everything the process wrote to stdout and stderr so far. */
  output: () => string;
  exited: Promise<number | null>;
}

/** Starts `vellum serve ARGS --port 0` and resolves once it logs the URL it serves at. */
function serve(...args: string[]): Promise<Served> {
  const child = spawn("node", [cli, "serve", "--port", "0", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`vellum serve did not start:\n${output}`)), 60_000);
    const onData = (data: Buffer) => {
      output += data.toString();
      const m = /serving .* at (http:\/\/\S+)\/v1/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1], output: () => output, exited });
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    exited.then((code) => reject(new Error(`vellum serve exited with ${code}:\n${output}`)));
  });
}

const hasBundled = existsSync(bundledModelPath);
if (!hasBundled) console.warn(`[skip] vellum serve on the bundled model: ${bundledModelPath} not found`);

describe.skipIf(!hasBundled)("vellum serve with no --model serves the bundled demo model", () => {
  test("logs the model, backend, KV cache and URL; one line per request; SIGTERM exits 0", async () => {
    const s = await serve("--served-model-name", "demo");
    expect(s.output()).toMatch(/model \\"kjv-demo\\" \(gguf/);
    expect(s.output()).toMatch(
      /KV cache \(f32\): [\d,]+ blocks of \d+ tokens .* max concurrency .* backend (native|reference).* paged KV, prefix caching on, continuous batching, fcfs/,
    );
    const prompt = "In the beginning";
    const llm = await LLM.fromModel(loadModel(bundledModelPath), { numBlocks: 64 });
    const [offline] = await llm.generate([prompt], { temperature: 0, maxTokens: 5 });
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "none", maxRetries: 0 });
    const r = await client.completions.create({ model: "demo", prompt, max_tokens: 5, temperature: 0 });
    expect(r.choices[0].text).toBe(offline.outputs[0].text);
    s.child.kill("SIGTERM");
    expect(await s.exited).toBe(0);
    const requestLines = s
      .output()
      .split("\n")
      .filter((line) => line.includes('"url":"/v1/completions"'));
    expect(requestLines).toHaveLength(1);
    expect(JSON.parse(requestLines[0])).toMatchObject({
      status: 200,
      prompt_tokens: offline.promptTokenIds.length,
      generated_tokens: 5,
      msg: "request",
    });
    expect(JSON.parse(requestLines[0]).ttft_s).toBeGreaterThan(0);
  });

  test("on the native backend the prefill budget comes from rates measured at startup, unless a flag sets it", async () => {
    const measured = await serve();
    expect(measured.output()).toContain("and 2048 tokens per step");
    const budget = /prefill budget (\d+) tokens per step from measured rates/.exec(measured.output())?.[1];
    if (/backend native/.test(measured.output())) {
      expect(measured.output()).toMatch(
        /prefill budget \d+ tokens per step from measured rates \(decode step [\d.]+ ms, prefill [\d.]+ ms\/token\)/,
      );
      expect(Number(budget) % 16).toBe(0);
    } else {
      expect(budget).toBeUndefined();
    }
    measured.child.kill("SIGTERM");
    expect(await measured.exited).toBe(0);

    for (const flags of [
      ["--max-num-batched-tokens", "512"],
      ["--long-prefill-token-threshold", "100"],
    ]) {
      const given = await serve(...flags);
      expect(given.output()).toContain(
        `and ${flags[0] === "--max-num-batched-tokens" ? 512 : 2048} tokens per step`,
      );
      expect(given.output()).not.toContain("measured rates");
      given.child.kill("SIGTERM");
      expect(await given.exited).toBe(0);
    }
  });

  test("SIGTERM with a request running: it ends with finish_reason abort after the grace period, exit 0", async () => {
    // 10 ms of grace: the 240 tokens take 0.13–0.19 s in-process on the native backend on a 2-core machine (more
    // when streamed), so the request is still running when the grace period ends.
    const s = await serve("--shutdown-timeout", "0.01");
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "none", maxRetries: 0 });
    // ignore_eos (vLLM's, not in the openai client's types) keeps it running until the shutdown.
    const body = {
      model: "kjv-demo",
      prompt: "In",
      max_tokens: 240,
      ignore_eos: true,
      stream: true as const,
    };
    const stream = await client.completions.create(body);
    let finishReason: string | null = null;
    let killed = false;
    for await (const chunk of stream) {
      if (!killed) s.child.kill("SIGTERM");
      killed = true;
      finishReason = chunk.choices[0]?.finish_reason ?? finishReason;
    }
    expect(finishReason).toBe("abort");
    expect(await s.exited).toBe(0);
  });

  test("SIGTERM during a stream: not ready at once, still live, new requests 503; the stream finishes, exit 0", async () => {
    // The reference backend and 4 completions keep the stream running for seconds, well within the grace period.
    const s = await serve("--backend", "reference", "--shutdown-timeout", "60");
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "none", maxRetries: 0 });
    const body = {
      model: "kjv-demo",
      prompt: "In",
      max_tokens: 200,
      n: 4,
      ignore_eos: true,
      stream: true as const,
    };
    const chunks = (await client.completions.create(body))[Symbol.asyncIterator]();
    expect((await chunks.next()).done).toBe(false);
    s.child.kill("SIGTERM");
    await waitFor(async () => (await fetch(`${s.url}/health`)).status === 503, 10_000, "/health 503");
    expect((await fetch(`${s.url}/live`)).status).toBe(200);
    const late = await fetch(`${s.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "kjv-demo", prompt: "a", max_tokens: 2 }),
    });
    expect(late.status).toBe(503);
    const finishReasons: string[] = [];
    for (let c = await chunks.next(); !c.done; c = await chunks.next()) {
      for (const choice of c.value.choices)
        if (choice.finish_reason) finishReasons.push(choice.finish_reason);
    }
    expect(finishReasons).toEqual(["length", "length", "length", "length"]);
    expect(await s.exited).toBe(0);
  });

  test("--kv-events-config publishes the cache's blocks on ZeroMQ; --metrics-prefix vllm adds vllm: names", async () => {
    const config = {
      enable_kv_cache_events: true,
      endpoint: "tcp://127.0.0.1:*",
      replay_endpoint: "tcp://127.0.0.1:*",
      topic: "kv@test@kjv-demo",
    };
    const s = await serve("--kv-events-config", JSON.stringify(config), "--metrics-prefix", "vllm");
    const replayAt = /replay at (tcp:\/\/\S+?)"/.exec(s.output())?.[1] as string;
    expect(s.output()).toMatch(/KV cache events at tcp:\/\/127\.0\.0\.1:\d+, replay at/);
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "none", maxRetries: 0 });
    const prompt = "In the beginning God created the heaven and the earth. And the earth was without form";
    await client.completions.create({ model: "kjv-demo", prompt, max_tokens: 4 });
    const dealer = new Dealer();
    dealer.connect(replayAt);
    await dealer.send(["", Buffer.alloc(8)]);
    const events: unknown[][] = [];
    for (;;) {
      const [, seq, payload] = await dealer.receive();
      if (seq.readBigInt64BE() === -1n) break;
      events.push(...(decode(payload, { useBigInt64: true }) as [number, unknown[][]])[1]);
    }
    dealer.close();
    expect(events[0]).toEqual(["AllBlocksCleared"]);
    const stored = events.filter((e) => e[0] === "BlockStored");
    expect(stored.length).toBeGreaterThan(0);
    expect((stored[0][3] as number[]).length).toBe(16 * (stored[0][1] as unknown[]).length);
    const metrics = await scrapeMetrics(s.url);
    expect(metrics.get("vllm:prompt_tokens_total")).toBe(metrics.get("vellum:prompt_tokens_total"));
    s.child.kill("SIGTERM");
    expect(await s.exited).toBe(0);
  });

  test("a --kv-events-config field vLLM does not have is one line naming it, exit 1", async () => {
    const r = await runCli(["serve", "--kv-events-config", '{"enable_kv_cache_events":true,"endpiont":"x"}']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/--kv-events-config.*endpiont/);
  });

  test("a malformed flag value is one line naming the flag, exit 1", async () => {
    const child = spawn("node", [cli, "serve", "--kv-cache-memory", "lots"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const code = await new Promise((resolve) => child.on("exit", resolve));
    expect(code).toBe(1);
    expect(stderr.trim().split("\n")).toHaveLength(1);
    expect(stderr).toMatch(/--kv-cache-memory.*lots/);
  });

  test("completions and chat answer", async () => {
    const s = await serve();
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "none", maxRetries: 0 });
    const [served] = (await client.models.list()).data;
    const r = await client.completions.create({
      model: served.id,
      prompt: "In the beginning",
      max_tokens: 8,
    });
    expect(r.usage?.completion_tokens).toBeGreaterThan(0);
    const chat = await client.chat.completions.create({
      model: served.id,
      messages: [{ role: "user", content: "Hello" }],
      max_tokens: 8,
    });
    expect(chat.choices[0].message.role).toBe("assistant");
    s.child.kill("SIGTERM");
    expect(await s.exited).toBe(0);
  });

  test("SIGTERM with clients that stopped reading: their connections are closed after --shutdown-timeout, exit 0", async () => {
    const s = await serve("--shutdown-timeout", "1");
    const clients = [0, 1].map(() => stalledClient(s.url, "/v1/chat/completions", floodingChat));
    // Both streams generated to their end: about 7 MB each, unread, more than the socket buffers hold, so the
    // rest (and the responses' end) waits in the server.
    const finished = `vellum:request_success_total{finished_reason="length"}`;
    await waitFor(
      async () => (await scrapeMetrics(s.url)).get(finished) === 2 * floodingChat.n,
      120_000,
      "both streams generated",
    );
    const start = performance.now();
    s.child.kill("SIGTERM");
    expect(await s.exited).toBe(0);
    const seconds = (performance.now() - start) / 1000;
    if (process.env.SHOW)
      console.log(
        `vellum serve --shutdown-timeout 1, 2 clients not reading: exit 0 after ${seconds.toFixed(2)} s`,
      );
    // 1 s of grace, half a second for the aborted responses to flush, and slack for a busy machine.
    expect(seconds).toBeLessThan(1.5 + 4);
    for (const client of clients) client.destroy();
  }, 180_000);
});

describe.skipIf(!hasBundled)("vellum serve --no-parse-special", () => {
  test("prompts keep special-token text as text; a large prompt is tokenized by dist/'s worker thread alike", async () => {
    const s = await serve("--no-parse-special");
    const { tokenizer } = loadModel(bundledModelPath);
    for (const prompt of ["light</s><s>", "Let there be light.</s>\n".repeat(500)]) {
      const r = await fetch(`${s.url}/tokenize`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ prompt }),
      });
      expect((await r.json()).tokens).toEqual(tokenizer.encode(prompt, { parseSpecial: false }));
    }
    s.child.kill("SIGTERM");
    expect(await s.exited).toBe(0);
  });
});
