import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { syntheticModel } from "../../src/model/synth/synth-model.js";
import { waitFor } from "../helpers.js";
import { post, startServer, type TestServer } from "../server-helpers.js";

/** What the server logged, one parsed pino line each. */
const lines: Record<string, unknown>[] = [];
const logStream = new Writable({
  write(chunk: Buffer, _encoding, done) {
    for (const line of chunk.toString().split("\n")) if (line !== "") lines.push(JSON.parse(line));
    done();
  },
});

const requestLines = (url: string) => lines.filter((line) => line.msg === "request" && line.url === url);

/** A long stream: 200 tokens that the client will not wait for. */
const longStream = { prompt: "hi", max_tokens: 200, ignore_eos: true, stream: true };

const model = syntheticModel("tiny-test", "f32");

describe("one log line per request, with its finish_reason", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer(model, {}, { logger: { level: "info", stream: logStream } });
  });
  afterAll(() => s.close(1000));

  /** Waits until the engine has nothing left, then a little longer for any late line. */
  const settled = async () => {
    await waitFor(() => s.engine.core.scheduler.stats().numRunning === 0, 10_000, "engine idle");
    await new Promise((resolve) => setTimeout(resolve, 200));
  };

  test("a completed request, a streamed one with n = 2, and a rejected one", async () => {
    const body = { prompt: "hi", max_tokens: 3, ignore_eos: true };
    expect((await post(`${s.url}/v1/completions?plain`, body)).status).toBe(200);
    const streamed = await fetch(`${s.url}/v1/completions?streamed`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...body, n: 2, stream: true }),
    });
    expect(await streamed.text()).toMatch(/\[DONE\]/);
    expect((await post(`${s.url}/v1/completions?rejected`, { prompt: "hi", top_p: 7 })).status).toBe(400);
    await settled();

    expect(requestLines("/v1/completions?plain")).toEqual([
      expect.objectContaining({ status: 200, generated_tokens: 3, finish_reason: "length" }),
    ]);
    expect(requestLines("/v1/completions?streamed")).toEqual([
      expect.objectContaining({ status: 200, generated_tokens: 6, finish_reason: ["length", "length"] }),
    ]);
    const [rejected] = requestLines("/v1/completions?rejected");
    expect(requestLines("/v1/completions?rejected")).toHaveLength(1);
    expect(rejected).toMatchObject({ status: 400 });
    expect(rejected).not.toHaveProperty("finish_reason");
  });

  test("a client that disconnects mid-stream: one line, finish_reason abort", async () => {
    const controller = new AbortController();
    const response = await fetch(`${s.url}/v1/chat/completions?gone`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        ...longStream,
        prompt: undefined,
        messages: [{ role: "user", content: "hi" }],
        n: 2,
      }),
      signal: controller.signal,
    });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    controller.abort();
    await waitFor(() => requestLines("/v1/chat/completions?gone").length > 0, 10_000, "the line");
    await settled();
    const [line] = requestLines("/v1/chat/completions?gone");
    expect(requestLines("/v1/chat/completions?gone")).toHaveLength(1);
    expect(line).toMatchObject({ status: 200, finish_reason: ["abort", "abort"] });
    expect(line.generated_tokens).toBeLessThan(2 * longStream.max_tokens);
  });

  test("a client that disconnects before a non-streamed answer: one line, status 499, finish_reason abort", async () => {
    const controller = new AbortController();
    const request = fetch(`${s.url}/v1/completions?impatient`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...longStream, stream: false }),
      signal: controller.signal,
    });
    await waitFor(() => s.engine.core.scheduler.stats().numRunning > 0, 10_000, "generation started");
    controller.abort();
    await expect(request).rejects.toThrow();
    await waitFor(() => requestLines("/v1/completions?impatient").length > 0, 10_000, "the line");
    await settled();
    expect(requestLines("/v1/completions?impatient")).toEqual([
      expect.objectContaining({ status: 499, finish_reason: "abort" }),
    ]);
  });

  test("nothing is logged twice and nothing else is logged per request", () => {
    const ids = lines.filter((line) => line.msg === "request").map((line) => line.reqId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(lines.filter((line) => line.reqId !== undefined && line.msg !== "request")).toEqual([]);
  });
});
