import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { syntheticModel } from "../../src/model/synth/synth-model.js";
import { post, startServer, type TestServer } from "../server-helpers.js";

/** OpenAI's error body, naming the field when there is one. */
function expectError(
  r: { status: number; body: unknown },
  status: number,
  type: string,
  param: string | null,
) {
  expect(r.status, JSON.stringify(r.body)).toBe(status);
  const error = (r.body as { error: { message: string; type: string; param: string | null; code: number } })
    .error;
  expect(error).toMatchObject({ type, param, code: status });
  expect(error.message).toMatch(/\S/);
  if (process.env.SHOW) console.log(status, error.param, error.message);
  expect(error.message).not.toMatch(/\n\s+at /);
}

// A random-weight model of tiny shapes (vocab 512, 256 positions): bad input needs no real weights.
const model = syntheticModel("tiny-test", "f32");

describe("bad input gets OpenAI's error shape and the right status", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer(model, {}, { servedModelName: "tiny", bodyLimit: 64 * 1024 });
  });
  afterAll(() => s.close(1000));
  const completions = (body: unknown) => post(`${s.url}/v1/completions`, body);
  const chat = (body: unknown) => post(`${s.url}/v1/chat/completions`, body);

  test("wrong types and out-of-range values name the field", async () => {
    expectError(
      await completions({ prompt: "hi", temperature: "hot" }),
      400,
      "BadRequestError",
      "temperature",
    );
    expectError(await completions({ prompt: "hi", max_tokens: 2.5 }), 400, "BadRequestError", "max_tokens");
    expectError(await completions({ prompt: "hi", max_tokens: 0 }), 400, "BadRequestError", "max_tokens");
    expectError(await completions({ prompt: "hi", top_p: 1.5 }), 400, "BadRequestError", "top_p");
    expectError(await completions({ prompt: "hi", temperature: -1 }), 400, "BadRequestError", "temperature");
    expectError(
      await completions({ prompt: "hi", presence_penalty: 3 }),
      400,
      "BadRequestError",
      "presence_penalty",
    );
    expectError(await completions({ prompt: "hi", n: 0 }), 400, "BadRequestError", "n");
    expectError(await completions({ prompt: "hi", logprobs: 21 }), 400, "BadRequestError", "logprobs");
    expectError(await completions({ prompt: "hi", stop: [""] }), 400, "BadRequestError", "stop.0");
    expectError(
      await completions({ prompt: "hi", min_tokens: 9, max_tokens: 4 }),
      400,
      "BadRequestError",
      "min_tokens",
    );
    expectError(await completions({ prompt: 42 }), 400, "BadRequestError", "prompt");
    expectError(await completions({}), 400, "BadRequestError", "prompt");
    expectError(await completions({ prompt: [] }), 400, "BadRequestError", "prompt");
    expectError(await completions({ prompt: [1, 2, 99999] }), 400, "BadRequestError", "prompt");
    expectError(
      await completions({ prompt: "hi", stop_token_ids: [512] }),
      400,
      "BadRequestError",
      "stop_token_ids",
    );
    expectError(await chat({ messages: [] }), 400, "BadRequestError", "messages");
    expectError(
      await chat({ messages: [{ role: "wizard", content: "hi" }] }),
      400,
      "BadRequestError",
      "messages.0.role",
    );
    expectError(
      await chat({ messages: [{ role: "user", content: "hi" }], top_logprobs: 2 }),
      400,
      "BadRequestError",
      "top_logprobs",
    );
    expectError(await post(`${s.url}/detokenize`, { tokens: [-1] }), 400, "BadRequestError", "tokens.0");
  });

  test("a prompt longer than the model allows is a 400 naming the prompt", async () => {
    const long = Array.from({ length: 300 }, (_, i) => i % 500);
    const r = await completions({ prompt: long, max_tokens: 4 });
    expectError(r, 400, "BadRequestError", "prompt");
    expect(r.body.error.message).toMatch(/maxModelLen 256/);
    const noRoomToGenerate = await completions({ prompt: long.slice(0, 250), max_tokens: 10 });
    expectError(noRoomToGenerate, 400, "BadRequestError", "prompt");
    expectError(
      await chat({ messages: [{ role: "user", content: "x ".repeat(400) }] }),
      400,
      "BadRequestError",
      "messages",
    );
  });

  test("unknown model → 404, unknown route → 404, bad JSON → 400, huge body → 413", async () => {
    expectError(await completions({ model: "gpt-4", prompt: "hi" }), 404, "NotFoundError", "model");
    expectError(
      await chat({ model: "gpt-4", messages: [{ role: "user", content: "hi" }] }),
      404,
      "NotFoundError",
      "model",
    );
    const longName = await completions({ model: "m".repeat(50_000), prompt: "hi" });
    expectError(longName, 404, "NotFoundError", "model");
    expect((longName.body as { error: { message: string } }).error.message.length).toBeLessThan(200);
    expectError(await post(`${s.url}/v1/embeddings`, { input: "hi" }), 404, "NotFoundError", null);
    expectError(await completions('{"prompt": "hi"'), 400, "BadRequestError", null);
    expectError(await completions({ prompt: "x".repeat(100 * 1024) }), 413, "PayloadTooLargeError", null);
  });

  test("the openai client raises its typed errors with our body", async () => {
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "none", maxRetries: 0 });
    const err = await client.completions.create({ model: "tiny", prompt: "hi", top_p: 7 }).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.param).toBe("top_p");
    const missing = await client.completions.create({ model: "nope", prompt: "hi" }).catch((e) => e);
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
  });
});

