import { readFileSync } from "node:fs";
import type OpenAI from "openai";
import { afterAll, beforeAll, expect, test } from "vitest";
import { LLM } from "../src/engine/llm.js";
import { renderChat } from "../src/model/chat-template.js";
import { loadModel } from "../src/model/load.js";
import type { LoadedModel } from "../src/model/model.js";
import { post, startServer, type TestServer } from "./server-helpers.js";
import { describeShared, stories260K } from "./shared-models.js";

interface GoldenCase {
  prompt_text: string;
  prompt_tokens: number[];
  generated_tokens_after_prompt: number[];
  generated_text_after_prompt: string;
}

describeShared("the openai client drives vellum serve (stories260K)", () => {
  let model: LoadedModel;
  let s: TestServer;
  let llm: LLM;
  let golden: GoldenCase[];
  beforeAll(async () => {
    model = loadModel(stories260K.model, { tokenizer: stories260K.tokenizer });
    golden = JSON.parse(readFileSync(stories260K.golden, "utf8")).cases.slice(1);
    s = await startServer(model, {}, { servedModelName: "stories" });
    llm = LLM.fromModel(model, { numBlocks: 512 });
  });
  afterAll(() => s.close(1000));

  test("GET /v1/models, /health, /version", async () => {
    const models = await s.client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(["stories"]);
    expect((await fetch(`${s.url}/health`)).status).toBe(200);
    const version = await (await fetch(`${s.url}/version`)).json();
    expect(version.version).toBe(JSON.parse(readFileSync("package.json", "utf8")).version);
  });

  test("greedy completions give the golden continuations, with usage", async () => {
    for (const g of golden) {
      const r = await s.client.completions.create({
        model: "stories",
        prompt: g.prompt_text,
        max_tokens: g.generated_tokens_after_prompt.length,
        temperature: 0,
      });
      expect(r.object).toBe("text_completion");
      expect(r.choices).toHaveLength(1);
      expect(r.choices[0].text).toBe(g.generated_text_after_prompt);
      expect(r.choices[0].finish_reason).toBe("length");
      expect(r.usage).toEqual({
        prompt_tokens: g.prompt_tokens.length,
        completion_tokens: g.generated_tokens_after_prompt.length,
        total_tokens: g.prompt_tokens.length + g.generated_tokens_after_prompt.length,
      });
    }
  });

  test("streamed completion: the chunks add up to the golden text; include_usage sends usage last", async () => {
    const g = golden[0];
    const stream = await s.client.completions.create({
      model: "stories",
      prompt: g.prompt_text,
      max_tokens: g.generated_tokens_after_prompt.length,
      temperature: 0,
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
    expect(text).toBe(g.generated_text_after_prompt);
    expect(finishReasons.at(-1)).toBe("length");
    expect(finishReasons.slice(0, -1).every((f) => f === null)).toBe(true);
    expect(usage?.completion_tokens).toBe(g.generated_tokens_after_prompt.length);
  });

  test("seeded sampling with n = 3 equals the offline engine's, per choice", async () => {
    const params = { temperature: 0.9, top_p: 0.95, top_k: 40, seed: 11, n: 3, max_tokens: 24 };
    const r = await s.client.completions.create({ model: "stories", prompt: "Tom had a dog", ...params });
    const [offline] = await llm.generate(["Tom had a dog"], {
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
    const [a, b] = golden;
    const r = await s.client.completions.create({
      model: "stories",
      prompt: [a.prompt_tokens, b.prompt_tokens],
      max_tokens: 10,
      temperature: 0,
      n: 2,
    });
    expect(r.choices.map((c) => c.index)).toEqual([0, 1, 2, 3]);
    expect(r.choices[0].text).toBe(r.choices[1].text); // greedy: both completions of a prompt agree
    expect(golden[0].generated_text_after_prompt.startsWith(r.choices[0].text)).toBe(true);
    expect(golden[1].generated_text_after_prompt.startsWith(r.choices[2].text)).toBe(true);
    expect(r.usage?.prompt_tokens).toBe(a.prompt_tokens.length + b.prompt_tokens.length);
    expect(r.usage?.completion_tokens).toBe(40);
  });

  test("stop strings end the text before them; finish_reason stop, stop_reason the string", async () => {
    const g = golden[0]; // ", there was a little girl named Lily. She loved …"
    const r = await s.client.completions.create({
      model: "stories",
      prompt: g.prompt_text,
      max_tokens: 60,
      temperature: 0,
      stop: ["Lily", "zebra"],
    });
    expect(r.choices[0].text).toBe(", there was a little girl named ");
    expect(r.choices[0].finish_reason).toBe("stop");
    expect((r.choices[0] as unknown as { stop_reason: string }).stop_reason).toBe("Lily");
  });

  test("echo puts the prompt before the completion", async () => {
    const g = golden[0];
    const r = await s.client.completions.create({
      model: "stories",
      prompt: g.prompt_text,
      max_tokens: 5,
      temperature: 0,
      echo: true,
    });
    expect(r.choices[0].text.startsWith(g.prompt_text + g.generated_text_after_prompt.slice(0, 5))).toBe(
      true,
    );
  });

  test("completion logprobs: one entry per token, the greedy token is the most likely, offsets follow the text", async () => {
    const r = await s.client.completions.create({
      model: "stories",
      prompt: "Once upon a time",
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
      { role: "system" as const, content: "You tell stories." },
      { role: "user" as const, content: [{ type: "text" as const, text: "Tell me about a cat" }] },
    ];
    const rendered = renderChat(
      model,
      [
        { role: "system", content: "You tell stories." },
        { role: "user", content: "Tell me about a cat" },
      ],
      { addGenerationPrompt: true },
    );
    const promptIds = model.tokenizer.encode(rendered);
    const [offline] = await llm.generate([promptIds], { temperature: 0, maxTokens: 30 });

    const r = await s.client.chat.completions.create({
      model: "stories",
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
      model: "stories",
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
      model: "stories",
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
    const g = golden[1];
    const t = await post(`${s.url}/tokenize`, { model: "stories", prompt: g.prompt_text });
    expect(t.status).toBe(200);
    expect(t.body).toMatchObject({
      count: g.prompt_tokens.length,
      max_model_len: 512,
      tokens: g.prompt_tokens,
    });
    const d = await post(`${s.url}/detokenize`, { tokens: g.prompt_tokens });
    expect(d.body).toEqual({ prompt: g.prompt_text });
    const chat = await post(`${s.url}/tokenize`, { messages: [{ role: "user", content: "Hi" }] });
    const rendered = renderChat(model, [{ role: "user", content: "Hi" }], { addGenerationPrompt: true });
    expect(chat.body.tokens).toEqual(model.tokenizer.encode(rendered));
  });
});
