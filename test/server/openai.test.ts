import { readFileSync } from "node:fs";
import type OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { LLM } from "../../src/engine/llm.js";
import { renderChat } from "../../src/model/chat-template.js";
import { loadModel } from "../../src/model/load.js";
import { post, startServer, type TestServer } from "../server-helpers.js";

// What the server answers must be what the offline engine generates for the same prompt and parameters.
const prompts = ["In the beginning", "And God said, Let there be light: and there was light."];

describe("the openai client drives vellum serve (the bundled demo model)", () => {
  const model = loadModel(bundledModelPath);
  let s: TestServer;
  let llm: LLM;
  beforeAll(async () => {
    s = await startServer(model, {}, { servedModelName: "demo" });
    llm = await LLM.fromModel(model, { numBlocks: 512 });
  });
  afterAll(() => s.close(1000));

  /** The offline engine's greedy completion of `prompt`. */
  async function greedy(prompt: string | number[], maxTokens: number) {
    const [out] = await llm.generate([prompt], { temperature: 0, maxTokens });
    return { promptTokenIds: out.promptTokenIds, ...out.outputs[0] };
  }

  test("GET /v1/models, /health, /version", async () => {
    const models = await s.client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(["demo"]);
    expect((await fetch(`${s.url}/health`)).status).toBe(200);
    const version = await (await fetch(`${s.url}/version`)).json();
    expect(version.version).toBe(JSON.parse(readFileSync("package.json", "utf8")).version);
  });

  test("greedy completions equal the offline engine's, with usage", async () => {
    for (const prompt of prompts) {
      const offline = await greedy(prompt, 40);
      const r = await s.client.completions.create({
        model: "demo",
        prompt,
        max_tokens: 40,
        temperature: 0,
      });
      expect(r.object).toBe("text_completion");
      expect(r.choices).toHaveLength(1);
      expect(r.choices[0].text).toBe(offline.text);
      expect(r.choices[0].finish_reason).toBe("length");
      expect(offline.finishReason).toBe("length");
      expect(r.usage).toEqual({
        prompt_tokens: offline.promptTokenIds.length,
        completion_tokens: 40,
        total_tokens: offline.promptTokenIds.length + 40,
      });
    }
  });

  test("streamed completion: the chunks add up to the non-streamed text; include_usage sends usage last", async () => {
    const request = { model: "demo", prompt: prompts[0], max_tokens: 40, temperature: 0 };
    const whole = await s.client.completions.create(request);
    const stream = await s.client.completions.create({
      ...request,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    const finishReasons: (string | null)[] = [];
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      for (const c of chunk.choices) {
        text += c.text;
        finishReasons.push(c.finish_reason);
      }
      usage = chunk.usage;
    }
    expect(text).toBe(whole.choices[0].text);
    expect(text.length).toBeGreaterThan(20);
    expect(finishReasons.at(-1)).toBe("length");
    expect(finishReasons.slice(0, -1).every((f) => f === null)).toBe(true);
    expect(usage).toEqual(whole.usage);
  });

  test("seeded sampling with n = 3 equals the offline engine's, per choice", async () => {
    const params = { temperature: 0.9, top_p: 0.95, top_k: 40, seed: 11, n: 3, max_tokens: 24 };
    const r = await s.client.completions.create({
      model: "demo",
      prompt: "The LORD is my shepherd",
      ...params,
    });
    const [offline] = await llm.generate(["The LORD is my shepherd"], {
      temperature: 0.9,
      topP: 0.95,
      topK: 40,
      seed: 11,
      n: 3,
      maxTokens: 24,
    });
    expect(r.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    expect(r.choices.map((c) => c.text)).toEqual(offline.outputs.map((o) => o.text));
    expect(new Set(r.choices.map((c) => c.text)).size).toBeGreaterThan(1);
    const generated = offline.outputs.reduce((sum, o) => sum + o.tokenIds.length, 0);
    expect(r.usage).toMatchObject({
      prompt_tokens: offline.promptTokenIds.length,
      completion_tokens: generated,
    });
  });

  test("prompts as token ids and as a list: choices numbered prompt × n + i", async () => {
    const [a, b] = await Promise.all(prompts.map((p) => greedy(p, 10)));
    const r = await s.client.completions.create({
      model: "demo",
      prompt: [a.promptTokenIds, b.promptTokenIds],
      max_tokens: 10,
      temperature: 0,
      n: 2,
    });
    expect(r.choices.map((c) => c.index)).toEqual([0, 1, 2, 3]);
    expect(r.choices.map((c) => c.text)).toEqual([a.text, a.text, b.text, b.text]);
    expect(r.usage?.prompt_tokens).toBe(a.promptTokenIds.length + b.promptTokenIds.length);
    expect(r.usage?.completion_tokens).toBe(40);
  });

  test("stop strings end the text before them; finish_reason stop, stop_reason the string", async () => {
    const { text } = await greedy(prompts[0], 60);
    // A word from the middle of the greedy text: the completion must end just before its first occurrence.
    const stop = text.slice(text.indexOf(" ", text.length / 2) + 1).split(/[ ,.:;]/)[0];
    expect(stop.length).toBeGreaterThan(1);
    const r = await s.client.completions.create({
      model: "demo",
      prompt: prompts[0],
      max_tokens: 60,
      temperature: 0,
      stop: [stop, "zebra"],
    });
    expect(r.choices[0].text).toBe(text.slice(0, text.indexOf(stop)));
    expect(r.choices[0].finish_reason).toBe("stop");
    expect((r.choices[0] as unknown as { stop_reason: string }).stop_reason).toBe(stop);
  });

  test("echo puts the prompt before the completion", async () => {
    const { text } = await greedy(prompts[0], 5);
    const r = await s.client.completions.create({
      model: "demo",
      prompt: prompts[0],
      max_tokens: 5,
      temperature: 0,
      echo: true,
    });
    expect(r.choices[0].text).toBe(prompts[0] + text);
  });

  test("completion logprobs: one entry per token, the greedy token is the most likely, offsets follow the text", async () => {
    const r = await s.client.completions.create({
      model: "demo",
      prompt: prompts[0],
      max_tokens: 12,
      temperature: 0,
      logprobs: 3,
    });
    const c = r.choices[0];
    const lp = c.logprobs;
    if (!lp?.tokens || !lp.token_logprobs || !lp.top_logprobs || !lp.text_offset)
      throw new Error("no logprobs");
    expect(lp.tokens).toHaveLength(12);
    expect(lp.tokens.join("")).toBe(c.text);
    lp.tokens.forEach((token, i) => {
      const top = lp.top_logprobs?.[i] ?? {};
      const values = Object.values(top);
      expect(values).toHaveLength(3);
      expect(lp.token_logprobs?.[i]).toBeLessThanOrEqual(0);
      expect(lp.token_logprobs?.[i]).toBeCloseTo(Math.max(...values), 6);
      expect(top[token]).toBeCloseTo(lp.token_logprobs?.[i] ?? Number.NaN, 6);
      expect(c.text.slice(lp.text_offset?.[i])).toMatch(
        new RegExp(`^${token.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`),
      );
    });
  });

  test("chat: greedy equals the offline engine on the rendered conversation, streamed or not", async () => {
    const messages = [
      { role: "system" as const, content: "You speak as the King James Bible." },
      { role: "user" as const, content: [{ type: "text" as const, text: "Tell me of the creation" }] },
    ];
    const rendered = renderChat(
      model,
      [
        { role: "system", content: "You speak as the King James Bible." },
        { role: "user", content: "Tell me of the creation" },
      ],
      { addGenerationPrompt: true },
    );
    const promptIds = model.tokenizer.encode(rendered);
    const [offline] = await llm.generate([promptIds], { temperature: 0, maxTokens: 30 });

    const r = await s.client.chat.completions.create({
      model: "demo",
      messages,
      max_completion_tokens: 30,
      temperature: 0,
    });
    expect(r.object).toBe("chat.completion");
    expect(r.choices[0].message).toMatchObject({ role: "assistant", content: offline.outputs[0].text });
    expect(r.choices[0].finish_reason).toBe(offline.outputs[0].finishReason);
    expect(r.usage).toMatchObject({
      prompt_tokens: promptIds.length,
      completion_tokens: offline.outputs[0].tokenIds.length,
    });

    const stream = await s.client.chat.completions.create({
      model: "demo",
      messages,
      max_tokens: 30,
      temperature: 0,
      stream: true,
    });
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks[0].choices[0].delta).toEqual({ role: "assistant", content: "" });
    expect(chunks.every((c) => c.object === "chat.completion.chunk" && c.id === chunks[0].id)).toBe(true);
    expect(chunks.map((c) => c.choices[0].delta.content ?? "").join("")).toBe(offline.outputs[0].text);
    expect(chunks.at(-1)?.choices[0].finish_reason).toBe(offline.outputs[0].finishReason);
  });

  test("chat: n choices, logprobs with top_logprobs", async () => {
    const r = await s.client.chat.completions.create({
      model: "demo",
      messages: [{ role: "user", content: "Hi" }],
      max_tokens: 8,
      temperature: 0.8,
      seed: 3,
      n: 2,
      logprobs: true,
      top_logprobs: 2,
    });
    expect(r.choices.map((c) => c.index)).toEqual([0, 1]);
    for (const c of r.choices) {
      const content = c.logprobs?.content ?? [];
      expect(content.map((t) => t.token).join("")).toBe(c.message.content);
      for (const t of content) {
        expect(t.top_logprobs).toHaveLength(2);
        expect(t.bytes).toEqual([...Buffer.from(t.token, "utf8")]);
        expect(t.top_logprobs[0].logprob).toBeGreaterThanOrEqual(t.top_logprobs[1].logprob);
        expect(t.logprob).toBeLessThanOrEqual(t.top_logprobs[0].logprob + 1e-9);
      }
    }
    expect(r.usage?.completion_tokens).toBe(
      r.choices.reduce((n, c) => n + (c.logprobs?.content?.length ?? 0), 0),
    );
  });

  test("POST /tokenize and /detokenize (vLLM's shapes) round-trip", async () => {
    const prompt = prompts[1];
    const ids = model.tokenizer.encode(prompt);
    const t = await post(`${s.url}/tokenize`, { model: "demo", prompt });
    expect(t.status).toBe(200);
    expect(t.body).toMatchObject({ count: ids.length, max_model_len: model.config.maxSeqLen, tokens: ids });
    const d = await post(`${s.url}/detokenize`, { tokens: ids });
    expect(d.body).toEqual({ prompt });
    const chat = await post(`${s.url}/tokenize`, { messages: [{ role: "user", content: "Hi" }] });
    const rendered = renderChat(model, [{ role: "user", content: "Hi" }], { addGenerationPrompt: true });
    expect(chat.body.tokens).toEqual(model.tokenizer.encode(rendered));
  });
});