describe("--api-key", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer(model, {}, { servedModelName: "tiny", apiKey: "sesame" });
  });
  afterAll(() => s.close(1000));

  test("/v1/* needs the key; /health does not", async () => {
    const body = { prompt: "hi", max_tokens: 2 };
    expectError(await post(`${s.url}/v1/completions`, body), 401, "AuthenticationError", null);
    expectError(
      await post(`${s.url}/v1/completions`, body, { authorization: "Bearer wrong" }),
      401,
      "AuthenticationError",
      null,
    );
    expect((await post(`${s.url}/v1/completions`, body, { authorization: "Bearer sesame" })).status).toBe(
      200,
    );
    expect((await fetch(`${s.url}/v1/models`)).status).toBe(401);
    expect((await fetch(`${s.url}/health`)).status).toBe(200);
    const wrongKey = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "wrong", maxRetries: 0 });
    expect(await wrongKey.models.list().catch((e) => e)).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((await s.client.models.list()).data[0].id).toBe("tiny");
  });
});

describe("--max-queue", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer(model, {}, { servedModelName: "tiny", maxQueue: 3 });
  });
  afterAll(() => s.close(1000));

  test("beyond the limit: 503 with Retry-After; everything admitted still completes", async () => {
    const body = { model: "tiny", prompt: "hi", max_tokens: 200, ignore_eos: true, temperature: 0 };
    // Two streams, 3 completions in all, both producing tokens before the one that overflows arrives.
    const streams = await Promise.all([
      s.client.completions.create({ ...body, stream: true }),
      s.client.completions.create({ ...body, n: 2, stream: true }),
    ]);
    const iterators = streams.map((stream) => stream[Symbol.asyncIterator]());
    for (const it of iterators) expect((await it.next()).done).toBe(false);
    const refused = await post(`${s.url}/v1/completions`, body);
    expectError(refused, 503, "ServiceUnavailableError", null);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    const finishReasons: string[] = [];
    for (const it of iterators) {
      for (let r = await it.next(); !r.done; r = await it.next()) {
        for (const c of r.value.choices) if (c.finish_reason) finishReasons.push(c.finish_reason);
      }
    }
    expect(finishReasons).toEqual(["length", "length", "length"]);
    expect((await post(`${s.url}/v1/completions`, body)).status).toBe(200);
  });
});

describe("--cors-origin", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer(model, {}, { corsOrigin: "https://example.com", apiKey: "k" });
  });
  afterAll(() => s.close(1000));

  test("responses carry the origin; preflight is answered without the API key, with the headers it asks for", async () => {
    const asked = "authorization, content-type, x-stainless-os, x-stainless-retry-count";
    const preflight = await fetch(`${s.url}/v1/chat/completions`, {
      method: "OPTIONS",
      headers: {
        origin: "https://example.com",
        "access-control-request-method": "POST",
        "access-control-request-headers": asked,
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("https://example.com");
    expect(preflight.headers.get("access-control-allow-headers")).toBe(asked);
    expect(preflight.headers.get("access-control-allow-methods")).toMatch(/POST/);
    const health = await fetch(`${s.url}/health`, { headers: { origin: "https://example.com" } });
    expect(health.headers.get("access-control-allow-origin")).toBe("https://example.com");
    // A 401 carries it too, so that a page can read why it was refused.
    const refused = await fetch(`${s.url}/v1/models`, { headers: { origin: "https://example.com" } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get("access-control-allow-origin")).toBe("https://example.com");
    const other = await fetch(`${s.url}/health`, { headers: { origin: "https://elsewhere.example" } });
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
  });
});
